"""Reinforcement learning of agents as they run: whole episodes of the user's Agent, Workflow or Graph.

:class:`AgentRLTrainer` is the RL trainer (:class:`~agentladder.train.rl.RLTrainer`) with
its rollout replaced: instead of sampling text for a prompt it runs the user's agent,
``group_size`` episodes per task instance, with the policy behind the provider of the
agent being trained (:class:`~agentladder.models.providers.policy.PolicyProvider`) and
the tools and the other agents live. Every step then goes on as any RL step does:
the reference pass, the advantages, the clipped updates through the shared loop, the
schedule, checkpoints, ``metrics.jsonl`` and the plots.

**How an episode becomes training tokens: one sample per model call.** Each call of
the trained agent is a sample whose prompt is the exact ids fed to the model and whose
completion is the exact ids it sampled (mask 1, the sampler's log-probs as the old
policy's); all calls of an episode share the episode's advantage. Concatenating an
episode's calls into one sequence would need every call's prompt to extend the previous
one token-exactly, which the runtime does not promise: the agent re-renders the whole
conversation through the chat template each call (tool results, validation retries,
another agent's output as input, a workflow's separate agents). One sample per call is
exact whatever the template does, and the shared-prompt batch builder still runs a prompt
once for every call that shares it (the first call of each of a task's episodes).
Tool results, other agents' turns and the prompt are never sampled, so they are only
ever inputs, never trained on; calls of agents not named in ``train_agents`` (the policy
shared under another name) are left out of the loss.

Advantages come from the episodes' rewards with the configured outcome estimator
(``grpo``, ``dr_grpo``, ``rloo``), over episodes (a long episode is not counted more
often); a turn-level reward adds ``turn_reward_weight x (its reward - the group's mean
turn reward)`` to that call's tokens. Groups whose episodes all got the same reward are
skipped and counted (``zero_variance_groups``, ``groups_skipped``); with dynamic sampling
more tasks are run until the batch is full or ``max_generation_rounds`` is reached.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agentladder.data.io import keep_steps
from agentladder.errors import ConfigError
from agentladder.models.providers.policy import CallBatcher, EpisodeRecorder, PolicyProvider
from agentladder.models.rollout import RolloutBackend
from agentladder.train.advantages import OUTCOME_ESTIMATORS, AdvantageInput, estimate_advantages
from agentladder.train.agent_episodes import (
    EPISODE_LOG,
    Episode,
    TaskRow,
    TurnReward,
    arun_episode,
    episode_generator,
    episode_seed,
    run_episode,
    score_episodes,
    task_field,
)
from agentladder.train.distributed import World
from agentladder.train.loop import epoch_order
from agentladder.train.rl import RLTrainer
from agentladder.train.rl_batch import RLSample, RolloutBatch, per_token_matrix, sample_weights
from agentladder.train.rl_config import RLConfig
from agentladder.train.rl_metrics import RolloutStats, step_metrics
from agentladder.train.rl_shaping import mean_token_kl

AGENT_MICRO_BATCH = 4
"""Samples per forward pass when the config leaves ``micro_batch_size`` unset. A step's samples are its
episodes' model calls, each with the whole conversation (tool results included) as its prompt: dozens of
long sequences, whose activations in one forward pass outgrow a machine's memory (SmolLM2-135M, 16 episodes
of 3 calls: past 24 GB). Accumulating over micro-batches gives the same gradient."""

AgentBuilder = Callable[[PolicyProvider], Any]
"""``build(policy) -> runner``: the user's Agent, Workflow or Graph (or any function of the task's input),
with ``policy`` as the provider of the agent to train; other agents keep their own providers."""


@dataclass
class EpisodeGroup:
    """One task's ``group_size`` episodes."""

    task: TaskRow
    episodes: list[Episode]

    @property
    def rewards(self) -> list[float]:
        return [e.reward for e in self.episodes]

    @property
    def informative(self) -> bool:
        return max(self.rewards) - min(self.rewards) > 1e-9


class AgentRLTrainer(RLTrainer):
    """The RL trainer over episodes of the user's agent (see the module docstring).

    ``build`` is the agent builder, ``tasks`` the task rows, ``reward`` a function ``(row, episode)`` or a
    reward object; ``turn_reward`` an optional ``(call, episode)`` function; ``runtime`` (an agents
    ``Runtime``) is handed to every run so its traces are stored there.
    """

    def __init__(self, model, tokenizer, tasks: Sequence[TaskRow], build: AgentBuilder, reward: Any,
                 config: RLConfig, *, rollout: RolloutBackend | None = None, world: World | None = None,
                 reference_model=None, turn_reward: TurnReward | None = None, runtime: Any = None,
                 description: str | None = None):
        if config.advantage not in OUTCOME_ESTIMATORS:
            raise ConfigError(f"advantage: agent RL scores whole episodes; choose one of "
                              f"{', '.join(sorted(OUTCOME_ESTIMATORS))}, not {config.advantage!r}")
        if config.kl_coef > 0 and config.kl_in == "reward":
            raise ConfigError("kl_in: agent RL takes the KL as a loss term (kl_in: loss) or none (kl_coef: 0)")
        if config.micro_batch_size is None:
            config = config.model_copy(update={"micro_batch_size": AGENT_MICRO_BATCH})
        super().__init__(model, tokenizer, list(tasks), reward, config, rollout=rollout, world=world,
                         reference_model=reference_model, description=description or "agent-rl")
        self.build = build
        self.turn_reward = turn_reward
        self.runtime = runtime
        self.policy = PolicyProvider(self.rollout, tokenizer, self.sampling)
        self.episode_log = Path(config.out_dir) / EPISODE_LOG

    # -- the rollout: episodes ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        """Episodes, then the RL step's passes and updates (:meth:`RLTrainer.train_step`'s 4-7)."""
        groups, stats, extra = self._episodes(step)
        t0 = time.perf_counter()
        batch = self._episode_batch(groups)
        ref = self._reference_logps(batch)
        kl = self._rollout_kl(batch, ref)
        updates = self._updates(batch.samples, step)
        self._advance_schedule()
        self.rollout.sync_weights(self.model)
        w = sample_weights(batch.samples)[:, None]  # (B, 1): a merged sample counts for its calls
        stats.kl = None if kl is None else mean_token_kl(kl * batch.mask * w, batch.mask * w)
        metrics = step_metrics(stats, updates, train_s=time.perf_counter() - t0, lr=self.scheduler.get_last_lr()[0])
        metrics.update(extra)
        return metrics

    def _episodes(self, step: int) -> tuple[list[EpisodeGroup], RolloutStats, dict[str, float]]:
        """Run and score the step's tasks; keep the groups with reward variance (more rounds with dynamic sampling)."""
        cfg = self.rl
        tasks = [r for mb in self.micro_batches(step) for r in mb]
        want = len(tasks)
        kept: list[EpisodeGroup] = []
        first: list[EpisodeGroup] = []
        seen = rounds = 0
        t0 = time.perf_counter()
        while True:
            rounds += 1
            batch = tasks if rounds == 1 else self._more_prompts(step, rounds, want)
            groups = self._groups(batch, step, rounds)
            if rounds == 1:
                first = groups
            seen += len(groups)
            informative = [g for g in groups if g.informative]
            kept += informative
            self._log_groups(step, rounds, groups)
            if not cfg.dynamic_sampling or len(kept) >= want or rounds >= cfg.max_generation_rounds:
                break
        gen_s = time.perf_counter() - t0
        return kept[:want], self._stats(first, kept=min(len(kept), want), seen=seen, rounds=rounds,
                                        gen_s=gen_s), self._extra(first, seen - len(kept))

    def _groups(self, tasks: list[TaskRow], step: int, round_: int) -> list[EpisodeGroup]:
        """The round's groups: one task after another, or all at once (``concurrent_groups``)."""
        cfg = self.rl
        if cfg.concurrent_episodes and cfg.concurrent_groups and tasks:
            runs = asyncio.run(self._concurrent(tasks, step, round_))
        elif cfg.concurrent_episodes:
            runs = [asyncio.run(self._concurrent([task], step, round_))[0] for task in tasks]
        else:
            runs = [self._one_by_one(task, step, round_) for task in tasks]
        groups = []
        for task, episodes in zip(tasks, runs, strict=True):
            score_episodes(self.rewards, task, episodes, failed_reward=cfg.failed_episode_reward,
                           turn_reward=self.turn_reward)
            self._annotate_traces(step, round_, episodes)
            groups.append(EpisodeGroup(task, episodes))
        return groups

    def _recorder(self, seed: int, batcher: CallBatcher | None = None) -> EpisodeRecorder:
        cfg = self.rl
        deadline = time.monotonic() + cfg.episode_timeout if cfg.episode_timeout else None
        return EpisodeRecorder(episode_generator(seed, self.world.device), cfg.episode_max_calls,
                               cfg.episode_max_tokens, deadline, batcher=batcher)

    async def _concurrent(self, tasks: list[TaskRow], step: int, round_: int) -> list[list[Episode]]:
        """The tasks' groups of episodes at once in one event loop, their policy calls batched
        (:class:`CallBatcher`, seeded by the first task: one task alone samples as it always did)."""
        cfg = self.rl
        batcher = CallBatcher(self.rollout, episode_seed(cfg.seed, step, round_, tasks[0].id, -1), self.world.device)

        async def one(task: TaskRow, j: int) -> Episode:
            seed = episode_seed(cfg.seed, step, round_, task.id, j)
            batcher.start()
            try:
                return await arun_episode(self.build(self.policy), task, self._recorder(seed, batcher), index=j,
                                          seed=seed, timeout=cfg.episode_timeout, runtime=self.runtime,
                                          session=_session(step, round_, task.id, j))
            finally:
                batcher.finish()

        flat = await asyncio.gather(*(one(task, j) for task in tasks for j in range(cfg.group_size)))
        return [list(flat[i : i + cfg.group_size]) for i in range(0, len(flat), cfg.group_size)]

    def _one_by_one(self, task: TaskRow, step: int, round_: int) -> list[Episode]:
        cfg = self.rl
        episodes = []
        for j in range(cfg.group_size):
            seed = episode_seed(cfg.seed, step, round_, task.id, j)
            runner = self.build(self.policy)  # a fresh agent per episode: no state leaks between episodes
            episodes.append(run_episode(runner, task, self._recorder(seed), index=j, seed=seed,
                                        timeout=cfg.episode_timeout, runtime=self.runtime,
                                        session=_session(step, round_, task.id, j)))
        return episodes

    def _annotate_traces(self, step: int, round_: int, episodes: list[Episode]) -> None:
        """Give each episode's stored trajectories its reward and status, so ``agentladder traces export``
        turns the training runs into SFT rows, pairs or prompts like any recorded run."""
        store = getattr(self.runtime, "store", None)
        if store is None or not hasattr(store, "annotate"):
            return
        for e in episodes:
            for row in store.trajectories(session=_session(step, round_, e.task_id, e.index)):
                store.annotate(row["id"], rewards={"reward": e.reward},
                               metadata={"episode_status": e.status, "task_id": e.task_id, "rl_step": step + 1})

    def _log_groups(self, step: int, round_: int, groups: list[EpisodeGroup]) -> None:
        """Every episode of the round to ``episodes.jsonl`` (the record the trainer trained on)."""
        if not self.world.is_main:
            return
        self.episode_log.parent.mkdir(parents=True, exist_ok=True)
        with self.episode_log.open("a", encoding="utf-8") as fh:
            for k, g in enumerate(groups):
                for e in g.episodes:
                    fh.write(_json_line({"step": step + 1, "round": round_, "group": k, "kept": g.informative,
                                         "episode": e.to_json()}))

    def _stats(self, first: list[EpisodeGroup], *, kept: int, seen: int, rounds: int, gen_s: float) -> RolloutStats:
        episodes = [e for g in first for e in g.episodes]
        rewards = torch.tensor([e.reward for e in episodes])
        tokens = [e.sampled_tokens for e in episodes]
        return RolloutStats(gen_rounds=rounds, groups_kept=kept / max(1, seen), gen_s=gen_s, gen_tokens=sum(tokens),
                            responses=len(episodes), reward=float(rewards.mean()),
                            reward_std=float(rewards.std()) if len(episodes) > 1 else 0.0,
                            response_len=sum(tokens) / max(1, len(tokens)),
                            truncated=sum(e.status == "tokens" for e in episodes) / max(1, len(episodes)),
                            zero_variance_groups=sum(not g.informative for g in first) / max(1, len(first)))

    def _extra(self, first: list[EpisodeGroup], skipped: int) -> dict[str, float]:
        """Episode figures beyond the RL step's: failures by kind, calls, skipped groups."""
        episodes = [e for g in first for e in g.episodes]
        n = max(1, len(episodes))
        out = {"groups_skipped": float(skipped), "episode_calls": sum(len(e.calls) for e in episodes) / n,
               "episodes_failed": sum(e.failed for e in episodes) / n}
        for kind in ("error", "timeout", "calls", "tokens"):
            out[f"episodes_{kind}"] = sum(e.status == kind for e in episodes) / n
        if self.turn_reward is not None:
            turns = [t for e in episodes for t in e.turn_rewards]
            out["turn_reward"] = sum(turns) / max(1, len(turns))
        return out

    # -- the batch: one sample per trained call --------------------------------------------------------
    def _episode_batch(self, groups: list[EpisodeGroup]) -> RolloutBatch:
        """The trained agents' calls of the kept groups as samples, with their episodes' advantages."""
        cfg = self.rl
        adv = self._episode_advantages(groups)
        samples, scores = [], []
        prompt_group: dict[tuple[int, ...], int] = {}
        same: dict[tuple, int] = {}  # (prompt, sampled ids, advantage's sign, cut) -> the sample standing for them
        for g, advs in zip(groups, adv, strict=True):
            turn_mean = _mean([t for e in g.episodes for t in e.turn_rewards])
            for e, a in zip(g.episodes, advs, strict=True):
                for k, call in enumerate(e.calls):
                    if (cfg.train_agents is not None and call.agent not in cfg.train_agents) or not call.token_ids:
                        continue
                    value = a + (cfg.turn_reward_weight * (e.turn_rewards[k] - turn_mean) if e.turn_rewards else 0.0)
                    truncated = call.finish_reason == "length"
                    mask = [0 if (truncated and cfg.overlong_filter) else 1] * len(call.token_ids)
                    key = (tuple(call.prompt_ids), tuple(call.token_ids), (value > 0) - (value < 0), truncated)
                    if cfg.merge_identical_calls and key in same:
                        _absorb(samples[same[key]], value)
                        scores[same[key]] += e.reward
                        continue
                    same[key] = len(samples)
                    index = prompt_group.setdefault(key[0], len(prompt_group))
                    samples.append(RLSample(index, list(call.prompt_ids), list(call.token_ids), mask,
                                            advantages=[value * m for m in mask], old_logps=list(call.logprobs),
                                            truncated=truncated))
                    scores.append(e.reward)
        scores = [total / s.weight for total, s in zip(scores, samples, strict=True)]
        if sum(s.n_trained for s in samples) == 0:
            samples, scores = [], []
        width = max([len(s.completion) for s in samples], default=1)
        batch = RolloutBatch(samples, torch.tensor(scores, dtype=torch.float32), [[] for _ in samples],
                             per_token_matrix([s.mask for s in samples], width),
                             per_token_matrix([s.old_logps for s in samples], width),
                             torch.tensor([s.group for s in samples], dtype=torch.long))
        if samples and not getattr(self.rollout, "exact_logprobs", True) and (not self.on_policy or cfg.kl_coef > 0):
            batch.old_logps = self._no_grad_pass(self.model, batch)
            batch.set_per_token("old_logps", batch.old_logps)
        return batch

    def _episode_advantages(self, groups: list[EpisodeGroup]) -> list[list[float]]:
        """Each episode's advantage from the groups' rewards (the outcome estimator, one row per episode)."""
        if not groups:
            return []
        scores = torch.tensor([r for g in groups for r in g.rewards], dtype=torch.float32)  # (E,)
        index = torch.arange(len(groups)).repeat_interleave(torch.tensor([len(g.episodes) for g in groups]))
        out = estimate_advantages(self.rl.advantage, AdvantageInput(scores, index, torch.ones(len(scores), 1)))
        flat = out.advantages[:, 0].tolist()
        result, i = [], 0
        for g in groups:
            result.append(flat[i : i + len(g.episodes)])
            i += len(g.episodes)
        return result

    # -- resuming ---------------------------------------------------------------------------------------
    def resume(self) -> int:
        """The newest checkpoint, and the episode log cut back to its step (the rest is sampled again)."""
        step = super().resume()
        if self.world.is_main:
            keep_steps(self.episode_log, step)
        return step

    def _strata(self, config: RLConfig) -> list[str] | None:
        return [task_field(t, config.stratify_by) for t in self.rows] if config.stratify_by else None

    def _more_prompts(self, step: int, round_: int, n: int) -> list[TaskRow]:
        order = epoch_order(len(self.rows), self.config.seed * 7919 + round_, step)
        return [self.rows[order[i % len(order)]] for i in range(n)]


def _absorb(sample: RLSample, value: float) -> None:
    """Count one more call identical to ``sample`` (same prompt, same sampled ids, an advantage of the same
    sign): the merged sample's advantage is their mean and its weight their number.

    Exact: for a fixed ratio the clipped loss of a token is ``|A|`` times a function of the ratio alone when
    the advantage's sign is fixed, so ``weight x`` the loss at the mean advantage is the sum of the calls'
    losses; the KL term and the entropy metric are the same for identical calls and count ``weight`` times too."""
    n = sample.weight
    sample.advantages = [(x * n + value * m) / (n + 1) for x, m in zip(sample.advantages, sample.mask, strict=True)]
    sample.weight = n + 1


def _session(step: int, round_: int, task_id: str, index: int) -> str:
    return f"rl/{step + 1}/{round_}/{task_id}/{index}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


__all__ = ["AgentBuilder", "AgentRLTrainer", "EpisodeGroup"]
