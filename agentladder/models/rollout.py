"""Rollout engines: sample a group of responses per prompt, with each token's log-probability.

One interface, :class:`RolloutBackend`, two engines:

- :class:`LocalRollout` (the default; CPU or one GPU): a decode loop over the
  training model itself, so there is nothing to synchronise after an update.
  Each prompt is encoded **once for its whole group**: the prompts are prefilled
  together (left-padded; the output head runs on the last position only), then
  the key/value cache is repeated ``n`` times along the batch, so a group of 8
  costs one prefill, not eight. Rows that finish (end of turn, a stop string,
  or a closed JSON object with ``stop_at_json``) leave the batch and the cache
  at once, so short answers stop costing compute. Each sampled token's
  log-probability under the sampling distribution (``log_softmax(logits / T)``,
  the full distribution even with top-p, as TRL and verl compute it for the
  loss) is kept: these are the old-policy log-probabilities, computed once per
  rollout at no extra forward pass.
- :class:`VLLMRollout` (GPUs; ``pip install agentladder[gpu]``): vLLM with
  ``n`` samples per prompt (its prefix cache shares the prompt the same way),
  weights pushed from the trained model after every update. vLLM is imported
  only when this backend is chosen.

:func:`make_rollout` picks one by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch


@dataclass
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    stop: Sequence[str] = ()
    """Stop strings: a response ends with the token that completes one (the string is kept)."""
    stop_at_json: bool = False
    """End a response once the braces it opened after its first ``{`` balance again."""


@dataclass
class Completion:
    """One sampled response."""

    token_ids: list[int]
    logprobs: list[float]
    """Sampling log-probability of each token (same length as ``token_ids``)."""
    text: str
    finish_reason: Literal["stop", "length"]
    """``stop``: ended by end of turn, a stop string or a closed JSON object; ``length``: cut at the budget."""
    mask: list[int] = field(default_factory=list)
    """1 on tokens the policy produced (all of them, for a single turn; 0 on tool outputs between turns)."""
    turns: list = field(default_factory=list)
    """Multi-turn: the response's messages (assistant, tool, ..., assistant); empty for a single turn."""

    def __post_init__(self) -> None:
        if not self.mask:
            self.mask = [1] * len(self.token_ids)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class RolloutBackend(ABC):
    """Samples ``n`` responses to each prompt (token ids, already through the chat template)."""

    exact_logprobs: bool = True
    """Whether the returned log-probabilities are the training model's own under ``softmax(logits / T)``;
    when not (another engine, another precision), the trainer recomputes the old policy's where it needs them."""

    @abstractmethod
    def generate(self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order."""

    def sync_weights(self, model) -> None:
        """Make the engine sample from ``model``'s current weights (after an update)."""
        return None


# -- stop conditions ----------------------------------------------------------------------------
class _Stops:
    """End-of-turn ids, stop strings and JSON closing, checked per row after each token."""

    def __init__(self, tokenizer, params: SamplingParams, vocab: int):
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id
        self.eos = {eos} if isinstance(eos, int) else set(eos or [])
        self.stop = [s for s in params.stop if s]
        self.json = params.stop_at_json
        if self.json:
            pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            pieces += [""] * max(0, vocab - len(pieces))
            self.opens = [(p or "").count("{") for p in pieces]
            self.closes = [(p or "").count("}") for p in pieces]

    def start(self, rows: int) -> None:
        self.depth = [0] * rows
        self.seen = [False] * rows

    def done(self, row: int, token: int, tokens: list[int]) -> bool:
        if token in self.eos:
            return True
        if self.json:
            self.depth[row] += self.opens[token] - self.closes[token]
            self.seen[row] |= self.opens[token] > 0
            if self.seen[row] and self.depth[row] <= 0:
                return True
        if self.stop:
            tail = self.tokenizer.decode(tokens[-16:], skip_special_tokens=False)
            return any(s in tail for s in self.stop)
        return False


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row from ``(B, V)`` logits; return ``(tokens (B,), logprobs (B,))``.

    The log-probability is under ``softmax(logits / T)`` over the whole vocabulary (greedy: ``T = 1``).
    """
    logits = logits.float()
    if temperature <= 0:
        tokens = logits.argmax(-1)
        return tokens, torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
    logp = torch.log_softmax(logits / temperature, -1)  # (B, V)
    probs = logp.exp()
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the most likely token
        sorted_p = sorted_p * keep
        choice = torch.multinomial(sorted_p, 1, generator=generator)
        tokens = order.gather(-1, choice).squeeze(-1)
    else:
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


# -- the local engine ---------------------------------------------------------------------------
class LocalRollout(RolloutBackend):
    """Sampling from the training model itself (see the module docstring)."""

    def __init__(self, model, tokenizer, *, max_batch: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        """Most sequences decoded at once; more prompts are split into chunks of whole groups."""
        self._stops_cache: dict = {}

    def _stops(self, params: SamplingParams) -> _Stops:
        key = (tuple(params.stop), params.stop_at_json)
        if key not in self._stops_cache:
            vocab = getattr(self.model.config, "vocab_size", 0) or 0
            self._stops_cache[key] = _Stops(self.tokenizer, params, vocab)
        return self._stops_cache[key]

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        per_chunk = max(1, self.max_batch // max(1, n))
        out: list[list[Completion]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for s in range(0, len(prompts), per_chunk):
                out += self._chunk(prompts[s : s + per_chunk], n, params, generator)
        finally:
            self.model.train(was_training)
        return out

    def _chunk(self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams,
               generator: torch.Generator | None) -> list[list[Completion]]:
        model, tok = self.model, self.tokenizer
        device = next(model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attn = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
            attn[r, width - len(p) :] = 1
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        ids, attn, pos = ids.to(device), attn.to(device), pos.to(device)
        # Prefill each prompt once; the output head runs on the last position only.
        out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        logits = out.logits[:, -1]  # (P, V)
        if n > 1:  # one copy of each prompt's keys and values per response: (P, ...) -> (P n, ...)
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, 0)
            attn = attn.repeat_interleave(n, 0)
        rows = len(prompts) * n
        next_pos = attn.sum(-1)  # (B,) position of the next token
        stops = self._stops(params)
        stops.start(rows)
        tokens: list[list[int]] = [[] for _ in range(rows)]
        logps: list[list[float]] = [[] for _ in range(rows)]
        finish: list[str] = ["length"] * rows
        active = list(range(rows))  # row of each live sequence in the batch
        for step in range(params.max_new_tokens):
            new, lp = sample_tokens(logits, params.temperature, params.top_p, generator)
            new_l, lp_l = new.tolist(), lp.tolist()
            keep = []
            for b, row in enumerate(active):
                tokens[row].append(new_l[b])
                logps[row].append(lp_l[b])
                if stops.done(row, new_l[b], tokens[row]):
                    finish[row] = "stop"
                else:
                    keep.append(b)
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(keep) < len(active):  # drop finished rows from the batch and the cache
                idx = torch.tensor(keep, device=device)
                cache.batch_select_indices(idx)
                attn, next_pos, new = attn[idx], next_pos[idx], new[idx]
                active = [active[b] for b in keep]
            attn = torch.cat([attn, attn.new_ones(len(active), 1)], dim=1)
            out = model(input_ids=new[:, None], attention_mask=attn, position_ids=next_pos[:, None],
                        past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = out.logits[:, -1]
            next_pos = next_pos + 1
        done = [Completion(tokens[r], logps[r], tok.decode(tokens[r], skip_special_tokens=True),
                           finish[r])  # type: ignore[arg-type]
                for r in range(rows)]
        return [done[i * n : (i + 1) * n] for i in range(len(prompts))]


# -- multi-turn rollouts ----------------------------------------------------------------------
ToolEnvironment = Callable[[list, str], "list | None"]
"""``env(conversation, last_answer) -> tool messages to append, or None when the episode ends``.

``conversation`` is the prompt's messages plus the response's turns so far (the last one the
assistant's); the returned messages (usually ``role="tool"``) are shown to the model, which then
answers again. Their tokens are inputs only: mask 0, never trained on."""


def continuation_ids(tokenizer, conversation_ids: Sequence[int], messages: list, added: list) -> list[int]:
    """Token ids that take ``conversation_ids`` (the tokens so far) to the next assistant turn after ``added``.

    The chat template renders ``messages + added`` with a generation prompt; the part after the
    text of the tokens so far is tokenised. Raises ``ValueError`` when the template does not extend
    the conversation's text (a template that rewrites earlier turns cannot be continued token-exactly).
    """
    from agentladder.models.chat import render

    so_far = tokenizer.decode(list(conversation_ids), skip_special_tokens=False)
    full = render(tokenizer, [*messages, *added], add_generation_prompt=True)
    if not full.startswith(so_far):
        raise ValueError("the chat template does not extend the conversation text; cannot continue a multi-turn "
                         "rollout token-exactly")
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
    from agentladder.data.schema import Message

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
            step_params = SamplingParams(room, params.temperature, params.top_p, params.stop, params.stop_at_json)
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

    def generate(self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[list[Completion]]:
        sp = self._vllm.SamplingParams(
            n=n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None, include_stop_str_in_output=True, logprobs=0)
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
        from agentladder.models.lora import is_lora

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
            raise ValueError("the vllm backend needs model_path (a folder or hub id vLLM can load)")
        return VLLMRollout(model_path, tokenizer, **kwargs)
    raise ValueError(f"unknown rollout backend {name!r}: choose local or vllm")


__all__ = ["Completion", "LocalRollout", "RolloutBackend", "SamplingParams", "ToolEnvironment", "VLLMRollout",
           "continuation_ids", "make_rollout", "multi_turn_generate", "sample_tokens"]
