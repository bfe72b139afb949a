#!/usr/bin/env node
// permessage-deflate seen by Node's `ws` (npm) with perMessageDeflate on.
//
// Usage: node node_deflate.js PATH/TO/ringcastd
// Against `ringcastd --insecure --client-publish pub --echo /echo`: the extension ws
// negotiated (server_no_context_takeover, as the server answers); echo of small and 1 MiB
// messages through compression both ways; 40 subscribers receive 5 large API publishes
// intact (the server compressed each once per shard); ws's own compressed publish (context
// takeover kept across 5 messages) delivered; /api/stats shows compressed traffic both ways.
// Prints TAP (support.js); a missing `ws` or binary fails, never skips.
'use strict';

const path = require('path');
const http = require('http');
const { wsDir, MIB, withTimeout, check, startServer, openClient, nextMessage, runTap,
        exitWith } = require('./support.js');

// ws compresses everything it sends (threshold 0) unless `options` say otherwise.
function open(url, options = {}, onUpgrade = null) {
    return openClient(url, { perMessageDeflate: { threshold: 0 }, ...options }, onUpgrade);
}

function api(port, method, urlPath, body) {
    return withTimeout(new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : JSON.stringify(body);
        const req = http.request({ host: '127.0.0.1', port, method, path: urlPath,
                                   headers: data ? { 'Content-Type': 'application/json' } : {} },
                                 (res) => {
                                     let text = '';
                                     res.on('data', (c) => { text += c; });
                                     res.on('end', () => resolve(JSON.parse(text)));
                                 });
        req.on('error', reject);
        req.end(data);
    }), 10000, `${method} ${urlPath}`);
}

function feed(n) {
    const rows = [];
    for (let i = 0; rows.length * 40 < n; ++i) {
        rows.push({ sym: `ACME${i % 9}`, px: 100 + (i % 17) + (i % 100) / 100, qty: (i * 7) % 1000 });
    }
    return rows;
}

function cases(srv) {
    return [
        {
            name: 'ws negotiates permessage-deflate; the server keeps no context',
            fn: async () => {
                let answered = null;
                const ws = await open(`ws://127.0.0.1:${srv.port}/ws?user=n`, {},
                                      (res) => { answered = res.headers['sec-websocket-extensions']; });
                check(ws.extensions === 'permessage-deflate', `ws took: ${ws.extensions}`);
                check(answered === 'permessage-deflate; server_no_context_takeover',
                      `the 101 answered: ${answered}`);
                ws.close();
            },
        },
        {
            name: 'echo through compression: small and 1 MiB, text and binary',
            fn: async () => {
                const ws = await open(`ws://127.0.0.1:${srv.port}/echo`);
                const big = Buffer.alloc(MIB, 'abcdefgh');
                for (const [msg, binary] of [['hi', false], [big.toString(), false],
                                             [big, true]]) {
                    ws.send(msg, { binary });
                    const got = await nextMessage(ws);
                    check(got.isBinary === binary && Buffer.compare(Buffer.from(got.data),
                                                                    Buffer.from(msg)) === 0,
                          `echo of ${msg.length} bytes differs`);
                }
                ws.close();
            },
        },
        {
            name: '40 subscribers get 5 large publishes intact; compressed once per shard',
            fn: async () => {
                const subs = [];
                for (let i = 0; i < 40; ++i) {
                    const ws = await open(`ws://127.0.0.1:${srv.port}/ws?user=s${i}`);
                    ws.send(JSON.stringify({ op: 'subscribe', channel: 'nfeed', id: 1 }));
                    const reply = JSON.parse((await nextMessage(ws)).data);
                    check(reply.ok === true, `subscribe: ${JSON.stringify(reply)}`);
                    subs.push(ws);
                }
                const before = (await api(srv.port, 'GET', '/api/stats')).total;
                const sent = [];
                for (let k = 0; k < 5; ++k) {
                    sent.push(feed(1000 + 2000 * k));
                    await api(srv.port, 'POST', '/api/publish', { channel: 'nfeed', data: sent[k] });
                }
                for (const ws of subs) {
                    for (let k = 0; k < 5; ++k) {
                        const env = JSON.parse((await nextMessage(ws)).data);
                        check(JSON.stringify(env.data) === JSON.stringify(sent[k]),
                              `message ${k} differs`);
                    }
                    ws.close();
                }
                const after = (await api(srv.port, 'GET', '/api/stats')).total;
                const compressions = after.deflate_compressions - before.deflate_compressions;
                const out = after.compressed_messages_out - before.compressed_messages_out;
                check(out === 200, `compressed deliveries ${out}, expected 200`);
                check(compressions <= 10, `${compressions} compressions for 5 messages, 2 shards`);
            },
        },
        {
            name: "ws's compressed publishes (its context kept) are delivered",
            fn: async () => {
                const reader = await open(`ws://127.0.0.1:${srv.port}/ws?user=r`,
                                          { perMessageDeflate: false });
                reader.send(JSON.stringify({ op: 'subscribe', channel: 'pub:n', id: 1 }));
                await nextMessage(reader);
                const pub = await open(`ws://127.0.0.1:${srv.port}/ws?user=p`);
                for (let k = 0; k < 5; ++k) {
                    const data = feed(2000 + 100 * k);
                    pub.send(JSON.stringify({ op: 'publish', channel: 'pub:n', data, id: 10 + k }));
                    const reply = JSON.parse((await nextMessage(pub)).data);
                    check(reply.ok === true, `publish ${k}: ${JSON.stringify(reply)}`);
                    const env = JSON.parse((await nextMessage(reader)).data);
                    check(JSON.stringify(env.data) === JSON.stringify(data), `publish ${k} differs`);
                }
                const stats = (await api(srv.port, 'GET', '/api/stats')).total;
                check(stats.compressed_messages_in >= 5, `compressed in: ${stats.compressed_messages_in}`);
                pub.close();
                reader.close();
            },
        },
    ];
}

exitWith(runTap({
    cases,
    start: () => startServer(['--insecure', '--shards', '2', '--client-publish', 'pub'],
                             { echo: true }),
    header: (server) => `node ws ${require(path.join(wsDir, 'package.json')).version} ` +
                        `with perMessageDeflate against ringcastd (port ${server.port})`,
}));
