"""An OpenAI-compatible server for a base model and its tuned LoRA specialists.

``agentladder serve --model smollm2-135m --adapter parser=runs/demo/02-sft/run`` serves
``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/models``, vLLM's
adapter routes, ``/health`` and ``/metrics`` on FastAPI and uvicorn. Concurrent
requests share decoding steps on the project's inference engine (continuous batching,
:mod:`~agentladder.serve.scheduler` over :class:`~agentladder.models.batch.RunningBatch`),
specialists of one base in the same batch; JSON schemas are enforced while decoding
(:mod:`~agentladder.serve.structured`). A gateway plugs in through
:class:`~agentladder.serve.hooks.Gateway`. See docs/serve.md.
"""

from agentladder.serve.app import ServerState, create_app, load_state, run
from agentladder.serve.errors import APIError
from agentladder.serve.hooks import CLIENT_CLOSED, CallUsage, Gateway, ServerHooks
from agentladder.serve.scheduler import Generation, Scheduler
from agentladder.serve.specialists import Served, Specialist

__all__ = [
    "CLIENT_CLOSED",
    "APIError",
    "CallUsage",
    "Gateway",
    "Generation",
    "Scheduler",
    "Served",
    "ServerHooks",
    "ServerState",
    "Specialist",
    "create_app",
    "load_state",
    "run",
]
