"""The gateway: API keys, limits, budgets, usage rows, recording and spans, in front of any server.

- :mod:`~agentladder.serve.gateway.db`: the store (SQLite by default, PostgreSQL through psycopg 3);
- :mod:`~agentladder.serve.gateway.keys`: keys, stored hashed (``agentladder keys create|list|revoke``);
- :mod:`~agentladder.serve.gateway.usage`: usage rows and reports (``agentladder usage``);
- :mod:`~agentladder.serve.gateway.hooks`: :class:`GatewayHooks`, the server's hooks that check keys
  and limits, write usage, record calls and end spans;
- :mod:`~agentladder.serve.gateway.recording`: served calls as the runtime's trajectories and spans;
- :mod:`~agentladder.serve.gateway.proxy`: the gateway in front of another OpenAI-compatible server;
- :mod:`~agentladder.serve.gateway.vllm`: ``--engine vllm``, vLLM's server behind the proxy.

See docs/serve.md ("The gateway").
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

from agentladder.agents.store import Store
from agentladder.serve.gateway.db import GatewayDB, open_db
from agentladder.serve.gateway.hooks import Admission, GatewayHooks
from agentladder.serve.gateway.keys import (
    KeyRecord,
    create_key,
    find_key,
    list_keys,
    lookup,
    revoke_key,
)
from agentladder.serve.gateway.proxy import ProxyState, create_proxy_app
from agentladder.serve.gateway.usage import UsageRow, report, write_usage
from agentladder.serve.gateway.vllm import UpstreamProcess, vllm_command, vllm_env


def open_gateway(db: str | Path, *, traces_db: str | Path | None = None, otlp_endpoint: str | None = None,
                 provider_name: str = "agentladder") -> GatewayHooks:
    """Gateway hooks over the store ``db`` (a SQLite path or ``postgresql://`` URL), recording and
    spans into the runtime's store ``traces_db`` (None: no recording, no spans)."""
    store = Store(traces_db) if traces_db is not None else None
    return GatewayHooks(open_db(db), store=store, otlp_endpoint=otlp_endpoint, provider_name=provider_name)


def run_proxy(state: ProxyState, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
              shutdown_timeout: float | None = 120.0) -> None:
    """Serve the gateway in front of ``state.upstream`` until SIGTERM or Ctrl-C."""
    config = uvicorn.Config(create_proxy_app(state), host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=shutdown_timeout, access_log=log_level == "debug")
    uvicorn.Server(config).run()


__all__ = [
    "Admission",
    "GatewayDB",
    "GatewayHooks",
    "KeyRecord",
    "ProxyState",
    "UpstreamProcess",
    "UsageRow",
    "create_key",
    "create_proxy_app",
    "find_key",
    "list_keys",
    "lookup",
    "open_db",
    "open_gateway",
    "report",
    "revoke_key",
    "run_proxy",
    "vllm_command",
    "vllm_env",
    "write_usage",
]
