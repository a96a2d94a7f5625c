"""The seeded prescription generator: reproducible, realistic, splits that never share a row."""

import re

import pytest

from agentladder.tasks import get_task
from agentladder.tasks.medication import formulary, generate_rows, is_dangerous, split_of
from agentladder.tasks.medication.generator import (
    ABBREVIATIONS,
    BRANDS,
    FREQUENCIES,
    normalise_text,
)
from agentladder.tasks.medication.shifted import DRUG_NAMES, FREQUENCY_PHRASES, RESERVED

TASK = get_task("medication-directions")


def test_same_seed_same_rows_other_seed_other_rows():
    assert generate_rows("test", 50, seed=1) == generate_rows("test", 50, seed=1)
    assert generate_rows("test", 50, seed=1) != generate_rows("test", 50, seed=2)
    # Asking for more rows extends the list; the first rows stay.
    assert generate_rows("test", 80, seed=1)[:50] == generate_rows("test", 50, seed=1)


def test_splits_never_share_a_row():
    keys = {}
    for split, n in (("train", 2000), ("validation", 300), ("test", 300)):
        rows = generate_rows(split, n, seed=0)
        keys[split] = {normalise_text(r["text"]) for r in rows}
        assert len(keys[split]) == n, "rows within a split are distinct"
        assert all(split_of(r["text"]) == split for r in rows)
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    # Other seeds draw other rows, still inside their split.
    other = {normalise_text(r["text"]) for r in generate_rows("train", 500, seed=7)}
    assert not other & keys["test"]


FREQUENCY_DOSES = {f.doses for f in FREQUENCIES.values()}
DOSES_PER_DAY = FREQUENCY_DOSES | set(range(2, max(FREQUENCY_DOSES)))
"""Every value the generator can give: a frequency's own doses, or a daily cap below one (2 up to its doses - 1,
so "every 3 hours" (8) capped gives anything from 2 to 7)."""


def test_the_doses_a_cap_can_give_are_all_allowed():
    assert set(range(1, 9)) == DOSES_PER_DAY
    # 7 is rare (a cap on "every 3 hours") but real: far enough into the stream it comes up.
    assert any(r["target"]["doses_per_day"] == 7 for r in generate_rows("train", 20000, seed=0))


def test_targets_follow_the_formulary_and_the_spec():
    rows = generate_rows("train", 1500, seed=0)
    table = formulary()
    dangerous = 0
    for row in rows:
        t = row["target"]
        drug = table[t["drug"]]
        assert t["strength_mg"] in drug.strengths_mg
        assert t["dose_units"] in (0.5, 1, 1.5, 2, 3)
        assert t["doses_per_day"] in DOSES_PER_DAY and isinstance(t["doses_per_day"], int)
        assert t["duration_days"] is None or isinstance(t["duration_days"], int)
        text = row["text"].lower()
        names = [t["drug"], BRANDS.get(t["drug"], "").lower(), ABBREVIATIONS.get(t["drug"], "").lower()]
        assert any(n and n in text for n in names), row["text"]
        dangerous += bool(is_dangerous(t["drug"], t["strength_mg"], t["dose_units"], t["doses_per_day"]))
    assert 0.18 < dangerous / len(rows) < 0.32


def test_variety_of_phrasings():
    texts = [r["text"] for r in generate_rows("train", 2000, seed=0)]
    lower = [t.lower() for t in texts]

    def share(pattern):
        return sum(bool(re.search(pattern, t)) for t in lower) / len(texts)

    for pattern in (r"\bbid\b", r"twice (daily|a day)", r"q\s?\d+(-\d+)?\s?h", r"every \d+ (to|-) ?\d+ hours",
                    r"\bprn\b", r"as needed", r"\bmcg\b|micrograms", r"x ?\d+ ?d\b", r"weeks?\b", r"months?\b",
                    r"no more than|max \d|do not exceed|not to exceed|mdd", r"#\d+|qty|disp", r"\bsig\b",
                    r"\bpo\b", r"by mouth", r"1/2|half|½|0\.5"):
        assert share(pattern) > 0.005, pattern
    assert sum(t == t.upper() for t in texts) / len(texts) > 0.05
    assert len({t.split()[0].lower() for t in texts}) > 40  # many different openings (orders of parts)


def test_caps_override_the_frequency():
    capped = [r for r in generate_rows("train", 3000, seed=0)
              if re.search(r"no more than \d+ doses|max \d+ doses", r["text"].lower())]
    assert capped
    for row in capped:
        n = int(re.search(r"(?:no more than|max) (\d+) doses", row["text"].lower()).group(1))
        assert row["target"]["doses_per_day"] == n


def test_generated_rows_round_trip_through_the_loader(tmp_path):
    from agentladder.tasks import write_data

    path = tmp_path / "test.jsonl"
    assert write_data("medication-directions", "test", 40, path, seed=3) == 40
    loaded = TASK.load(path)
    assert [s.target for s in loaded] == [r["target"] for r in generate_rows("test", 40, seed=3)]


def test_rebalanced_training_data_sees_rare_values_more_often():
    from collections import Counter

    from agentladder.tasks.make import make_data, rebalance

    plain = Counter(r["target"]["doses_per_day"] for r in make_data("medication-directions", "train", 400))
    pool = get_task("medication-directions").make("train", 3200)
    picked = rebalance(pool, "doses_per_day", 400, seed=0)
    even = Counter(s.target["doses_per_day"] for s in picked)
    assert len(picked) == 400 and all(split_of(s.input) == "train" for s in picked)
    # The commonest value (once daily) loses share, the rare ones (every 4 hours = 6) gain it.
    assert even[1] < plain[1] and even[6] > plain[6]
    counts = Counter(s.target["doses_per_day"] for s in pool)
    share = {k: counts[k] ** 0.5 / sum(c ** 0.5 for c in counts.values()) for k in counts}
    assert abs(even[1] / 400 - share[1]) < 0.06
    assert rebalance(pool, "doses_per_day", 400, seed=0) == picked
    rows = make_data("medication-directions", "train", 50, format="sft", balance="doses_per_day")
    assert len(rows) == 50 and rows[0]["messages"][-1]["role"] == "assistant"
    with pytest.raises(ValueError, match="cannot balance on 'dose': row rx-train-000001 has no target field 'dose'"):
        rebalance(pool, "dose", 10)
    once = rebalance(pool[:300], "doses_per_day", 250, seed=0, repeat=False)
    assert len(once) == 250 and len({s.id for s in once}) == 250
    assert Counter(s.target["doses_per_day"] for s in once)[1] < Counter(s.target["doses_per_day"] for s in pool[:250])[1]
    assert sorted(s.id for s in rebalance(pool[:300], "doses_per_day", 400, seed=0, repeat=False)) == sorted(
        s.id for s in pool[:300])  # asked for more rows than there are: each comes once


def _reserved_in(text: str) -> list[str]:
    low = " ".join(text.lower().split())
    return [form for form in RESERVED if re.search(rf"(?<![\w.]){re.escape(form)}(?![\w])", low)]


def test_no_other_split_ever_uses_a_form_reserved_for_the_shifted_split():
    for split, n in (("train", 6000), ("validation", 1500), ("test", 1500)):
        for row in generate_rows(split, n, seed=3):
            assert not _reserved_in(row["text"]), (split, row["text"], _reserved_in(row["text"]))


def test_shifted_rows_use_reserved_forms_and_keep_the_task_rules():
    rows = generate_rows("shifted", 1500, seed=0)
    assert generate_rows("shifted", 50, seed=0) == rows[:50] and len({normalise_text(r["text"]) for r in rows}) == 1500
    phrases = {p for ps in FREQUENCY_PHRASES.values() for p in ps}
    table = formulary()
    for row in rows:
        t, low = row["target"], row["text"].lower()
        assert any(re.search(rf"(?<![\w.]){re.escape(p)}(?![\w])", low) for p in phrases), row["text"]
        drug = table[t["drug"]]  # targets are drawn exactly as in the other splits
        assert t["strength_mg"] in drug.strengths_mg and t["doses_per_day"] in DOSES_PER_DAY
        names = [t["drug"], *(n.lower() for n in DRUG_NAMES.get(t["drug"], ()))]
        assert any(n in low for n in names), row["text"]
    # The task's own loader and scorer read them like any other row.
    assert TASK.make("shifted", 5, 0)[0].target == rows[0]["target"]
    assert sum(bool(is_dangerous(*(r["target"][f] for f in ("drug", "strength_mg", "dose_units", "doses_per_day"))))
               for r in rows) / len(rows) > 0.15
    # Reserved names and layouts actually occur.
    joined = " ".join(r["text"].lower() for r in rows)
    for form in ("paracetamol", "advil", "medication:", "=>", "as required", "/7", "tbl", "up to"):
        assert form in joined, form


def test_shifted_frequencies_mean_what_the_train_ones_do():
    """A reserved phrasing states the same doses per day as its frequency (caps aside)."""
    for row in generate_rows("shifted", 800, seed=1):
        low = row["text"].lower()
        if re.search(r"up to|not more than|maximum of", low):
            continue
        for key, phrases in FREQUENCY_PHRASES.items():
            if any(re.search(rf"(?<![\w.-]){re.escape(p)}(?![\w-])", low) for p in phrases):
                assert row["target"]["doses_per_day"] == FREQUENCIES[key].doses, (row["text"], key)
