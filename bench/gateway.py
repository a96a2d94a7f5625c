"""The gateway's cost: the same requests to ``agentladder serve`` without and with keys and usage rows.

    python bench/gateway.py                                   # tiny model, 512 requests, 32 clients
    python bench/gateway.py --model smollm2-135m --requests 256 --max-tokens 32
    python bench/gateway.py --postgres postgresql://postgres@127.0.0.1:5432/bench   # adds a PostgreSQL column

Each server runs alone, in its own process, and gets the same chat requests (the
medication-directions test rows, greedy, the same ``max_tokens``) from ``--concurrency``
clients after ``--warmup`` requests. Columns:

- ``plain``: ``agentladder serve`` with no gateway;
- ``gateway sqlite``: ``--db`` a SQLite file: a key checked (and its rpm window read) per
  request, a usage row written before each answer, a span per call;
- ``gateway postgresql`` (with ``--postgres``): the same store on PostgreSQL;
- ``gateway proxy``: a second process, ``agentladder serve --upstream``, in front of a plain
  server (what ``--engine vllm`` runs, with agentladder in vLLM's place).

Printed side by side: requests/s, generated tokens/s, p50 and p99 latency, errors, peak
memory. The last line is ``gateway_p50_overhead_ms=<gateway sqlite p50 - plain p50, in ms>``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import ServerProcess, bodies, drive, free_port, model_folder, requests_for, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def new_key(db: str) -> str:
    """A key without limits in ``db``, made by the CLI as a user would."""
    done = subprocess.run([sys.executable, "-m", "agentladder", "keys", "create", "--team", "bench", "--db", db],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return done.stdout.strip().splitlines()[0]


def measure(command: list[str], port: int, messages, args, key: str | None = None,
            also: list[str] | None = None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    upstream = ServerProcess(also, int(also[also.index("--port") + 1]), "/health") if also else None
    if upstream is not None:
        upstream.__enter__()
    try:
        with ServerProcess(command, port, "/health") as server:
            asyncio.run(drive(url, bodies("base", messages[: args.warmup], args.max_tokens), args.concurrency,
                              headers))
            figures = asyncio.run(drive(url, bodies("base", messages, args.max_tokens), args.concurrency, headers))
            figures["peak RSS MiB"] = (server.peak + (upstream.peak if upstream else 0)) / 2**20
    finally:
        if upstream is not None:
            upstream.__exit__(None, None, None)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--postgres", help="a postgresql:// URL for a PostgreSQL column")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    folder = model_folder(args.model, tmp)
    messages = requests_for(args.requests)
    serve = [sys.executable, "-m", "agentladder", "serve", "--model", str(folder), "--served-model-name", "base",
             "--max-batch", str(args.concurrency), "--log-level", "warning"]
    traces = ["--traces-db", str(tmp / "traces.db")]
    port = free_port()
    results = {"plain": measure([*serve, "--port", str(port)], port, messages, args)}
    db = str(tmp / "gateway.db")
    port = free_port()
    results["gateway sqlite"] = measure([*serve, "--port", str(port), "--db", db, *traces], port, messages, args,
                                        new_key(db))
    if args.postgres:
        port = free_port()
        results["gateway postgresql"] = measure([*serve, "--port", str(port), "--db", args.postgres, *traces], port,
                                                messages, args, new_key(args.postgres))
    up, port = free_port(), free_port()
    proxy = [sys.executable, "-m", "agentladder", "serve", "--upstream", f"http://127.0.0.1:{up}", "--port",
             str(port), "--db", db, *traces, "--log-level", "warning"]
    results["gateway proxy"] = measure(proxy, port, messages, args, new_key(db), also=[*serve, "--port", str(up)])
    print(f"\n{args.requests} chat requests, {args.concurrency} clients, max_tokens {args.max_tokens}, greedy, "
          f"model {args.model}\n")
    print(table(results))
    overhead = (results["gateway sqlite"]["p50 latency s"] - results["plain"]["p50 latency s"]) * 1000
    print(f"gateway_p50_overhead_ms={overhead:.1f}")


if __name__ == "__main__":
    main()
