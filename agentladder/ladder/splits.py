"""The climb's held-out splits: one that decides, the others that only report.

- ``validation`` decides: every rung is scored on it and the gate keeps or rejects the rung on those
  figures, which also fixes the model the next rung starts from and when the climb ends.
- ``test`` reports: a kept rung is scored on it once, after its verdict; nothing reads it for a decision.
- ``shifted`` reports too, beside the test split: rows written in ways the training data never uses
  (for a task whose generator has that split, or a file the ladder names).

Each split is a file of the task's rows: the one the ladder names, or the task's generated split written
once into the climb's folder. A ``retrieval`` ladder's splits are query files of a knowledge-base folder
(``{"id", "text", "relevant"}`` rows, ``corpus.jsonl`` beside them), named by ``eval.validation`` and
``eval.data``. No two splits may share a row (compared by their lower-cased,
space-normalised input), so a figure on one is never a figure on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentladder.errors import ConfigError, DataError, MissingFileError
from agentladder.ladder.config import RETRIEVAL, LadderConfig
from agentladder.ladder.registry import file_hash
from agentladder.tasks import get_task, write_data
from agentladder.tasks.retrieval.kb import load_split
from agentladder.tasks.task import Task, input_key

DECIDES = "validation"
"""The split every decision of the climb is made on."""


@dataclass(frozen=True)
class Split:
    """One held-out split of the climb."""

    name: str
    """``validation``, ``test`` or ``shifted``."""
    path: str
    rows: int
    hash: str | None
    """SHA-256 (first 16 hex) of the file: the registry's record of exactly which rows."""
    generated: bool
    """Written from the task's generator (else the ladder's own file)."""

    @property
    def decides(self) -> bool:
        return self.name == DECIDES

    def record(self) -> dict[str, Any]:
        """What the registry keeps of the split a version was decided or reported on."""
        return {"split": self.name, "rows": self.rows, "path": str(Path(self.path).resolve()), "hash": self.hash}


def prepare_splits(config: LadderConfig, out: Path) -> list[Split]:
    """The validation split, then the test split, then the shifted split when there is one; each checked
    to share no row with the others."""
    if config.task == RETRIEVAL:
        return _query_splits(config)
    task = get_task(config.task)
    ev = config.eval
    if ev.validation is None and "validation" not in task.splits:
        raise ConfigError(f"eval.validation: task {task.name!r} has no generator, so the climb needs a validation "
                          "file to decide on (a JSONL of the task's rows, none of them in eval.data)")
    if ev.data is None and "test" not in task.splits:
        raise ConfigError(f"eval.data: task {task.name!r} has no generator: give the test file to report on")
    splits = [_split(task, "validation", ev.validation, ev.validation_rows, config, out),
              _split(task, "test", ev.data, ev.rows, config, out)]
    if ev.shifted is not None or ("shifted" in task.splits and ev.shifted_rows > 0):
        splits.append(_split(task, "shifted", ev.shifted, ev.shifted_rows, config, out))
    _check_disjoint(task, splits)
    return splits


def split_inputs(task: Task | str, split: Split) -> set[str]:
    """The normalised inputs of a split's rows (a retrieval split's query texts)."""
    if task == RETRIEVAL:
        return {input_key(q.text) for q in load_split(split.path)[1]}
    return {input_key(s.input) for s in get_task(task).load(split.path)}


def _query_splits(config: LadderConfig) -> list[Split]:
    """A retrieval ladder's validation and test query files, checked (rows, ids) and sharing no query."""
    splits = []
    for name, key, given in (("validation", "validation", config.eval.validation), ("test", "data", config.eval.data)):
        if given is None:
            raise ConfigError(f"eval.{key}: a retrieval ladder needs its {name} query file (kb/{name}.jsonl)")
        if not Path(given).exists():
            raise MissingFileError(f"eval.{key}: {given}: no such file")
        splits.append(Split(name, given, len(load_split(given)[1]), file_hash(given), generated=False))
    texts = [split_inputs(RETRIEVAL, s) for s in splits]
    shared = texts[0] & texts[1]
    if shared:
        raise DataError(splits[1].path, None, None, f"{len(shared)} of its queries are also in the validation split "
                        f"({splits[0].path}), e.g. {sorted(shared)[0][:60]!r}: the splits must share no query")
    return splits


def _split(task: Task, name: str, given: str | None, rows: int, config: LadderConfig, out: Path) -> Split:
    if given is not None:
        if not Path(given).exists():
            key = {"validation": "validation", "test": "data", "shifted": "shifted"}[name]
            raise MissingFileError(f"eval.{key}: {given}: no such file")
        return Split(name, given, len(task.load(given)), file_hash(given), generated=False)
    path = out / f"{name}.jsonl"
    if not path.exists():
        write_data(config.task, name, rows, path, seed=config.eval.seed)
    return Split(name, str(path), rows, file_hash(path), generated=True)


def _check_disjoint(task: Task, splits: list[Split]) -> None:
    keys = {s.name: [input_key(r.input) for r in task.load(s.path)] for s in splits}
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            shared = set(keys[a.name]) & set(keys[b.name])
            if shared:
                example = next(k for k in keys[b.name] if k in shared)
                raise DataError(b.path, None, None, f"{len(shared)} of its rows are also in the {a.name} split "
                                f"({a.path}), e.g. {example[:60]!r}: the splits must share no row")


__all__ = ["DECIDES", "Split", "prepare_splits", "split_inputs"]
