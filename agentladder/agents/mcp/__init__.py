"""Tools over the Model Context Protocol, both ways, through the official ``mcp`` SDK.

- :func:`mcp_tools` / :class:`MCPConnection`: an MCP server's tools (stdio subprocess or
  streamable HTTP) as the runtime's tools;
- :func:`mcp_server`, :func:`mcp_http_app`, :func:`serve_mcp`: this project's tools and
  agents as an MCP server (stdio or streamable HTTP).

See ``docs/tools.md``.
"""

from agentladder.agents.mcp.client import MCPConnection, mcp_tools
from agentladder.agents.mcp.server import aserve_stdio, mcp_http_app, mcp_server, serve_mcp

__all__ = ["MCPConnection", "aserve_stdio", "mcp_http_app", "mcp_server", "mcp_tools", "serve_mcp"]
