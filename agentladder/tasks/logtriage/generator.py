"""Seeded log-triage rows: events drawn, split by a hash of the event, written in the split's own families.

An event's split is fixed by a hash of what happened (:meth:`~.events.Event.bucket`), not of how it is
written, so every copy of an event (a noisy duplicate, the same event written twice) stays in one split:
``train``, ``validation`` and ``test`` never share an event, let alone a row. Each split is written in its
own families of phrasings (:mod:`~agentladder.tasks.logtriage.render`).
"""

from __future__ import annotations

import random

from agentladder.errors import ConfigError
from agentladder.tasks.logtriage.events import draw_event, priority
from agentladder.tasks.logtriage.render import SPLIT_FAMILIES, render

SPLITS = {"train": range(0, 8), "validation": range(8, 9), "test": range(9, 10)}
REPEAT_SHARE = 0.12
"""The share of events that come again as a noisy duplicate (another time, marked as repeated)."""


def split_of_event(event) -> str:
    """The split ``event`` belongs to."""
    bucket = event.bucket()
    return next(name for name, buckets in SPLITS.items() if bucket in buckets)


def family(split: str, rng: random.Random) -> str:
    """The family one row of ``split`` is written in (a split of one family draws nothing from ``rng``, so
    its rows are those it had before the training split had several)."""
    families = SPLIT_FAMILIES[split]
    return families[0] if len(families) == 1 else rng.choice(families)


def generate_rows(split: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct rows ``{"id", "text", "label"}`` of ``split``, reproducible from ``seed``.

    A split's stream starts with the same rows at any ``n``, so a larger draw extends a smaller one.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if n < 0:
        raise ConfigError(f"n must be at least 0, not {n}")
    rng = random.Random(f"log-triage:{split}:{seed}")
    rows: list[dict] = []
    seen: set[str] = set()
    for _ in range(400 * n + 1000):
        if len(rows) >= n:
            break
        event = draw_event(rng)
        if split_of_event(event) != split:
            continue
        copies = [0] + ([rng.randint(2, 500)] if rng.random() < REPEAT_SHARE else [])
        for repeated in copies:
            text = render(event, family(split, rng), rng, repeated=repeated)
            if text in seen or len(rows) >= n:
                continue
            seen.add(text)
            rows.append({"id": f"log-{split}-{len(rows) + 1:06d}", "text": text, "label": priority(event)})
    if len(rows) < n:
        raise ConfigError(f"could draw only {len(rows)} distinct {split} rows of {n}")
    return rows


__all__ = ["REPEAT_SHARE", "SPLITS", "generate_rows", "split_of_event"]
