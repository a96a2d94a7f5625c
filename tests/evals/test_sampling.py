"""Preference data sampled from a model and graded by a task's reward (best vs worst, or KTO rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from agentladder.data import MarkedResponse, Message, PreferencePair, read_jsonl
from agentladder.evals.sampling import graded_answers, sample_and_score
from agentladder.tasks import Parsed, Task, get_task


@dataclass
class _Sample:
    id: str
    input: str
    target: int


class _AdditionTask(Task):
    """Answers are numbers; the score says whether it is the sum (graded by the base task's reward)."""

    name = "addition"
    max_new_tokens = 8
    stop_at_json = False

    def load(self, path):
        raise NotImplementedError

    def prompt(self, sample, shots=()):
        return [Message(role="user", content=sample.input)]

    def parse(self, output):
        text = output.strip()
        return Parsed(text, text.isdigit())

    def score(self, sample, parsed):
        return {"exact": parsed.value == str(sample.target), "valid": parsed.valid}

    def summarise(self, samples, scores, *, n_resamples=1000, seed=0):
        raise NotImplementedError


@dataclass
class _Scripted:
    """Answers each prompt with the next of its scripted answers."""

    answers: dict[str, list[str]]
    name: str = "scripted"
    calls: list[int] = field(default_factory=list)

    def complete(self, prompts, *, max_new_tokens, temperature, stop_at_json):
        self.calls.append(len(prompts))
        return [self.answers[p[-1].content].pop(0) for p in prompts]


SAMPLES = [_Sample("a", "1+1", 2), _Sample("b", "2+2", 4), _Sample("c", "3+3", 6)]


def _provider():
    return _Scripted({"1+1": ["2", "3", "two", "2"], "2+2": ["5", "5", "5", "5"], "3+3": ["6", "x", "6", "7"]})


def test_sampled_answers_become_best_vs_worst_pairs(tmp_path):
    out = tmp_path / "pairs.jsonl"
    counts = sample_and_score(_AdditionTask(), _provider(), SAMPLES, out, k=4, prompts_per_batch=2, progress=False)
    assert counts == {"prompts": 3, "answers": 12, "rows": 2, "ties": 1, "errors": 0}
    pairs = read_jsonl(out, PreferencePair)
    assert [(p.id, p.chosen[0].content, p.rejected[0].content) for p in pairs] == [("a", "2", "two"), ("c", "6", "x")]
    assert pairs[0].prompt[0].content == "1+1" and pairs[0].metadata["chosen_reward"] == 1.0
    assert not Path(str(out) + ".partial").exists()


def test_the_reference_answer_can_join_the_candidates(tmp_path):
    class WithTarget(_AdditionTask):
        def target_text(self, sample):
            return str(sample.target)

    out = tmp_path / "pairs.jsonl"
    counts = sample_and_score(WithTarget(), _provider(), SAMPLES, out, k=4, with_target=True, progress=False)
    assert counts["ties"] == 0  # "2+2" answered 5 four times now pairs 4 against 5
    pairs = read_jsonl(out, PreferencePair)
    assert [(p.chosen[0].content, p.rejected[0].content) for p in pairs] == [("2", "two"), ("4", "5"), ("6", "x")]


def test_greedy_errors_are_the_rejected_side_and_come_first(tmp_path):
    class WithTarget(_AdditionTask):
        def target_text(self, sample):
            return str(sample.target)

    # One sampled answer, then the greedy one, for each prompt: "1+1" and "3+3" greedy-wrong, "2+2" right.
    provider = _Scripted({"1+1": ["x", "3"], "2+2": ["5", "4"], "3+3": ["6", "7"]})
    out, graded = tmp_path / "pairs.jsonl", tmp_path / "graded.jsonl"
    counts = sample_and_score(WithTarget(), provider, SAMPLES, out, k=1, with_target=True, greedy=True, max_rows=2,
                              graded_out=graded, progress=False)
    assert counts == {"prompts": 3, "answers": 6, "rows": 2, "ties": 0, "errors": 2}
    pairs = read_jsonl(out, PreferencePair)
    # The model's own greedy mistakes are rejected, against the reference ("1+1") or a right sample ("3+3");
    # the prompt it got right ("2+2": a sampled 5 against its greedy 4) comes after them and is cut by max_rows.
    assert [(p.id, p.chosen[0].content, p.rejected[0].content) for p in pairs] == [("a", "2", "3"), ("c", "6", "7")]
    assert all(p.metadata["greedy_wrong"] for p in pairs)
    assert [json.loads(line)["greedy"] for line in graded.read_text().splitlines()] == ["3", "4", "7"]


def test_each_worse_pairs_the_best_answer_with_every_distinct_lower_one(tmp_path):
    class WithTarget(_AdditionTask):
        def target_text(self, sample):
            return str(sample.target)

    # "1+1": greedy "3" wrong, samples "x", "3" (a repeat), "2"; "2+2": all right; "3+3": greedy "6" right, "7" wrong.
    provider = _Scripted({"1+1": ["x", "3", "2", "3"], "2+2": ["4", "4", "4", "4"], "3+3": ["7", "6", "6", "6"]})
    out = tmp_path / "pairs.jsonl"
    counts = sample_and_score(WithTarget(), provider, SAMPLES, out, k=3, with_target=True, greedy=True,
                              pairing="each_worse", progress=False)
    assert counts == {"prompts": 3, "answers": 12, "rows": 3, "ties": 1, "errors": 1}
    pairs = read_jsonl(out, PreferencePair)
    # the best answer (the first right one) against each distinct wrong one, greedy first; the repeat of "3" once
    assert [(p.id, p.chosen[0].content, p.rejected[0].content) for p in pairs] == [
        ("a-1", "2", "3"), ("a-2", "2", "x"), ("c", "6", "7")]
    assert pairs[0].metadata["greedy_wrong"] and not pairs[2].metadata["greedy_wrong"]


def test_marked_rows_label_each_distinct_answer(tmp_path):
    out = tmp_path / "marked.jsonl"
    sample_and_score(_AdditionTask(), _provider(), SAMPLES[:1], out, k=4, format="marked", progress=False)
    rows = read_jsonl(out, MarkedResponse)
    assert [(r.completion[0].content, r.label) for r in rows] == [("2", True), ("3", False), ("two", False)]


def test_an_interrupted_run_continues_without_asking_again(tmp_path):
    out = tmp_path / "pairs.jsonl"
    partial = tmp_path / "pairs.jsonl.partial"
    partial.write_text(json.dumps({"id": "a", "answers": ["2", "3"], "rewards": [1.0, 0.0]}) + "\n")
    provider = _provider()
    sample_and_score(_AdditionTask(), provider, SAMPLES[:2], out, k=4, progress=False)
    assert provider.calls == [4]  # only "b" was asked
    assert [p.id for p in read_jsonl(out, PreferencePair)] == ["a"]


def test_a_partial_file_without_greedy_answers_is_asked_again_when_they_are_wanted(tmp_path):
    """A record written without the greedy answer cannot serve a run that needs it; one with it is read back."""
    partial = tmp_path / "answers.partial"
    partial.write_text(json.dumps({"id": "a", "answers": ["2", "3"], "rewards": [1.0, 0.0]}) + "\n"
                       + json.dumps({"id": "b", "answers": ["5", "5"], "rewards": [0.0, 0.0], "greedy": "4",
                                     "greedy_reward": 1.0}) + "\n")
    provider = _Scripted({"1+1": ["3", "2", "2"]})
    done = graded_answers(_AdditionTask(), provider, SAMPLES[:2], partial, k=2, temperature=1.0, budget=8,
                          greedy=True, progress=False)
    assert provider.calls == [2, 1]  # "a" sampled twice and answered greedily; "b" read back
    assert (done["a"]["answers"], done["a"]["greedy"], done["a"]["greedy_reward"]) == (["3", "2"], "2", 1.0)
    assert done["b"]["greedy"] == "4"


@dataclass
class _Random:
    """Samples each answer from torch's global random state (the greedy answer is "0"); fails at call ``fail_at``."""

    fail_at: int | None = None
    name: str = "random"
    calls: list[int] = field(default_factory=list)

    def complete(self, prompts, *, max_new_tokens, temperature, stop_at_json):
        self.calls.append(len(prompts))
        if len(self.calls) == self.fail_at:
            raise RuntimeError("killed")
        return [str(int(torch.randint(0, 10, ()))) if temperature else "0" for _ in prompts]


def test_a_resumed_run_samples_what_the_uninterrupted_one_does(tmp_path):
    samples = [_Sample(c, f"{i}+{i}", 2 * i) for i, c in enumerate("abcdef")]

    def run(partial, provider):
        torch.manual_seed(0)  # as model_answers seeds: a resumed run starts from the seed again
        return graded_answers(_AdditionTask(), provider, samples, partial, k=3, temperature=1.0, budget=8,
                              greedy=True, prompts_per_batch=2, progress=False)

    whole = run(tmp_path / "whole", _Random())
    assert not (tmp_path / "whole.rng").exists()  # gone once every sample is answered
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError):
        run(cut, _Random(fail_at=5))  # killed sampling the third batch: two batches written
    assert len(cut.read_text().splitlines()) == 4
    resumed = _Random()
    assert run(cut, resumed) == whole and resumed.calls == [6, 2]
    # Killed after the random state was kept but before the batch's rows: the batch is sampled again from the
    # state it started with.
    with pytest.raises(RuntimeError):
        run(tmp_path / "cut2", _Random(fail_at=5))
    rows = (tmp_path / "cut2").read_text().splitlines()
    (tmp_path / "cut2").write_text(rows[0] + "\n" + rows[1] + "\n")
    assert run(tmp_path / "cut2", _Random()) == whole
    # Killed while writing the second batch's rows: its first row whole, its second cut off mid-line. The
    # cut line and the batch's whole row go, and the batch is sampled again from the state it started with.
    with pytest.raises(RuntimeError):
        run(tmp_path / "cut3", _Random(fail_at=5))
    rows = (tmp_path / "cut3").read_text().splitlines()
    (tmp_path / "cut3").write_text("\n".join(rows[:3]) + "\n" + rows[3][:10])
    resumed = _Random()
    assert run(tmp_path / "cut3", resumed) == whole and resumed.calls == [6, 2, 6, 2]
    assert (tmp_path / "cut3").read_text().splitlines()[:2] == rows[:2]


def test_medication_task_pairs_with_its_own_grader(tmp_path):
    task = get_task("medication-directions")
    samples = task.make("train", 2, seed=0)
    right = [json.dumps(s.target) for s in samples]
    wrong = [json.dumps({**s.target, "doses_per_day": s.target["doses_per_day"] + 1}) for s in samples]

    answers = {s.input: [w, r, "not json"] for s, r, w in zip(samples, right, wrong, strict=True)}
    out = tmp_path / "pairs.jsonl"
    sample_and_score(task, _Scripted(answers), samples, out, k=3, progress=False)
    pairs = read_jsonl(out, PreferencePair)
    assert [p.chosen[0].content for p in pairs] == right
    assert all(p.rejected[0].content == "not json" for p in pairs)
    assert pairs[0].prompt == task.prompt(samples[0])
