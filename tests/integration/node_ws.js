#!/usr/bin/env node
// Echo, ping/pong, close codes and 200 concurrent clients, seen by Node's `ws` (npm).
//
// Usage: node node_ws.js PATH/TO/ringcastd
// `ws` comes from tests/integration/node_modules (npm ci --prefix tests/integration);
// without it, or without the binary, the script fails. Every wait is bounded. Prints TAP
// (support.js): the plan first, then one `ok` / `not ok` line per case.
'use strict';

const path = require('path');
const crypto = require('crypto');
const { wsDir, MIB, withTimeout, check, startServer, openClient, nextMessage, runTap,
        exitWith } = require('./support.js');

function open(port) {
    return openClient(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false });
}

function closeAndWait(ws, code, reason, ms = 5000) {
    const closed = new Promise((resolve) =>
        ws.once('close', (gotCode, gotReason) => resolve({ code: gotCode, reason: gotReason })));
    ws.close(code, reason);
    return withTimeout(closed, ms, `close handshake (${code})`);
}

async function echo(ws, data, isBinary) {
    ws.send(data, { binary: isBinary });
    const got = await nextMessage(ws, 20000);
    check(got.isBinary === isBinary,
          `sent ${isBinary ? 'binary' : 'text'}, got ${got.isBinary ? 'binary' : 'text'} back`);
    const want = Buffer.isBuffer(data) ? data : Buffer.from(data);
    check(Buffer.compare(got.data, want) === 0,
          `echo differs: sent ${want.length} bytes, got ${got.data.length} ` +
          `(first bytes sent ${want.subarray(0, 16).toString('hex')}, ` +
          `got ${got.data.subarray(0, 16).toString('hex')})`);
}

// The cases; `srv.port` is set once the server is up (support.js runTap).
function cases(srv) {
    const list = [];
    const add = (name, fn) => list.push({ name, fn });

    add('text echo (ascii, multi-byte, empty)', async () => {
        const ws = await open(srv.port);
        await echo(ws, 'hello from node ws', false);
        await echo(ws, 'κόσμε ✓ 😀', false);
        await echo(ws, '', false);
        await closeAndWait(ws, 1000);
    });
    add('binary echo (all byte values, empty)', async () => {
        const ws = await open(srv.port);
        await echo(ws, Buffer.from([...Array(256).keys()]), true);
        await echo(ws, Buffer.alloc(0), true);
        await closeAndWait(ws, 1000);
    });
    add('1 MiB text and 1 MiB binary messages echoed', async () => {
        const ws = await open(srv.port);
        await echo(ws, 'é'.repeat(MIB / 2), false);
        await echo(ws, crypto.randomBytes(MIB), true);
        await closeAndWait(ws, 1000);
    });
    add('ping with payload is answered by a pong with the same payload', async () => {
        const ws = await open(srv.port);
        const payloads = [Buffer.alloc(0), Buffer.from('node-ping'), crypto.randomBytes(125)];
        for (const payload of payloads) {
            const pong = withTimeout(new Promise((resolve) => ws.once('pong', resolve)), 5000,
                                     `pong for a ${payload.length}-byte ping`);
            ws.ping(payload);
            const got = await pong;
            check(Buffer.compare(got, payload) === 0,
                  `pong payload ${got.toString('hex')} != ping payload ${payload.toString('hex')}`);
        }
        await closeAndWait(ws, 1000);
    });
    for (const [code, reason] of [[1000, ''], [1001, 'leaving'], [3000, 'app'], [4000, 'x'],
                                  [4999, '']]) {
        add(`close ${code} is answered with close ${code}`, async () => {
            const ws = await open(srv.port);
            await echo(ws, 'before close', false);
            const got = await closeAndWait(ws, code, reason);
            check(got.code === code, `closed with ${code}, server answered ${got.code}`);
        });
    }
    add('close without a code is answered (1005 seen locally = empty close, or 1000)', async () => {
        const ws = await open(srv.port);
        const got = await closeAndWait(ws);
        check(got.code === 1005 || got.code === 1000,
              `empty close answered with ${got.code}, expected an empty close or 1000`);
    });
    add('200 concurrent clients x 100 messages: content and order', async () => {
        const clients = 200;
        const messages = 100;
        const one = async (c) => {
            const ws = await open(srv.port);
            const sent = [];
            for (let i = 0; i < messages; i++) {
                const binary = (c + i) % 3 === 0;
                const body = binary ? Buffer.concat([Buffer.from([c & 255, i]),
                                                     crypto.randomBytes((c * 7 + i * 13) % 700)])
                                    : `client ${c} message ${i} ` + 'ü'.repeat((c + i) % 200);
                sent.push({ body, binary });
                ws.send(body, { binary });
            }
            for (let i = 0; i < messages; i++) {
                const got = await nextMessage(ws, 30000);
                const want = Buffer.from(sent[i].body);
                check(got.isBinary === sent[i].binary && Buffer.compare(got.data, want) === 0,
                      `client ${c} message ${i}: expected ${sent[i].binary ? 'binary' : 'text'} ` +
                      `${want.length} bytes, got ${got.isBinary ? 'binary' : 'text'} ` +
                      `${got.data.length} bytes`);
            }
            const closed = await closeAndWait(ws, 1000);
            check(closed.code === 1000, `client ${c}: close answered with ${closed.code}`);
        };
        const results = await Promise.allSettled([...Array(clients).keys()].map(one));
        const failed = results.map((r, i) => [i, r]).filter(([, r]) => r.status === 'rejected');
        check(failed.length === 0, `${failed.length} of ${clients} clients failed; first: client ` +
              `${failed.length ? failed[0][0] + ': ' + failed[0][1].reason.message : ''}`);
    });
    return list;
}

exitWith(runTap({
    cases,
    start: () => startServer([], { echo: true }),
    header: (server) => `node ws ${require(path.join(wsDir, 'package.json')).version} ` +
                        `against ringcastd --echo (port ${server.port})`,
}));
