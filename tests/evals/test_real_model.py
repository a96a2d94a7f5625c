"""The real packaged SmolLM2-135M on a handful of rows (slow: loads and runs the 135M model)."""

import pytest

from agentladder.evals import LocalProvider, evaluate
from agentladder.tasks import get_task


@pytest.mark.slow
def test_smollm2_few_shot_answers_in_json_and_the_prefix_cache_changes_nothing(tmp_path):
    task = get_task("medication-directions")
    rows = task.make("test", 4)
    cached = LocalProvider("smollm2-135m", batch_size=4)
    report = evaluate([cached], data=rows, shots=3, out=tmp_path, progress=False,
                      n_resamples=100)
    result = report.models["smollm2-135m"]
    outputs = [rec["output"] for rec in result.records]
    # With three examples the base model answers in the asked shape and gets some fields right.
    assert all(o.startswith("{") for o in outputs), outputs
    assert result.metrics["field_accuracy"].value > 0.2
    assert (tmp_path / "report.md").exists() and (tmp_path / "field_accuracy.png").exists()

    # The same prompts without the shared-prefix cache give the same greedy tokens (two rows, 24 tokens).
    shots = task.select_shots(3, rows)
    plain = LocalProvider(model=cached.model, tokenizer=cached.tokenizer, batch_size=2, prefix_cache=False)
    prompts = [task.prompt(r, shots) for r in rows[:2]]
    assert plain.complete(prompts, max_new_tokens=24) == cached.complete(prompts, max_new_tokens=24)
