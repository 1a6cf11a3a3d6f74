// Processes and servers for the interop tests: the Rust example server (the API), static
// page servers, headless Chromium. Everything on loopback; everything stopped in `after`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile, access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const interopDir = path.resolve(here, '..');
const repo = path.resolve(interopDir, '..');

/** Start `cargo run --example server` (already built by `cargo test`) and wait for its line. */
export async function startApi(args) {
  const api = await startExample('server', ['--listen', '127.0.0.1:0', ...args]);
  return { url: api.url, port: new URL(api.url).port, stop: api.stop };
}

/**
 * Start the built example `name` and read its first line, `listening on URL` (and maybe more
 * after a space: `line` is all of it); `next()` reads each line it prints after that.
 */
export async function startExample(name, args) {
  const exe = path.join(repo, 'target', 'debug', 'examples', name);
  await access(exe).catch(() => {
    throw new Error(`${exe} is missing: run \`cargo test --workspace\` (or \`cargo build --examples\`) first`);
  });
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} printed nothing within 20 s`)), 20_000);
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
      lines.next().then(({ value }) => {
        clearTimeout(timer);
        resolve(value);
      }, reject);
    });
  const first = await next();
  const m = /^listening on (http:\/\/\S+)(?: .*)?$/.exec(first ?? '');
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`unexpected first line from ${name}: ${first}`);
  }
  return { url: m[1], line: first, next, stop: () => stop(child) };
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
  });
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };
const SERVED = ['/node_modules/axios/dist/', '/node_modules/axios-auth-refresh/dist/'];

/** A static server for the test page and the two browser libraries it loads. */
export async function startPages() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let file;
    if (url.pathname === '/') file = path.join(interopDir, 'page', 'index.html');
    else if (SERVED.some((p) => url.pathname.startsWith(p)) && !url.pathname.includes('..')) {
      file = path.join(interopDir, url.pathname);
    }
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return { port, stop: () => new Promise((resolve) => server.close(resolve)) };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Tokens for the tests, straight from the demo provider (no browser involved). */
export async function expiredToken(api, scope = 'read') {
  const r = await fetch(`${api}/dev/expired-token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scope }),
  });
  return (await r.json()).access_token;
}

export async function clientToken(api, scope) {
  const r = await fetch(`${api}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from('demo:demo-secret').toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  return (await r.json()).access_token;
}
