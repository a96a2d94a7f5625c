"""Reinforcement learning on the shared loop: PPO, GRPO, DAPO, GSPO, Dr. GRPO, RLOO and REINFORCE++.

One trainer; every algorithm is a combination of :class:`~agentladder.train.rl_config.RLConfig`
fields, and the presets fill them as their papers do. One loop step is one rollout,
and :meth:`RLTrainer.train_step` reads as this list:

1. take ``batch_size`` prompts (the loop's data order, so resuming needs only the step);
2. sample ``group_size`` responses to each (:mod:`agentladder.models.rollout`: each prompt
   encoded once for its group; the sampler's log-probabilities are the old policy's);
3. score them and shape the scores with the overlong punishment
   (:mod:`agentladder.train.rl_rollout`); with dynamic sampling drop the groups whose rewards
   are all equal and sample more prompts until the batch is full or
   ``max_generation_rounds`` is reached;
4. when the KL coefficient is not 0, one no-grad pass for the reference's log-probabilities
   (LoRA: the same model with adapters disabled) and the KL of the sampling policy to it;
   for PPO one pass for the critic's values;
5. the KL into the reward (``kl_in: reward``), the advantages, and span rewards on their
   tokens (:mod:`agentladder.train.rl_shaping`, :mod:`agentladder.train.advantages`);
6. ``ppo_epochs`` passes of ``num_minibatches`` optimizer updates each, through the loop's
   :meth:`~agentladder.train.loop.Trainer.update`, each prompt run once per micro-batch for all
   of its responses (:mod:`agentladder.train.shared_prompt`); then one step of the schedule;
7. the rollout engine gets the new weights;
8. with ``gold_rewards``, the first round's responses get the gold score too, and the reward-hacking
   monitor compares it with the proxy (:mod:`agentladder.train.rl_monitor`).

What the step measured travels as typed records (:mod:`agentladder.train.rl_metrics`) until
it becomes the step's line in ``metrics.jsonl``.

With one update per rollout the old policy *is* the current one, so the ratio is
exactly 1 (the loss uses the current log-probabilities, detached, as TRL does).
"""

from __future__ import annotations

import copy
import importlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agentladder.data.io import DataError, append_json_lines, keep_steps, load_rows
from agentladder.data.schema import RLPrompt
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
    OUTCOME_ESTIMATORS,
    AdvantageInput,
    estimate_advantages,
)
from agentladder.train.distributed import World, unwrap
from agentladder.train.loop import LossOutput, Trainer, TrainResult, epoch_order
from agentladder.train.plots import plot_history
from agentladder.train.rl_batch import (
    RLSample,
    RolloutBatch,
    group_batch,
    padded_rl_batch,
    rollout_batch,
)
from agentladder.train.rl_config import PRESETS, RLConfig, load_rl_config
from agentladder.train.rl_losses import aggregate, clipped_policy_loss, value_loss
from agentladder.train.rl_metrics import Update, UpdateSums, step_metrics
from agentladder.train.rl_monitor import HackingMonitor, plot_proxy_gold, repetition
from agentladder.train.rl_rollout import (
    Group,
    PromptRow,
    Rollout,
    informative_groups,
    rollout_stats,
    score_group,
    with_reference,
)
from agentladder.train.rl_shaping import (
    add_span_values,
    kl_in_reward,
    mean_token_kl,
    span_values,
    token_kl,
)
from agentladder.train.run import finish_run, lineage_base, resolved_spec, start_run
from agentladder.train.shared_prompt import token_outputs, use_shared_prompt_attention

ROLLOUT_LOG = "rollouts.jsonl"
"""One line per step: the first prompt's responses and their rewards."""


class RLTrainer(Trainer):
    """The shared loop with a rollout, rewards and advantages before the updates of each step."""

    def __init__(self, model, tokenizer, prompts: Sequence[PromptRow], rewards, config: RLConfig, *,
                 rollout: RolloutBackend | None = None, world: World | None = None, reference_model=None,
                 environment: ToolEnvironment | None = None, description: str | None = None, gold=None):
        self.rl = config
        self.gold = gold
        """A held-out gold score (anything with ``score_group``), never trained on; None: no hacking monitor."""
        self.monitor = HackingMonitor(config.hacking_window, config.hacking_tolerance) if gold is not None else None
        self.stopped: str | None = None
        """Why the run stopped early (the hacking monitor fired with ``on_hacking: stop``)."""
        self.tokenizer = tokenizer
        self.rewards = rewards
        self.max_new = config.max_new_tokens or 256
        self.units = "tokens" if config.loss_agg == "token_mean" else "sequences"
        # A frozen reference copy reads the same batches, so it needs the same kernel.
        self.shared = config.share_prompt and use_shared_prompt_attention(model) and (
            reference_model is None or use_shared_prompt_attention(reference_model))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.value_head = getattr(model, "value_head", None) if config.advantage == "gae" else None
        if config.advantage == "gae" and self.value_head is None:
            raise ConfigError("the gae advantage needs a value head: use attach_value_head(model) first")
        self.reference_model = reference_model
        self.environment = environment
        if config.max_turns > 1 and environment is None:
            raise ConfigError("max_turns > 1 needs an environment that answers each assistant turn")
        self.on_policy = config.ppo_epochs * config.num_minibatches == 1
        self.sampling = SamplingParams(self.max_new, config.temperature, config.top_p, tuple(config.stop),
                                       bool(config.stop_at_json))
        self.temperature = config.temperature if config.temperature > 0 else 1.0
        self._sums = UpdateSums()
        """The current update's loss sums: :meth:`loss` adds to them, :meth:`_update` starts and reads them."""
        super().__init__(model, list(prompts), self.collate_samples, self.loss, config, world=world,
                         description=description or config.preset or "rl")
        self.strata = self._strata(config)
        self.rollout = rollout or make_rollout("local", self.model, tokenizer)
        self._references: dict[str, Completion | None] = {}
        """Each reference answer as a response (``reference_guidance``), tokenised once."""
        if config.reference_guidance and not any(r.reference is not None for r in self.rows):
            raise ConfigError("reference_guidance: no prompt has a reference answer (rows of a task, or a string "
                              "target in each prompt row)")

    def _strata(self, config: RLConfig) -> list[str] | None:
        """Each row's stratum label (``stratify_by``): agent RL reads it from the task rows."""
        if config.stratify_by:
            raise ConfigError("stratify_by: only agent RL reads it (a field of each task row); "
                              "prompt RL draws its prompts at random")
        return None

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        """One rollout and its updates (the module docstring's list)."""
        rollout = self._rollout(step)  # 1-3. prompts, responses, scores (overlong penalty), dynamic sampling
        self._log_rollout(step, rollout.first)
        t0 = time.perf_counter()
        batch = self._batch(rollout.kept)  # the responses as samples, with the old policy's log-probs
        ref = self._reference_logps(batch)  # 4. the reference pass (kl_coef > 0)
        kl = self._rollout_kl(batch, ref)  # 4. KL of the sampling policy to the reference, per token
        values = self._values(batch)  # 4. the critic pass (PPO)
        self._advantages(batch, kl, values)  # 5. KL in the reward, the estimator, span values
        updates = self._updates(batch.samples, step)  # 6. ppo_epochs x num_minibatches updates
        self._advance_schedule()  # 6. one step of the schedule, with or without an update
        self.rollout.sync_weights(self.model)  # 7. the engine samples from the new weights
        rollout.stats.kl = mean_token_kl(kl, batch.mask) if kl is not None else None
        metrics = step_metrics(rollout.stats, updates, train_s=time.perf_counter() - t0,
                               lr=self.scheduler.get_last_lr()[0])
        metrics.update(self._watch(rollout.first, metrics, step))  # 8. proxy against gold
        return metrics

    def _watch(self, groups: list[Group], metrics: dict[str, float], step: int) -> dict[str, float]:
        """The responses' repetition and, with a gold score, its mean and the hacking monitor's verdict."""
        reps = [repetition(c.token_ids) for g in groups for c in g.completions]
        out = {"repetition": sum(reps) / len(reps)} if reps else {}
        if self.monitor is None or not reps:
            return out
        gold = [t for g in groups for t in score_group(self.gold, g.prompt, g.completions,
                                                           max_new_tokens=self.max_new).total]
        out["gold"] = sum(gold) / len(gold)
        message = self.monitor.update(metrics["reward"], out["gold"])
        if message:
            out["hacking"] = 1.0
            warnings.warn(f"step {step + 1}: {message}", RuntimeWarning, stacklevel=2)
            if self.rl.on_hacking == "stop":
                self.stopped = f"step {step + 1}: {message}"
                self.total_steps = step + 1  # the loop ends after this step, saving the model it has
        return out

    def checkpoint_state(self) -> dict[str, Any]:
        """The hacking monitor's windows, so a resumed run compares across the interruption."""
        return {"hacking_monitor": self.monitor.state()} if self.monitor is not None else {}

    def restore_state(self, state: dict[str, Any]) -> None:
        if self.monitor is not None and "hacking_monitor" in state:
            self.monitor.load_state(state["hacking_monitor"])

    def resume(self) -> int:
        """The newest checkpoint, and the rollout log cut back to its step (the rest is sampled again)."""
        step = super().resume()
        if self.world.is_main:
            keep_steps(Path(self.config.out_dir) / ROLLOUT_LOG, step)
        return step

    # -- 1-3. rollout -----------------------------------------------------------------------------
    def _rollout(self, step: int) -> Rollout:
        """Sample and score groups; with dynamic sampling keep the informative ones and sample more."""
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
            completions = self._generate(batch)
            gen_s += time.perf_counter() - t0
            gen_tokens += sum(len(c.token_ids) for g in completions for c in g)
            groups = [self._score(p, cs) for p, cs in zip(batch, completions, strict=True)]
            if rounds == 1:
                first = groups  # the policy's own responses: the step's reward figures
            if cfg.reference_guidance:
                groups = [self._guide(g) for g in groups]
            seen += len(groups)
            kept += informative_groups(groups) if cfg.dynamic_sampling else groups
            if not cfg.dynamic_sampling or len(kept) >= want or rounds >= cfg.max_generation_rounds:
                break
        kept = kept[:want]
        guided = sum(g.guided is not None for g in kept) if cfg.reference_guidance else None
        stats = rollout_stats(first, kept=len(kept), seen=seen, rounds=rounds, gen_s=gen_s,
                              gen_tokens=gen_tokens, guided=guided)
        return Rollout(kept, first, stats)

    def _guide(self, group: Group) -> Group:
        """``group`` with the prompt's reference answer in place of its worst response, where no response
        scores as high as the reference (:func:`~agentladder.train.rl_rollout.with_reference`)."""
        reference = self._reference(group.prompt)
        if reference is None:
            return group
        return with_reference(group, self._score(group.prompt, [reference]))

    def _reference(self, prompt: PromptRow) -> Completion | None:
        """The prompt's reference answer as a response: its tokens as the sampler would end them (the end of
        turn, unless the response ends where its JSON object closes). None without a reference, or where it
        does not fit the generation budget. Its log-probabilities are recomputed before anything reads them."""
        if not prompt.reference:
            return None
        if prompt.reference not in self._references:
            ids = list(self.tokenizer(prompt.reference, add_special_tokens=False)["input_ids"])
            eos = self.tokenizer.eos_token_id
            if not self.sampling.stop_at_json and isinstance(eos, int):
                ids.append(eos)
            fits = 0 < len(ids) <= self.max_new
            self._references[prompt.reference] = (Completion(ids, [0.0] * len(ids), prompt.reference, "stop")
                                                  if fits else None)
        return self._references[prompt.reference]

    def _more_prompts(self, step: int, round_: int, n: int) -> list[PromptRow]:
        """Prompts for dynamic sampling's extra rounds: a permutation fixed by (seed, round, step)."""
        order = epoch_order(len(self.rows), self.config.seed * 7919 + round_, step)
        return [self.rows[order[i % len(order)]] for i in range(n)]

    def _generate(self, prompts: list[PromptRow]) -> list[list[Completion]]:
        """``group_size`` responses to each prompt; multi-turn with a tool environment."""
        cfg = self.rl
        if self.environment is not None and cfg.max_turns > 1:
            return multi_turn_generate(self.rollout, self.tokenizer, [p.messages for p in prompts],
                                       [p.ids for p in prompts], cfg.group_size, self.sampling, self.environment,
                                       cfg.max_turns)
        return self.rollout.generate([p.ids for p in prompts], cfg.group_size, self.sampling)

    def _score(self, prompt: PromptRow, completions: list[Completion]) -> Group:
        return score_group(self.rewards, prompt, completions, max_new_tokens=self.max_new,
                           overlong_buffer_ratio=self.rl.overlong_buffer_ratio,
                           overlong_factor=self.rl.overlong_penalty)

    def _log_rollout(self, step: int, groups: list[Group]) -> None:
        """Append the step's first prompt, its responses and their rewards to ``rollouts.jsonl``."""
        if not (self.world.is_main and groups):
            return
        group = groups[0]
        record = {"step": step + 1, "prompt_id": group.prompt.id,  # the policy's own responses (before guidance)
                  "responses": [{"text": c.text, "reward": r, "finish": c.finish_reason}
                                for c, r in zip(group.completions, group.total, strict=True)]}
        path = Path(self.config.out_dir) / ROLLOUT_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        append_json_lines(path, [record])

    # -- 4. the no-grad passes ------------------------------------------------------------------------
    def _batch(self, groups: list[Group]) -> RolloutBatch:
        """The kept responses as samples; the old policy's log-probabilities recomputed where the engine's
        are not the training model's (another engine, or a reference answer nothing sampled) and the loss
        reads them."""
        batch = rollout_batch(groups, overlong_filter=self.rl.overlong_filter)
        recompute = not getattr(self.rollout, "exact_logprobs", True) or any(g.guided is not None for g in groups)
        if batch.samples and recompute and (not self.on_policy or self.rl.kl_coef > 0):
            batch.old_logps = self._no_grad_pass(self.model, batch)
            batch.set_per_token("old_logps", batch.old_logps)
        return batch

    def _reference_logps(self, batch: RolloutBatch) -> torch.Tensor | None:
        """``(B, T)`` the reference policy's log-probabilities, also handed to the samples (for a KL loss term).

        ``None`` when ``kl_coef`` is 0. The reference is the frozen copy of a full fine-tuning run,
        or this model with its LoRA adapters disabled.
        """
        if self.rl.kl_coef <= 0 or not batch.samples:
            return None
        if self.reference_model is not None:
            ref = self._no_grad_pass(self.reference_model, batch)
        else:
            with reference_mode(self.model):
                ref = self._no_grad_pass(self.model, batch)
        batch.set_per_token("ref_logps", ref)
        return ref

    def _rollout_kl(self, batch: RolloutBatch, ref: torch.Tensor | None) -> torch.Tensor | None:
        """``(B, T)`` KL of the sampling policy to the reference on each trained token (``None`` without one)."""
        return None if ref is None else token_kl(batch.old_logps, ref, batch.mask, self.rl.kl_estimator)

    def _values(self, batch: RolloutBatch) -> torch.Tensor | None:
        """``(B, T)`` the critic's values of the sampling-time states, also handed to the samples; PPO only."""
        if self.value_head is None or not batch.samples:
            return None
        values = self._no_grad_pass(self.model, batch, values=True)
        batch.set_per_token("old_values", values)
        return values

    @torch.no_grad()
    def _no_grad_pass(self, model, batch: RolloutBatch, *, values: bool = False) -> torch.Tensor:
        """``(B, T)`` per-token log-probabilities (or values) of the batch's samples under ``model``.

        In eval mode, ``micro_batch_size`` responses at a time; 0 past each response's end.
        """
        samples = batch.samples
        out = torch.zeros(batch.mask.shape)  # (B, T)
        size = self.rl.micro_batch_size or len(samples)
        was = model.training
        model.eval()
        try:
            for s in range(0, len(samples), size):
                res = token_outputs(model, self.collate_samples(samples[s : s + size]), temperature=self.temperature,
                                    value_head=self.value_head if values else None)
                t = res.values if values else res.logps  # (b, t), t <= T
                out[s : s + t.shape[0], : t.shape[1]] = t.float().cpu()
        finally:
            model.train(was)
        return out

    # -- 5. advantages --------------------------------------------------------------------------------
    def _advantages(self, batch: RolloutBatch, kl: torch.Tensor | None, values: torch.Tensor | None) -> None:
        """Each sample's advantages (and GAE's returns): the KL in the reward, the estimator, span values."""
        if not batch.samples:
            return
        cfg = self.rl
        shaped = kl_in_reward(batch.scores, batch.mask, kl if cfg.kl_in == "reward" else None, cfg.kl_coef,
                              per_token=cfg.advantage not in OUTCOME_ESTIMATORS)
        out = estimate_advantages(cfg.advantage, AdvantageInput(shaped.scores, batch.group, batch.mask,
                                                                shaped.token_rewards, values, cfg.gamma, cfg.lam))
        adv = out.advantages.float()  # (B, T)
        spans = span_values(self.tokenizer, [s.completion for s in batch.samples], batch.spans, adv.shape[1])
        if spans is not None:
            adv = add_span_values(adv, spans, batch.mask)
        batch.set_per_token("advantages", adv)
        if out.returns is not None:
            batch.set_per_token("returns", out.returns.float())

    # -- 6. updates -----------------------------------------------------------------------------------
    def collate_samples(self, samples: list[RLSample]) -> dict:
        if self.shared:
            return group_batch(samples, self.units)
        return padded_rl_batch(samples, self.pad_id, self.units)

    def loss(self, model, batch: dict) -> LossOutput:
        """The clipped policy loss of one micro-batch (plus the KL and value terms); its sums go to the update's."""
        cfg = self.rl
        out = token_outputs(model, batch, temperature=self.temperature, value_head=self.value_head, entropy=True)
        device = out.logps.device
        mask = batch["mask"].to(device)  # (B, T)
        w = batch["weights"].to(device)[:, None]  # (B, 1): identical samples merged into one count that often
        old = out.logps.detach() if self.on_policy else batch["old_logps"].to(device)
        pl = clipped_policy_loss(out.logps, old, batch["advantages"].to(device), mask, clip_low=cfg.clip_low,
                                 clip_high=cfg.clip_high, dual_clip=cfg.dual_clip, level=cfg.ratio_level)
        loss_mat = pl.loss * w  # (B, T)
        kl_sum = value_sum = None
        if cfg.kl_coef > 0 and cfg.kl_in == "loss":
            kl = token_kl(out.logps, batch["ref_logps"].to(device), mask, cfg.kl_estimator) * w
            loss_mat = loss_mat + cfg.kl_coef * kl
            kl_sum = float(kl.detach().sum())
        loss_sum, _ = aggregate(loss_mat, mask, cfg.loss_agg, self.max_new)
        if self.value_head is not None:
            vl = value_loss(out.values, batch["old_values"].to(device), batch["returns"].to(device), mask,
                            cfg.value_clip) * w
            v_sum, _ = aggregate(vl, mask, cfg.loss_agg, self.max_new)
            loss_sum = loss_sum + cfg.vf_coef * v_sum
            value_sum = float(vl.detach().sum())
        self._sums = self._sums + UpdateSums(
            tokens=float((mask * w).sum()), clip_low=float((pl.clipped_low * w).sum()),
            clip_high=float((pl.clipped_high * w).sum()), dual_clip=float((pl.dual_clipped * w).sum()),
            entropy=float((out.entropy * mask * w).sum()), ratio=float((pl.ratio * w).sum()), kl_loss=kl_sum,
            value_loss=value_sum)
        return LossOutput(loss_sum=loss_sum, metrics={})

    def _updates(self, samples: list[RLSample], step: int) -> list[Update]:
        """``ppo_epochs`` x ``num_minibatches`` updates; mini-batches are whole prompt groups, shuffled."""
        if not samples:  # every group was dropped or masked out: nothing to learn from this step
            return []
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
                results.append(self._update([self.collate_samples(mb[j : j + size])
                                             for j in range(0, len(mb), size)], step))
        return results

    def _update(self, batches: list[dict], step: int) -> Update:
        """One optimizer update through the shared loop, with the sums its loss passes added up."""
        self._sums = UpdateSums()
        metrics = self.update(batches, step)
        return Update.from_loop(metrics, self._sums.all_sum(self.world.all_sum))

    def _advance_schedule(self) -> None:
        with warnings.catch_warnings():  # a step without an update still advances the schedule
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()


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
        task = get_task(config.task)
        samples = task.load(config.data) if config.data else task.make(config.split, config.n_prompts, config.seed)
        for s in samples:
            messages = task.prompt(s)
            rows.append(PromptRow(s.id, messages, prompt_ids(tokenizer, messages), s.target,
                                  {**s.metadata, "input": s.input}, reference=task.target_text(s)))
    else:
        for i, r in enumerate(load_rows(config.data, RLPrompt)):  # type: ignore[arg-type]
            rows.append(PromptRow(r.id or f"row-{i + 1}", list(r.prompt), prompt_ids(tokenizer, r.prompt), r.target,
                                  dict(r.metadata), reference=r.target if isinstance(r.target, str) else None))
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
    gold = build_rewards(config.gold_rewards, source="gold_rewards") if config.gold_rewards else None
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
                        reference_model=reference_model, environment=environment, gold=gold)
    result = trainer.run(resume=resume)
    if world.is_main and result.history:
        plot_rewards(result.history, run.out_dir / "reward.png", title=f"{trainer.description}: {run.out_dir.name}")
        plot_proxy_gold(result.history, run.out_dir / "hacking.png", title=f"proxy against gold: {run.out_dir.name}")

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
                "algorithm": config.algorithm(), "final_reward": last.get("reward"), "final_gold": last.get("gold"),
                "stopped": trainer.stopped}

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
