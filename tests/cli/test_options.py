"""The trainers' options come from their configs: the command line trains as Python does, same defaults."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import agentladder.cli.train
from agentladder.cli import app
from agentladder.cli.options import help_text
from agentladder.train import PreferenceConfig, RLConfig, SFTConfig, TrainResult

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch):
    """The configs the train commands pass to the trainers (which do not run)."""
    seen: list = []

    def fake(config=None, /, **kwargs):
        seen.append(config if config is not None else kwargs)
        return TrainResult(steps=0, final_loss=0.0, history=[], out_dir=Path("x"))

    for name in ("sft", "preference", "rl"):
        monkeypatch.setattr(agentladder.cli.train, name, fake)
    return seen


def _run(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mode", [[], ["--lora"], ["--full"]])
def test_train_sft_defaults_are_the_configs(calls, mode):
    _run("train", "sft", "--data", "d.jsonl", "--out", "r", "--quiet", *mode)
    python = SFTConfig(data="d.jsonl", out_dir="r", progress=False, lora=mode == ["--lora"])
    assert calls[0] == python
    assert python.learning_rate == (2e-4 if python.lora else 2e-5)


def test_sft_from_python_learns_at_the_rate_the_cli_does():
    assert SFTConfig(data="d", out_dir="r").learning_rate == 2e-5
    assert SFTConfig(data="d", out_dir="r", lora=True).learning_rate == 2e-4
    assert SFTConfig(data="d", out_dir="r", lora=True, learning_rate=1e-3).learning_rate == 1e-3


@pytest.mark.parametrize(("command", "loss", "lora", "lr", "batch"), [
    ("dpo", "dpo", False, 1e-6, 4), ("dpo", "dpo", True, 2e-5, 4), ("kto", "kto", False, 1e-6, 8),
    ("kto", "kto", True, 2e-5, 8),
])
def test_train_dpo_and_kto_defaults_are_the_configs(calls, command, loss, lora, lr, batch):
    _run("train", command, "--data", "p.jsonl", "--out", "r", "--quiet", "--lora" if lora else "--full")
    python = PreferenceConfig(data="p.jsonl", out_dir="r", progress=False, loss=loss, lora=lora)
    assert calls[0] == python
    assert (python.learning_rate, python.batch_size, python.warmup_ratio, python.beta) == (lr, batch, 0.1, 0.1)


def test_options_given_win_and_reach_the_config(calls):
    _run("train", "kto", "--data", "p.jsonl", "--out", "r", "--desirable-weight", "2", "--no-kl", "--lr", "3e-5",
         "--batch-size", "2", "--lora-r", "4", "--precision", "bf16")
    c = calls[0]
    assert (c.kto_desirable_weight, c.kto_kl, c.learning_rate, c.batch_size, c.lora_r, c.precision) == (
        2.0, False, 3e-5, 2, 4, "bf16")


def test_train_rl_passes_only_the_options_given(calls):
    _run("train", "rl", "--preset", "dapo", "--task", "medication-directions", "--out", "r", "--lora", "--quiet")
    assert calls[0] == RLConfig(preset="dapo", task="medication-directions", out_dir="r", lora=True, progress=False)
    assert calls[0].learning_rate == 1e-5


def test_resume_takes_only_the_folder(calls):
    _run("train", "dpo", "--resume", "runs/x", "--quiet")
    assert calls[0] == {"out_dir": "runs/x", "resume": True, "progress": False}


def test_a_bad_option_value_is_one_line_naming_the_field(calls):
    result = runner.invoke(app, ["train", "sft", "--data", "d", "--out", "r", "--precision", "fp8"])
    assert result.exit_code == 1 and result.output.startswith("error: precision: Input should be")
    assert not calls


def _options(*command: str) -> list[str]:
    group = typer.main.get_command(app)
    cmd = group
    for name in command:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    names = []
    for param in cmd.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            names += [*param.opts, *param.secondary_opts]
    return names


COMMON = ["--lora", "--full", "--lora-r", "--lora-alpha", "--lora-plus-ratio"]
LOOP = ["--epochs", "--max-steps", "--max-minutes", "--batch-size", "--grad-accum", "--lr", "--warmup-ratio", "--precision",
        "--strategy", "--seed", "--save-every"]


def test_option_names_stay_as_they_were():
    assert _options("train", "sft") == ["--data", "--out", "--model", *COMMON, "--max-length", "--packing",
                                        "--no-packing", *LOOP, "--resume", "--quiet", "--no-quiet"]
    assert _options("train", "dpo") == [
        "--data", "--out", "--model", "--loss", "--beta", "--label-smoothing", "--nll-alpha", "--rpo-temperature",
        "--simpo-gamma", "--reference", *COMMON, "--max-length", "--share-prompt", "--no-share-prompt", *LOOP, "--resume", "--quiet",
        "--no-quiet"]
    assert _options("train", "kto") == [
        "--data", "--out", "--model", "--beta", "--desirable-weight", "--undesirable-weight", "--kl", "--no-kl",
        "--reference", *COMMON, "--max-length", *LOOP, "--resume", "--quiet", "--no-quiet"]
    assert _options("train", "rl") == [
        "--preset", "--model", "--task", "--data", "--out", "--group-size", "--batch-size", "--max-steps", "--max-minutes",
        "--n-prompts", "--max-new-tokens", "--temperature", "--kl-coef", "--lr", "--lora", "--full",
        "--rollout-backend", "--seed", "--save-every", "--agent", "--episode-reward", "--episode-timeout",
        "--episode-max-calls", "--episode-max-tokens", "--failed-episode-reward", "--stratify-by", "--config",
        "--tasks", "--train-agent", "--reward-model", "--resume", "--quiet", "--no-quiet"]
    assert _options("train", "reward") == [
        "--data", "--out", "--model", "--validation", "--validation-share", "--margin", "--grade-min", "--grade-max",
        "--grade-weight", "--max-length", *COMMON, *LOOP, "--resume", "--quiet", "--no-quiet", "--registry"]
    assert _options("train", "judge") == [
        "--data", "--out", "--model", "--rubric", "--validation", "--validation-share", "--grade-min", "--grade-max",
        "--compare-untuned", "--no-compare-untuned", "--max-new-tokens", *COMMON, "--max-length", *LOOP, "--resume",
        "--quiet", "--no-quiet", "--registry"]


def test_help_is_the_fields_docstring():
    result = runner.invoke(app, ["train", "sft", "--help"], env={"COLUMNS": "300"})
    assert "Peak learning rate [default: 2e-4 with LoRA, 2e-5 full fine-tuning]." in result.output
    assert "Longest sequence in tokens" in result.output
    assert help_text("see :func:`base_dtype`; ``fp32`` [default: x]") == r"see base_dtype; fp32 \[default: x]"


@pytest.mark.parametrize("config", [SFTConfig, PreferenceConfig, RLConfig])
def test_every_config_field_is_documented(config):
    assert [name for name, field in config.model_fields.items() if not field.description] == []
