"""API keys: created, listed, looked up and revoked; only a hash of each secret is stored.

A key's secret is ``al-`` followed by 43 URL-safe characters (256 random bits). It is
shown once, when created; the store keeps its SHA-256 and its first characters (to
tell keys apart in ``agentladder keys list``). A fast hash is the right one here: the
secret is random, not a password a person chose, so there is nothing to guess, and the
server hashes it on every request (GitHub and Stripe tokens work the same way).

Each key carries:

- ``team``: who pays (``agentladder usage --by team``);
- ``models``: the model names it may call (``*`` for all);
- ``rpm`` / ``tpm``: requests and tokens per minute (None: no limit), a 429 with
  ``Retry-After`` beyond them;
- ``token_budget``: tokens it may use in all (None: no budget), a 429 ``insufficient_quota``
  once spent; ``tokens_used`` counts up with every usage row, in the same transaction;
- ``record``: store each chat call as a trajectory (``agentladder traces export``);
- ``admin``: may load and unload adapters (``/v1/load_lora_adapter``);
- ``guard``: an optional guard policy (a path) for a guard wired into the gateway's
  ``check_request`` seam; stored and handed over, not read here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentladder.errors import ConfigError
from agentladder.serve.gateway.db import GatewayDB

PREFIX = "al-"
ALL_MODELS = "*"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class KeyRecord:
    """One API key as stored (never its secret)."""

    id: str
    team: str
    models: list[str] = field(default_factory=lambda: [ALL_MODELS])
    name: str | None = None
    prefix: str = ""
    rpm: int | None = None
    tpm: int | None = None
    token_budget: int | None = None
    tokens_used: int = 0
    record: bool = False
    admin: bool = False
    guard: str | None = None
    created: float = 0.0
    revoked: float | None = None

    def allows(self, model: str) -> bool:
        return ALL_MODELS in self.models or model in self.models

    @property
    def budget_left(self) -> int | None:
        return None if self.token_budget is None else max(0, self.token_budget - self.tokens_used)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyRecord:
        return cls(id=row["id"], name=row["name"], prefix=row["prefix"], team=row["team"],
                   models=json.loads(row["models"]), rpm=row["rpm"], tpm=row["tpm"],
                   token_budget=row["token_budget"], tokens_used=int(row["tokens_used"] or 0),
                   record=bool(row["record"]), admin=bool(row["admin"]), guard=row["guard"],
                   created=float(row["created"]), revoked=row["revoked"])


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, not {value}")
    return value


def create_key(db: GatewayDB, team: str, *, models: list[str] | None = None, name: str | None = None,
               rpm: int | None = None, tpm: int | None = None, token_budget: int | None = None,
               record: bool = False, admin: bool = False, guard: str | None = None) -> tuple[str, KeyRecord]:
    """A new key for ``team``: ``(secret, record)``. The secret is not stored; show it once."""
    if not team.strip():
        raise ConfigError("--team must not be empty")
    models = [m.strip() for m in (models or [ALL_MODELS]) if m.strip()] or [ALL_MODELS]
    if name is not None and db.query("SELECT id FROM gateway_keys WHERE name = ?", (name,)):
        raise ConfigError(f"a key named {name!r} exists already")
    secret = PREFIX + secrets.token_urlsafe(32)
    rec = KeyRecord(id=f"key-{uuid.uuid4().hex[:12]}", team=team.strip(), models=models, name=name,
                    prefix=secret[:10], rpm=_positive("rpm", rpm), tpm=_positive("tpm", tpm),
                    token_budget=_positive("token_budget", token_budget), record=record, admin=admin,
                    guard=guard, created=time.time())
    db.execute("INSERT INTO gateway_keys (id, name, hash, prefix, team, models, rpm, tpm, token_budget, tokens_used, "
               "record, admin, guard, created, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, NULL)",
               (rec.id, rec.name, hash_secret(secret), rec.prefix, rec.team, json.dumps(rec.models), rec.rpm,
                rec.tpm, rec.token_budget, int(rec.record), int(rec.admin), rec.guard, rec.created))
    return secret, rec


def lookup(db: GatewayDB, secret: str) -> KeyRecord | None:
    """The key whose secret this is (revoked ones too), or None."""
    rows = db.query("SELECT * FROM gateway_keys WHERE hash = ?", (hash_secret(secret),))
    return KeyRecord.from_row(rows[0]) if rows else None


def list_keys(db: GatewayDB, *, include_revoked: bool = True) -> list[KeyRecord]:
    rows = db.query("SELECT * FROM gateway_keys ORDER BY created, id")
    keys = [KeyRecord.from_row(r) for r in rows]
    return keys if include_revoked else [k for k in keys if k.revoked is None]


def find_key(db: GatewayDB, ident: str) -> KeyRecord:
    """A key by id, name or the prefix ``keys list`` shows; a ConfigError when none or several match."""
    rows = db.query("SELECT * FROM gateway_keys WHERE id = ? OR name = ? OR prefix = ?", (ident, ident, ident))
    if not rows:
        raise ConfigError(f"no key {ident!r} (see `agentladder keys list`)")
    if len(rows) > 1:
        raise ConfigError(f"{ident!r} matches {len(rows)} keys; give the key's id")
    return KeyRecord.from_row(rows[0])


def revoke_key(db: GatewayDB, ident: str) -> KeyRecord:
    """Revoke a key (by id, name or prefix): every later request with it gets a 401."""
    rec = find_key(db, ident)
    if rec.revoked is None:
        rec.revoked = time.time()
        db.execute("UPDATE gateway_keys SET revoked = ? WHERE id = ?", (rec.revoked, rec.id))
    return rec


__all__ = ["ALL_MODELS", "KeyRecord", "create_key", "find_key", "hash_secret", "list_keys", "lookup", "revoke_key"]
