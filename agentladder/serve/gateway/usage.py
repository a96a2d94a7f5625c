"""Usage rows: one per finished request, written atomically, summed for chargeback and rate limits.

:func:`write_usage` inserts the row and adds its tokens to the key's ``tokens_used``
in one transaction, before the server sends the answer: a client that got an answer
has its row in the store, even if the process is killed the next instant.

:func:`window` gives a key's requests and tokens over the last minute (the rpm / tpm
limits); :func:`report` sums rows by key, team, model or day (``agentladder usage``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentladder.errors import ConfigError
from agentladder.serve.gateway.db import GatewayDB

GROUPS = {"key": "key_id", "team": "team", "model": "model", "day": "day", "endpoint": "endpoint"}
"""``agentladder usage --by`` choices and the column each groups by."""


@dataclass
class UsageRow:
    """One finished request. ``ts`` is when it arrived (seconds since the epoch, UTC)."""

    ts: float
    endpoint: str
    status: int
    latency: float
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_id: str | None = None
    guard_checks: int = 0
    guard_blocked: int = 0
    id: str = field(default_factory=lambda: f"use-{uuid.uuid4().hex}")

    @property
    def day(self) -> str:
        return dt.datetime.fromtimestamp(self.ts, dt.timezone.utc).strftime("%Y-%m-%d")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def write_usage(db: GatewayDB, row: UsageRow) -> None:
    """Insert ``row`` and charge its tokens to its key, in one transaction."""
    with db.transaction() as tx:
        tx.execute("INSERT INTO gateway_usage (id, request_id, ts, day, key_id, team, model, endpoint, prompt_tokens, "
                   "completion_tokens, latency, status, guard_checks, guard_blocked) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (row.id, row.request_id, row.ts, row.day, row.key_id, row.team, row.model, row.endpoint,
                    row.prompt_tokens, row.completion_tokens, row.latency, row.status, row.guard_checks,
                    row.guard_blocked))
        if row.key_id is not None and row.tokens:
            tx.execute("UPDATE gateway_keys SET tokens_used = tokens_used + ? WHERE id = ?", (row.tokens, row.key_id))


@dataclass
class Window:
    """A key's traffic over the last minute: requests, tokens, and when each of the oldest arrived."""

    requests: int
    tokens: int
    first_ts: list[float]
    """Arrival times of the window's rows, oldest first (for ``Retry-After``)."""
    token_ts: list[tuple[float, int]]
    """``(arrival, tokens)`` of the window's rows, oldest first."""


def window(db: GatewayDB, key_id: str, since: float) -> Window:
    """A key's rows since ``since``, requests refused for a limit (429) left out: waiting must end a wait."""
    rows = db.query("SELECT ts, prompt_tokens + completion_tokens AS tokens FROM gateway_usage "
                    "WHERE key_id = ? AND ts >= ? AND status <> 429 ORDER BY ts", (key_id, since))
    pairs = [(float(r["ts"]), int(r["tokens"])) for r in rows]
    return Window(len(pairs), sum(t for _, t in pairs), [ts for ts, _ in pairs], pairs)


def parse_day(text: str | None, option: str) -> float | None:
    """``YYYY-MM-DD`` (or a full ISO time) as seconds since the epoch, UTC; a ConfigError when not one."""
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: write a date as YYYY-MM-DD") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def report(db: GatewayDB, by: str, *, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    """Usage summed by ``by`` (key, team, model, day, endpoint): requests, errors, tokens, mean latency.

    ``since`` / ``until`` bound the arrival time (``until`` exclusive). Keys also carry their
    team and name.
    """
    if by not in GROUPS:
        raise ConfigError(f"--by {by!r}: choose from {', '.join(GROUPS)}")
    column = GROUPS[by]
    where, params = ["1 = 1"], []
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    rows = db.query(
        f"SELECT {column} AS grp, COUNT(*) AS requests, "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, SUM(prompt_tokens) AS prompt_tokens, "
        "SUM(completion_tokens) AS completion_tokens, AVG(latency) AS mean_latency, "
        "SUM(guard_checks) AS guard_checks "
        f"FROM gateway_usage WHERE {' AND '.join(where)} GROUP BY {column} ORDER BY {column}", params)
    names = {}
    if by == "key":
        names = {r["id"]: r for r in db.query("SELECT id, name, team FROM gateway_keys")}
    out = []
    for r in rows:
        row: dict[str, Any] = {by: r["grp"] if r["grp"] is not None else "-"}
        if by == "key":
            known = names.get(r["grp"], {})
            row.update(name=known.get("name") or "", team=known.get("team") or "")
        prompt, completion = int(r["prompt_tokens"] or 0), int(r["completion_tokens"] or 0)
        row.update(requests=int(r["requests"]), errors=int(r["errors"] or 0), prompt_tokens=prompt,
                   completion_tokens=completion, total_tokens=prompt + completion,
                   mean_latency_s=round(float(r["mean_latency"] or 0.0), 4), guard_checks=int(r["guard_checks"] or 0))
        out.append(row)
    return out


def rows(db: GatewayDB, *, since: float | None = None) -> list[dict[str, Any]]:
    """Every usage row (since a time), oldest first."""
    if since is None:
        return db.query("SELECT * FROM gateway_usage ORDER BY ts, id")
    return db.query("SELECT * FROM gateway_usage WHERE ts >= ? ORDER BY ts, id", (since,))


__all__ = ["GROUPS", "UsageRow", "Window", "parse_day", "report", "rows", "window", "write_usage"]
