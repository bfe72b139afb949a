#!/usr/bin/env node
// Socket.IO connection state recovery (docs/socketio.md "Recovery") with the unchanged
// npm socket.io-client 4.8 and its default transports, against ringcastd --shards 2 with
// history on the chat namespace:
//   * a client in two rooms whose transport drops while messages are published to both
//     reconnects by itself with its pid and last delivery tag: socket.recovered is true and
//     it receives every missed message, in each room's order, none twice, then live ones;
//   * each event carries the delivery tag as its last argument (recovery on);
//   * a second drop right after a recovery recovers again (the pid moved with the client);
//   * rooms of a namespace without history do not recover: socket.recovered is false and
//     the app rejoins (what socket.io apps do), receiving from then on;
//   * past --socketio-recovery-ms the session is gone: recovered false;
//   * with --socketio-recovery-ms 0: no pid, no tag argument, recovered false;
//   * the counters socketio_recovered / socketio_not_recovered / socketio_parked agree.
//
// Usage: node socketio_recovery.js PATH/TO/ringcastd
'use strict';

const fs = require('fs');
const path = require('path');
const { check, startServer, stopServer, runTap, exitWith, httpRequest } = require('./support.js');

const clientDir = path.join(__dirname, 'node_modules', 'socket.io-client');
if (!fs.existsSync(clientDir)) {
    console.log('Bail out! missing dependency: socket.io-client (run: bash .ci/install)');
    process.exit(1);
}
const { io } = require(clientDir);

const RECOVERY_MS = 4000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const request = httpRequest;

async function publish(port, channel, n) {
    const r = await request(port, 'POST', '/api/publish', { channel, event: 'tick', data: { n } });
    check(r.status === 200 && r.json.ok, `publish to ${channel}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json.offset;
}

async function stats(port) {
    return (await request(port, 'GET', '/api/stats')).json.total;
}

async function until(what, ms, probe) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (probe()) return;
        await sleep(20);
    }
    throw new Error(`not within ${ms} ms: ${what}${until.debug ? " " + until.debug() : ""}`);
}

// A socket.io app as written for a server with recovery: on connect, rejoin its rooms
// unless the session was recovered; every 'tick' kept with its arguments.
function app(port, rooms) {
    const socket = io(`http://127.0.0.1:${port}`, {
        reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0, forceNew: true,
    });
    const state = { socket, got: [], connects: [], joined: 0 };
    socket.on('tick', (...args) => state.got.push(args));
    socket.on('connect', () => {
        state.connects.push(socket.recovered);
        if (!socket.recovered) {
            for (const room of rooms) {
                socket.emit('join_room', room, (ack) => {
                    if (ack && ack.ok) state.joined += 1;
                });
            }
        }
    });
    return state;
}

// The n of every tick of `room` (data {n}) received so far, in arrival order.
const ns = (state, lo, hi) => state.got.map((a) => a[0].n).filter((n) => n >= lo && n < hi);

function main() {
    const apps = [];
    const cases = (srv) => [
        {
            name: 'missed messages of two rooms come back after a drop: recovered, in order, once',
            fn: async () => {
                const a = app(srv.port, ['chat:a', 'chat:b']);
                apps.push(a);
                until.debug = () => `got ${JSON.stringify(a.got.map((g) => g[0].n))} connects ${JSON.stringify(a.connects)}`;
                await until('connected and joined', 10000, () => a.joined === 2);
                check(a.socket.io.engine.transport.name === 'websocket',
                      `transport ${a.socket.io.engine.transport.name}`);
                for (let i = 1; i <= 5; i++) {
                    await publish(srv.port, 'chat:a', i);
                    await publish(srv.port, 'chat:b', 100 + i);
                }
                await until('the first ten', 10000, () => a.got.length === 10);
                // Each event's last argument is its delivery tag (a string), not the data.
                check(a.got.every((args) => args.length === 2 && typeof args[1] === 'string' &&
                                            /^[0-9a-f]+\.[0-9a-f]+-\d+$/.test(args[1])),
                      `arguments ${JSON.stringify(a.got.slice(0, 2))}`);
                a.socket.io.engine.close(); // the transport drops; the client reconnects
                for (let i = 6; i <= 10; i++) {
                    await publish(srv.port, 'chat:a', i);
                    await publish(srv.port, 'chat:b', 100 + i);
                }
                await until('a second connect', 10000, () => a.connects.length === 2);
                check(a.connects[1] === true, `recovered ${a.connects[1]}`);
                await until('the missed ten', 10000, () => a.got.length === 20);
                for (let i = 11; i <= 12; i++) {
                    await publish(srv.port, 'chat:a', i);
                }
                await until('two live ones after', 10000, () => a.got.length === 22);
                const roomA = ns(a, 1, 100);
                const roomB = ns(a, 100, 200);
                check(JSON.stringify(roomA) === JSON.stringify([...Array(12).keys()].map((k) => k + 1)),
                      `chat:a ${roomA}`);
                check(JSON.stringify(roomB) === JSON.stringify([...Array(10).keys()].map((k) => k + 101)),
                      `chat:b ${roomB}`);
            },
        },
        {
            name: 'a second drop right after recovers again; the counters agree',
            fn: async () => {
                const a = apps[0];
                const before = await stats(srv.port);
                a.socket.io.engine.close();
                await publish(srv.port, 'chat:b', 111);
                await until('a third connect', 10000, () => a.connects.length === 3);
                check(a.connects[2] === true, `recovered ${a.connects[2]}`);
                await until('the one missed', 10000, () => ns(a, 111, 112).length === 1);
                await sleep(300);
                check(ns(a, 100, 200).length === 11, `chat:b got ${ns(a, 100, 200)}`);
                const after = await stats(srv.port);
                check(after.socketio_recovered === before.socketio_recovered + 1,
                      `socketio_recovered ${before.socketio_recovered} → ${after.socketio_recovered}`);
                check(after.socketio_parked === 0, `socketio_parked ${after.socketio_parked}`);
            },
        },
        {
            name: 'rooms without history do not recover: recovered false, the app rejoins',
            fn: async () => {
                const b = app(srv.port, ['plain']);
                apps.push(b);
                await until('joined', 10000, () => b.joined === 1);
                await publish(srv.port, 'plain', 1);
                await until('one', 10000, () => b.got.length === 1);
                const before = await stats(srv.port);
                b.socket.io.engine.close();
                await until('a second connect', 10000, () => b.connects.length === 2);
                check(b.connects[1] === false, `recovered ${b.connects[1]}`);
                await until('rejoined', 10000, () => b.joined === 2);
                await publish(srv.port, 'plain', 2);
                await until('the next one', 10000, () => ns(b, 2, 3).length === 1);
                const after = await stats(srv.port);
                check(after.socketio_not_recovered === before.socketio_not_recovered + 1,
                      `socketio_not_recovered ${before.socketio_not_recovered} → ` +
                      `${after.socketio_not_recovered}`);
            },
        },
        {
            name: 'past --socketio-recovery-ms the session is gone: recovered false',
            fn: async () => {
                const c = app(srv.port, ['chat:c']);
                apps.push(c);
                await until('joined', 10000, () => c.joined === 1);
                c.socket.io.reconnection(false);
                c.socket.io.engine.close();
                await until('disconnected', 5000, () => !c.socket.connected);
                await sleep(RECOVERY_MS + 500);
                c.socket.io.reconnection(true);
                c.socket.connect();
                await until('a second connect', 10000, () => c.connects.length === 2);
                check(c.connects[1] === false, `recovered ${c.connects[1]} after the window`);
            },
        },
        {
            name: 'with --socketio-recovery-ms 0: no pid, no tag argument, recovered false',
            fn: async () => {
                const off = await startServer(['--shards', '2', '--namespace', 'chat:history=100',
                                               '--socketio-recovery-ms', '0']);
                try {
                    const d = app(off.port, ['chat:d']);
                    apps.push(d);
                    await until('joined', 10000, () => d.joined === 1);
                    await publish(off.port, 'chat:d', 1);
                    await until('one', 10000, () => d.got.length === 1);
                    check(d.got[0].length === 1, `arguments ${JSON.stringify(d.got[0])}`);
                    d.socket.io.engine.close();
                    await until('a second connect', 10000, () => d.connects.length === 2);
                    // socket.io-client sets recovered = pid && pid === its pid: no pid, falsy.
                    check(!d.connects[1], `recovered ${d.connects[1]}`);
                    d.socket.close();
                } finally {
                    const { code } = await stopServer(off);
                    check(code === 0, `the second server exited ${code}`);
                }
            },
        },
    ];

    return runTap({
        cases,
        start: () => startServer(['--shards', '2', '--namespace', 'chat:history=1000',
                                  '--socketio-recovery-ms', String(RECOVERY_MS)]),
        header: (server) => `ringcastd on 127.0.0.1:${server.port}, socket.io-client ` +
                            require(path.join(clientDir, 'package.json')).version,
        beforeStop: () => {
            for (const a of apps) a.socket.close();
        },
    });
}

exitWith(main());
