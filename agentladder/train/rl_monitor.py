"""Watching RL against a learned reward for reward hacking: proxy against gold, length, repetition.

A learned reward (a reward model, a tuned judge) is a *proxy*: optimised hard enough, the policy
finds answers it over-rates, and its true quality (the *gold* score: the task's own grader, or a
reference judge) falls while the proxy still rises (Gao et al. 2023, *Scaling Laws for Reward Model
Overoptimization*). An RL run with ``gold_rewards`` scores every first-round response with them too
(never trained on) and logs, each step, the proxy reward (``reward``), the ``gold`` score, the mean
response length and its ``repetition`` (:func:`repetition`), next to the KL to the start model.

:class:`HackingMonitor` compares the last ``window`` steps with the ``window`` before them: when the
proxy's mean rose by more than ``tolerance`` while the gold mean fell by more than ``tolerance``, it
fires; the trainer then warns (``on_hacking: warn``) or ends the run there and saves the model it has
(``stop``). :func:`plot_proxy_gold` draws proxy and gold against the KL from the start model, with the
length and repetition statistics, as ``hacking.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentladder.train.plots import save_figure


def repetition(token_ids: Sequence[int], n: int = 3) -> float:
    """Share of a response's token ``n``-grams that repeat an earlier one: ``1 - distinct / total`` (0 when too short).

    A policy gaming a reward model often loops a phrase the model likes; this rises when it does.
    """
    grams = [tuple(token_ids[i:i + n]) for i in range(len(token_ids) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


@dataclass
class HackingMonitor:
    """Fires when the proxy rises while the gold score falls (see the module docstring)."""

    window: int = 5
    tolerance: float = 0.0
    proxy: list[float] = field(default_factory=list)
    gold: list[float] = field(default_factory=list)

    def update(self, proxy: float, gold: float) -> str | None:
        """Record one step; a sentence saying what happened when the monitor fires, else ``None``."""
        self.proxy.append(proxy)
        self.gold.append(gold)
        w = self.window
        if len(self.proxy) < 2 * w:
            return None

        def change(xs: list[float]) -> float:
            return sum(xs[-w:]) / w - sum(xs[-2 * w:-w]) / w

        dp, dg = change(self.proxy), change(self.gold)
        if dp > self.tolerance and dg < -self.tolerance:
            return (f"over the last {w} steps the proxy reward rose by {dp:+.3f} while the gold score fell by "
                    f"{dg:+.3f}: the policy may be gaming the learned reward")
        return None


    def state(self) -> dict[str, list[float]]:
        """The recorded means (the last ``2 * window`` steps are all a comparison reads), for a checkpoint."""
        keep = 2 * self.window
        return {"proxy": self.proxy[-keep:], "gold": self.gold[-keep:]}

    def load_state(self, state: dict[str, list[float]]) -> None:
        """Continue from :meth:`state`'s output (a resumed run)."""
        self.proxy, self.gold = [float(x) for x in state["proxy"]], [float(x) for x in state["gold"]]


_PANELS = (("reward", "proxy reward"), ("gold", "gold score"), ("response_len", "response length (tokens)"),
           ("repetition", "repeated 3-grams"))


def plot_proxy_gold(history: list[dict], path: str | Path, title: str = "proxy against gold") -> Path | None:
    """Proxy reward and gold score against the KL from the start model (or the step, without a reference
    pass), with length and repetition; ``None`` without gold scores in ``history``."""
    rows = [r for r in history if "gold" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by_kl = all(r.get("kl") is not None for r in rows)
    x = [r["kl"] if by_kl else r["step"] for r in rows]
    # The KL of one step's samples is a noisy estimate that need not grow step by step: points, not a path.
    line = {"linestyle": "none", "marker": "o", "markersize": 4} if by_kl else {"marker": "."}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in _PANELS[:2]:
        axes[0].plot(x, [r[key] for r in rows], label=label, **line)
    axes[0].legend(fontsize=8)
    axes[0].set_title("proxy and gold")
    length = axes[1]
    length.plot(x, [r.get("response_len", 0.0) for r in rows], color="tab:green", label=_PANELS[2][1], **line)
    length.set_ylabel(_PANELS[2][1])
    rep = length.twinx()
    rep.plot(x, [r.get("repetition", 0.0) for r in rows], color="tab:red", label=_PANELS[3][1], **line)
    rep.set_ylabel(_PANELS[3][1])
    length.set_title("length and repetition")
    for ax in axes:
        ax.set_xlabel("mean per-token KL to the start model" if by_kl else "step")
        ax.grid(alpha=0.3)
    for step, xv in [(r["step"], xv) for r, xv in zip(rows, x, strict=True) if r.get("hacking")]:
        axes[0].axvline(xv, color="tab:red", alpha=0.3)
        axes[0].annotate(f"fired at {step}", (xv, axes[0].get_ylim()[1]), fontsize=7, color="tab:red")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["HackingMonitor", "plot_proxy_gold", "repetition"]
