"""Typed records of what an RL step measured, and the ``metrics.jsonl`` line they become.

:class:`RolloutStats` is what a rollout produced (rewards, lengths, how many groups
dynamic sampling kept, generation time, the KL to the reference);
:class:`UpdateSums` is what one optimizer update's loss passes added up over
their micro-batches (trained tokens, clipped tokens, entropy, ...), and
:class:`Update` pairs it with what the shared loop reported for that update.
:func:`step_metrics` turns one step's records into the flat dict the loop
writes, with the keys the progress bar, ``reward.png`` and the docs name
(``reward``, ``reward/<name>``, ``kl``, ``clip_frac``, ``response_len``,
``groups_kept``, ``loss``, ``entropy``, ...; listed in ``docs/rl.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields


@dataclass
class RolloutStats:
    """What one step's rollout produced; the reward figures are over its first round of responses."""

    gen_rounds: int
    """Generation rounds (more than 1 only with dynamic sampling)."""
    groups_kept: float
    """Kept groups (at most the batch) over sampled groups."""
    gen_s: float
    """Seconds spent generating."""
    gen_tokens: int
    """Response tokens generated over all rounds."""
    guided_groups: int | None = None
    """Kept groups that carry the prompt's reference answer (``reference_guidance``; None: off)."""
    responses: int = 0
    """Responses in the first round (0: no reward figures)."""
    reward: float = 0.0
    reward_std: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    """Mean of each reward component (unweighted), by name."""
    response_len: float = 0.0
    """Mean response length in tokens."""
    truncated: float = 0.0
    """Share of responses cut at the generation budget."""
    zero_variance_groups: float = 0.0
    """Share of groups whose rewards are all equal."""
    kl: float | None = None
    """Mean per-token KL of the sampling policy to the reference (None: no reference pass)."""

    @property
    def gen_tokens_per_s(self) -> float:
        return self.gen_tokens / max(self.gen_s, 1e-9)

    def metrics(self) -> dict[str, float]:
        """The rollout's keys of a step's metrics line (without ``kl``, which goes with the updates')."""
        out: dict[str, float] = {}
        if self.responses:
            out.update(reward=self.reward, reward_std=self.reward_std)
            out.update({f"reward/{name}": v for name, v in self.components.items()})
            out.update(response_len=self.response_len, truncated=self.truncated,
                       zero_variance_groups=self.zero_variance_groups)
        out.update(gen_rounds=self.gen_rounds, groups_kept=self.groups_kept, gen_s=self.gen_s,
                   gen_tokens=self.gen_tokens, gen_tokens_per_s=self.gen_tokens_per_s)
        if self.guided_groups is not None:
            out["guided_groups"] = self.guided_groups
        return out


@dataclass
class UpdateSums:
    """Sums over one optimizer update's micro-batches, over the trained tokens (and, after
    :meth:`all_sum`, over every process)."""

    tokens: float = 0.0
    """Trained tokens."""
    clip_low: float = 0.0
    """Tokens whose ratio hit ``1 - clip_low`` with a negative advantage."""
    clip_high: float = 0.0
    """Tokens whose ratio hit ``1 + clip_high`` with a positive advantage."""
    dual_clip: float = 0.0
    """Tokens the dual clip bounded."""
    entropy: float = 0.0
    ratio: float = 0.0
    """The importance ratio."""
    kl_loss: float | None = None
    """The KL term (only with ``kl_in: loss``)."""
    value_loss: float | None = None
    """The critic's loss (only with a value head)."""

    def __add__(self, other: UpdateSums) -> UpdateSums:
        def add(a: float | None, b: float | None) -> float | None:
            return None if a is None and b is None else (a or 0.0) + (b or 0.0)

        return UpdateSums(**{f.name: add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def all_sum(self, reduce: Callable[[float], float]) -> UpdateSums:
        """Each field summed over processes by ``reduce`` (the world's ``all_sum``); ``None`` stays ``None``."""
        return UpdateSums(**{f.name: None if getattr(self, f.name) is None else reduce(getattr(self, f.name))
                             for f in fields(self)})

    def per_token(self, value: float) -> float:
        return value / max(self.tokens, 1e-12)


@dataclass
class Update:
    """One optimizer update: the loss passes' sums, and what the shared loop reported for it.

    ``loss`` is the update's loss (its sum over the loss units), ``units`` those units over
    every process, ``lr`` the rate it stepped with, ``grad_norm`` the norm before clipping
    (``None`` without ``max_grad_norm``), ``n_tokens`` the tokens through the model (prompts
    included) and ``n_trained_tokens`` the trained ones.
    """

    loss: float
    units: float
    lr: float
    sums: UpdateSums = field(default_factory=UpdateSums)
    grad_norm: float | None = None
    n_tokens: float | None = None
    n_trained_tokens: float | None = None

    @classmethod
    def from_loop(cls, metrics: dict[str, float], sums: UpdateSums) -> Update:
        """From :meth:`~agentladder.train.loop.Trainer.update`'s dict and this update's sums."""
        return cls(loss=metrics["loss"], units=metrics["units"], lr=metrics["lr"], sums=sums,
                   grad_norm=metrics.get("grad_norm"), n_tokens=metrics.get("n_tokens"),
                   n_trained_tokens=metrics.get("n_trained_tokens"))


def update_metrics(updates: Sequence[Update], rollout_kl: float | None) -> dict[str, float]:
    """The updates' keys of a step's metrics line: means over the updates; fractions per trained token.

    ``kl`` is the rollout's KL to the reference, or, with the KL as a loss term, its mean over the updates.
    """
    out: dict[str, float] = {"updates": len(updates)}
    if rollout_kl is not None:
        out["kl"] = rollout_kl
    if not updates:  # every group was dropped (or masked out): nothing to learn from this step
        out["loss"] = float("nan")
        return out
    n = len(updates)

    def per_token(read: Callable[[UpdateSums], float | None]) -> float:
        return sum(u.sums.per_token(read(u.sums) or 0.0) for u in updates) / n

    out.update(loss=sum(u.loss for u in updates) / n, clip_low_frac=per_token(lambda s: s.clip_low),
               clip_high_frac=per_token(lambda s: s.clip_high), dual_clip_frac=per_token(lambda s: s.dual_clip),
               entropy=per_token(lambda s: s.entropy), ratio_mean=per_token(lambda s: s.ratio),
               units=sum(u.units for u in updates))
    out["clip_frac"] = out["clip_low_frac"] + out["clip_high_frac"]
    first = updates[0]
    if first.grad_norm is not None:
        out["grad_norm"] = sum(u.grad_norm or 0.0 for u in updates) / n
    if first.sums.kl_loss is not None:
        out["kl"] = per_token(lambda s: s.kl_loss)
    if first.sums.value_loss is not None:
        out["value_loss"] = per_token(lambda s: s.value_loss)
    if first.n_tokens is not None:
        out["n_tokens"] = sum(u.n_tokens or 0.0 for u in updates)
    if first.n_trained_tokens is not None:
        out["n_trained_tokens"] = sum(u.n_trained_tokens or 0.0 for u in updates)
    return out


def step_metrics(stats: RolloutStats, updates: Sequence[Update], *, train_s: float, lr: float) -> dict[str, float]:
    """One step's ``metrics.jsonl`` entries: the rollout's, ``train_s``, the updates', ``lr``.

    ``lr`` is the rate the first update used (the schedule's current rate when there was none).
    """
    out = stats.metrics()
    out["train_s"] = train_s
    out.update(update_metrics(updates, stats.kl))
    out["lr"] = updates[0].lr if updates else lr
    return out


__all__ = ["RolloutStats", "Update", "UpdateSums", "step_metrics", "update_metrics"]
