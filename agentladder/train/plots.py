"""Training curves as a PNG, written at the end of every run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

_PANELS = (("loss", "loss"), ("reward", "mean reward"), ("reward_accuracy", "reward accuracy"), ("margin", "reward margin"),
           ("lr", "learning rate"), ("grad_norm", "gradient norm"), ("trained_tokens_per_s", "trained tokens/s"))


def plot_history(history: list[dict], path: str | Path, title: str = "training",
                 panels: Sequence[tuple[str, str]] = _PANELS) -> Path | None:
    """One panel per ``(metric, label)`` in ``panels`` that the history has, against the step;
    ``None`` if nothing to plot. The defaults: loss (and, for preference and RL runs, reward,
    reward accuracy and margin), learning rate, gradient norm and throughput. A ``reward`` panel
    also draws each ``reward/<component>`` the history has."""
    panels = [(k, label) for k, label in panels if any(k in r for r in history)]
    if not history or not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        keys = [key] + (sorted({k for r in history for k in r if k.startswith("reward/")}) if key == "reward" else [])
        for k in keys:
            pts = [(r["step"], r[k]) for r in history if k in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None,
                    label=k.removeprefix("reward/"), linewidth=2 if k == key else 1)
        if len(keys) > 1:
            ax.legend(fontsize=7)
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG atomically (a temporary file, then a rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
