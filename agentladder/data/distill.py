"""Distillation data: a teacher model's answers written as SFT conversations.

Prompts are conversations (the messages up to the last non-assistant turn
are the prompt) or RL prompts. Answers are appended to ``<out>.partial`` batch
by batch, so a killed run resumes where it stopped, with the random state it had
there (``<out>.partial.rng``: a sampling teacher answers as in an uninterrupted
run); the finished file is renamed into place at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from agentladder.data.io import DataError, append_json_lines, iter_json_lines, validate_row
from agentladder.data.rng import resume_appended, rng_marked
from agentladder.data.schema import Conversation, Message, RLPrompt

Answerer = Callable[[Sequence[Sequence[Message]]], list[str]]
"""Anything that answers a batch of prompts: a provider's ``complete`` with its settings bound
(a local model, an HTTP endpoint, a script). This module runs no model itself."""


def _prompts(path: str | os.PathLike) -> list[tuple[str, list[Message]]]:
    out = []
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, dict) and ("messages" in obj or "completion" in obj):
            conv = validate_row(Conversation, obj, path, lineno)
            msgs = list(conv.messages)
            while msgs and msgs[-1].role == "assistant":
                msgs.pop()
            if not msgs:
                raise DataError(path, lineno, "messages", "no prompt before the assistant turns")
            out.append((conv.id or f"row-{lineno}", msgs))
        else:
            rl = validate_row(RLPrompt, obj, path, lineno)
            out.append((rl.id or f"row-{lineno}", list(rl.prompt)))
    if not out:
        raise DataError(path, None, None, "no rows")
    return out


def distill(answer: Answerer, prompts_path: str | os.PathLike, out_path: str | os.PathLike, *,
            batch_size: int = 8, teacher_name: str = "teacher", progress: bool = True) -> int:
    """Answer every prompt with ``answer`` and write conversations to ``out_path``; return the count."""
    prompts = _prompts(prompts_path)
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    rng = partial.with_name(partial.name + ".rng")
    rows = [validate_row(Conversation, obj, partial, lineno) for lineno, obj in resume_appended(partial, rng)]
    done = {c.id for c in rows}
    lines = len(rows)
    todo = [(i, m) for i, m in prompts if i not in done]
    from rich.progress import Progress

    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"distilling from {teacher_name}", total=len(prompts), completed=len(done))
        for b in range(0, len(todo), batch_size):
            chunk = todo[b : b + batch_size]
            with rng_marked(rng, lines, len(chunk)):
                answers = answer([m for _, m in chunk])
            lines += len(chunk)
            append_json_lines(partial, [
                Conversation(id=rid, messages=[*msgs, Message(role="assistant", content=text)],
                             metadata={"teacher": teacher_name}).model_dump(mode="json", exclude_none=True)
                for (rid, msgs), text in zip(chunk, answers, strict=True)])
            bar.update(task, advance=len(chunk))
    os.replace(partial, out_path)
    rng.unlink(missing_ok=True)
    return len(prompts)

