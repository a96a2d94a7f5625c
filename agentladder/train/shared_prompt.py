"""One prompt, N answers: the batch builder of every trainer that scores answers to a prompt.

An RL group is a prompt and the ``G`` responses sampled for it; a preference
pair is a prompt and two answers (chosen, rejected); a KTO row is a prompt, its
response and another row's response (for the KL estimate), or its response
alone. All of them are :class:`Answer` rows: answers with the same ``group``
key share their prompt. A micro-batch is built one of two ways.

**Shared prompt** (:func:`shared_prompt_batch`): one ``(1, T)`` sequence that
holds each group's prompt once, followed by all of its answers,
``prompt | y_1 | y_2 | ... | y_k``:

- ``position_ids`` run ``0..P-1`` over the prompt and ``P..`` again over every
  answer, so each answer sits where it would after the prompt alone;
- the attention kernel (:data:`~agentladder.models.attention.GROUP_PROMPT_ATTENTION`,
  switched on by :func:`use_shared_prompt_attention`) lets the prompt attend
  causally to itself and each answer attend to the whole prompt and causally to
  itself, never to its siblings;
- the first token of each answer is predicted from the prompt's last position.

So each answer gets exactly the log-probabilities it would get after its prompt
alone (tested against separate rows, values and gradients), while the prompt's
tokens go through the model once per group instead of once per answer: on a
task with a 300-token system prompt and 64-token answers that is most of a
step's tokens.

**Padded** (:func:`padded_prompt_batch`): ``prompt + y_i`` rows, right-padded,
for models whose attention is not ``sdpa`` (or ``share_prompt: false``).

Either way the output head runs only at the ``K`` positions that predict a
scored token, and :func:`token_outputs` returns per-token quantities as
``(A, T)`` matrices over the ``A`` answers in input order (``T`` the longest
answer), 0 where ``mask`` is 0: the shape :mod:`agentladder.train.rl_losses`
takes. Tokens with mask 0 inside an answer (a tool's output) are model inputs
but never scored, so they get no gradient. :func:`answer_logps` sums them per
answer, as the preference losses want.

The pair layer at the end (:class:`EncodedTriple`, :func:`shared_batch`,
:func:`padded_batch`, :func:`completion_logps`) is this builder with N = 2:
row ``r``'s tails are answers ``2r`` and ``2r + 1`` of group ``r``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentladder.models.attention import use_group_prompt_attention
from agentladder.models.chat import TokenizedRow


@dataclass
class Answer:
    """One answer to a prompt, with which of its tokens are scored."""

    group: int
    """Answers with the same ``group`` share their prompt (it must be the same ids)."""
    prompt: list[int]
    completion: list[int]
    mask: list[int]
    """1 where the completion token is scored (trained on); 0 on context such as a tool's output."""


def use_shared_prompt_attention(model) -> bool:
    """Switch a model whose attention is ``sdpa`` to the one-prompt-N-answers kernel; ``False`` if it cannot."""
    return use_group_prompt_attention(model)


# -- batches ------------------------------------------------------------------------------------
def _answer_mask(answers: Sequence[Answer]) -> torch.Tensor:
    """``(A, T)`` float: each answer's mask, zero-padded to the longest answer."""
    width = max(1, max(len(a.completion) for a in answers))
    mask = torch.zeros(len(answers), width)
    for i, a in enumerate(answers):
        mask[i, : len(a.mask)] = torch.tensor(a.mask, dtype=torch.float32)
    return mask


def _scoring(keep: list[int], targets: list[int], rows: list[int], cols: list[int], mask: torch.Tensor,
             n_tokens: int) -> dict:
    """The entries both layouts share: which positions are scored, and where each lands in ``(A, T)``."""
    return {
        "keep": torch.tensor(keep, dtype=torch.long),  # (K,) positions whose logits are needed
        "targets": torch.tensor(targets, dtype=torch.long),  # (K,) the tokens they predict
        "rows": torch.tensor(rows, dtype=torch.long),  # (K,) the answer each belongs to
        "cols": torch.tensor(cols, dtype=torch.long),  # (K,) and its index in that answer
        "mask": mask,  # (A, T)
        "n_tokens": n_tokens,
        "n_trained_tokens": int(mask.sum()),
    }


def shared_prompt_batch(answers: Sequence[Answer]) -> dict:
    """One ``(1, T)`` sequence: each group's prompt once, then its answers (see the module docstring).

    Carries ``input_ids``, ``position_ids``, ``layout`` (per group ``(start, prompt_end,
    (end of each answer, ...))``, what the kernel reads) and the scoring entries
    ``keep``, ``targets``, ``rows``, ``cols`` (each ``(K,)``), ``mask`` (``(A, T)``).
    Groups are laid out in the order their first answer appears; ``rows`` keep the input order.
    """
    order: dict[int, list[int]] = {}
    for i, a in enumerate(answers):
        order.setdefault(a.group, []).append(i)
    ids: list[int] = []
    positions: list[int] = []
    layout, keep, targets, rows, cols = [], [], [], [], []
    for members in order.values():
        prompt = answers[members[0]].prompt
        start = len(ids)
        p = start + len(prompt)
        ids += prompt
        positions += list(range(len(prompt)))
        ends = []
        for i in members:
            a = answers[i]
            t0 = len(ids)
            ids += a.completion
            positions += list(range(len(prompt), len(prompt) + len(a.completion)))
            ends.append(len(ids))
            for j, m in enumerate(a.mask):
                if m:
                    keep.append(p - 1 if j == 0 else t0 + j - 1)
                    targets.append(a.completion[j])
                    rows.append(i)
                    cols.append(j)
        layout.append((start, p, tuple(ends)))
    return {
        "input_ids": torch.tensor([ids]),  # (1, T)
        "position_ids": torch.tensor([positions]),  # (1, T)
        "layout": layout,
        **_scoring(keep, targets, rows, cols, _answer_mask(answers), len(ids)),
    }


def padded_prompt_batch(answers: Sequence[Answer], pad_id: int) -> dict:
    """``prompt + answer`` rows, right-padded ``(A, L)``: the ordinary layout, for any attention.

    Carries ``input_ids``, ``attention_mask``, ``keep_rows`` (``(K,)`` the row of each
    scored position) and the scoring entries of :func:`shared_prompt_batch`.
    """
    seqs = [a.prompt + a.completion for a in answers]
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (A, L)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)  # (A, L)
    keep, targets, rows, cols = [], [], [], []
    for i, (a, seq) in enumerate(zip(answers, seqs, strict=True)):
        ids[i, : len(seq)] = torch.tensor(seq)
        attn[i, : len(seq)] = 1
        p = len(a.prompt)
        for j, m in enumerate(a.mask):
            if m:
                keep.append(p + j - 1)
                targets.append(a.completion[j])
                rows.append(i)
                cols.append(j)
    return {
        "input_ids": ids,
        "attention_mask": attn,
        "keep_rows": torch.tensor(rows, dtype=torch.long),
        **_scoring(keep, targets, rows, cols, _answer_mask(answers), int(attn.sum())),
    }


# -- the forward --------------------------------------------------------------------------------
def _scored_logits(model, batch: dict, want_hidden: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(K, V)`` fp32 logits at the scored positions (and ``(K, H)`` final hidden states when asked)."""
    device = next(model.parameters()).device
    keep = batch["keep"].to(device)
    if "layout" in batch:  # the output head runs only at the K positions that predict a scored token
        out = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                    logits_to_keep=keep, use_cache=False, output_hidden_states=want_hidden,
                    group_prompt_layout=batch["layout"])
        logits = out.logits[0]  # (K, V)
        hidden = out.hidden_states[-1][0, keep] if want_hidden else None  # (K, H)
    else:
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    use_cache=False, output_hidden_states=want_hidden)
        kr = batch["keep_rows"].to(device)
        logits = out.logits[kr, keep]  # (K, V)
        hidden = out.hidden_states[-1][kr, keep] if want_hidden else None  # (K, H)
    return logits.float(), hidden


def _target_logps(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(target), logsumexp)``, both ``(K,)``.

    ``log p(y) = z_y - logsumexp(z)``: unlike ``log_softmax`` this keeps no second ``(K, V)`` tensor for backward.
    """
    lse = torch.logsumexp(logits, -1)  # (K,)
    return logits.gather(-1, targets.to(logits.device)[:, None]).squeeze(-1) - lse, lse


@dataclass
class TokenOutputs:
    logps: torch.Tensor
    """``(A, T)`` log-probability of each answer token (0 where ``mask`` is 0), fp32, with grad."""
    entropy: torch.Tensor | None = None
    """``(A, T)`` entropy of the next-token distribution (detached)."""
    values: torch.Tensor | None = None
    """``(A, T)`` the value head's output (with grad)."""


def token_outputs(model, batch: dict, *, temperature: float = 1.0, value_head=None,
                  entropy: bool = False) -> TokenOutputs:
    """Per-token log-probabilities of the batch's answers under ``model`` (and values, entropy).

    Logits are divided by the sampling ``temperature`` (1 for greedy), so they match the sampler's.
    """
    logits, hidden = _scored_logits(model, batch, value_head is not None)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    lp, lse = _target_logps(logits, batch["targets"])
    device = lp.device
    shape = batch["mask"].shape
    rows, cols = batch["rows"].to(device), batch["cols"].to(device)

    def scatter(v: torch.Tensor) -> torch.Tensor:  # (K,) -> (A, T)
        m = torch.zeros(shape, dtype=v.dtype, device=device)
        return m.index_put((rows, cols), v)

    ent = None
    if entropy:  # H = logsumexp(z) - sum_v p_v z_v, in chunks of rows so no (K, V) copy is made at once
        with torch.no_grad():
            parts = [lse[i : i + 256] - (torch.softmax(logits[i : i + 256], -1) * logits[i : i + 256]).sum(-1)
                     for i in range(0, logits.shape[0], 256)]
            ent = scatter(torch.cat(parts) if parts else lse.new_zeros(0))
    values = scatter(value_head(hidden.float()).squeeze(-1)) if hidden is not None else None
    return TokenOutputs(scatter(lp), ent, values)


def answer_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sums, counts)``, both ``(A,)``: each answer's summed log-probability of its scored tokens, and their number.

    ``sums`` is fp32, with grad when the model has grad.
    """
    logits, _ = _scored_logits(model, batch, False)
    lp, _ = _target_logps(logits, batch["targets"])  # (K,)
    rows = batch["rows"].to(lp.device)
    n = batch["mask"].shape[0]
    sums = lp.new_zeros(n).index_add(0, rows, lp)
    counts = torch.bincount(rows, minlength=n).to(lp.dtype)
    return sums, counts


# -- pairs: a prompt and two tails --------------------------------------------------------------
@dataclass
class EncodedTriple:
    """A prompt and two tails, with which tail tokens are scored.

    A preference pair is ``(prompt, chosen, rejected)``; a KTO row is ``(prompt, response,
    another row's response)``, the last for KTO's KL estimate (empty without a partner).
    """

    prompt: list[int]
    a_ids: list[int]
    a_mask: list[int]
    """1 where the token is scored (a trained assistant token)."""
    b_ids: list[int]
    b_mask: list[int]
    label: bool | None = None
    """KTO: whether tail ``a`` is desirable; ``None`` for pairs."""
    ref_a: float | None = None
    """Precomputed reference log-probability of tail ``a`` (filled before training)."""
    ref_b: float | None = None
    embedding: list[float] | None = None
    """An embedding of the prompt (RPO's prompt-similarity weights); ``None`` for other losses."""

    def __len__(self) -> int:
        return len(self.prompt) + len(self.a_ids) + len(self.b_ids)


def split_shared_prompt(a: TokenizedRow, b: TokenizedRow, max_length: int) -> EncodedTriple | None:
    """The longest common prefix of two tokenised conversations before either's first scored token,
    and the two tails after it, each cut so prompt plus tail fits ``max_length``.

    ``None`` when the prompt leaves no room or a tail has no scored token left.
    """
    first_a = a.mask.index(1) if 1 in a.mask else len(a)
    first_b = b.mask.index(1) if 1 in b.mask else len(b)
    limit = min(first_a, first_b)
    p = 0
    while p < limit and a.input_ids[p] == b.input_ids[p]:
        p += 1
    if p == 0 or p >= max_length:
        return None
    room = max_length - p
    triple = EncodedTriple(a.input_ids[:p], a.input_ids[p:][:room], a.mask[p:][:room],
                           b.input_ids[p:][:room], b.mask[p:][:room])
    if sum(triple.a_mask) == 0 or (triple.b_ids and sum(triple.b_mask) == 0):
        return None
    return triple


def prompt_and_tail(row: TokenizedRow, max_length: int) -> EncodedTriple | None:
    """A single response (KTO without a KL partner): the prompt is everything before the first scored token."""
    if 1 not in row.mask:
        return None
    p = row.mask.index(1)
    if p == 0 or p >= max_length:
        return None
    room = max_length - p
    return EncodedTriple(row.input_ids[:p], row.input_ids[p:][:room], row.mask[p:][:room], [], [])


def pair_answers(rows: Sequence[EncodedTriple]) -> list[Answer]:
    """Row ``r``'s tails as answers ``2r`` (``a``) and ``2r + 1`` (``b``, possibly empty) of group ``r``."""
    return [Answer(r, row.prompt, ids, mask) for r, row in enumerate(rows)
            for ids, mask in ((row.a_ids, row.a_mask), (row.b_ids, row.b_mask))]


def _pair_fields(rows: Sequence[EncodedTriple]) -> dict:
    """What a pair batch carries besides the answers: its units (rows), references and KTO labels."""
    out: dict = {"n_units": len(rows)}
    if rows[0].ref_a is not None:
        out["ref_a"] = torch.tensor([r.ref_a for r in rows], dtype=torch.float64)  # (R,)
        out["ref_b"] = torch.tensor([r.ref_b if r.ref_b is not None else 0.0 for r in rows], dtype=torch.float64)
    if rows[0].label is not None:
        out["label"] = torch.tensor([bool(r.label) for r in rows])  # (R,)
    if rows[0].embedding is not None:
        out["prompt_embeddings"] = torch.tensor([r.embedding for r in rows], dtype=torch.float32)  # (R, D)
    return out


def shared_batch(rows: Sequence[EncodedTriple]) -> dict:
    """Pairs as one ``(1, T)`` sequence, ``prompt | a | b`` per row (:func:`shared_prompt_batch`)."""
    return {**shared_prompt_batch(pair_answers(rows)), **_pair_fields(rows)}


def padded_batch(rows: Sequence[EncodedTriple], pad_id: int) -> dict:
    """``prompt + a`` and ``prompt + b`` as right-padded rows ``2r``, ``2r + 1`` (:func:`padded_prompt_batch`).

    Rows with no tail ``b`` (KTO without a partner) still get a second, prompt-only row,
    so answer ``2r + 1`` is always row ``r``'s ``b``.
    """
    return {**padded_prompt_batch(pair_answers(rows), pad_id), **_pair_fields(rows)}


def completion_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probabilities of each row's tails and their scored-token counts (:func:`answer_logps`).

    Returns ``(logps, counts)``, both ``(R, 2)``: column 0 tail ``a``, column 1 tail ``b``.
    """
    sums, counts = answer_logps(model, batch)
    return sums.view(-1, 2), counts.view(-1, 2)


__all__ = [
    "Answer",
    "EncodedTriple",
    "TokenOutputs",
    "answer_logps",
    "completion_logps",
    "pair_answers",
    "padded_batch",
    "padded_prompt_batch",
    "prompt_and_tail",
    "shared_batch",
    "shared_prompt_batch",
    "split_shared_prompt",
    "token_outputs",
    "use_shared_prompt_attention",
]
