"""Production log events and the rules that give each one its priority (P1, P2, P3).

An :class:`Event` is what happened, before anyone wrote it down: a kind (errors, an outage,
latency, saturation, a security event, a certificate about to expire, routine noise), the
service and environment it happened in, and its magnitude. :func:`priority` applies the
rules of ``docs/log-triage.md`` to it; the rendering (:mod:`agentladder.tasks.logtriage.render`)
never changes the label. The services' tiers are part of the spec:

- critical: ``payments-api``, ``auth-service``, ``checkout``, ``api-gateway``, ``orders-db``;
- supporting: ``reporting-worker``, ``email-digest``, ``search-indexer``, ``recommendations``,
  ``admin-dashboard``, ``image-resizer``.

The data are synthetic; the thresholds are a plausible on-call policy, not anyone's real one.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field

LABELS = ("P1", "P2", "P3")
"""P1: page the on-call engineer now; P2: fix within the working day; P3: backlog or no action."""

CRITICAL = ("payments-api", "auth-service", "checkout", "api-gateway", "orders-db")
SUPPORTING = ("reporting-worker", "email-digest", "search-indexer", "recommendations", "admin-dashboard",
              "image-resizer")
SERVICES = CRITICAL + SUPPORTING
ENVIRONMENTS = ("prod", "staging", "dev")

KINDS = ("errors", "outage", "latency", "saturation", "breach", "attack", "certificate", "routine")
KIND_WEIGHTS = (22, 8, 16, 16, 8, 9, 6, 10)
ENV_WEIGHTS = (78, 13, 9)

RESOURCES = ("disk", "memory", "cpu", "connection pool", "queue")
BREACHES = ("login", "escalation", "export", "secret", "shell")
ATTACKS = ("bruteforce", "injection", "ratelimit", "scan")
ROUTINE = ("deploy", "config", "retry", "cache", "job", "flag")
HTTP_CODES = (500, 502, 503, 504)
EXCEPTIONS = ("NullPointerException", "ConnectionRefusedError", "TimeoutError", "OutOfMemoryError",
              "SQLTransientConnectionException", "KeyError", "IllegalStateException", "BrokenPipeError")


@dataclass(frozen=True)
class Event:
    """One thing that happened in production (or staging, or dev), before it is written as a log line."""

    kind: str
    service: str
    env: str
    value: float = 0.0
    """errors: % of requests failing; latency: p99 in ms; saturation: % used; certificate: days left;
    attack: attempts; outage: instances down."""
    limit: float = 0.0
    """latency: the SLO in ms; outage: instances in all."""
    detail: str = ""
    """The subtype: resource, breach, attack or routine kind; HTTP code or exception for errors."""
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    """Words that change nothing (user names, addresses): drawn with the event, kept out of its identity."""

    def key(self) -> str:
        """What makes two events the same event (the writing and the noise left out)."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "extra"}, sort_keys=True)

    def bucket(self) -> int:
        """0..9 from a hash of :meth:`key`: the split an event (and every copy of it) belongs to."""
        return int(hashlib.sha256(self.key().encode()).hexdigest()[:8], 16) % 10


def priority(event: Event) -> str:
    """The label the rules of ``docs/log-triage.md`` give ``event``."""
    critical = event.service in CRITICAL
    if event.kind == "breach":
        return "P1" if event.env == "prod" else "P2"
    if event.env != "prod" or event.kind == "routine":
        return "P3"
    if event.kind == "outage":
        return "P1" if critical else "P2"
    if event.kind == "attack":
        return "P2" if event.value >= 1000 else "P3"
    if event.kind == "certificate":
        return "P1" if event.value <= 2 else "P2" if event.value <= 14 else "P3"
    if event.kind == "errors":
        high, low = event.value >= 5, event.value >= 1
    elif event.kind == "latency":
        ratio = event.value / event.limit
        high, low = ratio >= 3, ratio >= 1.5
    elif event.kind == "saturation":
        high, low = event.value >= 95, event.value >= 85
    else:
        raise ValueError(f"unknown event kind {event.kind!r}")
    if high:
        return "P1" if critical else "P2"
    if low:
        return "P2" if critical else "P3"
    return "P3"


def draw_event(rng: random.Random) -> Event:
    """One event: kind, service and environment by the generator's weights, magnitudes spread across
    every threshold of the rules (so rows near a boundary are common, as in real queues)."""
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    service = rng.choice(SERVICES)
    env = rng.choices(ENVIRONMENTS, ENV_WEIGHTS)[0]
    extra = {"user": rng.choice(("svc-batch", "jdoe", "admin", "m.garcia", "deploy-bot", "a.khan", "root")),
             "ip": f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
             "host": f"{service.split('-')[0]}-{rng.randint(1, 40):02d}",
             "exception": rng.choice(EXCEPTIONS), "code": rng.choice(HTTP_CODES)}
    if kind == "errors":
        value = round(rng.choice((rng.uniform(0.1, 1.0), rng.uniform(1.0, 5.0), rng.uniform(5.0, 45.0))), 1)
        return Event(kind, service, env, value, 0, str(extra["code"]), extra)
    if kind == "outage":
        total = rng.choice((2, 3, 4, 6, 8, 12))
        return Event(kind, service, env, total, total, str(extra["code"]), extra)
    if kind == "latency":
        slo = rng.choice((100, 200, 250, 300, 500, 800, 1000))
        ratio = rng.choice((rng.uniform(0.6, 1.5), rng.uniform(1.5, 3.0), rng.uniform(3.0, 12.0)))
        return Event(kind, service, env, int(slo * ratio), slo, "", extra)
    if kind == "saturation":
        value = rng.choice((rng.randint(55, 84), rng.randint(85, 94), rng.randint(95, 100)))
        return Event(kind, service, env, value, 0, rng.choice(RESOURCES), extra)
    if kind == "breach":
        return Event(kind, service, env, rng.randint(3, 60), 0, rng.choice(BREACHES), extra)
    if kind == "attack":
        value = rng.choice((rng.randint(5, 999), rng.randint(1000, 50000)))
        return Event(kind, service, env, value, 0, rng.choice(ATTACKS), extra)
    if kind == "certificate":
        value = rng.choice((rng.randint(0, 2), rng.randint(3, 14), rng.randint(15, 90)))
        return Event(kind, service, env, value, 0, "", extra)
    return Event(kind, service, env, rng.randint(1, 300), 0, rng.choice(ROUTINE), extra)


__all__ = ["CRITICAL", "ENVIRONMENTS", "KINDS", "LABELS", "SERVICES", "SUPPORTING", "Event", "draw_event",
           "priority"]
