"""Rollout backends: sample a group of responses per prompt, with each token's log-probability.

One interface, :class:`RolloutBackend`, two backends:

- :class:`LocalRollout` (the default; CPU or one GPU): the inference engine
  (:class:`~agentladder.models.engine.Engine`) over the training model itself,
  so there is nothing to synchronise after an update. Each prompt is prefilled
  **once for its whole group** and its cache repeated ``n`` times along the
  batch, so a group of 8 costs one prefill, not eight; rows that finish (end of
  turn, a stop string, or a closed JSON object with ``stop_at_json``) leave the
  batch and the cache at once. Each sampled token's log-probability under the
  sampling distribution (``log_softmax(logits / T)``, the full distribution even
  with top-p, as TRL and verl compute it for the loss) is kept: these are the
  old-policy log-probabilities, computed once per rollout at no extra forward
  pass. The model samples in eval mode and goes back to training mode after;
  a prompt prefix shared by the whole call is computed once per call, never
  kept across calls (the weights change between them).
- :class:`VLLMRollout` (GPUs; ``pip install agentladder[gpu]``): vLLM with
  ``n`` samples per prompt (its prefix cache shares the prompt the same way),
  weights pushed from the trained model after every update. vLLM is imported
  only when this backend is chosen.

:func:`make_rollout` picks one by name.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch

from agentladder.data.schema import Message
from agentladder.errors import ConfigError
from agentladder.models.chat import render
from agentladder.models.engine import Completion, Engine, SamplingParams, sample_tokens
from agentladder.models.lora import is_lora


class RolloutBackend(ABC):
    """Samples ``n`` responses to each prompt (token ids, already through the chat template)."""

    exact_logprobs: bool = True
    """Whether the returned log-probabilities are the training model's own under ``softmax(logits / T)``;
    when not (another engine, another precision), the trainer recomputes the old policy's where it needs them."""

    @abstractmethod
    def generate(self, prompts: Sequence[Sequence[int]], n: int | Sequence[int], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order (``n``: one number, or one per prompt)."""

    def sync_weights(self, model) -> None:
        """Make the engine sample from ``model``'s current weights (after an update)."""
        return None


# -- the local backend ---------------------------------------------------------------------------
class LocalRollout(RolloutBackend):
    """Sampling from the training model itself, through the engine (see the module docstring)."""

    def __init__(self, model, tokenizer, *, max_batch: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        """Most sequences decoded at once; more prompts are split into batches of whole groups."""
        self.engine = Engine(model, tokenizer, batch_size=max_batch, keep_prefix=False)

    def generate(self, prompts: Sequence[Sequence[int]], n: int | Sequence[int], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        self.engine.model = self.model  # a trainer may rewrap its model (FSDP, peft)
        return self.engine.generate(prompts, params, n=n, generator=generator)


# -- multi-turn rollouts ----------------------------------------------------------------------
ToolEnvironment = Callable[[list, str], "list | None"]
"""``env(conversation, last_answer) -> tool messages to append, or None when the episode ends``.

``conversation`` is the prompt's messages plus the response's turns so far (the last one the
assistant's); the returned messages (usually ``role="tool"``) are shown to the model, which then
answers again. Their tokens are inputs only: mask 0, never trained on."""


def continuation_ids(tokenizer, conversation_ids: Sequence[int], messages: list, added: list) -> list[int]:
    """Token ids that take ``conversation_ids`` (the tokens so far) to the next assistant turn after ``added``.

    The chat template renders ``messages + added`` with a generation prompt; the part after the
    text of the tokens so far is tokenised. Raises ``ConfigError`` when the template does not extend
    the conversation's text (a template that rewrites earlier turns cannot be continued token-exactly).
    """

    so_far = tokenizer.decode(list(conversation_ids), skip_special_tokens=False)
    full = render(tokenizer, [*messages, *added], add_generation_prompt=True)
    if not full.startswith(so_far):
        raise ConfigError("the chat template does not extend the conversation text; cannot continue a "
                          "multi-turn rollout token-exactly")
    return tokenizer(full[len(so_far):], add_special_tokens=False)["input_ids"]


def multi_turn_generate(backend: RolloutBackend, tokenizer, prompts: Sequence, prompt_token_ids: Sequence[Sequence[int]],
                        n: int, params: SamplingParams, env: ToolEnvironment, max_turns: int = 4,
                        generator: torch.Generator | None = None) -> list[list[Completion]]:
    """``n`` multi-turn responses per prompt: sample, ask ``env`` for tool output, sample again, ...

    ``prompts`` are the message lists, ``prompt_token_ids`` their tokens. The first turn is sampled
    for the whole group with the prompt encoded once; later turns continue each response on its
    own (its conversation so far re-encoded). ``params.max_new_tokens`` bounds the response's
    own tokens and tool tokens together. Each completion's ``mask`` is 1 on sampled tokens only.
    """

    out = backend.generate(prompt_token_ids, n, params, generator)
    for group in out:
        for c in group:
            c.turns = [Message(role="assistant", content=c.text)]
    for _ in range(1, max_turns):
        pending = []
        for i, group in enumerate(out):
            for j, c in enumerate(group):
                if c.truncated or len(c.turns) == 0 or c.turns[-1].role != "assistant":
                    continue
                added = env([*prompts[i], *c.turns], c.turns[-1].content or "")
                if not added:
                    continue
                ids = [*prompt_token_ids[i], *c.token_ids]
                seg = continuation_ids(tokenizer, ids, [*prompts[i], *c.turns], list(added))
                room = params.max_new_tokens - len(c.token_ids) - len(seg)
                if room <= 0:
                    c.finish_reason = "length"
                    continue
                pending.append((i, j, seg, list(added), room))
        if not pending:
            break
        for i, j, seg, added, room in pending:  # one continuation at a time: each has its own history
            c = out[i][j]
            step_params = dataclasses.replace(params, max_new_tokens=room)
            new = backend.generate([[*prompt_token_ids[i], *c.token_ids, *seg]], 1, step_params, generator)[0][0]
            out[i][j] = Completion(
                [*c.token_ids, *seg, *new.token_ids], [*c.logprobs, *([0.0] * len(seg)), *new.logprobs], new.text,
                new.finish_reason, [*c.mask, *([0] * len(seg)), *([1] * len(new.token_ids))],
                [*c.turns, *added, Message(role="assistant", content=new.text)])
    return out


# -- vLLM ---------------------------------------------------------------------------------------
class VLLMRollout(RolloutBackend):
    """vLLM on a GPU: ``n`` samples per prompt with prefix caching; weights synced after each update.

    ``model_path`` is a folder or hub id vLLM can load (the base model; LoRA runs push
    merged weights). Needs ``pip install agentladder[gpu]`` and a CUDA device.
    """

    exact_logprobs = False  # another engine and precision: the trainer recomputes the old policy's

    def __init__(self, model_path: str, tokenizer, *, gpu_memory_utilization: float = 0.3,
                 dtype: str = "bfloat16", max_model_len: int | None = None, seed: int = 0):
        import os

        # The engine runs in this process, so its weights can be replaced in place after each update.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            import vllm
        except ImportError:
            raise ImportError(
                "the vllm rollout backend needs vLLM on a CUDA machine: pip install 'agentladder[gpu]' "
                "(or choose rollout_backend: local)") from None
        self.tokenizer = tokenizer
        self._vllm = vllm
        self.llm = vllm.LLM(model=model_path, gpu_memory_utilization=gpu_memory_utilization, dtype=dtype,
                            max_model_len=max_model_len, enable_prefix_caching=True, seed=seed)

    def generate(self, prompts: Sequence[Sequence[int]], n: int | Sequence[int], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        def sampling(k: int):
            return self._vllm.SamplingParams(
                n=k, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
                stop=list(params.stop) or None, include_stop_str_in_output=True, logprobs=0)

        sp = sampling(n) if isinstance(n, int) else [sampling(int(k)) for k in n]  # a list: one per prompt
        outs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], sp, use_tqdm=False)
        result = []
        for o in outs:
            group = []
            for c in o.outputs:
                ids = list(c.token_ids)
                lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [{}] * len(ids))]
                group.append(Completion(ids, lps, c.text, "length" if c.finish_reason == "length" else "stop"))
            result.append(group)
        return result

    def sync_weights(self, model) -> None:
        """Load the trained weights into the vLLM engine (LoRA adapters merged on the fly)."""

        source = model
        if is_lora(model):
            model.merge_adapter()
            source = model.get_base_model()
        try:
            state = ((k.replace(".base_layer", ""), v) for k, v in source.state_dict().items() if "lora_" not in k)
            _vllm_model(self.llm).load_weights(state)
            self.llm.reset_prefix_cache()
        finally:
            if is_lora(model):
                model.unmerge_adapter()


def _vllm_model(llm):
    """The torch module inside an in-process vLLM engine (the V0 and V1 layouts)."""
    worker = llm.llm_engine.model_executor.driver_worker
    for path in (("model_runner",), ("worker", "model_runner")):
        obj = worker
        for name in path:
            obj = getattr(obj, name, None)
        if obj is not None and hasattr(obj, "model"):
            return obj.model
    raise RuntimeError("cannot reach the model inside this vLLM version to update its weights; "
                       "set VLLM_ENABLE_V1_MULTIPROCESSING=0 or use rollout_backend: local")


def make_rollout(name: str, model, tokenizer, *, model_path: str | None = None, **kwargs) -> RolloutBackend:
    """``local`` (:class:`LocalRollout`) or ``vllm`` (:class:`VLLMRollout`)."""
    if name == "local":
        return LocalRollout(model, tokenizer, **kwargs)
    if name == "vllm":
        if model_path is None:
            raise ConfigError("the vllm backend needs model_path (a folder or hub id vLLM can load)")
        return VLLMRollout(model_path, tokenizer, **kwargs)
    raise ConfigError(f"unknown rollout backend {name!r}: choose local or vllm")


__all__ = ["Completion", "LocalRollout", "RolloutBackend", "SamplingParams", "ToolEnvironment", "VLLMRollout",
           "continuation_ids", "make_rollout", "multi_turn_generate", "sample_tokens"]
