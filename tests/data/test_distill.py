"""Distillation from a teacher that samples: a killed run resumes with the random state it had."""

from __future__ import annotations

import json

import pytest
import torch

from agentladder.data.distill import distill


def _teacher(fail_at: int | None = None):
    calls = []

    def answer(prompts):
        calls.append(len(prompts))
        if len(calls) == fail_at:
            raise RuntimeError("killed")
        return [str(int(torch.randint(0, 1000, ()))) for _ in prompts]

    return answer, calls


def test_a_resumed_distillation_samples_what_the_uninterrupted_one_does(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                               for i in range(7)))

    def run(out, teacher):
        torch.manual_seed(0)  # as `agentladder data distill` seeds, on every run
        distill(teacher, prompts, out, batch_size=2, progress=False)
        return out.read_text()

    whole = run(tmp_path / "whole.jsonl", _teacher()[0])
    with pytest.raises(RuntimeError):
        run(tmp_path / "cut.jsonl", _teacher(fail_at=3)[0])  # two batches written
    assert len((tmp_path / "cut.jsonl.partial").read_text().splitlines()) == 4
    teacher, calls = _teacher()
    assert run(tmp_path / "cut.jsonl", teacher) == whole and calls == [2, 1]
    assert not (tmp_path / "cut.jsonl.rng").exists() and not (tmp_path / "cut.jsonl.partial.rng").exists()


def test_a_distillation_killed_while_writing_a_batch_resumes_as_the_uninterrupted_one(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                               for i in range(7)))

    def run(out, teacher):
        torch.manual_seed(0)
        distill(teacher, prompts, out, batch_size=2, progress=False)
        return out.read_text()

    whole = run(tmp_path / "whole.jsonl", _teacher()[0])
    with pytest.raises(RuntimeError):
        run(tmp_path / "cut.jsonl", _teacher(fail_at=3)[0])
    partial = tmp_path / "cut.jsonl.partial"
    lines = partial.read_text().splitlines()
    partial.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n" + lines[3][:7])  # cut in batch 2
    teacher, calls = _teacher()
    assert run(tmp_path / "cut.jsonl", teacher) == whole and calls == [2, 2, 1]
