"""Chat templates, and tokenising conversations with a trainable-token mask.

The mask is found from the template itself, so it works with any model's
template: for each trained assistant turn ``i`` the characters between the
rendering of ``messages[:i]`` with a generation prompt and the rendering of
``messages[:i+1]`` are that turn's own text (its content and end-of-turn
token). Tokens whose characters start inside such a span get mask 1;
system, user and tool turns, the role headers and untrained assistant turns
get 0. The mask marks tokens to be *predicted*; the loss shifts it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from agentladder.data.schema import Conversation, Message, TextRow
from agentladder.errors import ConfigError


@dataclass
class TokenizedRow:
    input_ids: list[int]
    mask: list[int]
    """1 where the token is trained on (predicted with loss), else 0."""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_trained(self) -> int:
        return sum(self.mask)


def _template_dicts(tokenizer, messages: Sequence[Message]) -> list[dict]:
    dicts = [m.to_template_dict() for m in messages]
    template = tokenizer.chat_template or ""
    if "tool_calls" not in template:
        # The template cannot show tool calls: write them into the content the way
        # tool-calling chat formats do, so they are seen and trained on.
        for d in dicts:
            for call in d.pop("tool_calls", []):
                fn = call["function"]
                payload = json.dumps({"name": fn["name"], "arguments": json.loads(fn["arguments"])})
                d["content"] = (d["content"] + "\n" if d["content"] else "") + f"<tool_call>\n{payload}\n</tool_call>"
    return dicts


def render(tokenizer, messages: Sequence[Message], *, add_generation_prompt: bool = False) -> str:
    """The conversation as text, through the tokenizer's chat template."""
    if not tokenizer.chat_template:
        raise ConfigError("the tokenizer has no chat template; conversations need one (or use text rows)")
    if not messages:
        return ""
    return tokenizer.apply_chat_template(
        _template_dicts(tokenizer, messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def prompt_ids(tokenizer, messages: Sequence[Message]) -> list[int]:
    """Token ids of a prompt ready for generation (ends with the assistant header)."""
    text = render(tokenizer, messages, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def assistant_spans(tokenizer, messages: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans of its trained assistant turns."""
    full = render(tokenizer, messages)
    spans = []
    for i, msg in enumerate(messages):
        if not msg.is_trained:
            continue
        end = len(render(tokenizer, messages[: i + 1]))
        if i == 0:
            start = full.find(msg.content or "")
        else:
            head = render(tokenizer, messages[:i], add_generation_prompt=True)
            if not full.startswith(head):
                raise ConfigError(
                    "the chat template does not render conversations prefix-consistently; "
                    "cannot locate the assistant turns"
                )
            start = len(head)
        spans.append((start, end))
    return full, spans


def tokenize_conversation(tokenizer, conversation: Conversation | Sequence[Message]) -> TokenizedRow:
    """Token ids and the per-token mask (1 only on trained assistant turns)."""
    messages = conversation.messages if isinstance(conversation, Conversation) else list(conversation)
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for start, end in enc["offset_mapping"]:
        inside = any(s <= start < e for s, e in spans) and end > start
        mask.append(1 if inside else 0)
    return TokenizedRow(list(enc["input_ids"]), mask)


def tokenize_text(tokenizer, row: TextRow | str) -> TokenizedRow:
    """Raw text for continued pre-training: every token trained, closed by EOS."""
    text = row.text if isinstance(row, TextRow) else row
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return TokenizedRow(ids, [1] * len(ids))


def tokenize_row(tokenizer, row: Conversation | TextRow) -> TokenizedRow:
    if isinstance(row, TextRow):
        return tokenize_text(tokenizer, row)
    return tokenize_conversation(tokenizer, row)
