// perf/attack/socketio_churn.js — churn with the unchanged socket.io-client 4.8 and its
// default transports (long-polling handshake, then the upgrade), used by perf/attack/socketio.
//
//   node perf/attack/socketio_churn.js PORT COUNT CONCURRENCY SECONDS
//
// Each client: io(url, {forceNew, reconnection: false, query: {user}}), waits for
// "connect", join_room with an ack, then disconnect(). Prints one JSON line: how many
// connected, joined (ack ok), failed (by reason), seconds, and how many were upgraded to
// the WebSocket before the join's ack.
'use strict';
const path = require('path');
const { io } = require(path.join(__dirname, '..', '..', 'tests', 'integration',
                                 'node_modules', 'socket.io-client'));

const [port, count, concurrency, seconds] = process.argv.slice(2).map(Number);
const url = `http://127.0.0.1:${port}`;
const out = { connected: 0, joined: 0, upgraded: 0, failed: {}, started: 0 };
const t0 = Date.now();

function fail(reason) {
    out.failed[reason] = (out.failed[reason] || 0) + 1;
}

function one(i) {
    return new Promise((resolve) => {
        const s = io(url, { forceNew: true, reconnection: false, timeout: 10000,
                            query: { user: `churn${i % 500}` } });
        const done = (why) => {
            clearTimeout(timer);
            if (why) fail(why);
            s.disconnect();
            resolve();
        };
        const timer = setTimeout(() => done('timeout'), 15000);
        s.on('connect_error', (e) => done(`connect_error ${e && e.message}`));
        s.on('connect', () => {
            out.connected++;
            s.timeout(10000).emit('join_room', `churn-${i % 97}`, (err, reply) => {
                if (err) return done('join timeout');
                if (!reply || !reply.ok) return done('join refused');
                out.joined++;
                if (s.io.engine && s.io.engine.transport && s.io.engine.transport.name === 'websocket') {
                    out.upgraded++;
                }
                done(null);
            });
        });
    });
}

async function main() {
    let next = 0;
    const deadline = t0 + seconds * 1000;
    async function worker() {
        while (next < count && Date.now() < deadline) {
            const i = next++;
            out.started++;
            await one(i);
        }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    out.seconds = (Date.now() - t0) / 1000;
    console.log(JSON.stringify(out));
    process.exit(0);
}

main();
