"""The conversation schema, row types, and their I/O."""

from agentladder.data.io import (
    DataError,
    atomic_write_text,
    from_hf_dataset,
    iter_jsonl,
    load_rows,
    read_jsonl,
    to_hf_dataset,
    write_jsonl,
)
from agentladder.data.schema import (
    Conversation,
    MarkedResponse,
    Message,
    PreferencePair,
    RLPrompt,
    TextRow,
    ToolCall,
)

__all__ = [
    "Conversation",
    "DataError",
    "MarkedResponse",
    "Message",
    "PreferencePair",
    "RLPrompt",
    "TextRow",
    "ToolCall",
    "atomic_write_text",
    "from_hf_dataset",
    "iter_jsonl",
    "load_rows",
    "read_jsonl",
    "to_hf_dataset",
    "write_jsonl",
]
