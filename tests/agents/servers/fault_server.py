"""An MCP server written with the official SDK's low-level Server, whose tools misbehave on purpose.

    python fault_server.py            # stdio
    python fault_server.py --http PORT

- ``add``: a well-behaved tool (structured output, wrapped as ``{"result": n}``);
- ``hang``: never answers;
- ``die``: the server process exits in the middle of the call;
- ``bad_schema``: declares an input schema that is not valid JSON Schema;
- ``bad_output``: returns structured content that breaks its declared output schema;
- ``huge``: returns about 1 MB of text;
- ``fail``: reports an error (``isError``).
"""

import os
import sys
import time

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(name="add", description="Add two integers.",
               input_schema={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                             "required": ["a", "b"]},
               output_schema={"type": "object", "properties": {"result": {"type": "integer"}},
                              "required": ["result"], "title": "addOutput"}),
    types.Tool(name="hang", description="Never answers.", input_schema={"type": "object", "properties": {}}),
    types.Tool(name="die", description="Exits mid-call.", input_schema={"type": "object", "properties": {}}),
    types.Tool(name="bad_schema", description="Its schema is broken.",
               input_schema={"type": "object", "properties": {"x": {"type": "nonsense"}}}),
    types.Tool(name="bad_output", description="Breaks its output schema.",
               input_schema={"type": "object", "properties": {}},
               output_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
    types.Tool(name="huge", description="A very long answer.", input_schema={"type": "object", "properties": {}}),
    types.Tool(name="fail", description="Reports an error.", input_schema={"type": "object", "properties": {}}),
]


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(ctx, params):
    args = params.arguments or {}
    if params.name == "add":
        n = args["a"] + args["b"]
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(n))],
                                    structured_content={"result": n})
    if params.name == "hang":
        await anyio.sleep(3600)
    if params.name == "die":
        time.sleep(0.1)
        os._exit(3)
    if params.name == "bad_output":
        return types.CallToolResult(content=[types.TextContent(type="text", text="n is x")],
                                    structured_content={"n": "x"})
    if params.name == "huge":
        return types.CallToolResult(content=[types.TextContent(type="text", text="x" * 1_000_000)])
    if params.name == "fail":
        return types.CallToolResult(content=[types.TextContent(type="text", text="the database is down")],
                                    is_error=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text="called")])


server = Server("faults", on_list_tools=list_tools, on_call_tool=call_tool)


async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        anyio.run(main)
