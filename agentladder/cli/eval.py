"""``agentladder eval``: a thin shell over :func:`agentladder.evals.evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.errors import ConfigError, MissingFileError
from agentladder.evals.preference import TASK as PREFERENCE_TASK
from agentladder.evals.preference import preference_accuracy, table
from agentladder.evals.retrieval import evaluate_retrieval
from agentladder.evals.runner import default_out, evaluate


@friendly_errors
def eval_command(
    model: Annotated[list[str], typer.Option(
        "--model", help="Model to evaluate (repeat for side by side): alias, run folder, hub id or openai:MODEL[@URL]; "
        "retrieval: minilm, an embedding model folder, bm25 or hybrid:MODEL.")],
    task: Annotated[str, typer.Option(
        help="Task name (or module:attribute); retrieval scores rankers on a knowledge-base split; "
             "preference-accuracy scores reward models on --data pairs.")] = "medication-directions",
    data: Annotated[str | None, typer.Option(
        help="JSONL rows to score \\[default: the task's generated test split, 300 rows]; retrieval: a query file (kb/test).")] = None,
    corpus: Annotated[str | None, typer.Option(
        help="retrieval: the corpus.jsonl \\[default: the one beside --data].")] = None,
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
    if rubric and rubric.startswith("@"):
        if not Path(rubric[1:]).is_file():
            raise MissingFileError(f"--rubric {rubric}: no such file")
        rubric = Path(rubric[1:]).read_text(encoding="utf-8").strip()
    folder = out or str(default_out(task.split(":")[-1]))
    if task == "retrieval":
        if not data:
            raise ConfigError("--task retrieval needs --data: a query file of a knowledge base (kb/test)")
        found = evaluate_retrieval(model, data, corpus=corpus, out=folder, limit=limit, n_resamples=bootstrap)
        stdout.print(found.table())
        stderr.print(f"[green]done[/]: report.json, report.md and rankings.jsonl in {folder}")
        return
    if task == PREFERENCE_TASK:
        if data is None:
            raise ConfigError(f"--task {PREFERENCE_TASK} needs --data: a JSONL file of held-out pairs")
        stdout.print(table(preference_accuracy(model, data, out=folder, limit=limit, n_resamples=bootstrap,
                                               batch_size=batch_size)))
        stderr.print(f"[green]done[/]: report.json, report.md and scores.jsonl in {folder}")
        return
    report = evaluate(
        model, task, data=data, shots=shots, limit=limit, out=folder, batch_size=batch_size,
        max_new_tokens=max_new_tokens, data_seed=data_seed, similarity=similarity, judge=judge, rubric=rubric,
        baseline=baseline, n_resamples=bootstrap, progress=not quiet,
    )
    stdout.print(report.table())
    stderr.print(f"[green]done[/]: report.json, report.md, plots and samples.jsonl in {folder}")


__all__ = ["eval_command"]
