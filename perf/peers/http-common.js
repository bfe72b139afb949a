// What the two Node peers share and is not the point of the comparison: command line, the
// HTTP side (JSON replies, a bounded publish body, /healthz, /pub/CHANNEL routing, keep-alive
// for the publisher), listening and the SIGTERM path. Each peer keeps its own fan-out code.
'use strict';

const http = require('node:http');

const MAX_BODY = 1024 * 1024;
const PUB_PATH = /^\/pub\/(\w[\w-]*)$/;

/// --port N (0: ephemeral) and --host H; exits 2 with usage on anything else.
function parseArgs(name, argv) {
  const text = `usage: node ${name}.js [--port PORT] [--host HOST]\n`;
  const usage = (error) => {
    if (error) {
      process.stderr.write(`${name}: ${error}\n${text}`);
      process.exit(2);
    }
    process.stdout.write(text);
    process.exit(0);
  };
  const opts = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') {
      opts.port = Number(value());
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
    } else if (a === '--host') {
      opts.host = value();
    } else if (a === '--help' || a === '-h') {
      usage();
    } else {
      usage(`unknown argument ${a}`);
    }
  }
  return opts;
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/// Reads a body of at most MAX_BODY bytes (413 otherwise) and calls onBody(string).
function readBody(req, res, onBody) {
  if (Number(req.headers['content-length']) > MAX_BODY) {
    reply(res, 413, { ok: false, error: 'body too large' });
    req.resume();
    return;
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_BODY) {
      tooLarge = true;
      reply(res, 413, { ok: false, error: 'body too large' });
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!tooLarge) onBody(Buffer.concat(chunks, size).toString('utf8'));
  });
}

/// An http.Server answering GET/HEAD /healthz and POST /pub/CHANNEL (publish(channel, body,
/// res) answers it); `skip(path)` hands a path to someone else (Socket.IO's /socket.io/).
function createServer(publish, skip = () => false) {
  const server = http.createServer((req, res) => {
    const path = req.url.split('?', 1)[0];
    if (skip(path)) return;
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        reply(res, 405, { ok: false, error: 'method not allowed' });
        return;
      }
      reply(res, 200, { ok: true });
      return;
    }
    const m = PUB_PATH.exec(path);
    if (!m) {
      reply(res, 404, { ok: false, error: 'not found' });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      reply(res, 405, { ok: false, error: 'method not allowed' });
      return;
    }
    readBody(req, res, (body) => publish(m[1], body, res));
  });
  // Upgraded subscriber sockets are not governed by these; the publisher's keep-alive
  // connection must survive a whole run.
  server.keepAliveTimeout = 300_000;
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

/// Listens (backlog 4096, as ringcastd's listen() gets after net.core.somaxconn), prints
/// "listening on HOST:PORT", and on SIGTERM/SIGINT runs close(done) then exits 0 (after 2 s
/// at the latest).
function serve(name, server, opts, close) {
  server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
    const { address, port } = server.address();
    process.stdout.write(`listening on ${address}:${port}\n`);
  });
  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${name}: ${signal}, closing\n`);
    close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

module.exports = { MAX_BODY, parseArgs, reply, createServer, serve };
