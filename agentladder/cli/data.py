"""``agentladder data make|check|pairs|distill``: thin shells over the data and task APIs."""

from __future__ import annotations

import functools
from typing import Annotated, get_args

import torch
import typer

from agentladder.agents.guard.data import KINDS as GUARD_KINDS
from agentladder.agents.guard.data import write_guard_rows
from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.data import io, schema
from agentladder.data.distill import distill
from agentladder.data.pairs import Pairing, pairs_from_feedback
from agentladder.errors import ConfigError
from agentladder.evals.sampling import pairs_from_task
from agentladder.models.providers import make_provider
from agentladder.tasks.make import write_data
from agentladder.tasks.retrieval.kb import write_pharmacy_kb

data_app = typer.Typer(no_args_is_help=True, help="Make, check and distil training data.")

KINDS = {"sft": schema.Conversation, "text": schema.TextRow, "pairs": schema.PreferencePair,
         "marked": schema.MarkedResponse, "rl": schema.RLPrompt}
"""The row schema each ``data check --kind`` validates against."""


@data_app.command("make")
@friendly_errors
def data_make(
    task: Annotated[str, typer.Argument(help="Task with a data generator (medication-directions, log-triage), pharmacy-kb (a knowledge-base folder), or guard-pii, guard-topics, guard-injection, guard-eval.")],
    split: Annotated[str, typer.Option(help="train, validation, test (they never share a row) or shifted (written in forms the others never use).")] = "train",
    n: Annotated[int | None, typer.Option(help="Number of rows \\[default: 1000; pharmacy-kb: the --split's default].")] = None,
    out: Annotated[str | None, typer.Option(help="JSONL file to write \\[default: TASK-SPLIT.jsonl; pharmacy-kb: a folder, kb].")] = None,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    format: Annotated[str, typer.Option(
        "--format", help="rows (id, text, target: for evaluation) or sft (conversations with the eval prompt).")] = "rows",
    balance: Annotated[str | None, typer.Option(
        help="A target field whose values are drawn more evenly (square root of their counts): for training data.")] = None,
    overwrite: Annotated[bool, typer.Option(help="pharmacy-kb: replace a knowledge base already in --out.")] = False,
) -> None:
    """Generate a task's data: evaluation rows, or SFT conversations that use the zero-shot eval prompt.

    ``guard-pii``, ``guard-topics``, ``guard-injection`` and ``guard-eval`` make the guard's labelled rows;
    ``pharmacy-kb`` writes a knowledge-base folder (``corpus.jsonl``, ``train``/``validation``/``test.jsonl``;
    ``--n`` with ``--split`` resizes that split).
    """
    if task == "pharmacy-kb":
        sizes = {split: n} if n is not None else {}
        counts = write_pharmacy_kb(out or "kb", sizes=sizes, seed=seed, overwrite=overwrite)
        stderr.print(f"[green]done[/]: {', '.join(f'{v} {k}' for k, v in counts.items())} -> {out or 'kb'}")
        return
    n = 1000 if n is None else n
    path = out or f"{task}-{split}{'-sft' if format == 'sft' else ''}.jsonl"
    if task in GUARD_KINDS:
        count = write_guard_rows(task, split, n, path, seed=seed)
        stderr.print(f"[green]done[/]: {count} {split} rows -> {path}")
        return
    count = write_data(task, split, n, path, seed=seed, format=format, balance=balance)  # type: ignore[arg-type]
    stderr.print(f"[green]done[/]: {count} {split} rows ({format}) -> {path}")


@data_app.command("check")
@friendly_errors
def data_check(
    path: str,
    kind: Annotated[str, typer.Option(help="sft, text, pairs, marked or rl.")] = "sft",
) -> None:
    """Validate a data file; report the first bad row by file, line and field."""
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    rows = io.load_rows(path, KINDS[kind])
    stdout.print(f"{path}: {len(rows)} valid {kind} rows")


@data_app.command("pairs")
@friendly_errors
def data_pairs(
    out: Annotated[str, typer.Option(help="JSONL file to write.")],
    model: Annotated[str | None, typer.Option(help="Model that answers (alias, run folder, hub id, openai:M).")] = None,
    task: Annotated[str | None, typer.Option(help="Task whose grader scores the answers.")] = None,
    feedback: Annotated[str | None, typer.Option(
        help="Instead of sampling: conversations with rewards, thumbs up/down rows, or pairs.")] = None,
    n: Annotated[int, typer.Option(help="Prompts to sample from.")] = 1000,
    k: Annotated[int, typer.Option(help="Answers sampled per prompt.")] = 4,
    temperature: float = 1.0,
    data: Annotated[str | None, typer.Option(help="The task's rows to use \\[default: its generated split].")] = None,
    split: str = "train",
    seed: int = 0,
    batch_size: Annotated[int, typer.Option(help="Answers generated at a time.")] = 16,
    max_new_tokens: Annotated[int | None, typer.Option(help="Generation budget \\[default: the task's].")] = None,
    format: Annotated[str, typer.Option(
        "--format", help="pairs (best vs worst) or marked (KTO rows, label = score >= threshold).")] = "pairs",
    threshold: Annotated[float | None, typer.Option(
        help="Score a desirable answer reaches \\[default: 1.0 from a task, 0.5 from feedback].")] = None,
    reward_key: Annotated[str | None, typer.Option(help="Feedback: which reward to rank by \\[default: their sum].")] = None,
    with_target: Annotated[bool, typer.Option(
        help="Add the task's reference answer as one more graded candidate.")] = False,
    pairing: Annotated[str, typer.Option(
        help="best_vs_worst (one pair a prompt) or each_worse (the best against every distinct lower-scored answer).")]
        = "best_vs_worst",
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Preference pairs (or KTO rows) from a model's sampled answers graded by a task, or from feedback."""
    if format not in ("pairs", "marked"):
        raise ConfigError(f"unknown format {format!r}: choose pairs or marked")
    if pairing not in get_args(Pairing):
        raise ConfigError(f"unknown pairing {pairing!r}: choose {' or '.join(get_args(Pairing))}")
    chosen = {} if threshold is None else {"threshold": threshold}  # else each source's own default
    if feedback:
        counts = pairs_from_feedback(feedback, out, format=format, reward_key=reward_key, **chosen)  # type: ignore[arg-type]
        stderr.print(f"[green]done[/]: {counts['rows']} rows from {counts['rows_read']} feedback rows -> {out}")
        return
    if not model or not task:
        raise ConfigError("give --model and --task to sample pairs, or --feedback FILE")
    counts = pairs_from_task(model, task, n, out, data=data, split=split, seed=seed, k=k, temperature=temperature,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, format=format,  # type: ignore[arg-type]
                             with_target=with_target, pairing=pairing, progress=not quiet, **chosen)  # type: ignore[arg-type]
    stderr.print(f"[green]done[/]: {counts['rows']} rows from {counts['prompts']} prompts x {k} answers "
              f"({counts['ties']} prompts with all answers scored alike) -> {out}")


@data_app.command("distill")
@friendly_errors
def data_distill(
    prompts: Annotated[str, typer.Option(help="JSONL of conversations or RL prompts to answer.")],
    out: Annotated[str, typer.Option(help="JSONL of conversations with the teacher's answers.")],
    teacher: Annotated[str, typer.Option(help="Teacher model: alias, folder or hub id.")] = "smollm2-135m",
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    batch_size: int = 8,
    seed: int = 0,
) -> None:
    """Write SFT data from a teacher model's answers (resumes a partial run)."""
    torch.manual_seed(seed)
    provider = make_provider(teacher, batch_size=batch_size)
    try:
        answer = functools.partial(provider.complete, max_new_tokens=max_new_tokens, temperature=temperature)
        n = distill(answer, prompts, out, batch_size=batch_size, teacher_name=teacher)
    finally:
        provider.close()
    stderr.print(f"[green]done[/]: {n} conversations -> {out}")


__all__ = ["data_app"]
