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

const { WebSocketServer } = require('ws');
const common = require('./http-common.js');

const SUB_PATH = /^\/sub\/(\w[\w-]*)$/;
const opts = common.parseArgs('ws-broadcast', process.argv.slice(2));
const channels = new Map(); // channel name -> Set<WebSocket>

const server = common.createServer((channel, body, res) => {
  const set = channels.get(channel);
  let n = 0;
  if (set) {
    for (const c of set) {
      c.send(body);
      n++;
    }
  }
  common.reply(res, 200, { ok: true, subscribers: n });
});

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: common.MAX_BODY });

// ws only calls this for upgrade requests; refuse anything but /sub/CHANNEL before upgrading.
wss.shouldHandle = (req) => SUB_PATH.test(req.url.split('?', 1)[0]);

wss.on('connection', (ws, req) => {
  const channel = SUB_PATH.exec(req.url.split('?', 1)[0])[1];
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

common.serve('ws-broadcast', server, opts, (done) => {
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.close(done);
});
