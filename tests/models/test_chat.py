import pytest

from agentladder.data import Conversation
from agentladder.models.chat import render, tokenize_conversation, tokenize_text
from tests.conftest import CONVERSATIONS


def _trained_text(tok, row):
    return tok.decode([t for t, m in zip(row.input_ids, row.mask, strict=True) if m])


@pytest.mark.parametrize("raw", CONVERSATIONS, ids=[c["id"] for c in CONVERSATIONS])
def test_mask_covers_exactly_the_trained_assistant_turns(tok, raw):
    conv = Conversation.model_validate(raw)
    row = tokenize_conversation(tok, conv)
    assert tok.decode(row.input_ids) == render(tok, conv.messages)
    expected = "".join(
        (m.content or "") + "<|im_end|>\n" for m in conv.messages if m.is_trained and not m.tool_calls
    )
    if any(m.tool_calls for m in conv.messages):
        # The tool call is trained on as text; the tool's answer is not.
        assert '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' in _trained_text(tok, row)
        assert "sunny, 21C" not in _trained_text(tok, row)
        assert _trained_text(tok, row).endswith("It is sunny and 21C.<|im_end|>\n")
    else:
        assert _trained_text(tok, row) == expected


def test_untrainable_assistant_turn_and_prompts_are_masked(tok):
    conv = Conversation.model_validate(CONVERSATIONS[4])
    text = _trained_text(tok, tokenize_conversation(tok, conv))
    assert "first draft" not in text and "Draft a reply" not in text and "system" not in text
    assert text == "A much better draft.<|im_end|>\n"


def test_text_rows_train_every_token(tok):
    row = tokenize_text(tok, "some raw text")
    assert row.mask == [1] * len(row) and row.input_ids[-1] == tok.eos_token_id
