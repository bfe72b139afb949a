#!/usr/bin/env node
// A Socket.IO 4 push server as a team would write it: clients join the room named by their
// handshake query, an HTTP publish endpoint emits a 'tick' event to the room. WebSocket
// transport only (no long-polling), no compression. perf/compare measures ringcast against
// it (perf/peers/README.md).
//
//   node socketio-server.js [--port 0] [--host 127.0.0.1]
//     ws://HOST:PORT/socket.io/?EIO=4&transport=websocket&channel=CHANNEL   subscribe
//     POST http://HOST:PORT/pub/CHANNEL   JSON body -> io.to(CHANNEL).emit('tick', body);
//                                         200 {"ok":true}; 400 if the body is not JSON
//     GET  http://HOST:PORT/healthz       200
//   Prints "listening on HOST:PORT" on stdout once listening; SIGTERM/SIGINT exit cleanly.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');

const MAX_BODY = 1024 * 1024;
const CHANNEL = /^\w[\w-]*$/;
const PUB_PATH = /^\/pub\/(\w[\w-]*)$/;

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
  const text = 'usage: node socketio-server.js [--port PORT] [--host HOST]\n';
  if (error) {
    process.stderr.write(`socketio-server: ${error}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));

function reply(res, status, body) {
  const text = JSON.stringify(body);
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
    let obj;
    try {
      obj = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch {
      reply(res, 400, { ok: false, error: 'body is not JSON' });
      return;
    }
    io.to(channel).emit('tick', obj);
    reply(res, 200, { ok: true });
  });
}

// Requests under /socket.io/ belong to Socket.IO (engine.io attaches its own 'request'
// listener to this server); everything else is ours.
const httpServer = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (path.startsWith('/socket.io/')) return;
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
  publish(req, res, m[1]);
});
httpServer.keepAliveTimeout = 300_000;
httpServer.requestTimeout = 0;
httpServer.headersTimeout = 60_000;

const io = new Server(httpServer, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: MAX_BODY,
});

// Refuse a connection without a usable channel before it is established: the client gets
// a CONNECT_ERROR packet (44{"message":...}) instead of 40.
io.use((socket, next) => {
  const channel = socket.handshake.query.channel;
  if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
    next(new Error('missing or invalid channel'));
    return;
  }
  next();
});

io.on('connection', (socket) => {
  socket.join(socket.handshake.query.channel);
});

// backlog 4096: the same as ringcastd's listen() (capped by net.core.somaxconn).
httpServer.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`socketio-server: ${signal}, closing\n`);
  io.disconnectSockets(true);
  io.close(() => process.exit(0));
  httpServer.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
