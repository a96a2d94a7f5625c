"""Report plots (PNG, matplotlib's Agg backend): breakdown bars across models, confusion grids, confusion
matrices, headline bars."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentladder.evals.report import EvalReport


def write_plots(report: EvalReport, out: Path) -> list[Path]:
    """Every plot of the report into ``out``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    written = [_bars(report, out / "headline.png", "headline figures",
                     {label: r.metrics for label, r in report.models.items()})]
    first = next(iter(report.models.values()))
    for name in first.summary.breakdowns:
        written.append(_bars(report, out / f"{name}.png", f"{name} by part",
                             {label: r.summary.breakdowns.get(name, {}) for label, r in report.models.items()}))
    for name in first.summary.confusions:
        written.append(_confusions(report, out / f"{name}.png", name))
    for name in first.summary.matrices:
        written.append(_matrices(report, out / f"{name}.png", name))
    return written


def _matrices(report: EvalReport, path: Path, name: str) -> Path:
    """A K x K grid per model: rows the truth, columns the answer (``none``: no label named)."""
    import matplotlib.pyplot as plt

    labels = list(report.models)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.8 * len(labels) + 0.6, 3.8), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        matrix = report.models[label].summary.matrices.get(name, {})
        truths = list(matrix)
        answers = list(next(iter(matrix.values()), {}))
        grid = [[matrix[t].get(a, 0) for a in answers] for t in truths]
        ax.imshow(grid, cmap="Blues")
        for i, row in enumerate(grid):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=11)
        ax.set_xticks(range(len(answers)), answers)
        ax.set_yticks(range(len(truths)), truths)
        ax.set_xlabel("model's answer")
        ax.set_ylabel("truth")
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{report.task}: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(report: EvalReport, path: Path, title: str, groups: dict) -> Path:
    """Grouped bars: one group per part (field or metric), one bar per model, with 95 % intervals."""
    import matplotlib.pyplot as plt

    parts: list[str] = []
    for metrics in groups.values():
        parts += [p for p, m in metrics.items() if p not in parts and m.value is not None]
    labels = list(groups)
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(parts) * max(1, len(labels)) ** 0.5 + 2), 4))
    for k, label in enumerate(labels):
        xs, ys, lo, hi = [], [], [], []
        for j, part in enumerate(parts):
            m = groups[label].get(part)
            if m is None or m.value is None:
                continue
            xs.append(j + (k - (len(labels) - 1) / 2) * width)
            ys.append(m.value)
            lo.append(m.value - (m.low if m.low is not None else m.value))
            hi.append((m.high if m.high is not None else m.value) - m.value)
        ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(range(len(parts)), parts, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report.task}: {title} ({report.shots}-shot, {report.rows} rows)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _confusions(report: EvalReport, path: Path, name: str) -> Path:
    """A 2x2 grid per model: rows the truth (dangerous, safe), columns the flag (flagged, clear)."""
    import matplotlib.pyplot as plt

    labels = list(report.models)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.4 * len(labels) + 0.6, 3.4), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        c = report.models[label].summary.confusions.get(name, {})
        grid = [[c.get("tp", 0), c.get("fn", 0)], [c.get("fp", 0), c.get("tn", 0)]]
        ax.imshow(grid, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=13)
        ax.set_xticks([0, 1], ["flagged", "clear"])
        ax.set_yticks([0, 1], ["true", "false"])
        ax.set_xlabel("model's flag")
        ax.set_ylabel("ground truth")
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{report.task}: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
