"""A Python MCP server (the official `mcp` package, Streamable HTTP, stateless, JSON answers)
with one gated tool that records every run, for tests/mcp_lenient_backends.rs.

    python gated_mcp_server.py RECORD_FILE

`purge` appends a line to RECORD_FILE each time it runs; `whoami` does nothing. Prints
`listening on http://127.0.0.1:PORT` once the socket listens (connections made before the
server loop starts wait in the backlog).
"""

import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

record = sys.argv[1]
server = MCPServer("gated", log_level="WARNING")


@server.tool()
def purge() -> str:
    """The gated tool: records that it ran."""
    with open(record, "a", encoding="utf-8") as f:
        f.write("purge\n")
    return "purged"


@server.tool()
def whoami() -> str:
    """An ungated tool."""
    return "anyone"


app = server.streamable_http_app(stateless_http=True, json_response=True)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
sock.listen(64)
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
