"""The main job end to end on the tiny model: data, LoRA fine-tune, side-by-side report, and a rerun."""

import json

from agentladder.ladder.quickstart import quickstart


def test_quickstart_makes_data_trains_evaluates_and_reruns(tmp_path):
    out = tmp_path / "qs"
    result = quickstart(out, model="tiny", train_rows=12, test_rows=5, steps=3, batch_size=2, max_length=4096,
                        progress=False)
    assert sorted(result.report.models) == sorted([str(out / "sft"), "tiny"])
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["rows"] == 5
    meta = json.loads((out / "sft" / "agentladder.json").read_text())
    assert meta["lora"] and meta["steps"] == 3 and meta["base_model"] == "tiny"
    # Training rows are the evaluation's own prompt, answered with the target.
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]

    stamp = (out / "sft" / "adapter_model.safetensors").stat().st_mtime_ns
    quickstart(out, model="tiny", steps=3, max_length=4096, progress=False)  # reuses data and model
    assert (out / "sft" / "adapter_model.safetensors").stat().st_mtime_ns == stamp
