"""Human review: escalations, the review queue, and reviewers' decisions.

A step escalates by raising :class:`Escalate` (or calling ``ctx.escalate``);
an agent does so itself when its output stays invalid (``escalate_invalid``)
or its ``review_if`` check names a reason (a confidence below a threshold).
The workflow or graph running it then records a :class:`Review` in the queue,
saves where it stands and returns a paused result. A reviewer decides
(``ReviewQueue.decide`` or ``agentladder traces decide``); resuming the run
takes the decision as the escalated step's output and carries on. Every
escalation and decision goes to the audit log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from agentladder.agents.store import Store, new_id, to_json
from agentladder.errors import AgentladderError


class Escalate(Exception):  # noqa: N818 - raised to ask for a person, not an error
    """Raised by a step or an agent to hand the decision to a person."""

    def __init__(self, reason: str, payload: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.payload = payload


class ReviewError(AgentladderError, RuntimeError):
    """A review that does not exist, is already decided, or is not decided yet."""


@dataclass
class Review:
    id: str
    session: str
    run_id: str
    step: str
    reason: str
    payload: Any
    status: str
    """``pending`` or ``decided``."""
    decision: Any = None
    reviewer: str | None = None
    note: str | None = None
    created: float = 0.0
    decided: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> Review:
        d = dict(row)
        for key in ("payload", "decision"):
            d[key] = json.loads(d[key]) if d[key] is not None else None
        return cls(**d)


class ReviewQueue:
    """The review queue of a store: what waits for a person, and their decisions."""

    def __init__(self, store: Store):
        self.store = store

    def open(self, *, session: str, run_id: str, step: str, reason: str, payload: Any = None) -> Review:
        review_id = new_id("review")
        with self.store.transaction() as db:
            db.execute("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL, ?, NULL)",
                       (review_id, session, run_id, step, reason, to_json(payload), time.time()))
        self.store.audit("escalated", session=session, run_id=run_id, step=step,
                         data={"review": review_id, "reason": reason})
        return self.get(review_id)

    def get(self, review_id: str) -> Review:
        rows = self.store.query("SELECT * FROM reviews WHERE id = ?", (review_id,))
        if not rows:
            raise ReviewError(f"no review {review_id!r} in {self.store.path}")
        return Review.from_row(rows[0])

    def pending(self, *, session: str | None = None) -> list[Review]:
        sql, params = "SELECT * FROM reviews WHERE status = 'pending'", []
        if session is not None:
            sql, params = sql + " AND session = ?", [session]
        return [Review.from_row(r) for r in self.store.query(sql + " ORDER BY created", params)]

    def for_run(self, run_id: str) -> list[Review]:
        rows = self.store.query("SELECT * FROM reviews WHERE run_id = ? ORDER BY created", (run_id,))
        return [Review.from_row(r) for r in rows]

    def decide(self, review_id: str, decision: Any, *, reviewer: str = "reviewer", note: str | None = None) -> Review:
        """Record a person's decision; the paused run takes it as the escalated step's output on resume."""
        review = self.get(review_id)
        if review.status != "pending":
            raise ReviewError(f"review {review_id} was already decided by {review.reviewer}")
        with self.store.transaction() as db:
            db.execute("UPDATE reviews SET status = 'decided', decision = ?, reviewer = ?, note = ?, decided = ? "
                       "WHERE id = ?", (to_json(decision), reviewer, note, time.time(), review_id))
        self.store.audit("review_decided", session=review.session, run_id=review.run_id, step=review.step,
                         data={"review": review_id, "decision": decision, "reviewer": reviewer, "note": note})
        return self.get(review_id)
