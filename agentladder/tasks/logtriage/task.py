"""The log-triage task: one production log event in, its priority (P1, P2 or P3) out.

Rows are ``{"id"?, "text", "label"}``; the rules that give the labels are in ``docs/log-triage.md``
(and :func:`~agentladder.tasks.logtriage.events.priority`). Scores are those of every
:class:`~agentladder.tasks.classification.ClassificationTask`; the headline is P1 recall, since a
missed P1 is the costly error, with accuracy and macro-F1 beside it (a model that calls everything
P1 has a perfect P1 recall and a poor macro-F1).
"""

from __future__ import annotations

import functools
from typing import ClassVar

from agentladder.tasks.classification import ClassificationTask
from agentladder.tasks.logtriage.events import CRITICAL, LABELS
from agentladder.tasks.logtriage.generator import SPLITS, generate_rows
from agentladder.tasks.task import Sample

SYSTEM_PROMPT = f"""\
You triage one production log event. Reply with only its priority: P1, P2 or P3.
- P1 (page now): in production, a security breach; an outage of a critical service; on a critical service \
at least 5% of requests failing, p99 latency at least 3 times its SLO, or a resource at least 95% used; \
a TLS certificate expiring within 2 days.
- P2 (fix today): in production, the same on a supporting service; on a critical service 1-5% failing, \
latency 1.5-3 times the SLO, or a resource 85-94% used; a certificate expiring within 14 days; \
an attack of at least 1000 attempts; a security breach outside production.
- P3 (backlog): anything else: staging and dev, routine messages, smaller numbers, blocked attacks.
Critical services: {", ".join(CRITICAL)}."""


class LogTriage(ClassificationTask):
    name: ClassVar[str] = "log-triage"
    description: ClassVar[str] = "Sort a production log event into P1 (page now), P2 (fix today) or P3 (backlog)."
    labels: ClassVar[tuple[str, ...]] = LABELS
    alert: ClassVar[str | None] = "P1"
    headline: ClassVar[str] = "p1_recall"
    note: ClassVar[str] = "Synthetic log events; the priority rules are in docs/log-triage.md."
    splits: ClassVar[tuple[str, ...]] = tuple(SPLITS)
    default_split: ClassVar[tuple[str, int]] = ("test", 600)

    def make(self, split: str, n: int, seed: int = 0) -> list[Sample]:
        return [Sample(r["id"], r["text"], r["label"]) for r in generate_rows(split, n, seed)]

    def system_prompt(self) -> str:
        return SYSTEM_PROMPT

    def shot_pool(self) -> list[Sample]:
        return _shot_pool()


@functools.cache
def _shot_pool() -> list[Sample]:
    """Training rows for few-shot prompts, the first ones one of each label in turn: P2, P3, P1, P2, ...
    (not P1, P2, P3: a small model prompted with examples in that order goes on with "P4")."""
    rows = [Sample(r["id"], r["text"], r["label"]) for r in generate_rows("train", 300, seed=0)]
    order = ("P2", "P3", "P1")
    by_label = {label: [r for r in rows if r.target == label] for label in order}
    ordered: list[Sample] = []
    for i in range(max(len(v) for v in by_label.values())):
        ordered += [by_label[label][i] for label in order if i < len(by_label[label])]
    return ordered


__all__ = ["SYSTEM_PROMPT", "LogTriage"]
