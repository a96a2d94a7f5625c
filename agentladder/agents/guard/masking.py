"""Masking: ``<TYPE>`` tags, or placeholders that stay the same for the same value within one conversation.

With ``replace``, the first person named in a conversation becomes ``<PERSON_1>``, the next
``<PERSON_2>``, and every later mention of the first, in any message of that conversation, is
``<PERSON_1>`` again, so a model (and a training row) still sees who did what. Values are
compared after folding case, spaces and separators (``+1 (415) 555-0132`` and ``4155550132``
are one phone number); a person's later mention by surname alone takes the placeholder of the one
person with that surname. Nothing keeps the values themselves: the placeholder table holds keyed
hashes (HMAC-SHA256 with a random key of the guard's), and forgets the oldest conversations
beyond ``max_conversations``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence

import phonenumbers

_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam"}


def canonical(kind: str, value: str) -> str:
    """The form two mentions of one value share."""
    value = unicodedata.normalize("NFKC", value)
    value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf")
    if kind == "PHONE":  # +1 415 555 0132 and (415) 555-0132: one number (its national part)
        try:
            return str(phonenumbers.parse(value, "US").national_number)
        except phonenumbers.NumberParseException:
            return re.sub(r"[^0-9]", "", value)
    if kind in ("CREDIT_CARD", "SSN", "IBAN", "MRN"):
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    words = [w for w in re.split(r"[\s.,]+", value.casefold()) if w and w not in _TITLES]
    return " ".join(words)


class Placeholders:
    """Per-conversation placeholder tables. Thread-safe."""

    def __init__(self, max_conversations: int = 10_000):
        self._key = secrets.token_bytes(32)
        self._tables: OrderedDict[str, dict[str, dict[str, str]]] = OrderedDict()
        self._surnames: dict[str, dict[str, set[str]]] = {}
        self._lock = threading.Lock()
        self.max_conversations = max_conversations

    def _hash(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def placeholder(self, conversation: str, kind: str, value: str) -> str:
        """``<KIND_n>`` for ``value`` in ``conversation``: the same ``n`` for the same value."""
        key = canonical(kind, value)
        with self._lock:
            tables = self._tables.setdefault(conversation, {})
            self._tables.move_to_end(conversation)
            while len(self._tables) > self.max_conversations:
                old, _ = self._tables.popitem(last=False)
                self._surnames.pop(old, None)
            table = tables.setdefault(kind, {})
            digest = self._hash(key)
            if digest not in table and kind == "PERSON":
                digest = self._same_person(conversation, key, table) or digest
            if digest not in table:
                table[digest] = f"<{kind}_{len(set(table.values())) + 1}>"
                if kind == "PERSON":
                    self._remember_surname(conversation, key, table[digest])
            return table[digest]

    def _remember_surname(self, conversation: str, key: str, tag: str) -> None:
        words = key.split()
        if len(words) > 1:
            self._surnames.setdefault(conversation, {}).setdefault(self._hash(words[-1]), set()).add(tag)

    def _same_person(self, conversation: str, key: str, table: dict[str, str]) -> str | None:
        """A one-word mention matching the surname of exactly one earlier person: that person's hash."""
        words = key.split()
        if len(words) != 1:
            return None
        tags = self._surnames.get(conversation, {}).get(self._hash(words[0]), set())
        if len(tags) != 1:
            return None
        (tag,) = tags
        digest = self._hash(key)
        table[digest] = tag
        return digest

    def forget(self, conversation: str) -> None:
        with self._lock:
            self._tables.pop(conversation, None)
            self._surnames.pop(conversation, None)


def apply_masks(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, replacement)`` span replaced (spans do not overlap)."""
    out, pos = [], 0
    for start, end, replacement in sorted(spans):
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)
