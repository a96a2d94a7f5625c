"""Writing an :class:`~agentladder.tasks.logtriage.events.Event` as a log line, in one of three families.

Each split has its own family of writing: line layouts, environment names, message phrasings, stack
traces and the way a repeated line is marked. ``train`` uses one family, ``validation`` another and
``test`` a third; no phrasing of one family is used by another. A classifier that only learnt the
training templates scores worse on validation and test, so the layer and regularisation chosen on
validation are those that carry over to lines written by someone else, and the test figure measures
that, not template memorisation. The label never depends on the writing (:func:`~.events.priority`).
"""

from __future__ import annotations

import random

from agentladder.tasks.logtriage.events import Event

FAMILIES = ("train", "validation", "test")

ENV_NAMES = {
    "train": {"prod": ("prod",), "staging": ("staging",), "dev": ("dev",)},
    "validation": {"prod": ("production",), "staging": ("stage",), "dev": ("development",)},
    "test": {"prod": ("prd", "live"), "staging": ("stg", "preprod"), "dev": ("sandbox", "local")},
}

LAYOUTS = {
    "train": ("{ts} {level} [{service}] ({env}) {msg}", "[{env}][{service}] {level} {clock} {msg}"),
    "validation": ("{month} {day} {clock} {host} {service}[{pid}]: env={env} {level} {msg}",),
    "test": ('ts={ts} level={lower} svc={service} env={env} msg="{msg}"',
             '{{"time": "{ts}", "severity": "{level}", "app": "{service}", "environment": "{env}", "message": "{msg}"}}'),
}

LEVELS = {"errors": "ERROR", "outage": "CRITICAL", "latency": "WARN", "saturation": "WARN", "breach": "ALERT",
          "attack": "WARN", "certificate": "WARN", "routine": "INFO"}

RESOURCE_NAMES = {
    "train": {"disk": "disk /var/lib", "memory": "memory", "cpu": "cpu", "connection pool": "db connection pool",
              "queue": "job queue"},
    "validation": {"disk": "filesystem /data", "memory": "heap", "cpu": "processor", "connection pool":
                   "database connections", "queue": "message backlog"},
    "test": {"disk": "volume /mnt/store", "memory": "RSS", "cpu": "CPU load", "connection pool": "pg pool",
             "queue": "kafka lag"},
}

MESSAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "errors": ("{value}% of requests failing with HTTP {code}", "error rate at {value}% over last 5m ({exception})"),
        "outage": ("service unavailable: all {limit} instances failing health checks",
                   "0 of {limit} instances healthy, every request returning {code}"),
        "latency": ("p99 latency {value}ms (SLO {limit}ms)", "slow responses: p99={value}ms against target {limit}ms"),
        "saturation": ("{resource} usage at {value}%", "{resource} {value}% full"),
        "breach:login": ("admin login succeeded for {user} from new country after {value} failed attempts",),
        "breach:escalation": ("privilege escalation: user {user} granted superuser outside change window",),
        "breach:export": ("user {user} downloaded {value}k customer records in one session",),
        "breach:secret": ("AWS access key for {user} printed in plaintext logs",),
        "breach:shell": ("reverse shell detected on {host} spawned by {user}",),
        "attack:bruteforce": ("blocked {value} failed logins from {ip}",),
        "attack:injection": ("WAF blocked {value} SQL injection attempts from {ip}",),
        "attack:ratelimit": ("rate limit hit {value} times by client {ip}",),
        "attack:scan": ("{value} probes from scanner {ip} dropped",),
        "certificate": ("TLS certificate for {service}.example.com expires in {value} days",),
        "routine:deploy": ("deployment v{value}.0 finished",),
        "routine:config": ("config reloaded ({value} keys)",),
        "routine:retry": ("retry succeeded after transient {exception}",),
        "routine:cache": ("cache warmed with {value} entries",),
        "routine:job": ("nightly job completed in {value}s",),
        "routine:flag": ("feature flag checkout_v{value} enabled",),
    },
    "validation": {
        "errors": ("{value} percent of calls returned {code} in the last minute",),
        "outage": ("complete outage, none of the {limit} replicas answering",),
        "latency": ("99th percentile response time {value} ms, objective {limit} ms",),
        "saturation": ("{resource} utilisation reached {value} percent",),
        "breach:login": ("successful administrator sign-in for {user} from unrecognised location ({value} "
                         "prior failures)",),
        "breach:escalation": ("account {user} added itself to the admins group",),
        "breach:export": ("service account {user} exported {value} thousand customer rows to an external host",),
        "breach:secret": ("database password of {user} committed to a public repository",),
        "breach:shell": ("unexpected interactive shell opened on {host} as {user}",),
        "attack:bruteforce": ("{value} password guesses from {ip} rejected",),
        "attack:injection": ("{value} requests with injection payloads from {ip} filtered",),
        "attack:ratelimit": ("throttled {ip} after {value} requests (credential stuffing pattern)",),
        "attack:scan": ("firewall denied {value} connection attempts from {ip}",),
        "certificate": ("certificate {service}.example.com valid for {value} more days",),
        "routine:deploy": ("rolled out build {value} to all nodes",),
        "routine:config": ("settings refreshed, {value} values changed",),
        "routine:retry": ("{exception} recovered on second attempt",),
        "routine:cache": ("cache primed: {value} items",),
        "routine:job": ("scheduled export done after {value} seconds",),
        "routine:flag": ("toggle search_rank_{value} switched on",),
    },
    "test": {
        "errors": ("5xx ratio {value}% (status {code})", "elevated failures: {value}% of requests erroring ({exception})"),
        "outage": ("down: {limit}/{limit} pods failing readiness", "100% of requests failing ({exception}), "
                   "no healthy upstream"),
        "latency": ("latency_p99_ms={value} slo_ms={limit}", "tail latency {value}ms vs {limit}ms budget"),
        "saturation": ("{resource} saturation {value}%", "high watermark: {resource} at {value}%"),
        "breach:login": ("root console session for {user} opened from an unknown ASN, {value} bad passwords "
                         "before it",),
        "breach:escalation": ("IAM policy changed: {user} now has full admin rights",),
        "breach:export": ("bulk read of {value}k PII records by {user} to an unapproved bucket",),
        "breach:secret": ("API token of {user} found in a public paste",),
        "breach:shell": ("crypto-miner process started on {host} under {user}",),
        "attack:bruteforce": ("denied {value} auth attempts for {user} from {ip}",),
        "attack:injection": ("{value} XSS payloads stripped from requests by {ip}",),
        "attack:ratelimit": ("429 returned {value} times to {ip}",),
        "attack:scan": ("port sweep from {ip}: {value} SYNs dropped",),
        "certificate": ("x509 cert for {service}.example.com notAfter in {value}d",),
        "routine:deploy": ("canary {value} promoted",),
        "routine:config": ("hot reload of {value} env vars ok",),
        "routine:retry": ("transient {exception}, request replayed ok",),
        "routine:cache": ("warm-up loaded {value} keys",),
        "routine:job": ("cron finished, took {value}s",),
        "routine:flag": ("flag beta_{value} rolled to 10%",),
    },
}

STACKS = {
    "train": (" | at com.shop.{module}.Handler.process(Handler.java:{line})",),
    "validation": (' | File "/srv/app/{module}.py", line {line}, in handle',),
    "test": (" | goroutine {line} [running]: main.{module}() /src/{module}.go:{line}",
             " | at {module} (/app/src/{module}.js:{line}:17)"),
}

REPEATS = {
    "train": " (repeated {n}x)",
    "validation": " [last message repeated {n} times]",
    "test": " x{n} (deduplicated)",
}


def render(event: Event, family: str, rng: random.Random, *, repeated: int = 0) -> str:
    """One log line for ``event`` in ``family``'s writing; ``repeated`` marks a line seen that many times."""
    words = MESSAGES[family]
    key = event.kind if event.kind in words else f"{event.kind}:{event.detail}"
    extra = event.extra
    msg = rng.choice(words[key]).format(
        value=_number(event.value), limit=_number(event.limit), code=extra.get("code", 500),
        exception=extra.get("exception", "Error"), user=extra.get("user", "user"), ip=extra.get("ip", "10.0.0.1"),
        host=extra.get("host", "host-01"), service=event.service,
        resource=RESOURCE_NAMES[family].get(event.detail, event.detail))
    if event.kind in ("errors", "outage") and rng.random() < 0.5:
        module = event.service.split("-")[0]
        msg += rng.choice(STACKS[family]).format(module=module, line=rng.randint(20, 900))
    if repeated:
        msg += REPEATS[family].format(n=repeated)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    day = rng.randint(1, 28)
    clock = f"{hour:02d}:{minute:02d}:{second:02d}"
    layout = rng.choice(LAYOUTS[family])
    level = LEVELS[event.kind]
    if layout.startswith("{{"):
        msg = msg.replace('"', '\\"')
    elif "msg=" in layout:
        msg = msg.replace('"', "'")
    return layout.format(
        ts=f"2026-03-{day:02d}T{clock}Z", clock=clock, month="Mar", day=day, level=level, lower=level.lower(),
        service=event.service, env=rng.choice(ENV_NAMES[family][event.env]), host=extra.get("host", "host-01"),
        pid=rng.randint(100, 32000), msg=msg)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


__all__ = ["FAMILIES", "render"]
