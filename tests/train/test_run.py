"""One start and one finish of a run: settings or resume, the run folder, lineage."""

import json

import pytest
import torch

from agentladder.errors import MissingFileError, OutputExistsError
from agentladder.models import load_model
from agentladder.train.run import RUN_CONFIG, lineage_base, resolved_spec, run_config, start_run
from agentladder.train.sft import SFTConfig, sft


def test_resolved_spec_is_an_absolute_path_only_for_what_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    assert resolved_spec("run") == str(tmp_path / "run")
    assert resolved_spec("smollm2-135m") == "smollm2-135m"


def test_a_run_folder_is_protected_and_a_resume_needs_one(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(MissingFileError, match=f"holds no run to resume \\(no {RUN_CONFIG}\\)"):
        run_config(SFTConfig, None, {"out_dir": str(out)}, resume=True)
    (out / "checkpoints" / "step-000001").mkdir(parents=True)
    with pytest.raises(OutputExistsError, match="already holds a run"):
        run_config(SFTConfig, None, {"out_dir": str(out), "data": "d"}, resume=False)
    with pytest.raises(FileExistsError):  # still the built-in a caller may catch
        sft(out_dir=str(out), data="d")


def test_resume_reads_the_saved_settings_and_changes_only_reporting(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    saved = SFTConfig(data="d", out_dir=str(out), lora=True, max_steps=7)
    (out / RUN_CONFIG).write_text(saved.model_dump_json())
    again = run_config(SFTConfig, None, {"out_dir": str(out), "progress": False, "max_steps": 99}, resume=True)
    assert again == saved.model_copy(update={"progress": False})


def test_start_run_attaches_lora_or_continues_or_merges_an_adapter(tmp_path, rows_file):
    fresh = start_run(SFTConfig, SFTConfig(model="tiny", data="d", out_dir=str(tmp_path / "a"), lora=True, lora_r=4),
                      {}, False)
    assert not fresh.from_adapter and fresh.model.peft_config["default"].r == 4
    assert not (tmp_path / "a").exists()  # nothing is written before save_config
    sft(model="tiny", data=str(rows_file), out_dir=str(tmp_path / "lora"), lora=True, max_steps=1, progress=False,
        tensorboard=False)
    kept = start_run(SFTConfig, SFTConfig(model=str(tmp_path / "lora"), data="d", out_dir=str(tmp_path / "b")), {},
                     False)
    assert kept.from_adapter and kept.model.peft_config["default"].r == 16  # the run's own adapter, trainable
    assert any(p.requires_grad for n, p in kept.model.named_parameters() if "lora_" in n)
    merged = start_run(SFTConfig, SFTConfig(model=str(tmp_path / "lora"), data="d", out_dir=str(tmp_path / "c")), {},
                       False, adapter="merge")
    assert merged.from_adapter and not hasattr(merged.model, "peft_config")
    assert all(p.requires_grad for p in merged.model.parameters())


def test_an_adapter_on_a_fully_tuned_run_stands_on_that_run(tmp_path, rows_file):
    """A fresh adapter's base is the folder it was trained on; a continued adapter keeps its run's base."""
    common = dict(data=str(rows_file), progress=False, tensorboard=False)
    sft(model="tiny", out_dir=str(tmp_path / "full"), max_steps=2, learning_rate=1e-2, **common)
    sft(model=str(tmp_path / "full"), out_dir=str(tmp_path / "lora"), lora=True, max_steps=1, **common)
    sft(model=str(tmp_path / "lora"), out_dir=str(tmp_path / "more"), lora=True, max_steps=1, **common)
    meta = [json.loads((tmp_path / r / "agentladder.json").read_text()) for r in ("full", "lora", "more")]
    assert [m["base_model"] for m in meta] == ["tiny", str(tmp_path / "full"), str(tmp_path / "full")]
    assert lineage_base(str(tmp_path / "full"), lora=True) == str(tmp_path / "full")
    assert lineage_base(str(tmp_path / "lora"), lora=False) == str(tmp_path / "lora")
    full, _ = load_model(str(tmp_path / "full"))
    lora, _ = load_model(str(tmp_path / "lora"))
    name = "model.embed_tokens.weight"  # LoRA leaves the embeddings as the full run trained them
    assert torch.equal(full.state_dict()[name], lora.get_base_model().state_dict()[name])


def test_a_run_that_ends_on_its_time_budget_saves_its_model_and_says_how_many_steps(tmp_path, rows_file, monkeypatch):
    from agentladder.train import loop

    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    step = loop.Trainer.train_step

    def slow(self, i):  # every step takes a minute of the fake clock
        now[0] += 60.0
        return step(self, i)

    monkeypatch.setattr(loop.Trainer, "train_step", slow)
    out = tmp_path / "budget"
    sft(model="tiny", data=str(rows_file), out_dir=str(out), lora=True, max_steps=50, max_minutes=2.5, save_every=10,
        progress=False, tensorboard=False)
    meta = json.loads((out / "agentladder.json").read_text())
    assert meta["steps"] == 3  # past 2.5 minutes after the third step, not 50
    assert (out / "adapter_model.safetensors").exists()
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
