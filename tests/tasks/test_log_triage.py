"""The log-triage task: seeded splits that share no event, the priority rules, three families of writing,
and the classification rows' file:line:field errors."""

import itertools
import json
import random
import re

import pytest
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.data import DataError
from agentladder.tasks import get_task, load_labelled
from agentladder.tasks.logtriage import (
    Event,
    LogTriage,
    draw_event,
    generate_rows,
    priority,
    split_of_event,
)
from agentladder.tasks.logtriage.render import (
    ENV_NAMES,
    FAMILIES,
    LAYOUTS,
    MESSAGES,
    REPEATS,
    SPLIT_FAMILIES,
    STACKS,
    render,
)
from agentladder.tasks.task import Sample


def test_splits_are_seeded_and_a_larger_draw_extends_a_smaller_one():
    assert generate_rows("train", 200, seed=3) == generate_rows("train", 200, seed=3)
    assert generate_rows("train", 200, seed=3) != generate_rows("train", 200, seed=4)
    assert generate_rows("validation", 300)[:50] == generate_rows("validation", 50)
    rows = generate_rows("test", 300)
    assert len({r["text"] for r in rows}) == 300 and {r["label"] for r in rows} == {"P1", "P2", "P3"}


def test_train_validation_and_test_never_share_an_event_or_a_row():
    rng = random.Random(0)
    for _ in range(3000):
        event = draw_event(rng)
        copy = Event(event.kind, event.service, event.env, event.value, event.limit, event.detail,
                     {"user": "someone else"})  # the noise is not part of what happened
        assert split_of_event(copy) == split_of_event(event)
    texts = {split: {r["text"] for r in generate_rows(split, n)}
             for split, n in (("train", 2000), ("validation", 400), ("test", 400))}
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert any("(repeated" in t or "(seen" in t or "similar]" in t for t in texts["train"])  # noisy duplicates are in the data


def test_each_split_is_written_in_its_own_family():
    assert set(SPLIT_FAMILIES["train"]).isdisjoint(SPLIT_FAMILIES["validation"] + SPLIT_FAMILIES["test"])
    assert set(FAMILIES) == {f for fs in SPLIT_FAMILIES.values() for f in fs}
    for table in (MESSAGES, LAYOUTS, STACKS, REPEATS):
        phrasings = [{table[f]} if isinstance(table[f], str) else set(table[f]) if not isinstance(table[f], dict)
                     else {p for v in table[f].values() for p in v} for f in FAMILIES]
        assert all(not a & b for a, b in itertools.combinations(phrasings, 2))  # no family shares a phrasing
    for env in ("prod", "staging", "dev"):
        names = [set(ENV_NAMES[f][env]) for f in FAMILIES]
        assert all(not a & b for a, b in itertools.combinations(names, 2))
    envs = {f: {n for names in ENV_NAMES[f].values() for n in names} for f in FAMILIES}
    train_rows = [r["text"] for r in generate_rows("train", 300)]
    for f in SPLIT_FAMILIES["train"]:  # every training family is drawn
        assert any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", t) for t in train_rows for name in envs[f])
    test_rows = [r["text"] for r in generate_rows("test", 300)]
    assert not any("(prod)" in t or "[prod]" in t or "env=production" in t for t in test_rows)
    assert all(t.startswith(("ts=", "{")) for t in test_rows)


@pytest.mark.parametrize(("event", "label"), [
    (Event("errors", "payments-api", "prod", 7.5), "P1"),
    (Event("errors", "reporting-worker", "prod", 7.5), "P2"),
    (Event("errors", "payments-api", "prod", 2.0), "P2"),
    (Event("errors", "reporting-worker", "prod", 2.0), "P3"),
    (Event("errors", "payments-api", "staging", 40.0), "P3"),
    (Event("outage", "checkout", "prod", 4, 4), "P1"),
    (Event("outage", "image-resizer", "prod", 4, 4), "P2"),
    (Event("latency", "api-gateway", "prod", 900, 300), "P1"),
    (Event("latency", "api-gateway", "prod", 600, 300), "P2"),
    (Event("latency", "search-indexer", "prod", 600, 300), "P3"),
    (Event("saturation", "orders-db", "prod", 96, detail="disk"), "P1"),
    (Event("saturation", "orders-db", "prod", 90, detail="disk"), "P2"),
    (Event("saturation", "email-digest", "prod", 97, detail="disk"), "P2"),
    (Event("breach", "admin-dashboard", "prod", 5, detail="export"), "P1"),
    (Event("breach", "admin-dashboard", "dev", 5, detail="export"), "P2"),
    (Event("attack", "auth-service", "prod", 20000, detail="bruteforce"), "P2"),
    (Event("attack", "auth-service", "prod", 200, detail="bruteforce"), "P3"),
    (Event("certificate", "checkout", "prod", 1), "P1"),
    (Event("certificate", "checkout", "prod", 10), "P2"),
    (Event("certificate", "checkout", "prod", 30), "P3"),
    (Event("routine", "payments-api", "prod", 3, detail="retry"), "P3"),
])
def test_priority_follows_the_spec(event, label):
    assert priority(event) == label
    for family in FAMILIES:
        assert render(event, family, random.Random(0))  # every event can be written in every family


def test_answers_are_read_and_scored():
    task = get_task("log-triage")
    assert isinstance(task, LogTriage) and task.headline == "p1_recall"
    assert task.parse("P1").value == "P1" and task.parse("Priority: p2.").value == "P2"
    assert task.parse("I would say P3 here").value == "P3"
    assert not task.parse("high priority").valid and not task.parse("P12").valid
    rows = [Sample(str(i), "x", t) for i, t in enumerate(["P1", "P1", "P2", "P3", "P3"])]
    answers = ["P1", "P3", "P2", "P3", "nonsense"]
    scores = [task.score(r, task.parse(a)) for r, a in zip(rows, answers, strict=True)]
    summary = task.summarise(rows, scores, n_resamples=50)
    assert summary.metrics["p1_recall"].value == 0.5 and summary.metrics["accuracy"].value == 0.6
    assert summary.metrics["validity"].value == 0.8
    assert summary.breakdowns["recall"]["P3"].value == 0.5 and summary.breakdowns["precision"]["P3"].value == 0.5
    assert summary.confusions["p1_flag"] == {"tp": 1, "fn": 1, "fp": 0, "tn": 3}
    assert summary.matrices["confusion_matrix"] == {"P1": {"P1": 1, "P2": 0, "P3": 1, "none": 0},
                                                    "P2": {"P1": 0, "P2": 1, "P3": 0, "none": 0},
                                                    "P3": {"P1": 0, "P2": 0, "P3": 1, "none": 1}}
    shots = task.select_shots(3)
    assert [s.target for s in shots] == ["P2", "P3", "P1"]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_rows_are_errors_at_file_line_and_field(tmp_path):
    good = [{"text": "a", "label": "P1"}, {"text": "b", "label": "P2"}, {"text": "c", "label": "P3"}]
    assert len(get_task("log-triage").load(_write(tmp_path / "ok.jsonl", good))) == 3
    cases = {
        "outside.jsonl": (good + [{"text": "d", "label": "P4"}], ":4: label: 'P4' is not one of the labels P1, P2, P3"),
        "no_text.jsonl": ([{"label": "P1"}] + good, ":1: text"),
        "blank.jsonl": (good[:1] + [{"text": "   ", "label": "P2"}] + good, ":2: text: the text is blank"),
        "empty_class.jsonl": (good[:2], ": label: no row has the label 'P3'"),
    }
    for name, (rows, message) in cases.items():
        path = _write(tmp_path / name, rows)
        with pytest.raises(DataError) as err:
            load_labelled(path, ["P1", "P2", "P3"])
        assert str(path) in str(err.value) and message in str(err.value), str(err.value)


def test_data_make_writes_text_and_label_rows(tmp_path):
    out = tmp_path / "logs.jsonl"
    result = CliRunner().invoke(app, ["data", "make", "log-triage", "--split", "validation", "--n", "40",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and set(rows[0]) == {"id", "text", "label"}
    assert rows == generate_rows("validation", 40)
    assert [s.target for s in get_task("log-triage").load(out)] == [r["label"] for r in rows]
