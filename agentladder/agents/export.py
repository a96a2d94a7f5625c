"""Stored trajectories as training data: SFT rows, preference pairs, RL prompts.

- ``sft``: each trajectory as a :class:`~agentladder.data.schema.Conversation`; its
  trainable flags say what is trained (an answer that failed validation is not).
  Trajectories with no trainable turn are left out.
- ``preference``: trajectories that share a prompt (every turn before the first
  assistant turn) and differ in a reward (``score`` by default) give pairs: the
  best-scored continuation is ``chosen`` against each lower-scored one.
- ``rl``: each distinct prompt once, as an :class:`~agentladder.data.schema.RLPrompt`,
  with ``metadata["target"]`` (when a grader stored one) as its target.

``where`` filters first: clauses joined by ``and``, each ``FIELD OP VALUE``
with ``OP`` one of ``== != >= <= > <``. A field is a reward name (``score``),
a column (``agent``, ``model``, ``session``, ``run_id``, ``step``, ``status``,
``id``) or ``metadata.KEY``. Values are numbers, ``true``/``false``/``null``,
or text (quotes optional). A trajectory without the field does not match.
"""

from __future__ import annotations

import json
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentladder.agents.store import Store
from agentladder.data.io import write_jsonl
from agentladder.data.schema import Conversation, Message, PreferencePair, RLPrompt
from agentladder.errors import ConfigError

FORMATS = ("sft", "preference", "rl")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|>|<|=)\s*([^<>=!\s].*?)\s*$")
_COLUMNS = ("agent", "model", "session", "run_id", "step", "status", "id")


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: Any

    def matches(self, row: dict[str, Any]) -> bool:
        found, value = _field(row, self.field)
        if not found:
            return False
        try:
            return bool(_OPS[self.op](value, self.value))
        except TypeError:  # comparing text with a number: no match, not a crash
            return False


def parse_where(text: str | None) -> list[Clause]:
    """``"score >= 1 and agent == parser"`` as clauses; ``ValueError`` naming the clause that does not parse."""
    if not text or not text.strip():
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if not m:
            raise ConfigError(f"--where: cannot read {part!r}; write FIELD OP VALUE (OP: == != >= <= > <), "
                              "clauses joined by 'and'")
        name, op, raw = m.groups()
        clauses.append(Clause(name, "==" if op == "=" else op, _value(raw)))
    return clauses


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return float(raw)
    except ValueError:
        return raw


def _field(row: dict[str, Any], name: str) -> tuple[bool, Any]:
    conv: Conversation = row["conversation"]
    if name in _COLUMNS:
        return True, row.get(name)
    if name.startswith("metadata."):
        key = name[len("metadata."):]
        return key in conv.metadata, conv.metadata.get(key)
    if name in conv.rewards:
        return True, conv.rewards[name]
    return False, None


def select(store: Store, where: str | None = None) -> list[dict[str, Any]]:
    """Stored trajectory rows that match ``where``, oldest first."""
    clauses = parse_where(where)
    return [r for r in store.trajectories() if all(c.matches(r) for c in clauses)]


def _split(conv: Conversation) -> tuple[list[Message], list[Message]]:
    """``(prompt, continuation)``: the turns before the first assistant turn, and the rest."""
    for i, m in enumerate(conv.messages):
        if m.role == "assistant":
            return conv.messages[:i], conv.messages[i:]
    return conv.messages, []


def _key(messages: list[Message]) -> str:
    return json.dumps([m.model_dump(exclude_none=True) for m in messages], sort_keys=True)


def to_sft(rows: list[dict[str, Any]]) -> list[Conversation]:
    return [r["conversation"] for r in rows if r["conversation"].has_trainable_turn]


def to_preference(rows: list[dict[str, Any]], score: str = "score") -> list[PreferencePair]:
    groups: dict[str, list[Conversation]] = {}
    for r in rows:
        conv = r["conversation"]
        prompt, rest = _split(conv)
        if prompt and rest and score in conv.rewards:
            groups.setdefault(_key(prompt), []).append(conv)
    pairs = []
    for convs in groups.values():
        ranked = sorted(convs, key=lambda c: -c.rewards[score])
        best = ranked[0]
        for other in ranked[1:]:
            if other.rewards[score] < best.rewards[score]:
                prompt, chosen = _split(best)
                _, rejected = _split(other)
                pairs.append(PreferencePair(
                    id=f"{best.id}>{other.id}", prompt=prompt, chosen=_plain(chosen), rejected=_plain(rejected),
                    metadata={"chosen": best.id, "rejected": other.id, score: [best.rewards[score],
                                                                              other.rewards[score]]}))
    return pairs


def _plain(messages: list[Message]) -> list[Message]:
    # A continuation is compared whole: per-turn training flags do not apply.
    return [m.model_copy(update={"trainable": None}) for m in messages]


def to_rl(rows: list[dict[str, Any]]) -> list[RLPrompt]:
    seen: set[str] = set()
    out = []
    for r in rows:
        conv = r["conversation"]
        prompt, _ = _split(conv)
        key = _key(prompt)
        if not prompt or key in seen or not any(m.role == "user" for m in prompt):
            continue
        seen.add(key)
        out.append(RLPrompt(id=conv.id, prompt=prompt, target=conv.metadata.get("target"),
                            metadata={"trajectory": conv.id, "agent": r["agent"]}))
    return out


def export_traces(store: Store | str | os.PathLike, to: str, out: str | os.PathLike, *, where: str | None = None,
                  score: str = "score") -> dict[str, int]:
    """Write the matching trajectories as ``to`` (sft, preference or rl) rows to ``out`` (JSONL, atomically).

    Returns ``{"matched": trajectories selected, "written": rows written}``.
    """
    if to not in FORMATS:
        raise ConfigError(f"--to must be one of {', '.join(FORMATS)}, not {to!r}")
    own = not isinstance(store, Store)
    db = Store(store) if own else store
    try:
        rows = select(db, where)
        made = to_sft(rows) if to == "sft" else to_preference(rows, score) if to == "preference" else to_rl(rows)
        written = write_jsonl(out, made)
    finally:
        if own:
            db.close()
    return {"matched": len(rows), "written": written}
