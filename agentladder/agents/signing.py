"""HMAC request signing for stateless tool calls: the signature, the key ring and the nonce store.

A request is signed over its method, path, timestamp, nonce and a SHA-256 of its
body, with HMAC-SHA256 and a shared key named by a key id::

    agentladder-v1 \\n METHOD \\n /path \\n 1767225600.123 \\n 3f9c... \\n sha256(body)

sent as ``X-Agentladder-Key``, ``-Timestamp``, ``-Nonce`` and ``-Signature``
headers. A server refuses (and audits) a request whose headers are missing or
malformed, whose key is unknown or retired, whose timestamp is more than
``max_skew`` seconds from its clock, whose signature does not match (a wrong key,
an altered body or path), or whose nonce it has seen before (a replay). Nonces are
remembered for twice ``max_skew``: an older request is refused by its timestamp.

Keys and nonces live in the runtime's store (tables ``signing_keys`` and
``signing_nonces``). A nonce is taken by one ``INSERT`` on its primary key, so two
threads or processes sharing the store never both accept it. Rotation keeps two keys
valid at once: ``rotate`` adds a new key and gives the old ones ``grace`` seconds,
time for every client to move over. The store then holds the secrets: protect the
file as you would a key file.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from agentladder.agents.store import Store

VERSION = "agentladder-v1"
KEY_HEADER = "X-Agentladder-Key"
TIMESTAMP_HEADER = "X-Agentladder-Timestamp"
NONCE_HEADER = "X-Agentladder-Nonce"
SIGNATURE_HEADER = "X-Agentladder-Signature"
HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def as_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def signing_text(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the signature covers."""
    return "\n".join([VERSION, method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]).encode()


def signature(key: str | bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(as_bytes(key), signing_text(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign(key: str | bytes, key_id: str, method: str, path: str, body: bytes = b"", *,
         timestamp: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The signature headers for one request (a fresh nonce and the current time unless given)."""
    ts = f"{time.time() if timestamp is None else timestamp:.3f}"
    nonce = nonce or uuid.uuid4().hex
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: ts, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(key, method, path, ts, nonce, body)}


@dataclass
class Refusal:
    """Why a request was refused: the HTTP status and a one-line reason."""

    status: int
    reason: str


class KeyRing:
    """Signing keys by id in a store; a key is valid from its creation until its ``not_after`` (if any)."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, key_id: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Add a key (a random 256-bit secret unless given); returns ``(key_id, secret)``."""
        key_id = key_id or f"key-{uuid.uuid4().hex[:8]}"
        if not _KEY_ID.fullmatch(key_id):
            raise ValueError(f"key id {key_id!r}: use 1-64 letters, digits, _ . -")
        secret = secret or secrets.token_urlsafe(32)
        with self.store.transaction() as db:
            db.execute("INSERT INTO signing_keys VALUES (?, ?, ?, NULL)", (key_id, secret, time.time()))
        self.store.audit("signing_key_added", data={"key_id": key_id})
        return key_id, secret

    def retire(self, key_id: str, *, grace: float = 0.0) -> None:
        """Stop accepting ``key_id`` after ``grace`` seconds."""
        with self.store.transaction() as db:
            db.execute("UPDATE signing_keys SET not_after = ? WHERE key_id = ?", (time.time() + grace, key_id))
        self.store.audit("signing_key_retired", data={"key_id": key_id, "grace": grace})

    def rotate(self, *, grace: float = 3600.0, key_id: str | None = None) -> tuple[str, str]:
        """A new key; the keys valid now stay valid for ``grace`` seconds more (two keys at once)."""
        old = self.valid()
        new = self.add(key_id)
        for k in old:
            self.retire(k, grace=grace)
        return new

    def valid(self, at: float | None = None) -> list[str]:
        now = time.time() if at is None else at
        rows = self.store.query("SELECT key_id FROM signing_keys WHERE not_after IS NULL OR not_after > ? "
                                "ORDER BY created", (now,))
        return [r["key_id"] for r in rows]

    def secret(self, key_id: str, at: float | None = None) -> bytes | None:
        """The secret of a key valid now, or None."""
        now = time.time() if at is None else at
        rows = self.store.query("SELECT secret FROM signing_keys WHERE key_id = ? AND (not_after IS NULL OR "
                                "not_after > ?)", (key_id, now))
        return rows[0]["secret"].encode() if rows else None


class Verifier:
    """Checks signed requests against a key ring, a clock window and the nonce store."""

    def __init__(self, keys: KeyRing, *, max_skew: float = 300.0):
        self.keys, self.store, self.max_skew = keys, keys.store, max_skew
        self._last_purge = 0.0

    def check(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        """None when the request is authentic and fresh (its nonce is then used up), else why not."""
        values = {h: headers.get(h) or headers.get(h.lower()) for h in HEADERS}
        missing = [h for h, v in values.items() if not v]
        if missing:
            return Refusal(401, f"missing signature header {', '.join(missing)}")
        key_id, ts, nonce, sig = (values[h] for h in HEADERS)
        secret = self.keys.secret(key_id) if _KEY_ID.fullmatch(key_id) else None
        if secret is None:
            return Refusal(401, f"unknown or retired key {key_id[:64]!r}")
        try:
            when = float(ts)
        except ValueError:
            return Refusal(401, "malformed timestamp")
        now = time.time()
        if not math.isfinite(when) or abs(now - when) > self.max_skew:
            return Refusal(401, "expired timestamp" if when < now else "timestamp in the future")
        if not _NONCE.fullmatch(nonce):
            return Refusal(401, "malformed nonce")
        if not _SIGNATURE.fullmatch(sig):
            return Refusal(401, "malformed signature")
        if not hmac.compare_digest(signature(secret, method, path, ts, nonce, body), sig.lower()):
            return Refusal(401, "bad signature")
        return self._take_nonce(nonce, key_id, when, now)

    def _take_nonce(self, nonce: str, key_id: str, when: float, now: float) -> Refusal | None:
        try:
            with self.store.transaction() as db:
                db.execute("INSERT INTO signing_nonces VALUES (?, ?, ?, ?)", (nonce, key_id, when, now))
                if now - self._last_purge > self.max_skew:
                    db.execute("DELETE FROM signing_nonces WHERE seen < ?", (now - 2 * self.max_skew,))
                    self._last_purge = now
        except sqlite3.IntegrityError:
            return Refusal(409, "replayed nonce")
        return None
