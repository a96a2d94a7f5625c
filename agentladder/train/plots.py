"""Training curves as a PNG, written at the end of every run."""

from __future__ import annotations

from pathlib import Path

_PANELS = (("loss", "loss"), ("reward", "mean reward"), ("reward_accuracy", "reward accuracy"), ("margin", "reward margin"),
           ("lr", "learning rate"), ("grad_norm", "gradient norm"), ("trained_tokens_per_s", "trained tokens/s"))


def plot_history(history: list[dict], path: str | Path, title: str = "training") -> Path | None:
    """Loss (and, for preference runs, reward accuracy and margin), learning rate, gradient norm and
    throughput against the step; ``None`` if nothing to plot."""
    panels = [(k, label) for k, label in _PANELS if any(k in r for r in history)]
    if not history or not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        pts = [(r["step"], r[key]) for r in history if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
