// A Node MCP server from @modelcontextprotocol/sdk as its documentation sets one up:
// createMcpExpressApp (express.json() reads the body) and a stateless Streamable HTTP
// transport answering JSON, for tests/mcp_lenient_backends.rs.
//
//   node mcp-gated-backend.mjs RECORD_FILE
//
// `purge` appends a line to RECORD_FILE each time it runs; `whoami` does nothing. Prints
// `listening on http://127.0.0.1:PORT` once it listens.
import { appendFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';

const record = process.argv[2];
if (!record) throw new Error('usage: node mcp-gated-backend.mjs RECORD_FILE');

function server() {
  const mcp = new McpServer({ name: 'gated', version: '1.0.0' });
  mcp.registerTool('purge', { description: 'The gated tool: records that it ran.' }, async () => {
    appendFileSync(record, 'purge\n');
    return { content: [{ type: 'text', text: 'purged' }] };
  });
  mcp.registerTool('whoami', { description: 'An ungated tool.' }, async () => ({
    content: [{ type: 'text', text: 'anyone' }],
  }));
  return mcp;
}

const app = createMcpExpressApp();
app.post('/mcp', async (req, res) => {
  // Stateless: one server and one transport per request.
  const mcp = server();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    mcp.close();
  });
  await mcp.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

// Bodies express.json() cannot parse: answered as the SDK would, without a stack trace on stderr.
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.status(err.status ?? 500).json({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
});

const listener = app.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
process.on('SIGTERM', () => listener.close(() => process.exit(0)));
