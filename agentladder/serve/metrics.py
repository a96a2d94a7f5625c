"""``/metrics``: the server's counters in Prometheus' text format (prometheus_client).

| metric | kind | labels |
| --- | --- | --- |
| ``agentladder_requests_total`` | counter | endpoint, model, status |
| ``agentladder_prompt_tokens_total`` | counter | model |
| ``agentladder_generation_tokens_total`` | counter | model |
| ``agentladder_request_seconds`` | histogram | endpoint |
| ``agentladder_time_to_first_token_seconds`` | histogram | |
| ``agentladder_running_sequences`` | gauge: sequences in the running batch | |
| ``agentladder_waiting_requests`` | gauge: requests waiting for room | |
| ``agentladder_decode_steps`` | gauge: decoding steps taken since start | |

Each app has its own registry, so two servers in one process (tests) do not mix. The gateway
in front of vLLM (``Metrics(None)``) has the counters and histograms, not the batch's gauges.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agentladder.serve.scheduler import Scheduler

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120)


class Metrics:
    """The server's Prometheus metrics (see the module docstring)."""

    def __init__(self, scheduler: Scheduler | None):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("agentladder_requests", "API requests answered", ["endpoint", "model", "status"],
                                registry=r)
        self.prompt_tokens = Counter("agentladder_prompt_tokens", "Prompt tokens read", ["model"], registry=r)
        self.generation_tokens = Counter("agentladder_generation_tokens", "Tokens generated", ["model"], registry=r)
        self.latency = Histogram("agentladder_request_seconds", "Request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("agentladder_time_to_first_token_seconds", "Time to the first generated token",
                              buckets=LATENCY_BUCKETS, registry=r)
        if scheduler is None:  # a gateway in front of another server: no batch of its own
            return
        Gauge("agentladder_running_sequences", "Sequences in the running batch",
              registry=r).set_function(lambda: scheduler.running)
        Gauge("agentladder_waiting_requests", "Requests waiting for room in the batch",
              registry=r).set_function(lambda: scheduler.waiting)
        Gauge("agentladder_decode_steps", "Decoding steps taken since the server started",
              registry=r).set_function(lambda: scheduler.steps)

    def observe(self, endpoint: str, model: str | None, status: int, seconds: float, prompt_tokens: int = 0,
                completion_tokens: int = 0) -> None:
        label = model or "-"
        self.requests.labels(endpoint, label, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if prompt_tokens:
            self.prompt_tokens.labels(label).inc(prompt_tokens)
        if completion_tokens:
            self.generation_tokens.labels(label).inc(completion_tokens)

    def text(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics"]
