#!/usr/bin/env node
// The plain Node.js broadcast server a team would write today with `ws`: one http.Server,
// one WebSocketServer on it, a Set of sockets per channel, and an HTTP publish endpoint
// that sends the body to every socket of the channel. perf/compare measures ringcast
// against it (perf/peers/README.md).
//
//   node ws-broadcast.js [--port 0] [--host 127.0.0.1]
//     ws://HOST:PORT/sub/CHANNEL      subscribe (from the moment the upgrade completes)
//     POST http://HOST:PORT/pub/CHANNEL  body = the message, sent verbatim as a text frame;
//                                     200 {"ok":true,"subscribers":N}
//     GET  http://HOST:PORT/healthz   200
//   Prints "listening on HOST:PORT" on stdout once listening; SIGTERM/SIGINT exit cleanly.
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');

const MAX_BODY = 1024 * 1024;
const CHANNEL_PATH = /^\/(sub|pub)\/(\w[\w-]*)$/;

function parseArgs(argv) {
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

function usage(error) {
  const text = 'usage: node ws-broadcast.js [--port PORT] [--host HOST]\n';
  if (error) {
    process.stderr.write(`ws-broadcast: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));
const channels = new Map(); // channel name -> Set<WebSocket>

function reply(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function publish(req, res, channel) {
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY) {
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
    if (tooLarge) return;
    const body = Buffer.concat(chunks, size).toString('utf8');
    const set = channels.get(channel);
    let n = 0;
    if (set) {
      for (const c of set) {
        c.send(body);
        n++;
      }
    }
    reply(res, 200, { ok: true, subscribers: n });
  });
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (path === '/healthz') {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, { ok: false, error: 'method not allowed' });
      return;
    }
    reply(res, 200, { ok: true });
    return;
  }
  const m = CHANNEL_PATH.exec(path);
  if (!m || m[1] !== 'pub') {
    reply(res, 404, { ok: false, error: 'not found' });
    return;
  }
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    reply(res, 405, { ok: false, error: 'method not allowed' });
    return;
  }
  publish(req, res, m[2]);
});
// Idle subscriber sockets are upgraded and no longer governed by these; the publisher's
// keep-alive connection must survive a whole run.
server.keepAliveTimeout = 300_000;
server.requestTimeout = 0;
server.headersTimeout = 60_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: MAX_BODY });

// ws only calls this for upgrade requests; refuse anything but /sub/CHANNEL before upgrading.
wss.shouldHandle = (req) => {
  const m = CHANNEL_PATH.exec(req.url.split('?', 1)[0]);
  return m !== null && m[1] === 'sub';
};

wss.on('connection', (ws, req) => {
  const channel = CHANNEL_PATH.exec(req.url.split('?', 1)[0])[2];
  let set = channels.get(channel);
  if (!set) {
    set = new Set();
    channels.set(channel, set);
  }
  set.add(ws);
  ws.on('close', () => {
    set.delete(ws);
    if (set.size === 0 && channels.get(channel) === set) channels.delete(channel);
  });
  ws.on('error', () => {}); // the close that follows cleans up
});

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});

// backlog 4096: the same as ringcastd's listen() (capped by net.core.somaxconn).
server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`ws-broadcast: ${signal}, closing\n`);
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
