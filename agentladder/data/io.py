"""Reading and writing rows: JSONL with line-numbered errors, and Hugging Face ``datasets``.

Every reader validates each row against a schema from :mod:`agentladder.data.schema`
and, on the first bad row, raises :class:`DataError` naming the file, the line
and the field (``train.jsonl:12: messages[1].role: Input should be 'system', ...``).
Writers are atomic: the file appears complete or not at all.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentladder.data.schema import Conversation, TextRow
from agentladder.errors import DataError, data_error

T = TypeVar("T", bound=BaseModel)


def validate_row(schema: type[T], obj: Any, path: str | os.PathLike | None = None, line: int | None = None) -> T:
    """Validate one decoded row, turning pydantic's error into a :class:`DataError`."""
    if not isinstance(obj, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    try:
        return schema.model_validate(obj)
    except ValidationError as err:
        raise data_error(err, path, line) from None


def decode_json_line(path: str | os.PathLike | None, lineno: int, raw: str) -> Any:
    """One JSONL line decoded; a :class:`DataError` naming the file and line where it is not JSON."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(path, lineno, None, f"invalid JSON: {err.msg} (column {err.colno})") from None


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, decoded value)`` for each non-blank line of a JSONL file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                yield lineno, decode_json_line(path, lineno, raw)


def append_json_lines(path: str | os.PathLike, records: Iterable[Any]) -> None:
    """Append ``records`` to ``path`` as JSON lines, flushed and synced before returning: what a long run
    appends batch by batch stays on disk if it is killed (read it back with :func:`whole_lines`)."""
    with Path(path).open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def keep_steps(path: str | os.PathLike, step: int) -> list[dict[str, Any]]:
    """Cut a per-step log (JSON lines with a ``step``) back to the records of steps up to ``step``, for a run
    resumed from that step to write the rest again; return them. A line a kill cut short, or one without a
    step, goes too. No file: nothing."""
    path = Path(path)
    if not path.exists():
        return []
    kept: list[tuple[str, dict[str, Any]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            if record["step"] <= step:
                kept.append((line, record))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(line + "\n" for line, _ in kept))
    return [record for _, record in kept]


def whole_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line of a file a run appends to, such as a killed run's
    partial file. A last line without its newline is a write the kill cut off: it is cut from the file
    (atomically), so the run's next append starts a line of its own. No file: no lines."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # cut as bytes: the kill may have split a character too
    if whole != data:
        atomic_write_bytes(path, whole)
    try:
        text = whole.decode("utf-8")
    except UnicodeDecodeError as err:
        line = whole[: err.start].count(b"\n") + 1
        raise DataError(path, line, None, f"not UTF-8: {err.reason}") from None
    return [(i, line) for i, line in enumerate(text.split("\n")[:-1], start=1) if line.strip()]


def iter_jsonl(path: str | os.PathLike, schema: type[T]) -> Iterator[T]:
    """Yield validated rows of a JSONL file; blank lines are skipped."""
    for lineno, obj in iter_json_lines(path):
        yield validate_row(schema, obj, path, lineno)


def read_jsonl(path: str | os.PathLike, schema: type[T]) -> list[T]:
    """Read a whole JSONL file of ``schema`` rows; raise :class:`DataError` on the first bad one."""
    rows = list(iter_jsonl(path, schema))
    if not rows:
        raise DataError(path, None, None, "no rows")
    return rows


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _dump(row: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, BaseModel):
        return row.model_dump(mode="json", exclude_none=True)
    return row


def write_jsonl(path: str | os.PathLike, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Atomically write rows (models or plain dicts) as JSONL; return how many."""
    lines = [json.dumps(_dump(r), ensure_ascii=False) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def to_hf_dataset(rows: Iterable[BaseModel]):
    """Rows as a Hugging Face :class:`datasets.Dataset` (one column per top-level field)."""
    from datasets import Dataset

    return Dataset.from_list([_dump(r) for r in rows])


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def from_hf_dataset(dataset, schema: type[T], name: str = "dataset") -> list[T]:
    """Validate every row of a Hugging Face dataset; errors name the row number (from 1) as the line.

    Arrow gives every row every key seen in the column, filling the gaps with nulls;
    nulls are dropped before validation, so absent optional fields stay absent.
    """
    return [validate_row(schema, _drop_nulls(obj), name, i + 1) for i, obj in enumerate(dataset)]


def load_rows(source: str | os.PathLike, schema: type[T]) -> list[T]:
    """Load rows from a ``.jsonl`` file or a folder saved with ``Dataset.save_to_disk``."""
    path = Path(source)
    if path.is_dir():
        from datasets import load_from_disk

        return from_hf_dataset(load_from_disk(str(path)), schema, name=str(path))
    return read_jsonl(path, schema)


def sniff_sft_schema(path: str | os.PathLike) -> type[Conversation] | type[TextRow]:
    """Conversations unless the first row is a bare ``{"text": ...}`` row (continued pre-training)."""
    path = Path(path)
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for raw in fh:
                if raw.strip():
                    try:
                        obj = json.loads(raw)
                    except json.JSONDecodeError:
                        break
                    if isinstance(obj, dict) and "text" in obj and "messages" not in obj and "completion" not in obj:
                        return TextRow
                    break
    return Conversation


def yaml_line(text: str, loc: Sequence[str | int]) -> int | None:
    """1-based line of the YAML node at ``loc`` (keys and indices) in ``text``, or of its nearest parent found.

    Config files (RL settings, ladders) use it to name the line of a field pydantic rejected.
    """
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


@contextmanager
def sqlite_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic SQLite transaction on ``conn``: everything inside lands, or nothing does.

    ``BEGIN IMMEDIATE`` takes the write lock at the start, so two processes sharing a
    database file wait for each other instead of failing halfway through.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

