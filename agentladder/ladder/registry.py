"""The model registry: every version a climb made, with its lineage, settings, data and scores, in SQLite.

One row per version: its parent (the model it started from), the ladder and rung that made it,
the trainer settings, a hash of its training data, its metrics on the split that decided it
(``decided_on``: the validation split, with its size and hash) and on the splits it was only reported
on (``reported_on``: test, shifted),
training time and token counts, and the path of its weights (``full``), of its LoRA adapter
(``adapter``) or the base model spec (``base``, for a baseline). The default file is the one the
agents runtime uses (``$AGENTLADDER_DB``, else ``agentladder.db`` in the current folder), so one
embedded database holds a project's traces and its models; its production counterpart is any SQL
database behind the same methods.

Versions are named ``<ladder>/<rung>/<6 hex>``; anywhere a version is asked for, a unique prefix or
``<ladder>/<rung>`` (the newest such version) will do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentladder.data.io import sqlite_transaction
from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.loading import load_model

DB_ENV = "AGENTLADDER_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    id TEXT PRIMARY KEY, ladder TEXT NOT NULL, rung TEXT NOT NULL, kind TEXT NOT NULL, parent TEXT,
    base_model TEXT, path TEXT NOT NULL, artifact TEXT NOT NULL, status TEXT NOT NULL, config TEXT,
    data_path TEXT, data_hash TEXT, examples INTEGER, tokens INTEGER, train_seconds REAL,
    headline TEXT, score REAL, metrics TEXT, task TEXT, notes TEXT, created REAL NOT NULL,
    decided_on TEXT, reported_on TEXT);
CREATE INDEX IF NOT EXISTS model_versions_ladder ON model_versions (ladder, rung);
"""


def default_registry() -> str:
    return os.environ.get(DB_ENV, "agentladder.db")


def version_id(ladder: str, rung: str, run_path: str | os.PathLike) -> str:
    """``<ladder>/<rung>/<6 hex of the run folder>``: the same rung of the same climb keeps its id on resume."""
    digest = hashlib.sha256(str(Path(run_path).resolve()).encode()).hexdigest()[:6]
    return f"{ladder}/{rung}/{digest}"


def file_hash(path: str | os.PathLike | None) -> str | None:
    """SHA-256 (first 16 hex) of a data file's bytes, ``None`` without one."""
    if path is None or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


@dataclass
class ModelVersion:
    id: str
    ladder: str
    rung: str
    kind: str
    """``baseline``, ``sft``, ``dpo``, ``kto``, ``rl``, ``classifier``."""
    path: str
    """Weights folder (``full``), adapter folder (``adapter``), classifier folder (``classifier``: a frozen model's
    features and a head) or the base model spec (``base``)."""
    artifact: str
    parent: str | None = None
    base_model: str | None = None
    status: str = "kept"
    """``kept`` (became the champion), ``rejected`` (did not pass the gate), ``target`` (kept and met it)."""
    config: dict[str, Any] = field(default_factory=dict)
    data_path: str | None = None
    data_hash: str | None = None
    examples: int | None = None
    """Training rows (SFT conversations, pairs, KTO rows) or RL prompts seen."""
    tokens: int | None = None
    train_seconds: float | None = None
    headline: str | None = None
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    """Every metric on the split that decided the version's fate (``decided_on``): ``{name: {value, ci, n}}``."""
    task: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    decided_on: dict[str, Any] = field(default_factory=dict)
    """The split the gate decided on: ``{split, rows, path, hash}`` (``validation`` in a climb)."""
    reported_on: dict[str, Any] = field(default_factory=dict)
    """``{split: {split, rows, path, hash, metrics, paired?}}``: the splits the version was only reported on
    (``test``, ``shifted``), scored after its verdict; ``paired`` is the test against its parent's model."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_JSON_COLUMNS = ("config", "metrics", "notes", "decided_on", "reported_on")
_ADDED_COLUMNS = ("decided_on", "reported_on")
"""Columns later than the first schema: a registry file written before them gets them on open."""
_ADAPTER_FILES = ("adapter_", "tokenizer", "chat_template", "special_tokens", "agentladder.json", "README")
"""What an adapter export copies: the adapter, its tokenizer, and its run metadata (the base model)."""


class Registry:
    """A SQLite file (or ``":memory:"``) of model versions."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = str(path if path is not None else default_registry())
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(model_versions)")}
        for column in _ADDED_COLUMNS:
            if column not in have:
                self._conn.execute(f"ALTER TABLE model_versions ADD COLUMN {column} TEXT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self._conn)

    # -- writing ---------------------------------------------------------------------------------
    def register(self, version: ModelVersion) -> ModelVersion:
        """Add a version, or replace the one with its id (a resumed climb registers a rung again)."""
        if version.parent is not None and not self._exists(version.parent):
            raise ValueError(f"parent {version.parent!r} of {version.id!r} is not in the registry {self.path}")
        row = version.to_json()
        for key in _JSON_COLUMNS:
            row[key] = json.dumps(row[key], ensure_ascii=False, default=str)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._transaction() as db:
            db.execute(f"INSERT OR REPLACE INTO model_versions ({cols}) VALUES ({marks})", list(row.values()))
        return version

    def _exists(self, vid: str) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (vid,)).fetchone())

    # -- reading ---------------------------------------------------------------------------------
    def list(self, ladder: str | None = None) -> list[ModelVersion]:
        """Every version (of one ladder), oldest first."""
        if ladder is None:
            rows = self._conn.execute("SELECT * FROM model_versions ORDER BY created, id")
        else:
            rows = self._conn.execute("SELECT * FROM model_versions WHERE ladder = ? ORDER BY created, id", (ladder,))
        return [_version(r) for r in rows]

    def get(self, ref: str) -> ModelVersion:
        """A version by id, by unique id prefix, or ``<ladder>/<rung>`` (the newest)."""
        row = self._conn.execute("SELECT * FROM model_versions WHERE id = ?", (ref,)).fetchone()
        if row is not None:
            return _version(row)
        rows = self._conn.execute("SELECT * FROM model_versions WHERE id LIKE ? ESCAPE '\\' ORDER BY created DESC",
                                  (_like_prefix(ref),)).fetchall()
        same_rung = [r for r in rows if f"{r['ladder']}/{r['rung']}" == ref]
        if same_rung:  # <ladder>/<rung>: the newest version of that rung
            rows = same_rung[:1]
        if not rows:
            raise ConfigError(f"no model version {ref!r} in {self.path} (agentladder models list shows them)")
        if len(rows) > 1:
            raise ConfigError(f"{ref!r} matches {len(rows)} versions: " + ", ".join(r["id"] for r in rows[:5]))
        return _version(rows[0])

    def lineage(self, ref: str) -> list[ModelVersion]:
        """The version and its ancestors, root first."""
        chain = [self.get(ref)]
        seen = {chain[0].id}
        while chain[-1].parent is not None:
            parent = self.get(chain[-1].parent)
            if parent.id in seen:
                raise ValueError(f"the lineage of {ref!r} loops at {parent.id!r}")
            seen.add(parent.id)
            chain.append(parent)
        return chain[::-1]

    def children(self, ref: str) -> list[ModelVersion]:
        vid = self.get(ref).id
        return [_version(r) for r in self._conn.execute(
            "SELECT * FROM model_versions WHERE parent = ? ORDER BY created", (vid,))]

    def compare(self, refs: list[str]) -> tuple[list[str], list[ModelVersion]]:
        """The metric names any of the versions has, and the versions, for a side-by-side table."""
        versions = [self.get(r) for r in refs]
        names: list[str] = []
        for v in versions:
            names += [n for n, m in v.metrics.items() if n not in names and isinstance(m, dict) and "value" in m]
        return names, versions

    # -- export ----------------------------------------------------------------------------------
    def export(self, ref: str, out: str | os.PathLike, *, merged: bool = True) -> Path:
        """Write a version's model to ``out``: merged full weights (loadable anywhere), or its LoRA adapter.

        The folder is written under a temporary name and renamed into place.
        """
        version = self.get(ref)
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise OutputExistsError(f"{out} exists and is not empty")
        tmp = out.with_name(f".{out.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        if version.artifact == "classifier":  # a classifier folder is its own export: manifest and head
            shutil.copytree(version.path, tmp)
        elif not merged:
            if version.artifact != "adapter":
                raise ConfigError(f"{version.id} holds {version.artifact} weights, not a LoRA adapter: export merged")
            tmp.mkdir(parents=True)
            for f in Path(version.path).iterdir():
                if f.is_file() and f.name.startswith(_ADAPTER_FILES):
                    shutil.copy2(f, tmp / f.name)
        else:
            from transformers.utils import logging as hf_logging


            hf_logging.disable_progress_bar()

            model, tokenizer = load_model(version.path)
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            tmp.mkdir(parents=True)
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
        meta = {"version": version.id, "ladder": version.ladder, "rung": version.rung, "kind": version.kind,
                "parent": version.parent, "base_model": version.base_model, "merged": merged,
                "metrics": {k: m.get("value") for k, m in version.metrics.items() if isinstance(m, dict)}}
        (tmp / "agentladder_version.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
        return out


def _like_prefix(ref: str) -> str:
    return ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _version(row: sqlite3.Row) -> ModelVersion:
    data = dict(row)
    for key in _JSON_COLUMNS:
        data[key] = json.loads(data[key]) if data[key] else {}
    return ModelVersion(**data)


__all__ = ["ModelVersion", "Registry", "default_registry", "file_hash", "version_id"]
