"""A knowledge-base folder: ``corpus.jsonl`` and query files, read with file:line:field errors.

The documented form, which any folder may follow (not only the generated one):

- ``corpus.jsonl``: one passage a line, ``{"id": str, "text": str}`` (other fields kept);
- ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` (or any other name): one query a line,
  ``{"id": str, "text": str, "relevant": [passage ids]}``.

A passage without an id or text, two passages with one id, a query without relevant passages or
pointing at an id the corpus lacks: each is a :class:`~agentladder.errors.DataError` naming the file,
the line and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentladder.data.io import iter_json_lines, write_jsonl
from agentladder.errors import DataError, MissingFileError, OutputExistsError
from agentladder.tasks.retrieval.corpus import build_corpus
from agentladder.tasks.retrieval.queries import DEFAULT_SIZES, generate_queries

CORPUS = "corpus.jsonl"


@dataclass(frozen=True)
class Passage:
    id: str
    text: str


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    relevant: tuple[str, ...]
    """Ids of the passages that answer it (at least one)."""


def _text_field(path: Path, line: int, row: dict, name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, line, name, "missing" if value is None else "expected a non-empty string")
    return value


def _row(path: Path, line: int, obj: object) -> dict:
    if not isinstance(obj, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def load_corpus(path: str | os.PathLike) -> list[Passage]:
    """The passages of a ``corpus.jsonl``; ids unique."""
    path = Path(path)
    out: list[Passage] = []
    first_line: dict[str, int] = {}
    for line, obj in iter_json_lines(path):
        row = _row(path, line, obj)
        pid = _text_field(path, line, row, "id")
        if pid in first_line:
            raise DataError(path, line, "id", f"duplicate id {pid!r} (first on line {first_line[pid]})")
        first_line[pid] = line
        out.append(Passage(pid, _text_field(path, line, row, "text")))
    if not out:
        raise DataError(path, None, None, "no passages")
    return out


def load_queries(path: str | os.PathLike, corpus_ids: set[str] | None = None) -> list[Query]:
    """The queries of a query file; every relevant id must be in ``corpus_ids`` (when given)."""
    path = Path(path)
    out: list[Query] = []
    seen: dict[str, int] = {}
    for line, obj in iter_json_lines(path):
        row = _row(path, line, obj)
        qid = _text_field(path, line, row, "id")
        if qid in seen:
            raise DataError(path, line, "id", f"duplicate id {qid!r} (first on line {seen[qid]})")
        seen[qid] = line
        text = _text_field(path, line, row, "text")
        relevant = row.get("relevant")
        if not isinstance(relevant, list) or not relevant or not all(isinstance(r, str) for r in relevant):
            raise DataError(path, line, "relevant", "expected a non-empty list of passage ids")
        for i, rid in enumerate(relevant):
            if corpus_ids is not None and rid not in corpus_ids:
                raise DataError(path, line, f"relevant[{i}]", f"unknown passage id {rid!r}")
        out.append(Query(qid, text, tuple(relevant)))
    if not out:
        raise DataError(path, None, None, "no queries")
    return out


def query_file(data: str | os.PathLike) -> Path:
    """``kb/test`` or ``kb/test.jsonl`` as the query file's path."""
    path = Path(data)
    if path.is_file():
        return path
    with_suffix = path.with_name(path.name + ".jsonl")
    if with_suffix.is_file():
        return with_suffix
    raise MissingFileError(f"{data}: no query file (looked for {path} and {with_suffix})")


def load_split(data: str | os.PathLike, corpus: str | os.PathLike | None = None) -> tuple[list[Passage], list[Query]]:
    """The corpus and the queries of ``data`` (a query file; its corpus is ``corpus.jsonl`` beside it)."""
    queries_path = query_file(data)
    corpus_path = Path(corpus) if corpus else queries_path.parent / CORPUS
    if not corpus_path.is_file():
        raise MissingFileError(f"{corpus_path}: no corpus (give --corpus, or put corpus.jsonl beside {queries_path})")
    passages = load_corpus(corpus_path)
    return passages, load_queries(queries_path, {p.id for p in passages})


def write_pharmacy_kb(out: str | os.PathLike, *, sizes: dict[str, int] | None = None, seed: int = 0,
                      overwrite: bool = False) -> dict[str, int]:
    """Write the generated knowledge base to the folder ``out``; returns the rows written per file."""
    out = Path(out)
    if (out / CORPUS).exists() and not overwrite:
        raise OutputExistsError(f"{out / CORPUS} exists (--overwrite replaces the knowledge base)")
    counts = {"corpus": write_jsonl(out / CORPUS, build_corpus())}
    for split, n in {**DEFAULT_SIZES, **(sizes or {})}.items():
        counts[split] = write_jsonl(out / f"{split}.jsonl", generate_queries(split, n, seed))
    return counts


__all__ = ["CORPUS", "Passage", "Query", "load_corpus", "load_queries", "load_split", "query_file",
           "write_pharmacy_kb"]
