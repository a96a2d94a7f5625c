"""Reinforcement learning on the shared loop: PPO, GRPO, DAPO, GSPO, Dr. GRPO, RLOO and REINFORCE++.

One trainer; every algorithm is a combination of :class:`~agentladder.train.rl_config.RLConfig`
fields, and the presets fill them as their papers do. One loop step is one rollout:

1. take ``batch_size`` prompts (the loop's data order, so resuming needs only the step);
2. sample ``group_size`` responses to each (:mod:`agentladder.models.rollout`: each prompt
   encoded once for its group; the sampler's log-probabilities are the old policy's);
3. score them (:mod:`agentladder.rewards`), add the overlong punishment; with dynamic
   sampling drop the groups whose rewards are all equal and sample more prompts until
   the batch is full or ``max_generation_rounds`` is reached;
4. when the KL coefficient is not 0, one no-grad pass for the reference's log-probabilities
   (LoRA: the same model with adapters disabled); for PPO one for the critic's values;
5. advantages (:mod:`agentladder.train.advantages`), plus span rewards on their tokens;
6. ``ppo_epochs`` passes of ``num_minibatches`` optimizer updates each, through the loop's
   :meth:`~agentladder.train.loop.Trainer.update`, each prompt run once per mini-batch for all
   of its responses (:mod:`agentladder.train.rl_batch`); then one step of the schedule.

With one update per rollout the old policy *is* the current one, so the ratio is
exactly 1 (the loss uses the current log-probabilities, detached, as TRL does).
"""

from __future__ import annotations

import copy
import importlib
import json
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agentladder.data.io import DataError, load_rows
from agentladder.data.schema import Message, RLPrompt
from agentladder.errors import ConfigError
from agentladder.models.chat import prompt_ids
from agentladder.models.loading import resolve
from agentladder.models.lora import is_lora, reference_mode
from agentladder.models.rollout import (
    Completion,
    RolloutBackend,
    SamplingParams,
    ToolEnvironment,
    make_rollout,
    multi_turn_generate,
)
from agentladder.rewards.config import build_rewards
from agentladder.tasks import get_task
from agentladder.train.advantages import (
    ESTIMATORS,
    OUTCOME_ESTIMATORS,
    AdvantageInput,
    outcome_token_rewards,
    zero_variance_groups,
)
from agentladder.train.distributed import World, unwrap
from agentladder.train.loop import LossOutput, Trainer, TrainResult, epoch_order
from agentladder.train.plots import plot_history
from agentladder.train.rl_batch import (
    RLSample,
    group_batch,
    padded_rl_batch,
    token_outputs,
    use_group_prompt_attention,
)
from agentladder.train.rl_config import PRESETS, RLConfig, load_rl_config
from agentladder.train.rl_losses import aggregate, clipped_policy_loss, kl_estimate, value_loss
from agentladder.train.run import finish_run, lineage_base, resolved_spec, start_run

ROLLOUT_LOG = "rollouts.jsonl"
"""One line per step: the first prompt's responses and their rewards."""


@dataclass
class PromptRow:
    id: str
    messages: list[Message]
    ids: list[int]
    target: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Group:
    prompt: PromptRow
    completions: list[Completion]
    total: list[float]
    """Reward of each response (the ensemble's weighted sum, plus shaping)."""
    components: dict[str, list[float]]
    spans: list[list]


class RLTrainer(Trainer):
    """The shared loop with a rollout, rewards and advantages before the updates of each step."""

    def __init__(self, model, tokenizer, prompts: Sequence[PromptRow], rewards, config: RLConfig, *,
                 rollout: RolloutBackend | None = None, world: World | None = None, reference_model=None,
                 environment: ToolEnvironment | None = None, description: str | None = None):
        self.rl = config
        self.tokenizer = tokenizer
        self.rewards = rewards
        self.max_new = config.max_new_tokens or 256
        self.units = "tokens" if config.loss_agg == "token_mean" else "sequences"
        self.shared = config.share_prompt and use_group_prompt_attention(model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.value_head = getattr(model, "value_head", None) if config.advantage == "gae" else None
        if config.advantage == "gae" and self.value_head is None:
            raise ValueError("the gae advantage needs a value head: use attach_value_head(model) first")
        self.reference_model = reference_model
        self.environment = environment
        if config.max_turns > 1 and environment is None:
            raise ValueError("max_turns > 1 needs an environment that answers each assistant turn")
        self.on_policy = config.ppo_epochs * config.num_minibatches == 1
        self.sampling = SamplingParams(self.max_new, config.temperature, config.top_p, tuple(config.stop),
                                       bool(config.stop_at_json))
        self.temperature = config.temperature if config.temperature > 0 else 1.0
        super().__init__(model, list(prompts), self.collate_samples, self.loss, config, world=world,
                         description=description or config.preset or "rl")
        self.rollout = rollout or make_rollout("local", self.model, tokenizer)

    # -- batches and loss ---------------------------------------------------------------------
    def collate_samples(self, samples: list[RLSample]) -> dict:
        if self.shared:
            return group_batch(samples, self.units)
        return padded_rl_batch(samples, self.pad_id, self.units)

    def loss(self, model, batch: dict) -> LossOutput:
        cfg = self.rl
        out = token_outputs(model, batch, temperature=self.temperature, value_head=self.value_head, entropy=True)
        device = out.logps.device
        mask = batch["mask"].to(device)
        adv = batch["advantages"].to(device)
        old = out.logps.detach() if self.on_policy else batch["old_logps"].to(device)
        pl = clipped_policy_loss(out.logps, old, adv, mask, clip_low=cfg.clip_low, clip_high=cfg.clip_high,
                                 dual_clip=cfg.dual_clip, level=cfg.ratio_level)
        loss_mat = pl.loss
        metrics = {"_tokens": float(mask.sum()), "_clip_low": float(pl.clipped_low.sum()),
                   "_clip_high": float(pl.clipped_high.sum()), "_dual": float(pl.dual_clipped.sum()),
                   "_entropy": float((out.entropy * mask).sum()), "_ratio": float(pl.ratio.sum())}
        if cfg.kl_coef > 0 and cfg.kl_in == "loss":
            kl = kl_estimate(out.logps, batch["ref_logps"].to(device), cfg.kl_estimator) * mask
            loss_mat = loss_mat + cfg.kl_coef * kl
            metrics["_kl_loss"] = float(kl.detach().sum())
        loss_sum, _ = aggregate(loss_mat, mask, cfg.loss_agg, self.max_new)
        if self.value_head is not None:
            vl = value_loss(out.values, batch["old_values"].to(device), batch["returns"].to(device), mask,
                            cfg.value_clip)
            v_sum, _ = aggregate(vl, mask, cfg.loss_agg, self.max_new)
            loss_sum = loss_sum + cfg.vf_coef * v_sum
            metrics["_value_loss"] = float(vl.detach().sum())
        return LossOutput(loss_sum=loss_sum, metrics=metrics)

    # -- rollout --------------------------------------------------------------------------------
    def _more_prompts(self, step: int, round_: int, n: int) -> list[PromptRow]:
        """Prompts for dynamic sampling's extra rounds: a permutation fixed by (seed, round, step)."""
        order = epoch_order(len(self.rows), self.config.seed * 7919 + round_, step)
        return [self.rows[order[i % len(order)]] for i in range(n)]

    def _score(self, prompt: PromptRow, completions: list[Completion]) -> Group:
        from agentladder.rewards.base import RewardInput
        from agentladder.rewards.shaping import overlong_penalty

        items = [RewardInput(prompt.messages, c.text, prompt.target, prompt.metadata, prompt.id, c.truncated,
                             list(c.turns)) for c in completions]
        scores = self.rewards.score_group(items)
        total = list(scores.total)
        if self.rl.overlong_buffer_ratio:
            buffer = max(1, int(round(self.rl.overlong_buffer_ratio * self.max_new)))
            lengths = torch.tensor([len(c.token_ids) for c in completions])
            pen = overlong_penalty(lengths, self.max_new, buffer, self.rl.overlong_penalty).tolist()
            total = [t + p for t, p in zip(total, pen, strict=True)]
            scores.components["overlong"] = pen
        return Group(prompt, completions, total, scores.components, scores.spans)

    def _rollout(self, step: int) -> tuple[list[Group], list[Group], dict[str, float]]:
        """``(kept groups, first round's groups, stats)``."""
        cfg = self.rl
        prompts = [r for mb in self.micro_batches(step) for r in mb]
        want = len(prompts)
        kept: list[Group] = []
        first: list[Group] = []
        seen = rounds = gen_tokens = 0
        gen_s = 0.0
        while True:
            rounds += 1
            batch = prompts if rounds == 1 else self._more_prompts(step, rounds, want)
            t0 = time.perf_counter()
            if self.environment is not None and cfg.max_turns > 1:
                completions = multi_turn_generate(self.rollout, self.tokenizer, [p.messages for p in batch],
                                                  [p.ids for p in batch], cfg.group_size, self.sampling,
                                                  self.environment, cfg.max_turns)
            else:
                completions = self.rollout.generate([p.ids for p in batch], cfg.group_size, self.sampling)
            gen_s += time.perf_counter() - t0
            gen_tokens += sum(len(c.token_ids) for g in completions for c in g)
            groups = [self._score(p, cs) for p, cs in zip(batch, completions, strict=True)]
            if rounds == 1:
                first = groups
            seen += len(groups)
            if cfg.dynamic_sampling:
                flat = torch.tensor([t for g in groups for t in g.total])
                index = torch.arange(len(groups)).repeat_interleave(cfg.group_size)
                flat_zero = zero_variance_groups(flat, index).tolist()
                groups = [g for g, z in zip(groups, flat_zero, strict=True) if not z]
            kept += groups
            if not cfg.dynamic_sampling or len(kept) >= want or rounds >= cfg.max_generation_rounds:
                break
        stats = {"gen_rounds": rounds, "groups_kept": min(len(kept), want) / max(1, seen), "gen_s": gen_s,
                 "gen_tokens": gen_tokens, "gen_tokens_per_s": gen_tokens / max(gen_s, 1e-9)}
        return kept[:want], first, stats

    # -- no-grad passes -----------------------------------------------------------------------
    @torch.no_grad()
    def _per_token(self, samples: list[RLSample], *, reference: bool = False, values: bool = False) -> list[list[float]]:
        """Per-sample token log-probabilities (or values) from a no-grad pass, in chunks."""
        model = self.model
        context = nullcontext()
        if reference:
            if self.reference_model is not None:
                model = self.reference_model
            else:
                context = reference_mode(self.model)
        was = model.training
        model.eval()
        out: list[list[float]] = []
        size = self.rl.micro_batch_size or len(samples)
        try:
            with context:
                for s in range(0, len(samples), size):
                    chunk = samples[s : s + size]
                    res = token_outputs(model, self.collate_samples(chunk), temperature=self.temperature,
                                        value_head=self.value_head if values else None)
                    t = res.values if values else res.logps
                    out += [t[i, : len(x.completion)].tolist() for i, x in enumerate(chunk)]
        finally:
            model.train(was)
        return out

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        kept, first, stats = self._rollout(step)
        metrics = self._reward_metrics(first)
        metrics.update(stats)
        if self.world.is_main and first:
            self._log_rollout(step, first[0])
        t0 = time.perf_counter()
        samples = self._samples(kept)
        updates: list[dict[str, float]] = []
        if samples:
            updates = self._updates(samples, step)
        with warnings.catch_warnings():  # a step without an update still advances the schedule
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        self.rollout.sync_weights(self.model)
        metrics["train_s"] = time.perf_counter() - t0
        metrics.update(self._update_metrics(updates))
        metrics["lr"] = self.scheduler.get_last_lr()[0] if not updates else updates[0]["lr"]
        return metrics

    def _samples(self, groups: list[Group]) -> list[RLSample]:
        cfg = self.rl
        samples, scores, spans = [], [], []
        for g_idx, g in enumerate(groups):
            for c, score, sp in zip(g.completions, g.total, g.spans or [[]] * len(g.completions), strict=True):
                mask = [0] * len(c.mask) if (cfg.overlong_filter and c.truncated) else list(c.mask)
                samples.append(RLSample(g_idx, g.prompt.ids, c.token_ids, mask, old_logps=list(c.logprobs),
                                        truncated=c.truncated))
                scores.append(score)
                spans.append(sp)
        if not samples or sum(s.n_trained for s in samples) == 0:
            return []
        width = max(len(s.completion) for s in samples)
        mask = torch.zeros(len(samples), width)
        old = torch.zeros(len(samples), width)
        for i, s in enumerate(samples):
            mask[i, : len(s.mask)] = torch.tensor(s.mask, dtype=torch.float32)
            old[i, : len(s.old_logps)] = torch.tensor(s.old_logps, dtype=torch.float32)
        if not getattr(self.rollout, "exact_logprobs", True) and (not self.on_policy or cfg.kl_coef > 0):
            # Another engine's log-probabilities (other kernels, other precision): recompute the old policy's.
            for i, (s, lp) in enumerate(zip(samples, self._per_token(samples), strict=True)):
                s.old_logps = lp
                old[i, : len(lp)] = torch.tensor(lp)
        score_t = torch.tensor(scores, dtype=torch.float32)
        kl_tok = None
        if cfg.kl_coef > 0:
            refs = self._per_token(samples, reference=True)
            ref = torch.zeros(len(samples), width)
            for i, (s, r) in enumerate(zip(samples, refs, strict=True)):
                s.ref_logps = r
                ref[i, : len(r)] = torch.tensor(r)
            kl_tok = kl_estimate(old, ref, cfg.kl_estimator) * mask
            self._rollout_kl = float(kl_tok.sum() / mask.sum().clamp(min=1))
        token_rewards = None
        if cfg.kl_in == "reward" and kl_tok is not None:
            if cfg.advantage in OUTCOME_ESTIMATORS:
                score_t = score_t - cfg.kl_coef * kl_tok.sum(-1)
            else:
                token_rewards = outcome_token_rewards(score_t, mask) - cfg.kl_coef * kl_tok
        values = None
        if self.value_head is not None:
            vals = self._per_token(samples, values=True)
            values = torch.zeros(len(samples), width)
            for i, (s, v) in enumerate(zip(samples, vals, strict=True)):
                s.old_values = v
                values[i, : len(v)] = torch.tensor(v)
        group = torch.tensor([s.group for s in samples])
        out = ESTIMATORS[cfg.advantage](AdvantageInput(score_t, group, mask, token_rewards, values, cfg.gamma,
                                                       cfg.lam))
        adv = out.advantages.float()
        if any(spans):
            adv = adv + self._span_values(samples, spans, width) * mask
        for i, s in enumerate(samples):
            n = len(s.completion)
            s.advantages = adv[i, :n].tolist()
            if out.returns is not None:
                s.returns = out.returns[i, :n].float().tolist()
        return samples

    def _span_values(self, samples: list[RLSample], spans: list[list], width: int) -> torch.Tensor:
        from agentladder.rewards.shaping import span_token_values, token_char_ranges

        out = torch.zeros(len(samples), width)
        for i, (s, sp) in enumerate(zip(samples, spans, strict=True)):
            if sp:
                starts, ends = token_char_ranges(self.tokenizer, s.completion)
                out[i, : len(s.completion)] = torch.tensor(span_token_values(ends, starts, sp))
        return out

    def _updates(self, samples: list[RLSample], step: int) -> list[dict[str, float]]:
        """``ppo_epochs`` x ``num_minibatches`` updates; mini-batches are whole prompt groups, shuffled."""
        cfg = self.rl
        by_group: dict[int, list[RLSample]] = {}
        for s in samples:
            by_group.setdefault(s.group, []).append(s)
        groups = list(by_group.values())
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        results = []
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(groups), generator=g).tolist() if len(groups) > 1 else [0]
            flat = [s for k in order for s in groups[k]]
            n_mb = min(cfg.num_minibatches, len(flat))
            bounds = [round(i * len(flat) / n_mb) for i in range(n_mb + 1)]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                mb = flat[a:b]
                if sum(s.n_trained for s in mb) == 0:
                    continue
                size = cfg.micro_batch_size or len(mb)
                batches = [self.collate_samples(mb[j : j + size]) for j in range(0, len(mb), size)]
                results.append(self.update(batches, step))
        return results

    # -- metrics ---------------------------------------------------------------------------------
    def _reward_metrics(self, groups: list[Group]) -> dict[str, float]:
        totals = [t for g in groups for t in g.total]
        if not totals:
            return {}
        t = torch.tensor(totals)
        out = {"reward": float(t.mean()), "reward_std": float(t.std()) if len(totals) > 1 else 0.0}
        for name in groups[0].components:
            vals = [v for g in groups for v in g.components.get(name, [])]
            out[f"reward/{name}"] = sum(vals) / max(1, len(vals))
        lens = [len(c.token_ids) for g in groups for c in g.completions]
        out["response_len"] = sum(lens) / len(lens)
        out["truncated"] = sum(c.truncated for g in groups for c in g.completions) / len(lens)
        flat = torch.tensor(totals)
        idx = torch.arange(len(groups)).repeat_interleave(len(groups[0].completions))
        out["zero_variance_groups"] = float(zero_variance_groups(flat, idx).float().mean())
        return out

    def _update_metrics(self, updates: list[dict[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {"updates": len(updates)}
        if getattr(self, "_rollout_kl", None) is not None:
            out["kl"] = self._rollout_kl
        if not updates:  # every group was dropped (or masked out): nothing to learn from this step
            out["loss"] = float("nan")
            return out
        n = len(updates)
        mean = lambda key: sum(u.get(key, 0.0) for u in updates) / n  # noqa: E731
        ratio = lambda key: sum(u.get(key, 0.0) / max(u["_tokens"], 1e-12) for u in updates) / n  # noqa: E731
        out.update(loss=mean("loss"), clip_low_frac=ratio("_clip_low"), clip_high_frac=ratio("_clip_high"),
                   dual_clip_frac=ratio("_dual"), entropy=ratio("_entropy"), ratio_mean=ratio("_ratio"),
                   units=sum(u["units"] for u in updates))
        out["clip_frac"] = out["clip_low_frac"] + out["clip_high_frac"]
        if "grad_norm" in updates[0]:
            out["grad_norm"] = mean("grad_norm")
        if "_kl_loss" in updates[0]:
            out["kl"] = ratio("_kl_loss")
        if "_value_loss" in updates[0]:
            out["value_loss"] = ratio("_value_loss")
        for key in ("n_tokens", "n_trained_tokens"):
            if key in updates[0]:
                out[key] = sum(u[key] for u in updates)
        return out

    def _log_rollout(self, step: int, group: Group) -> None:
        record = {"step": step + 1, "prompt_id": group.prompt.id,
                  "responses": [{"text": c.text, "reward": r, "finish": c.finish_reason}
                                for c, r in zip(group.completions, group.total, strict=True)]}
        path = Path(self.config.out_dir) / ROLLOUT_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


# -- building a run -------------------------------------------------------------------------------
def attach_value_head(model) -> torch.nn.Module:
    """A zero-initialised linear value head on the final hidden state, registered as ``model.value_head``.

    The critic shares the policy's trunk (its gradient, scaled by ``vf_coef``, reaches the
    trunk or the adapters), so PPO needs no second model in memory.
    """
    head = torch.nn.Linear(model.config.hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    model.add_module("value_head", head)
    return head


def load_prompts(config: RLConfig, tokenizer) -> tuple[list[PromptRow], int]:
    """The training prompts (tokenised through the chat template) and how many were too long."""
    rows: list[PromptRow] = []
    if config.task:
        from agentladder.tasks import get_task

        task = get_task(config.task)
        samples = task.load(config.data) if config.data else task.make(config.split, config.n_prompts, config.seed)
        for s in samples:
            messages = task.prompt(s)
            rows.append(PromptRow(s.id, messages, prompt_ids(tokenizer, messages), s.target,
                                  {**s.metadata, "input": s.input}))
    else:
        for i, r in enumerate(load_rows(config.data, RLPrompt)):  # type: ignore[arg-type]
            rows.append(PromptRow(r.id or f"row-{i + 1}", list(r.prompt), prompt_ids(tokenizer, r.prompt), r.target,
                                  dict(r.metadata)))
    kept = [r for r in rows if len(r.ids) <= config.max_prompt_length]
    if not kept:
        raise DataError(config.data or config.task, None, None,
                        f"no prompt fits max_prompt_length={config.max_prompt_length}")
    return kept, len(rows) - len(kept)


def default_rewards(config: RLConfig) -> list[dict[str, Any]]:
    if config.rewards:
        return config.rewards
    if config.task:
        return [{"type": "task", "task": config.task}]
    raise ConfigError("rewards: a prompt file without a task needs rewards (e.g. [{type: exact}])")


def rl(config: RLConfig | None = None, /, *, resume: bool = False, rollout: RolloutBackend | None = None,
       reward=None, environment: ToolEnvironment | None = None, **kwargs: Any) -> TrainResult:
    """Train ``config.model`` with reinforcement learning; see :class:`RLConfig` for the settings.

    ``rl(preset="dapo", model="runs/sft1", task="medication-directions", out_dir="runs/dapo1")``
    works as well as passing a config. ``reward`` replaces the configured rewards with any
    object that has ``score_group`` (a :class:`~agentladder.rewards.WeightedEnsemble`);
    ``environment`` (or ``config.environment``) answers assistant turns for multi-turn rollouts.
    With ``resume=True`` an interrupted run continues from its newest checkpoint.
    """
    # A LoRA run as the start is merged first: the adapted model is then both the policy and the reference.
    run = start_run(RLConfig, config, kwargs, resume, adapter="merge")
    config, model, world = run.config, run.model, run.world
    task_defaults(config)
    if config.advantage == "gae":
        attach_value_head(model)
    reference_model = None
    if config.kl_coef > 0 and not config.lora:  # full fine-tuning: a frozen copy of the start
        reference_model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)
        if hasattr(reference_model, "value_head"):
            del reference_model.value_head
    prompts, dropped = load_prompts(config, run.tokenizer)
    if reward is None:
        reward = build_rewards(default_rewards(config))
    run.save_config()
    model.to(world.device)
    if rollout is None and config.rollout_backend == "vllm":
        rollout = make_rollout("vllm", model, run.tokenizer, model_path=_vllm_path(config),
                               gpu_memory_utilization=config.vllm_gpu_memory_utilization, seed=config.seed)
    if environment is None and config.environment:
        environment = _import(config.environment, "environment")
    if config.max_turns > 1 and environment is None:
        raise ConfigError("max_turns > 1 needs an environment that answers each assistant turn")
    trainer = RLTrainer(model, run.tokenizer, prompts, reward, config, rollout=rollout, world=world,
                        reference_model=reference_model, environment=environment)
    result = trainer.run(resume=resume)
    if world.is_main and result.history:
        plot_rewards(result.history, run.out_dir / "reward.png", title=f"{trainer.description}: {run.out_dir.name}")

    def policy(trained):
        """The model to save: without the value head; merged when its adapter sits on a merged LoRA run,
        which no folder holds."""
        if hasattr(trained, "value_head"):
            del trained.value_head
        return trained.merge_and_unload() if is_lora(trained) and run.from_adapter else trained

    def metadata(lora: bool) -> dict[str, Any]:
        last = result.history[-1] if result.history else {}
        return {"method": config.preset or "rl", "base_model": lineage_base(config.model, lora),
                "start_model": resolved_spec(config.model), "lora": lora, "steps": trainer.step,
                "task": config.task, "data": config.data, "prompts": len(prompts), "prompts_dropped": dropped,
                "algorithm": config.algorithm(), "final_reward": last.get("reward")}

    return finish_run(run, trainer, result, metadata, prepare=policy, restore_attention=trainer.shared)


def task_defaults(config: RLConfig) -> None:
    """Fill ``max_new_tokens`` and ``stop_at_json`` from the task (or the general defaults)."""
    task = get_task(config.task) if config.task else None
    if config.max_new_tokens is None:
        config.max_new_tokens = task.max_new_tokens if task else 256
    if config.stop_at_json is None:
        config.stop_at_json = bool(task.stop_at_json) if task else False


def _vllm_path(config: RLConfig) -> str:
    return resolve(config.model)


def _import(spec: str, what: str):
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{what}: cannot load {spec!r} (write module:function): {err}") from None


# -- the reward curve --------------------------------------------------------------------------
_RL_PANELS = (("reward", "reward (and components)"), ("kl", "KL to reference"), ("clip_frac", "clip fraction"),
              ("response_len", "response length (tokens)"), ("groups_kept", "share of groups kept"))


def plot_rewards(history: list[dict], path: str | Path, title: str = "rl") -> Path | None:
    """Reward (with each component), KL, clip fraction, response length and kept groups against the step."""
    return plot_history(history, path, title, panels=_RL_PANELS)


__all__ = ["PRESETS", "RLConfig", "RLTrainer", "attach_value_head", "load_prompts", "load_rl_config",
           "plot_rewards", "rl"]
