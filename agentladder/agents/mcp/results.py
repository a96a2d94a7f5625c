"""How MCP tool definitions and results map onto the runtime's tools, both ways.

One convention, the official SDK's: a tool whose result is not a JSON object declares
an output schema ``{"type": "object", "properties": {"result": ...}, "required":
["result"], "title": "<name>Output"}`` and sends ``{"result": value}`` as structured
content. A client unwraps it, so a tool returning a list gives the model the same
text over MCP as in process (the runtime's rendering of the value, compact JSON).
Plain text results (no structured content) are their text; images, audio and
resources are named, not pasted in.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

ERROR_TYPE_META = "agentladder/error_type"
"""Result ``_meta`` key with the class name of the error a failed tool raised (agentladder's servers set it)."""


def is_wrapped(schema: Any) -> bool:
    """Whether an output schema is the ``{"result": ...}`` wrapper of a non-object result."""
    return (isinstance(schema, dict) and set(schema.get("properties") or {}) == {"result"}
            and "result" in (schema.get("required") or []) and str(schema.get("title", "")).endswith("Output"))


def wrap_schema(name: str, schema: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """The output schema to declare for a tool's result schema, and whether results are wrapped."""
    if schema is None:
        return None, False
    if schema.get("type") == "object" and "$ref" not in schema:
        return schema, False
    inner = {k: v for k, v in schema.items() if k != "$defs"}
    wrapped: dict[str, Any] = {"type": "object", "properties": {"result": inner}, "required": ["result"],
                               "title": f"{name}Output"}
    if "$defs" in schema:
        wrapped["$defs"] = schema["$defs"]
    return wrapped, True


def block_text(block: Any) -> str:
    """A content block as the text the model is shown."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.EmbeddedResource):
        res = block.resource
        text = getattr(res, "text", None)
        return text if text is not None else f"[resource {res.uri}, {res.mime_type or 'binary'}]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link {block.uri}]"
    mime = getattr(block, "mime_type", None) or "binary"
    return f"[{getattr(block, 'type', 'content')} {mime}, {len(getattr(block, 'data', '') or '')} base64 characters]"


def result_value(result: types.CallToolResult, output_schema: Any) -> Any:
    """The value of a successful call: structured content (unwrapped), else the text of its content."""
    if result.structured_content is not None:
        sc = result.structured_content
        return sc["result"] if is_wrapped(output_schema) and isinstance(sc, dict) and "result" in sc else sc
    texts = [block_text(b) for b in result.content]
    return texts[0] if len(texts) == 1 else "\n".join(texts)


def error_of(result: types.CallToolResult) -> tuple[str, str]:
    """``(message, error type)`` of a result marked ``isError``."""
    message = "\n".join(block_text(b) for b in result.content).strip() or "the tool reported an error"
    error_type = (result.meta or {}).get(ERROR_TYPE_META) if isinstance(result.meta, dict) else None
    return message, str(error_type or "MCPToolError")
