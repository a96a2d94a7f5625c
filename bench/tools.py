"""What a tool call costs when the tool is elsewhere: MCP over stdio and HTTP, and signed HTTP, against in process.

    python bench/tools.py                  # 500 timed calls per path after 20 warm-up calls
    python bench/tools.py --calls 2000

The tool is the pharmacy's ``check_dose`` with the same arguments every time, called
through the runtime's own ``Tool.call`` (argument validation, limits, the result text
the model sees) on each path:

- ``in-process``: the ``@tool`` function in ``examples/pharmacy/tools.py``;
- ``mcp-stdio``: the official SDK's server ``examples/pharmacy/formulary_server.py`` as a
  stdio subprocess, through ``mcp_tools`` (the official SDK's client);
- ``mcp-http``: the same server over streamable HTTP (uvicorn on loopback, its own process);
- ``mcp-http-agentladder``: the same tool served by ``agentladder tools serve`` over streamable HTTP;
- ``signed-http``: ``agentladder tools serve --signed``: each call HMAC-signed by the client and
  checked by the server (key, clock window, signature, nonce stored in SQLite).

Every server runs in its own process, so client and server do not share a GIL.
Printed per path: p50 and p99 of the call's wall time in ms, and the added latency
over in process (p50 and p99 minus in-process p50 and p99); the results are checked
equal to in process. A second table isolates what signing itself adds to each signed
call: the client's ``sign`` plus the server's ``Verifier.check`` (key lookup, clock
window, HMAC, the nonce ``INSERT`` into a SQLite file), with no HTTP. Timings depend
on the machine: run it on an idle one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PHARMACY = ROOT / "examples" / "pharmacy"
sys.path.insert(0, str(PHARMACY))

import tools as pharmacy  # noqa: E402

from agentladder.agents import KeyRing, MCPConnection, Runtime, signed_tools  # noqa: E402
from agentladder.agents.signing import Verifier, sign  # noqa: E402

ARGS = {"drug": "ibuprofen", "strength_mg": 800, "dose_units": 2, "doses_per_day": 3}
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{PHARMACY}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=PHARMACY, env=ENV, stdout=subprocess.DEVNULL)
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {' '.join(argv)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {' '.join(argv)}")


async def timed(tool, calls: int, warmup: int) -> tuple[list[float], str]:
    for _ in range(warmup):
        await tool.call(ARGS)
    seconds, text = [], ""
    for _ in range(calls):
        t0 = time.perf_counter()
        result = await tool.call(ARGS)
        seconds.append(time.perf_counter() - t0)
        text = result.text
    return seconds, text


def signing_only(db: Path, calls: int, warmup: int) -> list[float]:
    """Seconds per signed request for the signature alone: the client signs, the server checks (nonce stored)."""
    runtime = Runtime(db)
    keys = KeyRing(runtime.store)
    key_id, secret = keys.add()
    verifier = Verifier(keys)
    body = json.dumps({"tool": "check_dose", "arguments": ARGS}, separators=(",", ":")).encode()
    seconds = []
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        headers = sign(secret, key_id, "POST", "/call", body)
        refusal = verifier.check("POST", "/call", headers, body)
        if i >= warmup:
            seconds.append(time.perf_counter() - t0)
        if refusal is not None:
            raise SystemExit(f"a fresh signed request was refused: {refusal.reason}")
    runtime.shutdown()
    return seconds


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    paths: dict[str, object] = {"in-process": pharmacy.check_dose}
    procs, connections = [], []
    try:
        stdio = MCPConnection("python -m formulary_server", cwd=PHARMACY, env={"PYTHONPATH": ENV["PYTHONPATH"]})
        connections.append(stdio)
        paths["mcp-stdio"] = stdio.tools(include=["check_dose"])[0]

        port = free_port()
        procs.append(start([sys.executable, "-m", "formulary_server", "--http", "--port", str(port)], port))
        http = MCPConnection(f"http://127.0.0.1:{port}/mcp")
        connections.append(http)
        paths["mcp-http"] = http.tools(include=["check_dose"])[0]

        port = free_port()
        procs.append(start([sys.executable, "-m", "agentladder", "tools", "serve", str(PHARMACY / "tools.py"),
                            "--port", str(port), "--db", str(tmp / "mcp.db")], port))
        ours = MCPConnection(f"http://127.0.0.1:{port}/mcp")
        connections.append(ours)
        paths["mcp-http-agentladder"] = ours.tools(include=["check_dose"])[0]

        db = tmp / "signed.db"
        store = Runtime(db).store
        key_id, secret = KeyRing(store).add()
        store.close()
        port = free_port()
        procs.append(start([sys.executable, "-m", "agentladder", "tools", "serve", str(PHARMACY / "tools.py"),
                            "--signed", "--port", str(port), "--db", str(db)], port))
        paths["signed-http"] = signed_tools(f"http://127.0.0.1:{port}", key=secret, key_id=key_id,
                                            include=["check_dose"])[0]

        results = {name: asyncio.run(timed(tool, args.calls, args.warmup)) for name, tool in paths.items()}
        signing = signing_only(tmp / "signing.db", args.calls, args.warmup)
    finally:
        for c in connections:
            c.close()
        for p in procs:
            p.kill()

    base_text = results["in-process"][1]
    base50, base99 = (percentile(results["in-process"][0], q) * 1e3 for q in (50, 99))
    table = Table("path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "same result",
                  title=f"check_dose: {args.calls} calls per path after {args.warmup} warm-up calls")
    for name, (seconds, text) in results.items():
        p50, p99 = percentile(seconds, 50) * 1e3, percentile(seconds, 99) * 1e3
        table.add_row(name, f"{p50:.3f}", f"{p99:.3f}", f"{p50 - base50:.3f}", f"{p99 - base99:.3f}",
                      "yes" if text == base_text else f"NO: {text[:40]}")
    console = Console(width=120)
    console.print(table)
    alone = Table("what", "p50 ms", "p99 ms", title="signing alone, per signed call (no HTTP)")
    alone.add_row("sign + verify + nonce stored", f"{percentile(signing, 50) * 1e3:.3f}",
                  f"{percentile(signing, 99) * 1e3:.3f}")
    console.print(alone)


if __name__ == "__main__":
    main()
