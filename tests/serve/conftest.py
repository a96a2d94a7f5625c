"""A real server on loopback for the serve tests: the tiny model, two LoRA specialists, the packaged MiniLM."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
import uvicorn
from peft import LoraConfig, get_peft_model

from agentladder.models.tiny import tiny_model, tiny_tokenizer
from agentladder.serve import APIError, ServerHooks, ServerState, create_app, load_state


def make_adapter(folder: Path, seed: int) -> Path:
    """A LoRA adapter of the tiny model with random (non-zero) weights, saved as a run folder."""
    tok = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cfg = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
        model = get_peft_model(tiny_model(tokenizer=tok), cfg)
    model.save_pretrained(str(folder))
    return folder


class Recorder(ServerHooks):
    """Hooks that keep what they were given (and refuse a model named ``forbidden``)."""

    def __init__(self):
        self.admitted: list[tuple[str | None, dict | None]] = []
        self.finished: list[dict] = []

    async def admit(self, request, model, body):
        if model == "forbidden":
            raise APIError(403, "this key may not call forbidden", code="model_not_allowed")
        self.admitted.append((model, body))
        return {"path": request.url.path}

    async def finish(self, admission, usage, latency, status, request, response):
        self.finished.append({"admission": admission, "usage": usage, "latency": latency, "status": status,
                              "response": response})


class LiveServer:
    """``create_app(state)`` (or another app) under uvicorn in a thread, on a free loopback port."""

    def __init__(self, state: ServerState | None, app=None):
        self.state = state
        config = uvicorn.Config(app or create_app(state), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = self.url + "/v1"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="session")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {"alpha": str(make_adapter(root / "alpha", 1)), "beta": str(make_adapter(root / "beta", 2))}


@pytest.fixture(scope="session")
def hooks():
    return Recorder()


@pytest.fixture(scope="session")
def server(adapters, hooks):
    torch.set_num_threads(2)
    state = load_state("tiny", adapters=adapters, embeddings="all-MiniLM-L6-v2", hooks=hooks, max_batch=16,
                       default_max_tokens=24)
    with LiveServer(state) as live:
        yield live
