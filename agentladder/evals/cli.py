"""The ``agentladder eval`` and ``agentladder data make`` commands (thin shells over the Python API)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
stdout = Console()


def _provider_errors(fn):
    """A provider that cannot answer is an expected failure: one line, like bad data."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from agentladder.models.providers import ProviderError

        try:
            return fn(*args, **kwargs)
        except ProviderError as e:
            raise ValueError(str(e)) from None

    return wrapper


def eval_command(
    model: Annotated[list[str], typer.Option(
        "--model", help="Model to evaluate (repeat for side by side): alias, run folder, hub id or openai:MODEL[@URL].")],
    task: Annotated[str, typer.Option(help="Task name (or module:attribute).")] = "medication-directions",
    data: Annotated[str | None, typer.Option(
        help="JSONL rows to score \\[default: the task's generated test split, 300 rows].")] = None,
    shots: Annotated[int, typer.Option(help="Few-shot examples from the training split.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Score only the first N rows.")] = None,
    out: Annotated[str | None, typer.Option(
        help="Report folder; rerunning with the same folder reuses finished outputs \\[default: reports/TASK-TIME].")] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch (local models).")] = 8,
    max_new_tokens: Annotated[int | None, typer.Option(help="Generation budget \\[default: the task's].")] = None,
    data_seed: Annotated[int, typer.Option(help="Seed of the generated split when no --data is given.")] = 0,
    similarity: Annotated[bool, typer.Option(
        help="Add semantic similarity to the reference answer (packaged MiniLM).")] = False,
    judge: Annotated[str | None, typer.Option(help="Model that grades every answer against --rubric.")] = None,
    rubric: Annotated[str | None, typer.Option(help="Rubric text for the judge, or @FILE.")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="Model the others are compared with pairwise by the judge (win rate, both orders).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Evaluate one or more models on a task; print a table, write report.json, report.md, plots and samples."""
    from agentladder.evals.runner import default_out, evaluate

    if rubric and rubric.startswith("@"):
        rubric = Path(rubric[1:]).read_text(encoding="utf-8").strip()
    folder = out or str(default_out(task.split(":")[-1]))
    report = evaluate(
        model, task, data=data, shots=shots, limit=limit, out=folder, batch_size=batch_size,
        max_new_tokens=max_new_tokens, data_seed=data_seed, similarity=similarity, judge=judge, rubric=rubric,
        baseline=baseline, n_resamples=bootstrap, progress=not quiet,
    )
    stdout.print(report.table())
    err.print(f"[green]done[/]: report.json, report.md, plots and samples.jsonl in {folder}")


def data_make(
    task: Annotated[str, typer.Argument(help="Task with a data generator, e.g. medication-directions.")],
    split: Annotated[str, typer.Option(help="train, validation or test (splits never share a row).")] = "train",
    n: Annotated[int, typer.Option(help="Number of rows.")] = 1000,
    out: Annotated[str | None, typer.Option(help="JSONL file to write \\[default: TASK-SPLIT.jsonl].")] = None,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    format: Annotated[str, typer.Option(
        "--format", help="rows (id, text, target: for evaluation) or sft (conversations with the eval prompt).")] = "rows",
    balance: Annotated[str | None, typer.Option(
        help="A target field whose values are drawn more evenly (square root of their counts): for training data.")] = None,
) -> None:
    """Generate a task's data: evaluation rows, or SFT conversations that use the zero-shot eval prompt."""
    from agentladder.tasks.make import write_data

    path = out or f"{task}-{split}{'-sft' if format == 'sft' else ''}.jsonl"
    count = write_data(task, split, n, path, seed=seed, format=format, balance=balance)  # type: ignore[arg-type]
    err.print(f"[green]done[/]: {count} {split} rows ({format}) -> {path}")


def register(app: typer.Typer, data_app: typer.Typer, wrap) -> None:
    """Add the commands to the main CLI; ``wrap`` is its error decorator (``friendly_errors``)."""
    app.command("eval")(wrap(_provider_errors(eval_command)))
    data_app.command("make")(wrap(data_make))
