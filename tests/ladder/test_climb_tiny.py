"""The real rungs on the tiny model: the smoke demo from the CLI, the registry it fills, export, a resumed
fine-tune inside a climb, and the distil and KTO paths. Wiring only: the tiny model learns nothing."""

import json

import pytest
import torch
from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.ladder import Registry, climb, parse_ladder
from agentladder.models.loading import load_model
from agentladder.tasks.medication import BRIEF_PROMPT
from agentladder.train.loop import Trainer

runner = CliRunner()


def test_the_demo_runs_smoke_or_full_not_both():
    res = runner.invoke(app, ["demo", "--smoke", "--full"])
    assert res.exit_code != 0 and "choose --smoke or --full, not both" in res.output


def test_the_smoke_demo_climbs_every_rung_and_registers_each_version(tmp_path):
    reg = str(tmp_path / "r.db")
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--smoke", "--out", str(out), "--registry", reg, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "ladder smoke" in res.output and "target not met" in res.output
    report = json.loads((out / "ladder.json").read_text())
    assert [r["name"] for r in report["rungs"]] == ["baseline", "sft", "dpo", "rl"]
    assert [r["artifact"] for r in report["rungs"]] == ["base", "adapter", "adapter", "full"]
    sft = report["rungs"][1]
    assert sft["examples"] == 4 and sft["notes"]["data_rows"] == 8  # 2 steps of 2 rows reach 4 of the 8
    assert sft["tokens"] > 0 and sft["train_seconds"] > 0
    # The tuned rungs train and are scored behind the task's brief instruction, on lower-cased lines;
    # the baseline keeps the full instruction and the lines as written.
    data = [json.loads(line) for line in (out / "02-sft" / "data.jsonl").read_text().splitlines()]
    assert data[0]["messages"][0] == {"role": "system", "content": BRIEF_PROMPT}
    assert all(row["messages"][1]["content"] == row["messages"][1]["content"].lower() for row in data)
    for split in ("validation", "test", "shifted"):  # every rung is kept (all score 0): each reported too
        report_json = json.loads((out / "01-baseline" / "eval" / split / "report.json").read_text())
        assert report_json["task"] == "medication-directions"
        for rung in ("02-sft", "03-dpo", "04-rl"):
            report_json = json.loads((out / rung / "eval" / split / "report.json").read_text())
            assert report_json["task"] == "medication-directions@brief-lower"
    assert sft["notes"]["instructions"] == "brief-lower"

    with Registry(reg) as registry:
        chain = registry.lineage("smoke/rl")
        assert [v.kind for v in chain] == ["baseline", "sft", "dpo", "rl"]
        dpo = registry.get("smoke/dpo")
        assert dpo.data_hash and dpo.examples == 4 and dpo.config["loss"] == "dpo" and dpo.config["model"] == chain[1].path
        assert (out / "02-sft" / "run" / "adapter_model.safetensors").exists()

    listed = runner.invoke(app, ["models", "list", "--registry", reg])
    assert listed.exit_code == 0 and "smollm2-135m" in listed.output and "smoke/dpo/" in listed.output
    shown = runner.invoke(app, ["models", "show", "smoke/rl", "--registry", reg])
    assert shown.exit_code == 0 and "lineage: smoke/baseline/" in shown.output
    compared = runner.invoke(app, ["models", "compare", "smoke/sft", "smoke/dpo", "--registry", reg])
    assert compared.exit_code == 0 and "exact_match" in compared.output

    exported = runner.invoke(app, ["models", "export", "smoke/dpo", "--out", str(tmp_path / "merged"), "--registry", reg])
    assert exported.exit_code == 0, exported.output
    model, _ = load_model(str(tmp_path / "merged"))
    assert not hasattr(model, "peft_config")  # merged into plain weights
    adapters = runner.invoke(app, ["models", "export", "smoke/dpo", "--adapters", "--out", str(tmp_path / "ad"),
                                   "--registry", reg])
    assert adapters.exit_code == 0 and (tmp_path / "ad" / "adapter_model.safetensors").exists()
    refused = runner.invoke(app, ["models", "export", "smoke/rl", "--adapters", "--out", str(tmp_path / "x"),
                                  "--registry", reg])
    assert refused.exit_code == 1 and "not a LoRA adapter" in refused.output


def _short_ladder(tmp_path, rungs):
    return parse_ladder({
        "name": "t", "task": "medication-directions", "base_model": "tiny", "out_dir": str(tmp_path / "climb"),
        "eval": {"rows": 2, "validation_rows": 2, "shifted_rows": 2, "batch_size": 2, "max_new_tokens": 4},
        "gate": {"target": 0.9},
        "rungs": [{"name": "baseline", "kind": "baseline"}, *rungs],
    })


SFT = {"name": "sft", "kind": "sft", "data": {"source": "generate", "rows": 8},
       "train": {"lora": True, "max_steps": 4, "batch_size": 2, "save_every": 2, "max_length": 4096,
                 "tensorboard": False}}


def test_a_fine_tune_killed_inside_a_climb_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    original = Trainer.save

    def save_then_die(self):
        path = original(self)
        if self.step == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        climb(_short_ladder(tmp_path, [SFT]), registry=tmp_path / "r.db", progress=False)
    run = tmp_path / "climb" / "02-sft" / "run"
    before = (run / "metrics.jsonl").read_text().splitlines()
    assert len(before) == 2 and not (run / "agentladder.json").exists()

    monkeypatch.setattr(Trainer, "save", original)
    result = climb(_short_ladder(tmp_path, [SFT]), registry=tmp_path / "r.db", progress=False)
    after = (run / "metrics.jsonl").read_text().splitlines()
    assert after[:2] == before and [json.loads(x)["step"] for x in after] == [1, 2, 3, 4]
    assert json.loads((run / "agentladder.json").read_text())["steps"] == 4
    assert result.rungs[1].notes["steps"] == 4


def test_eval_dtype_loads_every_rung_in_that_precision(tmp_path, monkeypatch):
    from agentladder.models.providers import local

    loaded = []
    real = local.LocalProvider.prepare

    def spy(self):
        real(self)
        loaded.append((self.spec, next(self.model.parameters()).dtype))

    monkeypatch.setattr(local.LocalProvider, "prepare", spy)
    config = _short_ladder(tmp_path, [SFT]).model_copy(deep=True)
    config.eval.dtype = "bfloat16"
    result = climb(config, registry=tmp_path / "r.db", progress=False)
    assert [r.name for r in result.rungs] == ["baseline", "sft"]
    assert {spec for spec, _ in loaded} == {"tiny", str(tmp_path / "climb" / "02-sft" / "run")}
    assert {dtype for _, dtype in loaded} == {torch.bfloat16}
    with pytest.raises(ValueError, match="dtype"):
        parse_ladder({"name": "t", "eval": {"dtype": "float16"}, "rungs": [{"name": "b", "kind": "baseline"}]})


def test_distilled_sft_data_and_a_kto_rung(tmp_path):
    distil = {"name": "sft", "kind": "sft",
              "data": {"source": "distill", "teacher": "tiny", "rows": 4, "keep": "all", "max_new_tokens": 4},
              "train": {"lora": True, "max_steps": 1, "batch_size": 2, "max_length": 4096, "tensorboard": False}}
    kto = {"name": "kto", "kind": "kto", "data": {"source": "pairs", "rows": 2, "k": 2, "batch_size": 4, "max_new_tokens": 4},
           "train": {"lora": True, "max_steps": 1, "batch_size": 4, "max_length": 4096, "tensorboard": False}}
    result = climb(_short_ladder(tmp_path, [distil, kto]), registry=tmp_path / "r.db", progress=False)
    assert [r.name for r in result.rungs] == ["baseline", "sft", "kto"]
    rows = [json.loads(x) for x in (tmp_path / "climb" / "02-sft" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["metadata"]["teacher"] == "tiny"
    marked = [json.loads(x) for x in (tmp_path / "climb" / "03-kto" / "pairs.jsonl").read_text().splitlines()]
    assert {m["label"] for m in marked} == {True, False}  # the reference answer is the desirable one
    assert json.loads((tmp_path / "climb" / "03-kto" / "run" / "agentladder.json").read_text())["method"] == "kto"


def test_a_teacher_that_gets_nothing_right_is_a_clear_error(tmp_path):
    distil = {"name": "sft", "kind": "sft",
              "data": {"source": "distill", "teacher": "tiny", "rows": 2, "max_new_tokens": 4},
              "train": {"max_steps": 1}}
    with pytest.raises(ValueError, match="the teacher 'tiny' got no prompt exactly right"):
        climb(_short_ladder(tmp_path, [distil]), registry=tmp_path / "r.db", progress=False)


def test_recommend_from_the_command_line():
    res = runner.invoke(app, ["recommend", "--labeled", "1200", "--pairs", "0", "--accuracy", "0.78",
                              "--target", "0.95"])
    assert res.exit_code == 0 and "next rung: supervised fine-tuning" in res.output
    assert "plan to the target: sft -> preference -> rl" in res.output
    res = runner.invoke(app, ["recommend", "--accuracy", "0.93", "--target", "0.97", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["rung"] == "rl"
    bad = runner.invoke(app, ["recommend", "--accuracy", "78", "--target", "0.95"])
    assert bad.exit_code == 1 and "share between 0 and 1" in bad.output


def test_a_bad_ladder_file_is_one_line_naming_file_line_and_field(tmp_path):
    path = tmp_path / "ladder.yaml"
    path.write_text("name: t\ngate: {target: 0.9}\nrungs:\n  - {name: sft, kind: sft, data: {source: pairs, rows: 2}}\n")
    res = runner.invoke(app, ["climb", str(path), "--registry", str(tmp_path / "r.db")])
    assert res.exit_code == 1
    assert "ladder.yaml:4: rungs[0]: data.source 'pairs' does not fit a sft rung" in " ".join(res.output.split())
    res = runner.invoke(app, ["climb", str(path), "--set", "nokey"])
    assert res.exit_code == 1 and "write key=value" in res.output


def test_a_dpo_rungs_sft_control_trains_on_its_chosen_answers_with_its_settings(tmp_path):
    """The control is a real SFT run from the rung's own starting model, on one conversation per pair (prompt and
    chosen answer), with the rung's adapter, rate, warm-up, steps and pairs a step; scored on every split."""
    dpo = {"name": "dpo", "kind": "dpo", "control": "sft",
           "data": {"source": "pairs", "rows": 3, "k": 2, "with_target": True, "batch_size": 4, "max_new_tokens": 4},
           "train": {"loss": "orpo", "lora": True, "lora_r": 4, "lora_alpha": 8, "max_steps": 2, "batch_size": 2,
                     "learning_rate": 3e-4, "warmup_ratio": 0.5, "max_length": 4096, "tensorboard": False}}
    result = climb(_short_ladder(tmp_path, [SFT, dpo]), registry=tmp_path / "r.db", progress=False)
    rung = result.rungs[2]
    folder = tmp_path / "climb" / "03-dpo"
    pairs = [json.loads(x) for x in (folder / "pairs.jsonl").read_text().splitlines()]
    data = [json.loads(x) for x in (folder / "control" / "data.jsonl").read_text().splitlines()]
    assert len(data) == len(pairs) > 0
    assert [d["messages"] for d in data] == [p["prompt"] + p["chosen"] for p in pairs]
    ran = json.loads((folder / "control" / "run" / "train_config.json").read_text())
    own = json.loads((folder / "run" / "train_config.json").read_text())
    for key in ("lora", "lora_r", "lora_alpha", "learning_rate", "warmup_ratio", "max_steps", "batch_size", "seed",
                "max_length", "precision"):
        assert ran[key] == own[key], key
    assert ran["model"] == own["model"] == str(tmp_path / "climb" / "02-sft" / "run")
    assert json.loads((folder / "control" / "run" / "agentladder.json").read_text())["steps"] == 2
    assert rung.control["model"] == str(folder / "control" / "run") and rung.control["train_seconds"] > 0
    for split in ("validation", "test", "shifted") if rung.kept else ("validation",):
        assert (folder / "control" / "eval" / split / "report.json").exists()
        assert split in rung.control["outcomes"]


def test_an_rl_rung_with_reference_guidance_trains_on_the_prompts_no_sample_gets_right(tmp_path):
    """The tiny model answers nothing right, so every prompt is always wrong: without ``always_wrong`` the
    filter would keep none; with it and ``reference_guidance`` every group carries the task's reference."""
    rl = {"name": "rl", "kind": "rl", "instructions": "brief-lower",
          "data": {"source": "generate", "rows": 3, "filter_k": 2, "always_wrong": True, "batch_size": 4,
                   "max_new_tokens": 4},
          "train": {"preset": "dapo", "lora": True, "group_size": 2, "batch_size": 2, "max_steps": 1,
                    "max_new_tokens": 400, "max_prompt_length": 4096, "tensorboard": False,
                    "reference_guidance": True}}
    result = climb(_short_ladder(tmp_path, [rl]), registry=tmp_path / "r.db", progress=False)
    assert [r.name for r in result.rungs] == ["baseline", "rl"]
    assert result.rungs[1].notes["filter"]["always_wrong_kept"] == 3
    step = json.loads((tmp_path / "climb" / "02-rl" / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert step["guided_groups"] == 2 and step["updates"] == 1
