"""Writing an :class:`~agentladder.tasks.logtriage.events.Event` as a log line, in one of seven families.

Each split has its own families of writing: line layouts, environment names, message phrasings, stack
traces and the way a repeated line is marked. ``train`` is written in five families (as a real
training set gathers logs from services that each write their own way), ``validation`` in a sixth and
``test`` in a seventh; no phrasing of one family is used by another. A classifier that only learnt the
training templates scores worse on validation and test, so the layer and regularisation chosen on
validation are those that carry over to lines written by someone else, and the test figure measures
that, not template memorisation. The label never depends on the writing (:func:`~.events.priority`).
"""

from __future__ import annotations

import random

from agentladder.tasks.logtriage.events import Event

FAMILIES = ("train", "train-ops", "train-pager", "train-csv", "train-xml", "validation", "test")
SPLIT_FAMILIES = {"train": FAMILIES[:5], "validation": ("validation",), "test": ("test",)}
"""The families each split is written in: the training rows in five (so no one layout, environment name
or phrasing is a cue a classifier can lean on), validation and test each in one of their own."""

ENV_NAMES = {
    "train": {"prod": ("prod",), "staging": ("staging",), "dev": ("dev",)},
    "train-ops": {"prod": ("prod-eu", "prod-us"), "staging": ("qa", "uat"), "dev": ("devbox", "ci")},
    "train-pager": {"prod": ("prod1", "prod-main"), "staging": ("beta", "rc"), "dev": ("lab", "scratch")},
    "train-csv": {"prod": ("prod-ap", "primary"), "staging": ("preview", "integration"),
                  "dev": ("workstation", "playground")},
    "train-xml": {"prod": ("prod-blue", "prod-green"), "staging": ("perf", "demo"), "dev": ("feature-env", "devenv")},
    "validation": {"prod": ("production",), "staging": ("stage",), "dev": ("development",)},
    "test": {"prod": ("prd", "live"), "staging": ("stg", "preprod"), "dev": ("sandbox", "local")},
}

LAYOUTS = {
    "train": ("{ts} {level} [{service}] ({env}) {msg}", "[{env}][{service}] {level} {clock} {msg}"),
    "train-ops": ("{clock} | {level} | {service} | {env} | {msg}", "<{lower}> {service}@{env} {msg}"),
    "train-pager": ("[{level}] service: {service}, deployment: {env}, detail: {msg}",
                    "{ts} {service} ({env}) - {level} - {msg}"),
    "train-csv": ('{ts},{level},{service},{env},"{msg}"', "{day}/03/2026 {clock};{service};{env};{level};{msg}"),
    "train-xml": ('<event level="{lower}" service="{service}" tier="{env}">{msg}</event>',
                  "Level: {level}; Source: {service}; Tier: {env}; Text: {msg}"),
    "validation": ("{month} {day} {clock} {host} {service}[{pid}]: env={env} {level} {msg}",),
    "test": ('ts={ts} level={lower} svc={service} env={env} msg="{msg}"',
             '{{"time": "{ts}", "severity": "{level}", "app": "{service}", "environment": "{env}", "message": "{msg}"}}'),
}

LEVELS = {"errors": "ERROR", "outage": "CRITICAL", "latency": "WARN", "saturation": "WARN", "breach": "ALERT",
          "attack": "WARN", "certificate": "WARN", "routine": "INFO"}

RESOURCE_NAMES = {
    "train": {"disk": "disk /var/lib", "memory": "memory", "cpu": "cpu", "connection pool": "db connection pool",
              "queue": "job queue"},
    "train-ops": {"disk": "root partition", "memory": "ram", "cpu": "cpu time", "connection pool":
                  "redis connections", "queue": "task queue depth"},
    "train-pager": {"disk": "data disk", "memory": "jvm memory", "cpu": "cpu cores", "connection pool": "mysql pool",
                    "queue": "sqs queue"},
    "train-csv": {"disk": "disk quota", "memory": "memory limit", "cpu": "cpu share", "connection pool":
                  "connection slots", "queue": "work queue"},
    "train-xml": {"disk": "storage", "memory": "resident memory", "cpu": "compute", "connection pool":
                  "db handles", "queue": "event queue"},
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
    "train-ops": {
        "errors": ("{value}% error responses ({code})", "failure ratio {value}% with {exception}"),
        "outage": ("all {limit} nodes unreachable, health check red",
                   "no healthy hosts ({limit} of {limit} down), returning {code}"),
        "latency": ("response p99 at {value}ms, SLO is {limit}ms", "latency check: p99 {value}ms, SLO {limit}ms"),
        "saturation": ("{resource} at {value}% capacity", "{resource} {value}% consumed"),
        "breach:login": ("suspicious admin login by {user} after {value} failed tries from a new region",),
        "breach:escalation": ("{user} elevated to root without an approved ticket",),
        "breach:export": ("{value}k customer rows exported by {user} outside business hours",),
        "breach:secret": ("private key of {user} exposed in a build log",),
        "breach:shell": ("netcat listener spawned on {host} by {user}",),
        "attack:bruteforce": ("{value} failed password attempts from {ip} blocked",),
        "attack:injection": ("{value} malicious query strings from {ip} rejected by the WAF",),
        "attack:ratelimit": ("client {ip} exceeded its quota {value} times",),
        "attack:scan": ("{value} probe packets from {ip} discarded",),
        "certificate": ("cert {service}.example.com: {value} days until expiry",),
        "routine:deploy": ("release {value} deployed successfully",),
        "routine:config": ("configuration reloaded, {value} entries",),
        "routine:retry": ("{exception} on first try, retry ok",),
        "routine:cache": ("cache preloaded ({value} objects)",),
        "routine:job": ("batch job finished after {value}s",),
        "routine:flag": ("flag exp_{value} turned on",),
    },
    "train-pager": {
        "errors": ("{value}% failed requests, last status {code}", "errors on {value}% of traffic ({exception})"),
        "outage": ("service dead: {limit} instances of {limit} not responding",
                   "every one of {limit} hosts out of rotation, clients get {code}"),
        "latency": ("slow: p99 {value}ms with a {limit}ms target", "p99 of {value}ms, limit set at {limit}ms"),
        "saturation": ("{resource} {value}% in use", "{resource} filled to {value}%"),
        "breach:login": ("admin account {user} logged in from a new device after {value} wrong passwords",),
        "breach:escalation": ("role of {user} changed to owner by an unknown actor",),
        "breach:export": ("{user} pulled {value}k customer profiles in bulk",),
        "breach:secret": ("credentials for {user} posted in a public chat channel",),
        "breach:shell": ("web shell uploaded on {host}, running as {user}",),
        "attack:bruteforce": ("{value} login failures from {ip} in ten minutes",),
        "attack:injection": ("{value} attack strings from {ip} caught by the input filter",),
        "attack:ratelimit": ("{ip} rate limited, {value} requests refused",),
        "attack:scan": ("scanner at {ip} probed {value} ports",),
        "certificate": ("TLS cert of {service}.example.com: {value} days left",),
        "routine:deploy": ("deploy #{value} complete",),
        "routine:config": ("{value} config values reloaded",),
        "routine:retry": ("recovered from {exception} after a retry",),
        "routine:cache": ("{value} cache entries loaded",),
        "routine:job": ("job run took {value}s, status ok",),
        "routine:flag": ("feature exp{value} activated",),
    },
    "train-csv": {
        "errors": ("request failures {value}% (code {code})", "{value}% of calls raised {exception}"),
        "outage": ("{limit} of {limit} servers failing checks, service offline",
                   "service offline, load balancer has 0/{limit} members up"),
        "latency": ("p99 response {value}ms; SLO {limit}ms", "response times p99 {value} ms (allowed {limit} ms)"),
        "saturation": ("{resource} used {value}%", "{resource} reached {value}% of limit"),
        "breach:login": ("{value} failed attempts then a successful admin login for {user} from abroad",),
        "breach:escalation": ("{user} granted admin on production by no known request",),
        "breach:export": ("{user} exported a file of {value}k customer records",),
        "breach:secret": ("signing secret of {user} visible in an error page",),
        "breach:shell": ("remote shell opened to {host} as {user} from an unknown address",),
        "attack:bruteforce": ("{ip} tried {value} passwords, all rejected",),
        "attack:injection": ("{value} SQLi attempts from {ip} dropped",),
        "attack:ratelimit": ("{value} requests from {ip} over the rate limit",),
        "attack:scan": ("{ip} scanned {value} endpoints",),
        "certificate": ("certificate of {service}.example.com runs out in {value} days",),
        "routine:deploy": ("version {value} live on all servers",),
        "routine:config": ("{value} configuration keys applied",),
        "routine:retry": ("call retried after {exception}, succeeded",),
        "routine:cache": ("cache filled: {value} records",),
        "routine:job": ("report job done in {value}s",),
        "routine:flag": ("experiment {value} enabled for users",),
    },
    "train-xml": {
        "errors": ("error ratio {value}% (HTTP {code})", "{value}% of transactions failed: {exception}"),
        "outage": ("service down: {limit}/{limit} replicas crashed", "outage: every instance ({limit}) unhealthy"),
        "latency": ("slowness: p99 {value}ms, SLO {limit}ms", "measured p99 {value}ms for a {limit}ms SLO"),
        "saturation": ("{resource} level {value}%", "{resource} occupancy {value}%"),
        "breach:login": ("admin console opened by {user} at an odd hour after {value} failures",),
        "breach:escalation": ("{user} assigned the administrator role without approval",),
        "breach:export": ("{value}k customer records copied off-site by {user}",),
        "breach:secret": ("password for {user} leaked in a support ticket",),
        "breach:shell": ("unknown binary executing on {host} as {user}",),
        "attack:bruteforce": ("brute force: {value} attempts from {ip}",),
        "attack:injection": ("{value} injection attempts from {ip} blocked",),
        "attack:ratelimit": ("{ip} hit the rate limit ({value} requests)",),
        "attack:scan": ("{value} scan requests from {ip} refused",),
        "certificate": ("certificate {service}.example.com ends in {value} days",),
        "routine:deploy": ("build {value} deployed",),
        "routine:config": ("reloaded {value} settings",),
        "routine:retry": ("{exception} then success on retry",),
        "routine:cache": ("{value} items cached at startup",),
        "routine:job": ("scheduled task ran {value}s",),
        "routine:flag": ("switch flag_{value} on",),
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
    "train-ops": (" | at Shop.{module}.Handler.Run() in Handler.cs:line {line}",),
    "train-pager": (" | {module}/handler.rb:{line}:in `call'",),
    "train-csv": (" | {module}.cpp:{line} in operator()",),
    "train-xml": (" | at {module}::handler::run ({module}.rs:{line})",),
    "validation": (' | File "/srv/app/{module}.py", line {line}, in handle',),
    "test": (" | goroutine {line} [running]: main.{module}() /src/{module}.go:{line}",
             " | at {module} (/app/src/{module}.js:{line}:17)"),
}

REPEATS = {
    "train": " (repeated {n}x)",
    "train-ops": " (seen {n} times)",
    "train-pager": " [{n} similar]",
    "train-csv": " (occurred {n} times)",
    "train-xml": " (+{n} duplicates)",
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


__all__ = ["FAMILIES", "SPLIT_FAMILIES", "render"]
