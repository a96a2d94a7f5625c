"""Reward models: the Bradley-Terry loss by hand and against TRL, a tiny model learning a toy preference,
saving and loading (full and LoRA), the reward in RL configs, and bad feedback files."""

import json
import math
import random
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from agentladder.data.feedback import load_feedback
from agentladder.errors import DataError
from agentladder.models.rewardmodel import RewardModel, is_reward_model_folder
from agentladder.rewards import RewardInput, build_reward, preference_figures
from agentladder.train.reward_losses import bradley_terry_loss, grade_regression_loss, grade_target
from agentladder.train.reward_model import split_rows, train_reward_model


def test_bradley_terry_loss_and_gradient_by_hand():
    chosen = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    rejected = torch.tensor([0.0, 2.0, 0.5], requires_grad=True)
    loss = bradley_terry_loss(chosen, rejected)
    # -log sigma(d) = log(1 + e^-d): d = 1, -2, 0
    expected = [math.log(1 + math.exp(-1)), math.log(1 + math.exp(2)), math.log(2)]
    torch.testing.assert_close(loss, torch.tensor(expected), atol=1e-6, rtol=0)
    loss.sum().backward()
    # d/dr_c = -(1 - sigma(d)) = -sigma(-d); d/dr_r the opposite
    sig = [1 / (1 + math.exp(1)), 1 / (1 + math.exp(-2)), 0.5]
    torch.testing.assert_close(chosen.grad, -torch.tensor(sig), atol=1e-6, rtol=0)
    torch.testing.assert_close(rejected.grad, torch.tensor(sig), atol=1e-6, rtol=0)
    # a margin of 0.5 asks for a gap of 0.5: d = 1 - 0.5
    assert float(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), 0.5)) == pytest.approx(
        math.log(1 + math.exp(-0.5)), abs=1e-6)


def test_grade_target_and_regression():
    torch.testing.assert_close(grade_target(torch.tensor([1.0, 3.0, 5.0]), (1, 5)), torch.tensor([-1.0, 0.0, 1.0]))
    assert float(grade_regression_loss(torch.tensor([0.5]), torch.tensor([-0.5]))) == pytest.approx(1.0)


def _trl_reward_loss(logits: torch.Tensor, margin: torch.Tensor | None, center: float | None = None):
    from trl import RewardTrainer

    t = RewardTrainer.__new__(RewardTrainer)
    accelerator = SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x)
    model = SimpleNamespace(training=True)
    t.__dict__.update(model=model, accelerator=accelerator, args=SimpleNamespace(center_rewards_coefficient=center),
                      _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.zeros(len(logits), 3, dtype=torch.long),
              "attention_mask": torch.ones(len(logits), 3, dtype=torch.long)}
    if margin is not None:
        inputs["margin"] = margin

    def forward(**kw):
        return SimpleNamespace(logits=logits[:, None])

    return t.compute_loss(forward, inputs)


@pytest.mark.parametrize("with_margin", [False, True])
def test_bradley_terry_matches_trl_reward_trainer(with_margin):
    pytest.importorskip("trl")
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(12, generator=g, dtype=torch.float64) * 2).float()  # 6 chosen, then 6 rejected
    margin = torch.rand(6, generator=g) if with_margin else None
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = bradley_terry_loss(a[:6], a[6:], margin).mean()
    ours.backward()
    theirs = _trl_reward_loss(b, margin)
    theirs.backward()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=0)
    assert a.grad.abs().sum() > 0


def test_preference_figures():
    f = preference_figures([2.0, 0.0, 1.0, 3.0], [0.0, 1.0, 1.0, -1.0])
    assert f["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)  # a tie counts half
    p = [1 / (1 + math.exp(-d)) for d in (2, -1, 0, 4)]
    assert f["brier"] == pytest.approx(sum((1 - x) ** 2 for x in p) / 4)
    assert f["mean_margin"] == pytest.approx((2 - 1 + 0 + 4) / 4)
    assert 0 <= f["ece"] <= 1 and sum(b["n"] for b in f["reliability"]) == 4


LOWER = "abcdefghij "


def toy_pairs(path, n=120, seed=0):
    """The toy preference: lower-case letters over the same text in capitals with digits for spaces."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = "".join(rng.choice(LOWER) for _ in range(12))
        rows.append({"prompt": f"write {i}", "chosen": text, "rejected": text.upper().replace(" ", "7")})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tiny_reward_model_learns_a_toy_preference(tmp_path):
    data = toy_pairs(tmp_path / "pairs.jsonl")
    test = toy_pairs(tmp_path / "test.jsonl", n=40, seed=1)
    result = train_reward_model(model="tiny", data=str(data), out_dir=str(tmp_path / "rm"), max_steps=30,
                                learning_rate=1e-3, progress=False, tensorboard=False, validation_share=0.2)
    assert result.history[-1]["loss"] < 0.2 < result.history[0]["loss"]
    assert result.validation["pairs"]["pairs"] == 24 and result.validation["pairs"]["accuracy"] == 1.0
    assert is_reward_model_folder(tmp_path / "rm")
    rm = RewardModel.load(tmp_path / "rm")
    rows = load_feedback(test, kinds=("pairs",))
    c = rm.score([r.prompt for r in rows], [r.chosen for r in rows])
    r = rm.score([r.prompt for r in rows], [r.rejected for r in rows])
    assert preference_figures(c, r)["accuracy"] == 1.0
    manifest = json.loads((tmp_path / "rm" / "reward_model.json").read_text())
    assert manifest["validation"]["pairs"]["accuracy"] == 1.0 and manifest["normalisation"]["std"] > 0
    # as an RL reward from a config entry, normalised by the training rewards
    _, reward, _ = build_reward({"type": "reward_model", "path": str(tmp_path / "rm")})
    items = [RewardInput([], "abc def"), RewardInput([], "ABC7DEF")]
    scores = [o.score for o in reward.score_group(items)]
    assert scores[0] > 0 > scores[1]


def test_lora_reward_model_saves_an_adapter_and_scores_the_same_after_loading(tmp_path):
    data = toy_pairs(tmp_path / "pairs.jsonl", n=16)
    train_reward_model(model="tiny", data=str(data), out_dir=str(tmp_path / "rm"), max_steps=2, lora=True,
                       lora_r=4, lora_alpha=8, progress=False, tensorboard=False, validation_share=0.25)
    assert (tmp_path / "rm" / "adapter" / "adapter_config.json").exists()
    rm = RewardModel.load(tmp_path / "rm")
    assert rm.lora and (tmp_path / "rm" / "checkpoints").exists()
    manifest = json.loads((tmp_path / "rm" / "reward_model.json").read_text())
    held = load_feedback(data)
    _, held = split_rows(held, 0.25, 0)
    c = rm.score([r.prompt for r in held], [r.chosen for r in held])
    r = rm.score([r.prompt for r in held], [r.rejected for r in held])
    assert preference_figures(c, r)["mean_margin"] == pytest.approx(manifest["validation"]["pairs"]["mean_margin"],
                                                                    abs=1e-4)


def test_graded_rows_train_by_regression(tmp_path):
    rng = random.Random(0)
    rows = []
    for i in range(60):
        text = "".join(rng.choice(LOWER) for _ in range(10))
        grade = rng.randint(1, 5)
        rows.append({"prompt": f"q {i}", "completion": text.upper() if grade < 3 else text, "grade": grade})
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = train_reward_model(model="tiny", data=str(tmp_path / "g.jsonl"), out_dir=str(tmp_path / "rm"),
                                max_steps=20, learning_rate=1e-3, progress=False, tensorboard=False,
                                validation_share=0.25)
    grades = result.validation["grades"]
    assert grades["rows"] == 15 and grades["spearman"] > 0.5
    assert "grade_sq_error" in result.history[-1]


def test_bad_feedback_is_a_file_line_field_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n"
                   + json.dumps({"prompt": "q", "chosen": "same", "rejected": "same"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: rejected: the same answer as chosen"):
        load_feedback(bad)
    bad.write_text("\n" + json.dumps({"prompt": "q", "completion": "a", "grade": 7}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: grade: 7 is outside the scale 1-5"):
        load_feedback(bad)
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b", "metadata": {"margin": -1}}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: metadata.margin: expected a number >= 0"):
        load_feedback(bad)
    bad.write_text(json.dumps({"prompt": "q", "text": "a"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: expected a pair"):
        load_feedback(bad)
    with pytest.raises(DataError, match=r"bad.jsonl:1: expected a pair"):
        train_reward_model(model="tiny", data=str(bad), out_dir=str(tmp_path / "rm"), progress=False)
    assert not (tmp_path / "rm").exists()


def test_cli_trains_evaluates_and_ppo_raises_the_reward_models_score(tmp_path):
    """`train reward`, `eval --task preference-accuracy`, then `train rl --preset ppo --reward-model` on the
    tiny model: the reward model's (normalised) score of the policy's answers rises."""
    from typer.testing import CliRunner

    from agentladder.cli import app

    runner = CliRunner()
    data, test = toy_pairs(tmp_path / "pairs.jsonl"), toy_pairs(tmp_path / "test.jsonl", n=40, seed=1)
    res = runner.invoke(app, ["train", "reward", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "rm"),
                              "--max-steps", "30", "--lr", "1e-3", "--validation-share", "0.2", "--quiet",
                              "--registry", str(tmp_path / "r.db")])
    assert res.exit_code == 0, res.output
    assert "held-out pairwise accuracy 1.000 on 24 pairs" in res.output and "registered as reward_model/rm/" in res.output
    res = runner.invoke(app, ["eval", "--task", "preference-accuracy", "--model", str(tmp_path / "rm"),
                              "--data", str(test), "--out", str(tmp_path / "eval"), "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["pairs"] == 40 and report["models"][str(tmp_path / "rm")]["accuracy"] == 1.0
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": str(i), "prompt": f"write {i}"}) + "\n" for i in range(16)))
    res = runner.invoke(app, ["train", "rl", "--preset", "ppo", "--model", "tiny", "--data", str(prompts),
                              "--reward-model", str(tmp_path / "rm"), "--out", str(tmp_path / "ppo"), "--group-size",
                              "8", "--batch-size", "4", "--max-new-tokens", "8", "--max-steps", "20", "--lr", "5e-3",
                              "--quiet"])
    assert res.exit_code == 0, res.output
    rewards = [json.loads(line)["reward/reward_model"]
               for line in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    assert last > first + 0.05, rewards
    config = json.loads((tmp_path / "ppo" / "train_config.json").read_text())
    assert config["rewards"] == [{"type": "reward_model", "path": str(tmp_path / "rm")}]
    res = runner.invoke(app, ["eval", "--task", "preference-accuracy", "--model", str(tmp_path / "ppo"),
                              "--data", str(test)])
    assert res.exit_code == 1 and "not a reward model folder" in res.output


def test_a_killed_reward_model_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    from agentladder.train.loop import Trainer

    data = toy_pairs(tmp_path / "pairs.jsonl", n=32)
    settings = dict(model="tiny", data=str(data), max_steps=6, save_every=2, learning_rate=1e-3, batch_size=4,
                    progress=False, tensorboard=False, validation_share=0.25)
    whole = train_reward_model(out_dir=str(tmp_path / "whole"), **settings)
    original = Trainer.train_step

    def dies_at_step_4(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_reward_model(out_dir=str(tmp_path / "cut"), **settings)
    assert not is_reward_model_folder(tmp_path / "cut")
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = train_reward_model(out_dir=str(tmp_path / "cut"), resume=True, progress=False)
    assert [r["step"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in whole.history], abs=1e-5)
    assert resumed.validation["pairs"]["mean_margin"] == pytest.approx(whole.validation["pairs"]["mean_margin"],
                                                                       abs=1e-4)
