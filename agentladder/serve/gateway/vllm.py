"""``agentladder serve --engine vllm``: vLLM's own OpenAI server with LoRA on, the gateway in front of it.

:func:`vllm_command` builds the command line: the base model's folder (an alias such as
``smollm2-135m`` resolved to its packaged folder), ``--enable-lora``, one
``--lora-modules NAME=PATH`` per specialist (the same run folders ``--adapter`` takes),
``--max-loras`` and ``--max-lora-rank`` from the adapters' configs, the served name, the
context length and dtype, then any ``--vllm-arg`` passed through. The environment turns
on vLLM's runtime adapter routes (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``), which the gateway
then guards with admin keys.

:class:`UpstreamProcess` starts a server command, waits until its ``/health`` answers
(failing with its log's tail if it exits first), and stops it (SIGTERM, then SIGKILL)
when the gateway stops. Clients talk to the gateway's port only; vLLM listens on a
loopback port of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from agentladder.errors import ConfigError
from agentladder.models.loading import resolve

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The ``--max-lora-rank`` values vLLM accepts."""


def lora_rank(folder: str | Path) -> int:
    """The rank of the LoRA adapter in ``folder`` (its adapter_config.json's ``r``)."""
    config = Path(folder).expanduser() / "adapter_config.json"
    if not config.exists():
        raise ConfigError(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("r", 8))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise ConfigError(f"{config}: cannot read the adapter's rank: {err}") from None


def max_lora_rank(adapters: Mapping[str, str]) -> int:
    """The smallest rank vLLM accepts that fits every adapter."""
    need = max((lora_rank(p) for p in adapters.values()), default=8)
    for rank in LORA_RANKS:
        if rank >= need:
            return rank
    raise ConfigError(f"an adapter has rank {need}; vLLM serves LoRA ranks up to {LORA_RANKS[-1]}")


def vllm_command(model: str, adapters: Mapping[str, str], *, port: int, host: str = "127.0.0.1",
                 served_model_name: str | None = None, max_model_len: int | None = None,
                 dtype: str | None = None, extra: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    """The command that starts vLLM's OpenAI server for ``model`` and its specialists (see the module docstring)."""
    base = resolve(model)
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", base,
           "--served-model-name", served_model_name or model, "--host", host, "--port", str(port),
           "--enable-lora", "--max-loras", str(max(1, len(adapters))), "--max-lora-rank", str(max_lora_rank(adapters))]
    if adapters:
        cmd += ["--lora-modules", *(f"{name}={Path(path).expanduser().resolve()}" for name, path in adapters.items())]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if dtype:
        cmd += ["--dtype", dtype]
    return cmd + list(extra)


def vllm_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment vLLM runs in: the caller's, with runtime adapter loading on."""
    return {**(base if base is not None else os.environ), "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


class UpstreamProcess:
    """A server started as a subprocess, healthy on ``url`` until :meth:`stop` (see the module docstring)."""

    def __init__(self, command: Sequence[str], url: str, *, env: Mapping[str, str] | None = None,
                 startup_timeout: float = 900.0):
        self.command, self.url = list(command), url.rstrip("/")
        self.env, self.startup_timeout = dict(env) if env is not None else None, startup_timeout
        self.proc: subprocess.Popen | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="agentladder-upstream-", suffix=".log")
        os.close(fd)

    def start(self) -> UpstreamProcess:
        try:
            with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
                self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        except OSError as err:
            raise ConfigError(f"cannot start {self.command[0]}: {err}") from None
        deadline = time.time() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise ConfigError(f"the upstream server exited with status {self.proc.returncode} before it "
                                  f"was ready; the end of its log ({self.log_path}):\n{self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                self.stop()
                raise ConfigError(f"the upstream server was not ready after {self.startup_timeout:.0f} s; "
                                  f"its log: {self.log_path}")
            time.sleep(0.5)

    def tail(self, lines: int = 20) -> str:
        text = Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> UpstreamProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["LORA_RANKS", "UpstreamProcess", "lora_rank", "max_lora_rank", "vllm_command", "vllm_env"]
