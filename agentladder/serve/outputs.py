"""One choice's text as its tokens arrive: what may be streamed now, the final text, its log-probabilities.

- **Text** is the tokens decoded without special tokens (the end-of-turn token is
  not shown). A stop string ends the text where it starts (OpenAI leaves it out).
- **Streaming** sends the new part of the text at each token, holding back a piece
  that could still grow into a stop string, and a character split across tokens.
- **Tool calls** when tools are offered: an answer that starts like a call (``{`` or
  ``<``) is held until it ends and then sent as ``tool_calls``; any other answer is
  streamed as content as it comes. A grammar that only admits a call holds it all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentladder.serve.scheduler import TokenEvent


@dataclass
class ChoiceText:
    """The state of one choice (see the module docstring)."""

    tokenizer: Any
    stops: list[str] = field(default_factory=list)
    hold_calls: bool = False
    """Tools are offered: hold an answer that starts like a call."""
    calls_only: bool = False
    tokens: list[int] = field(default_factory=list)
    events: list[TokenEvent] = field(default_factory=list)
    finish: str | None = None
    sent: int = 0
    """Characters of the text already streamed."""
    holding: bool | None = None
    """None until the answer's first visible character says whether it is a call."""

    def add(self, event: TokenEvent) -> None:
        self.tokens.append(event.token)
        self.events.append(event)
        if event.finish is not None:
            self.finish = event.finish

    @property
    def text(self) -> str:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        return text[:cut] if cut >= 0 else text

    def delta(self) -> str:
        """The text that may be streamed now (and is counted as sent)."""
        text = self.text
        if self.hold_calls and self.finish is None:
            if self.calls_only:
                return ""
            if self.holding is None:
                head = text.lstrip()
                if not head:
                    return ""
                self.holding = head[0] in "{<"
            if self.holding:
                return ""
        end = len(text)
        if self.finish is None:
            if self.stops:
                end -= max(len(s) for s in self.stops) - 1
            while end > self.sent and text[end - 1] == "\ufffd":  # a character still being spelt
                end -= 1
        if end <= self.sent:
            return ""
        piece, self.sent = text[self.sent : end], end
        return piece

    def chat_logprobs(self, start: int = 0) -> dict[str, Any]:
        """OpenAI's chat ``logprobs`` object for the tokens from ``start``."""
        return {"content": [self._entry(e) for e in self.events[start:] if e.logprob is not None]}

    def _entry(self, e: TokenEvent) -> dict[str, Any]:
        piece = self.tokenizer.decode([e.token])
        return {"token": piece, "logprob": e.logprob, "bytes": list(piece.encode("utf-8")),
                "top_logprobs": [{"token": (p := self.tokenizer.decode([t])), "logprob": lp,
                                  "bytes": list(p.encode("utf-8"))} for t, lp in e.top or []]}

    def completion_logprobs(self, offset: int = 0) -> dict[str, Any]:
        """The legacy completions ``logprobs`` object (tokens, their log-probabilities, alternatives, offsets)."""
        tokens, lps, tops, offsets = [], [], [], []
        at = offset
        for e in self.events:
            piece = self.tokenizer.decode([e.token])
            tokens.append(piece)
            lps.append(e.logprob)
            tops.append({self.tokenizer.decode([t]): lp for t, lp in e.top or []})
            offsets.append(at)
            at += len(piece)
        return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}


__all__ = ["ChoiceText"]
