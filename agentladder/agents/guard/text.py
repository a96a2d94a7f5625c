"""A view of a text that detectors read, with every position mapped back to the original.

People (and attackers) split a card number with zero-width spaces, write digits in
full-width or Arabic-Indic forms, or wrap a name in right-to-left marks. Detectors
read a *view* of the text in which invisible format characters (Unicode category
``Cf``: zero-width space and joiners, bidi marks and isolates, the soft hyphen,
the byte-order mark) are left out, every decimal digit is an ASCII digit and
full-width ASCII forms are plain ASCII. Each character of the view remembers its
position in the original, so a span found in the view becomes a span of the
original text in characters (Python code points), covering any invisible
character inside it and any combining mark that follows its last character.

Long texts are read in overlapping windows (:func:`windows`) by the detectors that
have a length limit (the NER models and the embedding classifiers); the patterns
read the whole view.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_FULLWIDTH_START, _FULLWIDTH_END, _FULLWIDTH_SHIFT = 0xFF01, 0xFF5E, 0xFEE0


def _fold(ch: str) -> str | None:
    """The character as detectors read it, or ``None`` when it is invisible (category Cf)."""
    if ch.isascii():
        return ch
    cat = unicodedata.category(ch)
    if cat == "Cf":
        return None
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    code = ord(ch)
    if _FULLWIDTH_START <= code <= _FULLWIDTH_END:
        return chr(code - _FULLWIDTH_SHIFT)
    if cat == "Zs":  # no-break, thin, ideographic spaces
        return " "
    return ch


@dataclass(frozen=True)
class TextView:
    """``view`` is what detectors read; ``origin[i]`` is the index in ``text`` of ``view[i]``."""

    text: str
    view: str
    origin: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> TextView:
        if text.isascii():  # the common case: the view is the text
            return cls(text, text, ())
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            folded = _fold(ch)
            if folded is not None:
                chars.append(folded)
                origin.append(i)
        return cls(text, "".join(chars), tuple(origin))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``view[start:end]`` (end exclusive), widened over trailing combining marks."""
        if not self.origin:
            return start, end
        if end <= start:
            pos = self.origin[start] if start < len(self.origin) else len(self.text)
            return pos, pos
        s, e = self.origin[start], self.origin[end - 1] + 1
        return s, extend_over_marks(self.text, e)


def extend_over_marks(text: str, end: int) -> int:
    """``end`` moved past combining marks, variation selectors and joiners that belong to the character before it."""
    n = len(text)
    while end < n and (unicodedata.category(text[end]) in ("Mn", "Me", "Mc")
                       or 0xFE00 <= ord(text[end]) <= 0xFE0F or text[end] == "\u200d"):
        end += 1
    return end


def windows(text: str, size: int = 1000, overlap: int = 200) -> Iterator[tuple[int, str]]:
    """``(offset, piece)`` covering ``text`` in pieces of at most ``size`` characters, each overlapping the last.

    A piece ends at the last whitespace before its limit when there is one in its second half,
    so words are rarely cut; any two neighbouring pieces share at least ``overlap`` characters
    (an entity shorter than that is whole in at least one piece).
    """
    if size <= overlap:
        raise ValueError("a window must be longer than its overlap")
    n = len(text)
    if n <= size:
        yield 0, text
        return
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start + overlap else end
        yield start, text[start:end]
        if end >= n:
            return
        start = max(end - overlap, start + 1)
