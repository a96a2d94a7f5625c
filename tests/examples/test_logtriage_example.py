"""examples/logtriage: each tier of the dedup cache on hand-made events, the number guard, the choice of the
thresholds, the pipeline's calls, and the script on a small stream with the tiny model."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "logtriage"
sys.path.insert(0, str(EXAMPLE))

from dedup import (  # noqa: E402
    DedupCache,
    Thresholds,
    choose_thresholds,
    jaccard,
    minilm_embedder,
    normalise,
    tokens,
)
from pipeline import FewShotStore, TriagePipeline  # noqa: E402

from agentladder.tasks.task import Sample  # noqa: E402

DISK = "2026-05-01T10:00:00Z ERROR [billing] (prod) disk /var 97% full on host-12 req=9f1c2a7e"
DISK_AGAIN = "2026-05-02T11:22:33Z ERROR [billing] (prod) disk /var 97% full on host-40 req=0b44de19"
QUEUE = "May 3 08:00:01 ingest[311]: WARN queue depth 5000 over limit, 12 consumers idle"
QUEUE_OTHER_NUMBERS = "May 4 09:10:11 ingest[977]: WARN queue depth 7200 over limit, 3 consumers idle"
DB = "ERROR payment service cannot reach its database: connection refused"
DB_PARAPHRASE = "payments backend failed to connect to the DB (connection refused)"
LOGIN = "INFO user alice logged in from the web console"


@pytest.fixture(scope="module")
def embed():
    return minilm_embedder()


def test_normalising_masks_what_changes_between_copies_of_an_event():
    assert normalise(DISK) == normalise(DISK_AGAIN) == "<ts> error [billing] (prod) disk /var 97% full on <id> req= <id>"
    assert normalise("Mar 14 09:12:03 10.0.0.7 api[4411]: x") == "<date> <time> <ip> api[<pid>]: x"
    # A number with a unit is a measurement, not an id: a certificate 71 days out is not one 3 days out.
    assert normalise("cert expires in 71d, p99 886ms") == "cert expires in 71 d, <id> 886 ms"
    assert normalise("cert expires in 71d") != normalise("cert expires in 3d")
    assert "<num>" in tokens(QUEUE, "numbers") and "5000" in tokens(QUEUE, "volatile")
    assert jaccard(tokens(QUEUE), tokens(QUEUE_OTHER_NUMBERS)) == 1.0  # numbers masked
    assert jaccard(tokens(QUEUE, "volatile"), tokens(QUEUE_OTHER_NUMBERS, "volatile")) < 1.0


def test_exact_tier_hits_a_copy_with_other_timestamps_and_ids():
    cache = DedupCache(Thresholds(overlap=None, semantic=None))
    cache.add(DISK, "P1")
    hit = cache.lookup(DISK_AGAIN)
    assert (hit.tier, hit.label, hit.matched) == ("exact", "P1", 0)


def test_overlap_tier_hits_the_same_event_with_other_numbers_unless_the_number_guard_is_on():
    loose = DedupCache(Thresholds(mask="numbers", overlap=0.7, semantic=None, guard=False))
    loose.add(QUEUE, "P2")
    hit = loose.lookup(QUEUE_OTHER_NUMBERS)
    assert (hit.tier, hit.label) == ("overlap", "P2") and hit.similarity == 1.0
    guarded = DedupCache(Thresholds(mask="numbers", overlap=0.7, semantic=None, guard=True))
    guarded.add(QUEUE, "P2")
    assert guarded.lookup(QUEUE_OTHER_NUMBERS).tier == "miss"  # 5000 and 7200 are other measurements
    repeated = QUEUE.replace("idle", "idle (last message repeated 40 times)")
    hit = guarded.lookup(repeated)  # every number of the original is in the repeat: 12 of 16 tokens shared
    assert hit.tier == "overlap" and hit.similarity == 0.75


def test_semantic_tier_hits_a_paraphrase_the_token_overlap_misses(embed):
    cache = DedupCache(Thresholds(mask="numbers", overlap=0.8, semantic=0.75), embed)
    cache.add(DB, "P1")
    assert jaccard(tokens(DB), tokens(DB_PARAPHRASE)) < 0.8
    hit = cache.lookup(DB_PARAPHRASE)
    assert (hit.tier, hit.label) == ("semantic", "P1") and hit.similarity >= 0.75


def test_an_unrelated_event_misses_every_tier(embed):
    cache = DedupCache(Thresholds(mask="numbers", overlap=0.8, semantic=0.75), embed)
    for text, label in ((DISK, "P1"), (QUEUE, "P2"), (DB, "P1")):
        cache.add(text, label)
    hit = cache.lookup(LOGIN)
    assert hit.tier == "miss" and hit.label is None


def test_thresholds_are_chosen_so_hits_keep_the_label():
    # Copies of events agree on the label; the same message with another error rate does not. Without the
    # number guard no overlap threshold keeps 95 % of its hits right, so the guard is chosen.
    texts, labels = [], []
    for i, rate in enumerate([0.2, 7.5, 1.8, 12.0, 0.6, 9.1, 3.3, 15.5]):
        label = "P1" if rate >= 5 else "P2" if rate >= 1 else "P3"
        line = f"ERROR [checkout-{i}] {rate}% of requests failing with HTTP 503"
        texts += [line, line + f" (repeated {i + 2} times)"]
        labels += [label, label]
    th = choose_thresholds(texts, labels, None, min_precision=0.95, min_hits=3)
    assert th.guard and th.overlap is not None and th.semantic is None
    assert th.chosen["configurations_tried"] == 2 * 2 * 51
    unguarded = [c for c in th.chosen["candidates"] if not c["guard"] and c["mask"] == "numbers"][0]
    assert unguarded["overlap"]["threshold"] is None  # the rates would be merged
    cache = DedupCache(th)
    cache.add(texts[0], labels[0])
    assert cache.lookup(texts[1]).label == "P3" and cache.lookup(texts[2]).tier == "miss"


class Recorded:
    """A backend that answers from a table and records the examples it was shown."""

    generative = True

    def __init__(self, answers):
        self.answers, self.calls, self.shown = answers, 0, []

    def answer(self, text, shots=()):
        self.calls += 1
        self.shown.append([s.input for s in shots])
        return self.answers[text]


def test_the_pipeline_calls_the_model_only_on_misses_with_the_most_similar_examples_last(embed):
    store = FewShotStore([Sample("a", LOGIN, "P3"), Sample("b", DB, "P1"), Sample("c", QUEUE, "P2")], embed)
    backend = Recorded({DISK: "P1", DB_PARAPHRASE: "P1", LOGIN: "P3"})
    pipe = TriagePipeline(backend, cache=DedupCache(Thresholds(mask="numbers", overlap=0.8, semantic=None), embed),
                          store=store, k=2)
    tiers = [pipe.triage(t).tier for t in (DISK, DISK_AGAIN, DB_PARAPHRASE, LOGIN)]
    assert tiers == ["model", "exact", "model", "model"] and backend.calls == 3
    assert backend.shown[1][-1] == DB  # the paraphrase's nearest labelled event comes last, next to it
    alone = TriagePipeline(Recorded({DISK: "P1", DISK_AGAIN: "P1"}))
    assert [alone.triage(t).tier for t in (DISK, DISK_AGAIN)] == ["model", "model"]
    assert np.isclose(np.linalg.norm(store.vectors[0]), 1.0, atol=1e-3)


def test_the_script_reports_a_small_stream_with_the_tiny_model(tmp_path):
    import triage

    report = triage.main(["--model", "tiny", "--events", "24", "--validation", "80", "--store", "20", "--k", "2",
                          "--out", str(tmp_path), "--quiet"])
    runs = report["runs"]
    assert set(runs) == {"pipeline", "model alone"}
    for r in runs.values():
        hits = sum(t["hits"] for t in r["tiers"].values())
        assert r["events"] == 24 and r["model_calls"] + hits == 24 and r["calls_saved"] == hits
        assert set(r["metrics"]) >= {"accuracy", "macro_f1", "p1_recall"} and r["seconds_per_event"]["mean"] > 0
    assert runs["model alone"]["model_calls"] == 24
    assert report["thresholds"]["chosen"]["rows"] == 80
    assert json.loads((tmp_path / "report.json").read_text())["model"] == "tiny"
    assert "| model calls |" in (tmp_path / "report.md").read_text()
    assert len((tmp_path / "decisions.jsonl").read_text().splitlines()) == 24


DOC = Path(__file__).resolve().parents[2] / "docs" / "log-triage-example.md"


def test_the_docs_commands_parse_and_the_python_block_runs(monkeypatch, capsys):
    import re
    import shlex

    import triage

    text = DOC.read_text()
    commands = re.findall(r"^python examples/logtriage/triage.py (.*?)(?:\s+#.*)?$", text, re.MULTILINE)
    assert len(commands) >= 3
    for args in commands:
        parsed = triage.parser().parse_args(shlex.split(args))
        assert parsed.events > 0 and parsed.out
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    monkeypatch.chdir(DOC.parents[1])
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "docs_logtriage"})
    assert capsys.readouterr().out.split() == ["exact", "miss"]
