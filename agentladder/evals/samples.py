"""The samples file: every model output of an evaluation, kept as it is produced.

``samples.jsonl`` holds one line per model and row: input, target, raw
output, parse and scores. Lines are appended (and synced) after each chunk
of generation, so a killed evaluation keeps what it finished; rerun with
the same ``--out`` and a row whose model, id, prompt and generation budget
match a stored line is not generated again. When the evaluation finishes
the file is rewritten atomically with exactly its own rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentladder.data.io import append_json_lines, atomic_write_text, whole_lines
from agentladder.data.schema import Message

FILENAME = "samples.jsonl"


def prompt_key(messages: Iterable[Message], max_new_tokens: int) -> str:
    """A fingerprint of a prompt and its generation budget: a stored output is reused only under the same one."""
    payload = json.dumps([[m.role, m.content] for m in messages] + [max_new_tokens], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class SampleStore:
    """Append-as-you-go storage of model outputs in an output folder."""

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stored: dict[tuple[str, str, str], str] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        for _, line in whole_lines(self.path):  # a last line a kill cut off is cut from the file
            try:
                rec = json.loads(line)
                self._stored[(rec["model"], rec["id"], rec["prompt_key"])] = rec["output"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line from something else is not ours to reuse

    def lookup(self, model: str, row_id: str, key: str) -> str | None:
        """The stored output for this model, row and prompt, if any."""
        return self._stored.get((model, row_id, key))

    def append(self, records: list[dict[str, Any]]) -> None:
        """Add finished records durably (flushed and synced before returning)."""
        append_json_lines(self.path, records)
        for rec in records:
            self._stored[(rec["model"], rec["id"], rec["prompt_key"])] = rec["output"]

    def finish(self, records: list[dict[str, Any]]) -> None:
        """Replace the file, atomically, with exactly ``records``."""
        atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
