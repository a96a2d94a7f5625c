"""The RL trainer on a tiny model: rewards rise, dynamic sampling, presets, resume, config errors, the CLI."""

import json
from pathlib import Path

import pytest
import torch

from agentladder.rewards import PythonReward, WeightedEnsemble
from agentladder.train.rl import ROLLOUT_LOG, RLTrainer, load_prompts, rl
from agentladder.train.rl_config import PRESETS, RLConfig, load_rl_config

LETTERS = "abcdefghijklmnopqrstuvwxyz "


def lowercase_share(text, target, metadata):
    """The toy verifiable task: the share of the response's characters that are lower-case letters or spaces."""
    return sum(ch in LETTERS for ch in text) / max(1, len(text))


def _prompts(tmp_path: Path, n: int = 16) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"write {i}"}) + "\n" for i in range(n)))
    return path


def _toy(tmp_path, preset, steps=12, **kw):
    settings = dict(preset=preset, model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / preset),
                    group_size=8, batch_size=4, max_new_tokens=8, max_steps=steps, learning_rate=3e-3, seed=0,
                    progress=False, tensorboard=False, save_every=100)
    settings.update(kw)
    return rl(**settings, reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]))


@pytest.mark.parametrize("preset", ["grpo", "dapo", "gspo"])
def test_mean_reward_rises_on_a_toy_verifiable_task(tmp_path, preset):
    result = _toy(tmp_path, preset)
    # DAPO's overlong punishment is the same for every response here (the tiny model never ends a
    # response), so the task's own component is the one to watch.
    task_reward = [r["reward/lower"] for r in result.history]
    first, last = sum(task_reward[:4]) / 4, sum(task_reward[-4:]) / 4
    assert last > first + 0.04, task_reward
    assert (tmp_path / preset / "reward.png").exists()
    assert (tmp_path / preset / "model.safetensors").exists()
    meta = json.loads((tmp_path / preset / "agentladder.json").read_text())
    assert meta["method"] == preset and meta["algorithm"]["advantage"] == "grpo"


@pytest.mark.parametrize("preset", ["dr_grpo", "rloo", "reinforce_pp", "ppo"])
def test_other_presets_train(tmp_path, preset):
    result = _toy(tmp_path, preset, steps=3)
    last = result.history[-1]
    assert last["updates"] == PRESETS[preset].get("num_minibatches", 1)
    assert all(k in last for k in ("reward", "response_len", "clip_frac", "groups_kept", "grad_norm"))
    if PRESETS[preset].get("kl_coef", 0) > 0:
        assert last["kl"] >= 0
    if preset == "ppo":
        assert "value_loss" in last
        assert not (tmp_path / preset / "model.safetensors").read_bytes().count(b"value_head")


def test_lora_run_uses_adapters_off_as_reference(tmp_path):
    result = _toy(tmp_path, "grpo", steps=2, lora=True, lora_r=4, lora_alpha=8)
    assert result.history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # a fresh adapter is the base
    assert (tmp_path / "grpo" / "adapter_config.json").exists()


def test_full_fine_tuning_reference_copy_reads_the_shared_prompt_batches(tmp_path):
    """The frozen reference copy runs the one-prompt-N-answers batches with the policy's kernel, so at the
    first step, where the policy is the reference, the KL is 0."""
    result = _toy(tmp_path, "grpo", steps=1)
    assert result.history[0]["kl"] == pytest.approx(0.0, abs=1e-6)


def _constant_for_even(text, target, metadata):
    return 1.0 if int(target) % 2 == 0 else lowercase_share(text, target, metadata)


def test_dynamic_sampling_drops_exactly_the_zero_variance_groups(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"write {i}", "target": i}) + "\n" for i in range(16)))
    config = RLConfig(preset="dapo", model="tiny", data=str(path), out_dir=str(tmp_path / "run"), group_size=4,
                      batch_size=4, max_new_tokens=6, max_generation_rounds=4, max_steps=1, progress=False,
                      overlong_buffer_ratio=None)
    from agentladder.models import load_model

    model, tok = load_model("tiny")
    prompts, _ = load_prompts(config, tok)
    torch.manual_seed(0)  # the rollout samples from the global generator: not from whatever ran before
    reward = WeightedEnsemble([("r", PythonReward(_constant_for_even), 1.0)])
    trainer = RLTrainer(model, tok, prompts, reward, config)
    rollout = trainer._rollout(0)
    kept, first, stats = rollout.kept, rollout.first, rollout.stats
    assert len(kept) == 4 and stats.gen_rounds >= 2
    assert all(int(g.prompt.target) % 2 == 1 for g in kept)  # every even prompt's group is all 1.0
    odd_first = [g for g in first if int(g.prompt.target) % 2 == 1]
    assert kept[: len(odd_first)] == odd_first  # nothing with signal was dropped
    assert stats.groups_kept == pytest.approx(4 / (4 * stats.gen_rounds))


@pytest.mark.parametrize("killed_at", [3, 4])  # right after the checkpoint of step 2, or a step past it
def test_killed_run_resumes_to_the_same_rewards(tmp_path, monkeypatch, killed_at):
    full = _toy(tmp_path / "a", "grpo", steps=4, save_every=2)
    original = RLTrainer.train_step

    def dies(self, step):
        if step == killed_at - 1:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(RLTrainer, "train_step", dies)
    with pytest.raises(KeyboardInterrupt):
        _toy(tmp_path / "b", "grpo", steps=4, save_every=2)
    monkeypatch.setattr(RLTrainer, "train_step", original)
    resumed = rl(out_dir=str(tmp_path / "b" / "grpo"), resume=True, progress=False,
                 reward=WeightedEnsemble([("lower", PythonReward(lowercase_share), 1.0)]))
    assert [r["step"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["reward"] for r in resumed.history] == pytest.approx([r["reward"] for r in full.history], abs=1e-6)
    # The rollout log, like metrics.jsonl, is cut back to the checkpoint: each step's rollout once.
    logged = (tmp_path / "b" / "grpo" / ROLLOUT_LOG).read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4]


def test_presets_fill_fields_and_explicit_settings_win():
    dapo = RLConfig(preset="dapo", task="medication-directions", out_dir="x")
    assert (dapo.clip_low, dapo.clip_high, dapo.loss_agg, dapo.dynamic_sampling, dapo.kl_coef) == \
        (0.2, 0.28, "token_mean", True, 0.0)
    gspo = RLConfig(preset="gspo", task="medication-directions", out_dir="x", num_minibatches=2)
    assert (gspo.ratio_level, gspo.clip_low, gspo.clip_high, gspo.num_minibatches) == ("sequence", 3e-4, 4e-4, 2)
    assert RLConfig(preset="dr_grpo", task="t", out_dir="x").loss_agg == "seq_sum_norm"
    assert RLConfig(task="t", out_dir="x", lora=True).learning_rate == 1e-5


def test_config_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: dapo\ntask: medication-directions\nout_dir: x\nclip_high: -1\n")
    with pytest.raises(ValueError, match=r"bad.yaml:4: clip_high: .*greater than or equal to 0"):
        load_rl_config(bad)
    bad.write_text("task: medication-directions\nout_dir: x\nrewards:\n  - type: exact\n  - {type: regex, patern: a}\n")
    with pytest.raises(ValueError, match=r"bad.yaml:5: rewards\[1\]: regex takes pattern"):
        load_rl_config(bad)
    bad.write_text("task: medication-directions\nout_dir: [x\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: invalid YAML"):
        load_rl_config(bad)
    bad.write_text("out_dir: x\n")
    with pytest.raises(ValueError, match="give a task or a data file"):
        load_rl_config(bad)
    bad.write_text("task: t\nout_dir: x\nadvantage: grpo\ngroup_size: 1\n")
    with pytest.raises(ValueError, match="group_size"):
        load_rl_config(bad)
    bad.write_text("task: t\nout_dir: x\nconcurrent_groups: true\nconcurrent_episodes: false\n")
    with pytest.raises(ValueError, match="concurrent_groups: .*concurrent_episodes: false"):
        load_rl_config(bad)


def test_concurrent_groups_run_their_episodes_at_once():
    # Alone, concurrent_groups once left the episodes one by one: it now sets concurrent_episodes.
    assert RLConfig(task="t", out_dir="x", concurrent_groups=True).concurrent_episodes is True
    assert RLConfig(task="t", out_dir="x").concurrent_episodes is False
    assert RLConfig(task="t", out_dir="x", concurrent_episodes=True).concurrent_groups is False


def test_cli_runs_a_yaml_config(tmp_path):
    from typer.testing import CliRunner

    from agentladder.cli import app

    cfg = tmp_path / "rl.yaml"
    cfg.write_text(f"preset: dapo\nmodel: tiny\ndata: {_prompts(tmp_path)}\nout_dir: {tmp_path / 'run'}\n"
                   "group_size: 2\nbatch_size: 2\nmax_new_tokens: 4\nmax_steps: 2\n"
                   "rewards:\n  - {type: regex, pattern: '[a-z]', name: letter}\n")
    result = CliRunner().invoke(app, ["train", "rl", "--config", str(cfg), "--quiet", "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "reward/letter" in json.loads(lines[0])
    bad = CliRunner().invoke(app, ["train", "rl", "--preset", "nope", "--task", "medication-directions", "--out", "x"])
    assert bad.exit_code == 1 and "preset" in bad.output


def test_rl_from_a_lora_sft_run_starts_from_the_sft_policy(tmp_path, rows_file):
    """A LoRA SFT folder is merged first, so the SFT policy is both the start and the KL reference."""
    from agentladder.models import load_model
    from agentladder.train.sft import sft

    sft(model="tiny", data=str(rows_file), out_dir=str(tmp_path / "sft"), lora=True, max_steps=2,
        learning_rate=1e-2, progress=False, tensorboard=False)
    result = _toy(tmp_path, "grpo", steps=2, model=str(tmp_path / "sft"), lora=True, lora_r=4, lora_alpha=8)
    assert result.history[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    meta = json.loads((tmp_path / "grpo" / "agentladder.json").read_text())
    assert meta["lora"] is False  # the new adapter sits on the merged SFT model: saved as a full model
    model, _ = load_model(str(tmp_path / "grpo"))
    assert not hasattr(model, "value_head")


def _tool_env(conversation, answer):
    from agentladder.data.schema import Message

    if sum(m.role == "assistant" for m in conversation) >= 2:
        return None
    return [Message(role="tool", name="lookup", content="tool output")]


def test_multi_turn_training_with_a_tool_environment(tmp_path):
    seen = []
    from agentladder.rewards.base import Reward, RewardOutput

    class Turns(Reward):
        def score_group(self, items):
            seen.extend(len(i.turns) for i in items)
            return [RewardOutput(lowercase_share(i.completion, None, {})) for i in items]

    result = rl(model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "mt"), group_size=4, batch_size=2,
                max_new_tokens=64, stop=[chr(c) for c in range(32, 127)], max_turns=2, max_steps=2, learning_rate=1e-3, progress=False,
                tensorboard=False, environment=_tool_env, reward=WeightedEnsemble([("t", Turns(), 1.0)]))
    assert len(result.history) == 2 and result.history[-1]["updates"] == 1
    assert 3 in seen  # assistant, tool, assistant
    with pytest.raises(ValueError, match="needs an environment"):
        rl(model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "mt2"), max_turns=2, max_steps=1,
           progress=False, reward=WeightedEnsemble([("t", Turns(), 1.0)]))


def test_a_step_whose_groups_are_all_dropped_takes_no_update(tmp_path):
    result = rl(
        preset="dapo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "flat"), group_size=2,
        batch_size=2, max_new_tokens=4, max_steps=2, max_generation_rounds=2, progress=False, tensorboard=False,
        reward=WeightedEnsemble([("flat", PythonReward(lambda c, t, m: 1.0), 1.0)]))
    assert [r["updates"] for r in result.history] == [0, 0]
    assert all(r["groups_kept"] == 0 and r["gen_rounds"] == 2 for r in result.history)
    assert (tmp_path / "flat" / "model.safetensors").exists()


def _samples(trainer, kept):
    """The step's samples with their advantages, as ``train_step`` prepares them (these runs have no
    reference pass and no critic)."""
    batch = trainer._batch(kept)
    assert trainer._reference_logps(batch) is None and trainer._values(batch) is None
    trainer._advantages(batch, None, None)
    return batch.samples


def _first_char_span(text, target, metadata):
    return {"score": lowercase_share(text, target, metadata), "spans": [(0, 1, -2.0)]}


def test_span_rewards_move_only_their_tokens_advantage(tmp_path):
    from agentladder.models import load_model
    from agentladder.rewards import Span
    from agentladder.rewards.shaping import span_token_values, token_char_ranges

    config = RLConfig(preset="grpo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                      group_size=4, batch_size=2, max_new_tokens=6, max_steps=1, progress=False, kl_coef=0.0)
    model, tok = load_model("tiny")
    prompts, _ = load_prompts(config, tok)
    trainer = RLTrainer(model, tok, prompts, WeightedEnsemble([("s", PythonReward(_first_char_span), 1.0)]), config)
    kept = trainer._rollout(0).kept
    span = Span(0, 1, -2.0)
    assert all(sp == [span] for g in kept for sp in g.spans)  # the ensemble hands the reward's spans on
    for g in kept:
        g.spans = [[] for _ in g.completions]
    sequence_only = [s.advantages for s in _samples(trainer, kept)]
    for g in kept:
        g.spans = [[span] for _ in g.completions]
    for s, seq in zip(_samples(trainer, kept), sequence_only, strict=True):
        starts, ends = token_char_ranges(tok, s.completion)
        want = span_token_values(ends, starts, [span])
        assert want[0] == -2.0
        assert [a - b for a, b in zip(s.advantages, seq, strict=True)] == pytest.approx(want)


def test_overlong_filter_masks_truncated_responses(tmp_path):
    from agentladder.models import load_model

    config = RLConfig(preset="dapo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                      group_size=16, batch_size=4, max_new_tokens=12, max_steps=1, progress=False,
                      overlong_filter=True, dynamic_sampling=False)
    model, tok = load_model("tiny")
    prompts, _ = load_prompts(config, tok)
    trainer = RLTrainer(model, tok, prompts, WeightedEnsemble([("l", PythonReward(lowercase_share), 1.0)]), config)
    kept = trainer._rollout(0).kept
    samples = _samples(trainer, kept)
    cut = [s for s in samples if s.truncated]
    assert cut and len(cut) < len(samples)  # the tiny model ends a few responses, most run to the budget
    assert all(sum(s.mask) == 0 and all(a == 0 for a in s.advantages) for s in cut)
    assert all(sum(s.mask) == len(s.completion) for s in samples if not s.truncated)


def test_bad_prompt_rows_name_file_line_and_field(tmp_path):
    from agentladder.data.io import DataError

    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    with pytest.raises(DataError, match=r"p.jsonl:2: prompt must be a string or a list of messages, not int"):
        rl(model="tiny", data=str(path), out_dir=str(tmp_path / "r"), max_steps=1, progress=False,
           reward=WeightedEnsemble([("l", PythonReward(lowercase_share), 1.0)]))


def test_inexact_engine_logprobs_are_recomputed(tmp_path):
    """An engine whose log-probabilities are not the training model's (vLLM) gets them recomputed."""
    from agentladder.models import load_model
    from agentladder.models.rollout import LocalRollout

    class Skewed(LocalRollout):
        exact_logprobs = False

        def generate(self, prompts, n, params, generator=None):
            out = super().generate(prompts, n, params, generator)
            for group in out:
                for c in group:
                    c.logprobs = [x - 0.5 for x in c.logprobs]
            return out

    config = RLConfig(preset="gspo", model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                      group_size=4, batch_size=2, max_new_tokens=5, max_steps=1, progress=False)
    model, tok = load_model("tiny")
    prompts, _ = load_prompts(config, tok)
    reward = WeightedEnsemble([("l", PythonReward(lowercase_share), 1.0)])
    exact = RLTrainer(model, tok, prompts, reward, config)
    kept = exact._rollout(0).kept
    want = [s.old_logps for s in _samples(exact, kept)]
    skewed = RLTrainer(model, tok, prompts, reward, config, rollout=Skewed(model, tok))
    for g in kept:
        for c in g.completions:
            c.logprobs = [x - 0.5 for x in c.logprobs]
    got = [s.old_logps for s in _samples(skewed, kept)]
    for a, b in zip(got, want, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def _exact(text, target, metadata):
    return 1.0 if text == target else 0.0


def _target_prompts(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "targets.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"say {i}", "target": f"hello {i}"}) + "\n"
                            for i in range(n)))
    return path


def test_with_reference_replaces_the_worst_response_only_where_none_is_as_good():
    from agentladder.models.rollout import Completion
    from agentladder.train.rl_rollout import Group, PromptRow, with_reference

    prompt = PromptRow("p", [], [1], "right", reference="right")
    answers = [Completion([i], [-1.0], f"a{i}", "stop") for i in range(3)]
    ref = Completion([9], [0.0], "right", "stop")
    group = Group(prompt, answers, [0.2, 0.0, 0.5], {"exact": [0.0, 0.0, 0.0], "fields": [0.4, 0.0, 1.0]},
                  [[], [], []])
    reference = Group(prompt, [ref], [1.5], {"exact": [1.0], "fields": [1.0]}, [[]])
    guided = with_reference(group, reference)
    assert guided.guided == 1 and guided.completions == [answers[0], ref, answers[2]]
    assert guided.total == [0.2, 1.5, 0.5] and guided.components == {"exact": [0.0, 1.0, 0.0],
                                                                      "fields": [0.4, 1.0, 1.0]}
    assert group.total == [0.2, 0.0, 0.5]  # the sampled group itself is left as it was
    right = Group(prompt, answers, [1.5, 0.0, 0.5], group.components, group.spans)
    assert with_reference(right, reference) is right  # a sample as good as the reference: nothing to guide


def test_reference_guidance_gives_a_never_right_prompt_its_reference_with_the_best_advantage(tmp_path):
    """The tiny model never says "hello 0": without guidance dynamic sampling drops every group; with it
    each group carries the reference, whose advantage is the group's highest, and off-policy settings read
    the reference's log-probabilities under the model (not the placeholder zeros)."""
    from agentladder.models import load_model

    model, tok = load_model("tiny")
    reward = WeightedEnsemble([("exact", PythonReward(_exact), 1.0)])
    settings = dict(preset="dapo", model="tiny", data=str(_target_prompts(tmp_path)), out_dir=str(tmp_path / "run"),
                    group_size=4, batch_size=2, max_new_tokens=10, max_steps=1, max_generation_rounds=2,
                    progress=False, overlong_buffer_ratio=None, ppo_epochs=2)
    config = RLConfig(**settings)
    prompts, _ = load_prompts(config, tok)
    assert [p.reference for p in prompts] == [f"hello {i}" for i in range(4)]
    torch.manual_seed(0)
    assert RLTrainer(model, tok, prompts, reward, config)._rollout(0).kept == []
    guided = RLTrainer(model, tok, prompts, reward, RLConfig(**settings, reference_guidance=True))
    torch.manual_seed(0)
    rollout = guided._rollout(0)
    assert len(rollout.kept) == 2 and rollout.stats.guided_groups == 2
    assert rollout.stats.metrics()["guided_groups"] == 2
    assert all(g.total == [1.0 if i == g.guided else 0.0 for i in range(4)] for g in rollout.kept)
    assert all(t == 0.0 for g in rollout.first for t in g.total)  # the step's reward is the policy's own
    batch = guided._batch(rollout.kept)
    guided._advantages(batch, None, None)
    for k, g in enumerate(rollout.kept):
        mine = [s for s in batch.samples if s.group == k]
        ref = mine[g.guided]
        assert tok.decode(ref.completion, skip_special_tokens=True) == g.prompt.reference
        assert ref.advantages[0] > 0 > max(s.advantages[0] for s in mine if s is not ref)
        with torch.no_grad():
            want = torch.log_softmax(model(torch.tensor([g.prompt.ids + ref.completion])).logits[0].float(), -1)
        n = len(g.prompt.ids)
        expect = [float(want[n - 1 + j, t]) for j, t in enumerate(ref.completion)]
        assert ref.old_logps == pytest.approx(expect, abs=1e-4)


def test_reference_guidance_teaches_the_answer_no_sample_gives(tmp_path):
    """A few guided steps raise the reference answer's log-probability under the model."""
    from agentladder.models import load_model

    data = _target_prompts(tmp_path)
    result = rl(preset="dapo", model="tiny", data=str(data), out_dir=str(tmp_path / "g"), group_size=4, batch_size=4,
                max_new_tokens=10, max_steps=4, learning_rate=3e-3, progress=False, tensorboard=False, save_every=100,
                overlong_buffer_ratio=None, reference_guidance=True,
                reward=WeightedEnsemble([("exact", PythonReward(_exact), 1.0)]))
    assert [r["guided_groups"] for r in result.history] == [4, 4, 4, 4]

    def reference_logp(path):
        model, tok = load_model(path)
        config = RLConfig(model="tiny", data=str(data), out_dir=str(tmp_path / "x"))
        total = 0.0
        for p in load_prompts(config, tok)[0]:
            ids = tok(p.reference, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([p.ids + ids])).logits[0].float(), -1)
            total += sum(float(logp[len(p.ids) - 1 + j, t]) for j, t in enumerate(ids))
        return total

    assert reference_logp(str(tmp_path / "g")) > reference_logp("tiny") + 1.0


def test_reference_guidance_needs_a_reference_and_one_assistant_turn(tmp_path):
    from agentladder.errors import ConfigError

    with pytest.raises(ValueError, match=r"reference_guidance: a reference answer is one assistant turn"):
        RLConfig(model="tiny", data="p.jsonl", out_dir=str(tmp_path / "r"), reference_guidance=True, max_turns=2)
    with pytest.raises(ConfigError, match=r"reference_guidance: no prompt has a reference answer"):
        rl(model="tiny", data=str(_prompts(tmp_path)), out_dir=str(tmp_path / "r"), max_steps=1, progress=False,
           reference_guidance=True, reward=WeightedEnsemble([("l", PythonReward(lowercase_share), 1.0)]))
