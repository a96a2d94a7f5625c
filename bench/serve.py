"""Serving throughput: ``agentladder serve`` against ``transformers serve``, 32 concurrent clients on loopback.

    python bench/serve.py                                  # SmolLM2-135M, 256 requests, 32 clients, 64 tokens
    python bench/serve.py --model tiny --requests 8 --concurrency 4 --max-tokens 8   # a smoke run

Both servers load the same model folder (fp32, CPU) and get the same chat requests
(the medication-directions test rows under the task's system prompt), greedy, with
the same ``max_tokens``, from ``--concurrency`` clients that each send their next
request as soon as the last is answered. Each server runs alone, in its own process,
after ``--warmup`` requests; printed side by side:

- requests/s and generated tokens/s (completion tokens from each answer's usage,
  over the wall time of the timed requests);
- p50 and p99 latency of a request;
- errors (any non-200 answer or dropped connection);
- peak resident memory of the server process (sampled every 0.1 s).

Then four LoRA specialists of the model served together by ``agentladder serve``:
the same requests spread over the four names at once, against the four served one
after another (each alone with its share of the requests). ``--adapter NAME=PATH``
gives the specialists (repeat four times); without it the bench makes four adapters of
random weights (rank 16, every projection), which cost what trained ones cost.

The last line is ``speedup_vs_transformers=<agentladder tokens/s / transformers tokens/s>``.
The target is at least 3x, with zero errors and a p99 no worse.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentladder.models.loading import load_model, resolve  # noqa: E402
from agentladder.tasks import get_task  # noqa: E402


def model_folder(spec: str, tmp: Path) -> Path:
    """A saved model folder both servers can load (``tiny`` is written out first)."""
    if spec != "tiny":
        return Path(resolve(spec))
    model, tok = load_model("tiny")
    model.save_pretrained(tmp / "tiny")
    tok.save_pretrained(tmp / "tiny")
    return tmp / "tiny"


def make_adapters(folder: Path, tmp: Path, n: int = 4) -> dict[str, str]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = {}
    for i in range(n):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(folder)
        cfg = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
        model = get_peft_model(base, cfg)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.mul_(0.01)  # small updates: the specialists still answer like the base
        model.save_pretrained(tmp / f"spec{i}")
        out[f"spec{i}"] = str(tmp / f"spec{i}")
    return out


def requests_for(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    task = get_task("medication-directions")
    rows = task.make("test", n, seed)
    return [[{"role": "system", "content": task.system_prompt()}, {"role": "user", "content": r.input}]
            for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server command in its own process group, its peak RSS sampled while it runs."""

    def __init__(self, command: list[str], port: int, health: str):
        self.command, self.port, self.health = command, port, health
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(self.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.time() + 600
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{self.health}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{self.command[0:3]} did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        proc = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


async def drive(url: str, bodies: list[dict], concurrency: int, headers: dict[str, str] | None = None
                ) -> dict[str, float]:
    """Send ``bodies`` from ``concurrency`` clients; throughput, latency percentiles and errors."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies, tokens, errors = [], [0], [0]

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            try:
                r = await http.post(url, json=body)
                ok = r.status_code == 200
                if ok:
                    tokens[0] += int((r.json().get("usage") or {}).get("completion_tokens") or 0)
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors[0] += not ok

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits, headers=headers) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"requests/s": len(bodies) / wall, "generated tokens/s": tokens[0] / wall, "p50 latency s": q[49],
            "p99 latency s": q[98], "errors": errors[0], "tokens": tokens[0], "wall s": wall}


def bodies(model: str, messages: list[list[dict]], max_tokens: int, names: list[str] | None = None) -> list[dict]:
    return [{"model": names[i % len(names)] if names else model, "messages": m, "max_tokens": max_tokens,
             "temperature": 0} for i, m in enumerate(messages)]


def run_server(command: list[str], port: int, health: str, url_model: str, messages, args,
               names: list[str] | None = None) -> dict[str, float]:
    with ServerProcess(command, port, health) as server:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        asyncio.run(drive(url, bodies(url_model, messages[: args.warmup], args.max_tokens, names), args.concurrency))
        figures = asyncio.run(drive(url, bodies(url_model, messages, args.max_tokens, names), args.concurrency))
        figures["peak RSS MiB"] = server.peak / 2**20
    return figures


def table(columns: dict[str, dict[str, float]]) -> str:
    names = list(columns)
    rows = ["| | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for key in next(iter(columns.values())):
        cells = [f"{columns[n][key]:.0f}" if key in ("errors", "tokens") else f"{columns[n][key]:.3f}" for n in names]
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--adapter", action="append", default=[], help="NAME=PATH, four times (default: made up)")
    ap.add_argument("--skip-specialists", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    folder = model_folder(args.model, tmp)
    messages = requests_for(args.requests)
    python = sys.executable
    ours = [python, "-m", "agentladder", "serve", "--model", str(folder), "--served-model-name", "base",
            "--max-batch", str(args.concurrency), "--log-level", "warning"]
    port = free_port()
    results = {"agentladder serve": run_server([*ours, "--port", str(port)], port, "/health", "base", messages, args)}
    port = free_port()
    reference = ["transformers", "serve", str(folder), "--port", str(port), "--host", "127.0.0.1", "--device", "cpu",
                 "--dtype", "float32"]
    results["transformers serve"] = run_server(reference, port, "/health", str(folder), messages, args)
    print(f"\n{args.requests} chat requests, {args.concurrency} clients, max_tokens {args.max_tokens}, greedy, "
          f"model {args.model} ({folder})\n")
    print(table(results))
    if not args.skip_specialists:
        specialists(args, folder, tmp, messages, ours)
    ratio = results["agentladder serve"]["generated tokens/s"] / max(results["transformers serve"]["generated tokens/s"],
                                                                      1e-9)
    print(f"speedup_vs_transformers={ratio:.2f}")


def specialists(args, folder: Path, tmp: Path, messages, ours: list[str]) -> None:
    """Four specialists served together against each served alone, one after another."""
    adapters = dict(a.split("=", 1) for a in args.adapter) if args.adapter else make_adapters(folder, tmp)
    names = list(adapters)
    flags = [x for name, path in adapters.items() for x in ("--adapter", f"{name}={path}")]
    port = free_port()
    together = run_server([*ours, *flags, "--port", str(port)], port, "/health", "base", messages, args, names)
    alone: dict[str, float] = {"tokens": 0, "wall s": 0, "errors": 0, "peak RSS MiB": 0}
    for name in names:
        share = messages[names.index(name)::len(names)]
        port = free_port()
        f = run_server([*ours, "--adapter", f"{name}={adapters[name]}", "--port", str(port)], port, "/health",
                       name, share, args, [name])
        for key in ("tokens", "wall s", "errors"):
            alone[key] += f[key]
        alone["peak RSS MiB"] = max(alone["peak RSS MiB"], f["peak RSS MiB"])
    alone["generated tokens/s"] = alone["tokens"] / alone["wall s"]
    alone["requests/s"] = len(messages) / alone["wall s"]
    keys = ("requests/s", "generated tokens/s", "errors", "tokens", "wall s", "peak RSS MiB")
    print(f"\nfour specialists ({', '.join(names)}), the same {len(messages)} requests\n")
    print(table({"together, one batch": {k: together[k] for k in keys},
                 "one at a time": {k: alone[k] for k in keys}}))


if __name__ == "__main__":
    main()
