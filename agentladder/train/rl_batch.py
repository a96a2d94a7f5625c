"""RL training batches: each prompt once, followed by all of its sampled responses.

A rollout gives ``G`` responses per prompt. A micro-batch lays each prompt
group end to end in one ``(1, T)`` sequence, ``prompt | y_1 | y_2 | ... | y_k``:

- ``position_ids`` run ``0..P-1`` over the prompt and ``P..`` again over every
  response, so each response sits where it would after the prompt alone;
- the attention kernel (:data:`GROUP_PROMPT_ATTENTION`) lets the prompt attend
  causally to itself and each response attend to the whole prompt and causally
  to itself, never to its siblings;
- the first token of each response is predicted from the prompt's last position.

So each response gets exactly the log-probabilities it would get after its
prompt alone (tested against separate padded rows), while the prompt's tokens
go through the model, forward and backward, once per group instead of ``G``
times: on a task with a 300-token system prompt and 64-token answers that is
most of a step's tokens. Models whose attention is not ``sdpa`` get
:func:`padded_rl_batch` (``prompt + response`` rows, right-padded).

Per-token quantities come back as ``(B, T)`` matrices over the responses of the
micro-batch (``B`` responses, ``T`` the longest response), with ``mask`` 1 on
trained tokens: exactly the shape :mod:`agentladder.train.rl_losses` takes.
Tokens with mask 0 inside a response (a tool's output in a multi-turn rollout)
are model inputs but never scored, so they get no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentladder.models.attention import (
    GROUP_PROMPT_ATTENTION,
    use_group_prompt_attention,
)


@dataclass
class RLSample:
    """One sampled response, ready to train on."""

    group: int
    """Which prompt of the rollout it answers (responses to one prompt share it)."""
    prompt: list[int]
    completion: list[int]
    mask: list[int]
    """1 where the completion token is trained on (the policy's own tokens)."""
    advantages: list[float] | None = None
    """Per completion token (0 where ``mask`` is 0)."""
    old_logps: list[float] | None = None
    """Per completion token: log-probability under the policy that sampled it."""
    ref_logps: list[float] | None = None
    """Per completion token, under the reference policy (only when the KL coefficient is not 0)."""
    old_values: list[float] | None = None
    returns: list[float] | None = None
    truncated: bool = False

    @property
    def n_trained(self) -> int:
        return sum(self.mask)


def sample_from_conversation(tokenizer, conversation, group: int = 0, advantage: float | None = None) -> RLSample:
    """A multi-turn rollout (a :class:`~agentladder.data.Conversation` with tool turns) as one sample.

    The prompt is everything before the first trained assistant token; the completion is the
    rest, with mask 1 only on trained assistant turns, so tool outputs (and untrained turns)
    between them are read by the model but never trained on. ``advantage`` fills every trained
    token's advantage (an outcome reward already turned into an advantage).
    """
    from agentladder.models.chat import tokenize_conversation

    row = tokenize_conversation(tokenizer, conversation)
    if 1 not in row.mask:
        raise ValueError("the conversation has no trained assistant token")
    p = row.mask.index(1)
    mask = row.mask[p:]
    adv = None if advantage is None else [advantage * m for m in mask]
    return RLSample(group, row.input_ids[:p], row.input_ids[p:], mask, advantages=adv)


def _per_token(samples: Sequence[RLSample], name: str, width: int) -> torch.Tensor | None:
    if getattr(samples[0], name) is None:
        return None
    out = torch.zeros(len(samples), width)
    for i, s in enumerate(samples):
        v = getattr(s, name)
        out[i, : len(v)] = torch.tensor(v, dtype=torch.float32)
    return out


def _common(samples: Sequence[RLSample], units: str, n_tokens: int) -> dict:
    width = max(1, max(len(s.completion) for s in samples))
    mask = torch.zeros(len(samples), width)
    for i, s in enumerate(samples):
        mask[i, : len(s.mask)] = torch.tensor(s.mask, dtype=torch.float32)
    out = {"mask": mask, "n_samples": len(samples), "n_tokens": n_tokens, "n_trained_tokens": int(mask.sum())}
    for name in ("advantages", "old_logps", "ref_logps", "old_values", "returns"):
        t = _per_token(samples, name, width)
        if t is not None:
            out[name] = t
    has = (mask.sum(-1) > 0).sum()
    out["n_units"] = int(mask.sum()) if units == "tokens" else int(has)
    return out


def group_batch(samples: Sequence[RLSample], units: str = "tokens") -> dict:
    """One ``(1, T)`` sequence: each group's prompt once, then its responses (see the module docstring).

    ``units`` is what the loss divides by: ``tokens`` (trained tokens) or ``sequences``.
    Carries ``layout`` (per group ``(start, prompt_end, (end of each response, ...))``), ``keep``
    (``(K,)`` positions whose logits are needed), ``targets`` (``(K,)``), and ``rows``/``cols``
    (``(K,)``: the response and token each scored position belongs to).
    """
    order: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        order.setdefault(s.group, []).append(i)
    ids: list[int] = []
    positions: list[int] = []
    layout, keep, targets, rows, cols = [], [], [], [], []
    for members in order.values():
        prompt = samples[members[0]].prompt
        start = len(ids)
        p = start + len(prompt)
        ids += prompt
        positions += list(range(len(prompt)))
        ends = []
        for i in members:
            s = samples[i]
            t0 = len(ids)
            ids += s.completion
            positions += list(range(len(prompt), len(prompt) + len(s.completion)))
            ends.append(len(ids))
            for j, m in enumerate(s.mask):
                if m:
                    keep.append(p - 1 if j == 0 else t0 + j - 1)
                    targets.append(s.completion[j])
                    rows.append(i)
                    cols.append(j)
        layout.append((start, p, tuple(ends)))
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "layout": layout,
        "keep": torch.tensor(keep, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "rows": torch.tensor(rows, dtype=torch.long),
        "cols": torch.tensor(cols, dtype=torch.long),
        **_common(samples, units, len(ids)),
    }


def padded_rl_batch(samples: Sequence[RLSample], pad_id: int, units: str = "tokens") -> dict:
    """``prompt + response`` rows, right-padded ``(B, L)``: the ordinary layout, for any attention."""
    seqs = [s.prompt + s.completion for s in samples]
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    keep_rows, keep, targets, cols = [], [], [], []
    for i, (s, seq) in enumerate(zip(samples, seqs, strict=True)):
        ids[i, : len(seq)] = torch.tensor(seq)
        attn[i, : len(seq)] = 1
        p = len(s.prompt)
        for j, m in enumerate(s.mask):
            if m:
                keep_rows.append(i)
                keep.append(p + j - 1)
                targets.append(s.completion[j])
                cols.append(j)
    return {
        "input_ids": ids,
        "attention_mask": attn,
        "keep_rows": torch.tensor(keep_rows, dtype=torch.long),
        "keep": torch.tensor(keep, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "rows": torch.tensor(keep_rows, dtype=torch.long),
        "cols": torch.tensor(cols, dtype=torch.long),
        **_common(samples, units, int(attn.sum())),
    }


@dataclass
class TokenOutputs:
    logps: torch.Tensor
    """``(B, T)`` log-probability of each response token (0 where ``mask`` is 0), fp32, with grad."""
    entropy: torch.Tensor | None = None
    """``(B, T)`` entropy of the next-token distribution (detached)."""
    values: torch.Tensor | None = None
    """``(B, T)`` the value head's output (with grad)."""


def token_outputs(model, batch: dict, *, temperature: float = 1.0, value_head=None,
                  entropy: bool = False) -> TokenOutputs:
    """Per-token log-probabilities of the batch's responses under ``model`` (and values, entropy).

    Logits are divided by the sampling ``temperature`` (1 for greedy), so they match the sampler's.
    The output head runs only at the ``K`` positions that predict a trained token.
    """
    device = next(model.parameters()).device
    keep = batch["keep"].to(device)
    want_hidden = value_head is not None
    if "layout" in batch:
        out = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                    logits_to_keep=keep, use_cache=False, output_hidden_states=want_hidden,
                    group_prompt_layout=batch["layout"])
        logits = out.logits[0]  # (K, V)
        hidden = out.hidden_states[-1][0, keep] if want_hidden else None  # (K, H)
    else:
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    use_cache=False, output_hidden_states=want_hidden)
        kr = batch["keep_rows"].to(device)
        logits = out.logits[kr, keep]
        hidden = out.hidden_states[-1][kr, keep] if want_hidden else None
    logits = logits.float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    # log p(y) = z_y - logsumexp(z): unlike log_softmax this keeps no second (K, V) tensor for backward.
    lse = torch.logsumexp(logits, -1)  # (K,)
    lp = logits.gather(-1, batch["targets"].to(device)[:, None]).squeeze(-1) - lse  # (K,)
    shape = batch["mask"].shape
    rows, cols = batch["rows"].to(device), batch["cols"].to(device)

    def scatter(v: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(shape, dtype=v.dtype, device=device)
        return m.index_put((rows, cols), v)

    ent = None
    if entropy:  # H = logsumexp(z) - sum_v p_v z_v, in chunks of rows so no (K, V) copy is made at once
        with torch.no_grad():
            parts = [lse[i : i + 256] - (torch.softmax(logits[i : i + 256], -1) * logits[i : i + 256]).sum(-1)
                     for i in range(0, logits.shape[0], 256)]
            ent = scatter(torch.cat(parts) if parts else lse.new_zeros(0))
    values = scatter(value_head(hidden.float()).squeeze(-1)) if want_hidden else None
    return TokenOutputs(scatter(lp), ent, values)


__all__ = ["GROUP_PROMPT_ATTENTION", "RLSample", "TokenOutputs", "group_batch", "padded_rl_batch",
           "sample_from_conversation", "token_outputs", "use_group_prompt_attention"]
