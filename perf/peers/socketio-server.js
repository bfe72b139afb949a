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

const { Server } = require('socket.io');
const common = require('./http-common.js');

const CHANNEL = /^\w[\w-]*$/;
const opts = common.parseArgs('socketio-server', process.argv.slice(2));

// Requests under /socket.io/ belong to Socket.IO (engine.io attaches its own 'request'
// listener to this server); everything else is ours.
const httpServer = common.createServer(
  (channel, body, res) => {
    let obj;
    try {
      obj = JSON.parse(body);
    } catch {
      common.reply(res, 400, { ok: false, error: 'body is not JSON' });
      return;
    }
    io.to(channel).emit('tick', obj);
    common.reply(res, 200, { ok: true });
  },
  (path) => path.startsWith('/socket.io/'),
);

const io = new Server(httpServer, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: common.MAX_BODY,
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

common.serve('socketio-server', httpServer, opts, (done) => {
  io.disconnectSockets(true);
  io.close(done);
});
