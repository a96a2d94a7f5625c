"""What the guard adds to a request at the gateway: p50 and p99, short and long inputs, side by side.

    python bench/guard_gateway.py                                  # examples/guard/guard.yaml, 200 short, 50 long
    python bench/guard_gateway.py --policy guard.yaml --short 300 --long 60 --model tiny

One ``agentladder serve`` app on loopback (uvicorn in a thread; the ``tiny`` model by default, so
generation takes little of the time), driven by the real ``openai`` client with ``max_tokens=1``:

- *without*: the server's default hooks;
- *with*: :class:`~agentladder.serve.guard.GuardHooks` with the policy (requests checked and masked,
  the answer checked, audit rows written to a SQLite store);
- *guard time*: the seconds the hooks themselves spent on each request (``guard_usage`` rows).

Inputs are generated labelled rows (``guard-eval``, test split): *short* is one row (about
60-250 characters), *long* rows joined to about 5,000 characters (a pasted document). Every
detector is built and warmed before timing (the classifiers are trained once and cached under
``$AGENTLADDER_HOME/guard``; the first run takes minutes). The requests of both servers are
interleaved, so drift on the machine touches both alike.

Printed: p50 and p99 in milliseconds per case and the ratio of the medians, then a line
``gateway_added_ms_p50_short=... p99_short=... p50_long=... p99_long=...`` (the hooks' own time).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import openai
import uvicorn

from agentladder.agents.guard import Guard, make_guard_rows
from agentladder.agents.store import Store
from agentladder.serve import create_app, load_state
from agentladder.serve.guard import GuardHooks

ROOT = Path(__file__).resolve().parents[1]


def texts(n_short: int, n_long: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rows = [r["text"] for r in make_guard_rows("guard-eval", "test", n_short + 40 * n_long, seed=seed)]
    short, long, current = rows[:n_short], [], ""
    for t in rows[n_short:]:
        current = f"{current}\n{t}" if current else t
        if len(current) >= 5000:
            long.append(current[:5000])
            current = ""
        if len(long) == n_long:
            break
    return short, long


class Served:
    """An app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, state):
        self.server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> openai.OpenAI:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


def ask(client: openai.OpenAI, model: str, text: str) -> float:
    start = time.perf_counter()
    with contextlib.suppress(openai.BadRequestError):  # refused by the guard: it still cost the checks
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], max_tokens=1,
                                       temperature=0)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default=str(ROOT / "examples" / "guard" / "guard.yaml"))
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=50)
    args = parser.parse_args()

    guard = Guard.from_yaml(args.policy, progress=print)
    guard.warm()
    store = Store(Path(tempfile.mkdtemp()) / "audit.db")
    hooks = GuardHooks(guard, audit=store)
    plain = load_state(args.model, max_batch=4, default_max_tokens=1)
    guarded = load_state(args.model, max_batch=4, default_max_tokens=1, hooks=hooks)
    short, long = texts(args.short, args.long)
    print(f"{len(short)} short texts, {len(long)} long texts ({len(long[0])} chars), model {args.model}")
    print(f"{'case':<30} {'length':<6} {'p50 ms':>9} {'p99 ms':>9}")
    added = {}
    with Served(plain) as without, Served(guarded) as with_guard:
        for t in short[:5]:
            ask(without, args.model, t), ask(with_guard, args.model, t)
        for size, items in (("short", short), ("long", long)):
            seen = len(store.audit_log())
            a, b = [], []
            for t in items:
                a.append(ask(without, args.model, t))
                b.append(ask(with_guard, args.model, t))
            own = [r["data"]["seconds"] * 1000 for r in store.audit_log()[seen:] if r["event"] == "guard_usage"]
            for label, ms in (("server, no guard", a), ("server with --guard", b), ("guard hooks' own time", own)):
                print(f"{label:<30} {size:<6} {np.percentile(ms, 50):>9.2f} {np.percentile(ms, 99):>9.2f}")
            print(f"{'ratio of medians (with/without)':<30} {size:<6} {np.median(b) / np.median(a):>9.2f}")
            added[size] = (float(np.percentile(own, 50)), float(np.percentile(own, 99)))
    print(f"gateway_added_ms_p50_short={added['short'][0]:.2f} p99_short={added['short'][1]:.2f} "
          f"p50_long={added['long'][0]:.2f} p99_long={added['long'][1]:.2f}")


if __name__ == "__main__":
    main()
