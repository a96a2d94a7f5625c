"""Preference data from feedback, and the best-against-worst rule pairs are built with.

From feedback (``agentladder data pairs --feedback FILE``): conversations that
carry rewards (the agents runtime and review queues write them), grouped by
prompt, best against worst; rows already marked ``label`` true or false (a
thumbs up or down), grouped the same way; or pairs, passed through.

Pairs sampled from a model and graded by a task's reward (``agentladder data pairs
--model M --task T``) are made in :mod:`agentladder.evals.sampling`: running a model
is not this layer's job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Literal

from agentladder.data.io import DataError, iter_json_lines, validate_row, write_jsonl
from agentladder.data.schema import Conversation, MarkedResponse, Message, PreferencePair

Format = Literal["pairs", "marked"]
"""``pairs``: best against worst per prompt (DPO); ``marked``: each answer labelled desirable or not (KTO)."""
Pairing = Literal["best_vs_worst", "each_worse"]
"""How a prompt's graded answers become pairs: ``best_vs_worst`` one pair, the best against the worst;
``each_worse`` the best against every distinct answer that scores below it (as many pairs as distinct
mistakes, so no single wrong value stands for all of a prompt's errors)."""


def best_vs_worst(answers: Sequence[str], rewards: Sequence[float]) -> tuple[int, int] | None:
    """Indices of the best and the worst answer (first of equals), or ``None`` when all rewards tie."""
    best = max(range(len(answers)), key=lambda i: (rewards[i], -i))
    worst = min(range(len(answers)), key=lambda i: (rewards[i], i))
    return None if rewards[best] == rewards[worst] else (best, worst)


def best_vs_each_worse(answers: Sequence[str], rewards: Sequence[float]) -> list[tuple[int, int]]:
    """``(best, worse)`` index pairs: the best answer (first of equals) against the first of every distinct answer
    text that scores below it, in the answers' order."""
    if not answers:
        return []
    best = max(range(len(answers)), key=lambda i: (rewards[i], -i))
    seen: set[str] = {answers[best]}
    out = []
    for i, (text, reward) in enumerate(zip(answers, rewards, strict=True)):
        if reward < rewards[best] and text not in seen:
            seen.add(text)
            out.append((best, i))
    return out


# -- feedback -------------------------------------------------------------------------------------
def _split_conversation(conv: Conversation) -> tuple[list[Message], list[Message]]:
    """Prompt (everything before the final run of assistant and tool turns) and response."""
    msgs = list(conv.messages)
    cut = len(msgs)
    while cut > 0 and msgs[cut - 1].role in ("assistant", "tool"):
        cut -= 1
    return msgs[:cut], msgs[cut:]


def _key(prompt: Sequence[Message]) -> str:
    return json.dumps([m.model_dump(mode="json", exclude_none=True) for m in prompt], sort_keys=True)


def read_feedback(path: str | os.PathLike, reward_key: str | None = None) -> list[tuple[list[Message], list[Message], float]]:
    """``(prompt, response, score)`` per row of a feedback file.

    Rows are conversations with ``rewards`` (score: ``rewards[reward_key]``, or their sum),
    or ``{prompt, completion, label}`` rows (score 1 for a thumbs up, 0 for down).
    Pairs give two rows (chosen 1, rejected 0).
    """
    out = []
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, dict) and "chosen" in obj:
            pair = validate_row(PreferencePair, obj, path, lineno)
            out += [(pair.prompt, pair.chosen, 1.0), (pair.prompt, pair.rejected, 0.0)]
        elif isinstance(obj, dict) and "label" in obj:
            row = validate_row(MarkedResponse, obj, path, lineno)
            out.append((row.prompt, row.completion, float(row.label)))
        else:
            conv = validate_row(Conversation, obj, path, lineno)
            prompt, response = _split_conversation(conv)
            if not prompt or not response:
                raise DataError(path, lineno, "messages", "needs a prompt followed by assistant turns")
            if reward_key is not None and reward_key not in conv.rewards:
                raise DataError(path, lineno, "rewards", f"no {reward_key!r} reward")
            if not conv.rewards:
                raise DataError(path, lineno, "rewards", "a feedback conversation needs a reward")
            score = conv.rewards[reward_key] if reward_key else sum(conv.rewards.values())
            out.append((prompt, response, float(score)))
    if not out:
        raise DataError(path, None, None, "no rows")
    return out


def pairs_from_feedback(path: str | os.PathLike, out: str | os.PathLike, *, format: Format = "pairs",
                        reward_key: str | None = None, threshold: float = 0.5) -> dict[str, int]:
    """Write pairs (best against worst per prompt) or KTO rows (score at least ``threshold``) from feedback."""
    rows = read_feedback(path, reward_key)
    written: list[PreferencePair | MarkedResponse] = []
    if format == "marked":
        written = [MarkedResponse(prompt=p, completion=r, label=s >= threshold, metadata={"score": s})
                   for p, r, s in rows]
    else:
        groups: dict[str, list[tuple[list[Message], list[Message], float]]] = {}
        for row in rows:
            groups.setdefault(_key(row[0]), []).append(row)
        for group in groups.values():
            pick = best_vs_worst([_key(r) for _, r, _ in group], [s for _, _, s in group])
            if pick is not None:
                (prompt, chosen, hi), (_, rejected, lo) = group[pick[0]], group[pick[1]]
                written.append(PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected,
                                              metadata={"chosen_score": hi, "rejected_score": lo}))
    write_jsonl(out, written)
    return {"rows_read": len(rows), "rows": len(written)}


__all__: list[str] = [
    "Format",
    "best_vs_worst",
    "pairs_from_feedback",
    "read_feedback",
]
