"""Model providers for evaluation: a local model, an OpenAI-compatible endpoint, a script.

A provider answers a batch of chat prompts (lists of messages) with text.
:func:`make_provider` turns a spec into one:

- ``smollm2-135m``, ``tiny``, ``runs/sft1`` (a full or LoRA run folder), a hub id:
  :class:`LocalProvider`, batched generation through the model's chat template;
- ``openai:MODEL`` or ``openai:MODEL@http://host:port/v1``: :class:`OpenAIProvider`,
  any server that speaks ``/chat/completions`` (vLLM, llama.cpp server, Ollama, a
  cloud API); the key comes from ``OPENAI_API_KEY``, the default address from
  ``OPENAI_BASE_URL``;
- :class:`ScriptedProvider` gives recorded answers, for tests.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from agentladder.data.schema import Message
from agentladder.errors import AgentladderError

Prompt = Sequence[Message]
ProgressFn = Callable[[int], None]


class ProviderError(AgentladderError, RuntimeError):
    """A provider that cannot answer (endpoint down, bad response), said in one line."""


class Provider(ABC):
    """Answers chat prompts with text."""

    name: str = "provider"
    batch_size: int = 8
    """How many prompts the evaluation hands over at a time."""

    @abstractmethod
    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        """One answer per prompt, in order. ``stop_at_json`` lets generation end after one JSON object.

        ``progress`` is called with the number of prompts finished, as they finish.
        """

    def prepare(self) -> None:
        """Get ready to answer (load a local model), so timings of :meth:`complete` leave loading out."""
        return None

    def close(self) -> None:
        """Free what the provider holds (a local model's memory); nothing by default."""
        return None


class ScriptedProvider(Provider):
    """Recorded answers, for tests: a list (given in order), a mapping or a function.

    A mapping is keyed by the content of the prompt's last user turn. Every
    prompt is kept in :attr:`calls`, so tests can check what was asked.
    """

    def __init__(self, answers: Sequence[str] | Mapping[str, str] | Callable[[Prompt], str], *,
                 name: str = "scripted", default: str | None = None):
        self.name = name
        self._answers = answers if callable(answers) or isinstance(answers, Mapping) else list(answers)
        self._next = 0
        self.default = default
        self.calls: list[list[Message]] = []

    def _one(self, prompt: Prompt) -> str:
        self.calls.append(list(prompt))
        if callable(self._answers):
            return self._answers(prompt)
        if isinstance(self._answers, Mapping):
            key = next(m.content for m in reversed(prompt) if m.role == "user")
            if key in self._answers:
                return self._answers[key]
            if self.default is not None:
                return self.default
            raise KeyError(f"no scripted answer for {key!r}")
        if self._next >= len(self._answers):
            if self.default is not None:
                return self.default
            raise IndexError(f"the script has only {len(self._answers)} answers")
        self._next += 1
        return self._answers[self._next - 1]

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        out = [self._one(p) for p in prompts]
        if progress is not None:
            progress(len(out))
        return out


class OpenAIProvider(Provider):
    """Any OpenAI-compatible ``/chat/completions`` endpoint, a few requests at a time.

    Retries 429 and 5xx answers and dropped connections with exponential backoff.
    ``transport`` replaces the HTTP call (``(url, body, headers) -> response dict``) in tests.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = 120.0, retries: int = 3,
                 transport: Callable[[str, dict, dict], dict] | None = None, name: str | None = None):
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.batch_size = max(8, concurrency)
        self.timeout = timeout
        self.retries = retries
        self._transport = transport or self._post
        self.name = name or f"openai:{model}"

    def _post(self, url: str, body: dict, headers: dict) -> dict:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode())

    def _one(self, prompt: Prompt, max_new_tokens: int, temperature: float) -> str:
        body = {"model": self.model, "messages": [{"role": m.role, "content": m.content or ""} for m in prompt],
                "max_tokens": max_new_tokens, "temperature": temperature}
        reply = self.request(body)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            url = f"{self.base_url}/chat/completions"
            raise ProviderError(f"{url} gave no choices[0].message.content: {json.dumps(reply)[:200]}") from None

    def request(self, body: dict) -> dict:
        """POST ``body`` to ``/chat/completions`` with retries; the decoded answer (the agents runtime uses it too)."""
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            try:
                reply = self._transport(url, body, headers)
                break
            except urllib.error.HTTPError as err:
                detail = err.read().decode(errors="replace")[:200] if err.fp else ""
                if err.code not in (429, 500, 502, 503, 504) or attempt == self.retries:
                    raise ProviderError(f"{url} answered HTTP {err.code}: {detail or err.reason}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    reason = getattr(err, "reason", err)
                    raise ProviderError(f"cannot reach {url}: {reason}") from None
            time.sleep(0.5 * 2**attempt)
        return reply

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        def one(prompt: Prompt) -> str:
            text = self._one(prompt, max_new_tokens, temperature)
            if progress is not None:
                progress(1)
            return text

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, prompts))


def make_provider(spec: str | Provider, *, batch_size: int = 8, dtype: str = "float32") -> Provider:
    """A provider from a spec (see the module docstring), or the provider itself.

    ``batch_size`` and ``dtype`` (``float32`` or ``bfloat16``) apply to local models.
    """
    if isinstance(spec, Provider):
        return spec
    if spec.startswith("openai:"):
        model, _, url = spec[len("openai:"):].partition("@")
        if not model:
            raise ValueError(f"{spec!r}: write openai:MODEL or openai:MODEL@http://host:port/v1")
        return OpenAIProvider(model, base_url=url or None, name=spec)
    from agentladder.evals.local import LocalProvider

    return LocalProvider(spec, batch_size=batch_size, dtype=dtype)
