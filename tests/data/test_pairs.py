"""Preference data from feedback files, and the best-against-worst rule.

Pairs sampled from a model and graded by a task are tested in ``tests/evals/test_sampling.py``.
"""

from __future__ import annotations

import json

import pytest

from agentladder.data import DataError, MarkedResponse, PreferencePair, read_jsonl
from agentladder.data.pairs import best_vs_worst, pairs_from_feedback


def test_best_vs_worst_skips_ties():
    assert best_vs_worst(["a", "b", "c"], [0.5, 1.0, 0.0]) == (1, 2)
    assert best_vs_worst(["a", "b"], [0.3, 0.3]) is None


def test_feedback_conversations_and_thumbs_become_pairs_and_marked_rows(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "good"}], "rewards": {"r": 1.0}},
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "bad"}], "rewards": {"r": 0.0}},
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "ok"}], "rewards": {"r": 0.5}},
        {"prompt": "q2", "completion": "thumbs up", "label": True},
        {"prompt": "q2", "completion": "thumbs down", "label": False},
        {"prompt": "q3", "completion": "alone", "label": True},
    ]
    src = tmp_path / "feedback.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert pairs_from_feedback(src, tmp_path / "p.jsonl") == {"rows_read": 6, "rows": 2}
    pairs = read_jsonl(tmp_path / "p.jsonl", PreferencePair)
    assert [(p.chosen[0].content, p.rejected[0].content) for p in pairs] == [("good", "bad"), ("thumbs up", "thumbs down")]
    pairs_from_feedback(src, tmp_path / "m.jsonl", format="marked")
    assert [r.label for r in read_jsonl(tmp_path / "m.jsonl", MarkedResponse)] == [True, False, True, True, False, True]


def test_feedback_without_a_reward_names_file_line_and_field(tmp_path):
    src = tmp_path / "feedback.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n")
    with pytest.raises(DataError, match=r"feedback.jsonl:1: rewards"):
        pairs_from_feedback(src, tmp_path / "p.jsonl")
