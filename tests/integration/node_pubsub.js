#!/usr/bin/env node
// Pub/sub basics seen by Node's `ws` (npm): subscribe, publish through the backend API,
// the envelope, per-channel order across 2 shards, 100 clients.
//
// Usage: node node_pubsub.js PATH/TO/ringcastd
// Server: --shards 2 --insecure --client-publish chat. `ws` comes from
// tests/integration/node_modules (npm ci --prefix tests/integration); without it, or
// without the binary, the script fails. Every wait is bounded. Prints TAP
// (support.js): the plan first, then one `ok` / `not ok` line per case.
'use strict';

const path = require('path');
const { WebSocket, wsDir, withTimeout, check, startServer, runTap, exitWith } =
    require('./support.js');

const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

// The backend API: resolves {status, json, body}.
function api(port, method, urlPath, body) {
    const data = body === undefined ? null
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent,
                                   headers: data ? { 'Content-Type': 'application/json',
                                                     'Content-Length': data.length } : {} },
                                 (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString();
                let json = null;
                try { json = JSON.parse(text); } catch (e) { /* left null */ }
                resolve({ status: res.statusCode, json, body: text });
            });
        });
        req.on('error', reject);
        if (data) req.write(data);
        req.end();
    }), 10000, `${method} ${urlPath}`);
}

async function publish(port, channel, data, extra = {}) {
    const r = await api(port, 'POST', '/api/publish', { channel, data, ...extra });
    check(r.status === 200 && r.json && r.json.ok === true && Number.isInteger(r.json.offset),
          `POST /api/publish ${channel}: ${r.status} ${r.body.slice(0, 200)}`);
    return r.json.offset;
}

// A client: replies go to the waiter of their id, everything else to `messages`.
function connect(port, user) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws` + (user ? `?user=${user}` : ''),
                             { perMessageDeflate: false, maxPayload: 64 << 20 });
    ws.messages = [];
    ws.raw = [];
    ws.pending = new Map();
    ws.nextId = 1;
    ws.waiters = [];
    ws.on('message', (data, isBinary) => {
        const text = data.toString();
        let m;
        try { m = JSON.parse(text); } catch (e) { m = { unparsable: text }; }
        if (m.op === 'reply' && ws.pending.has(m.id)) {
            ws.pending.get(m.id)(m);
            ws.pending.delete(m.id);
            return;
        }
        ws.messages.push(m);
        ws.raw.push(text);
        for (const w of ws.waiters.splice(0)) w();
    });
    ws.on('close', (code) => { ws.closeCode = code; for (const w of ws.waiters.splice(0)) w(); });
    ws.on('error', (e) => { ws.lastError = e.message; });
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.once('unexpected-response', (req, res) =>
            reject(new Error(`handshake answered with HTTP ${res.statusCode}`)));
    }), 5000, 'WebSocket open');
}

function command(ws, op, fields = {}, ms = 10000) {
    const id = ws.nextId++;
    const reply = new Promise((resolve) => ws.pending.set(id, resolve));
    ws.send(JSON.stringify({ op, ...fields, id }));
    return withTimeout(reply, ms, `reply to ${op} ${JSON.stringify(fields)}`);
}

async function subscribe(ws, channel) {
    const r = await command(ws, 'subscribe', { channel });
    check(r.ok === true && r.channel === channel && Number.isInteger(r.offset) &&
          typeof r.epoch === 'string', `subscribe ${channel}: ${JSON.stringify(r)}`);
    return r;
}

async function waitMessages(ws, n, ms = 10000) {
    const deadline = Date.now() + ms;
    while (ws.messages.length < n) {
        check(ws.readyState === WebSocket.OPEN,
              `connection closed (${ws.closeCode ?? ws.lastError}) after ${ws.messages.length} of ${n} messages`);
        const left = deadline - Date.now();
        check(left > 0, `${ws.messages.length} of ${n} messages within ${ms} ms`);
        await new Promise((resolve) => {
            const t = setTimeout(resolve, Math.min(left, 500));
            ws.waiters.push(() => { clearTimeout(t); resolve(); });
        });
    }
}

const ENVELOPE = ['id', 'event', 'channel', 'data', 'priority', 'timestamp', 'userId', 'offset'];

// The cases; `srv.port` is set once the server is up (support.js runTap).
function cases(srv) {
    const list = [];
    const add = (name, fn) => list.push({ name, fn });

    add('subscribe, API publish, envelope fields in order', async () => {
        const port = srv.port;
        const ws = await connect(port, 'n1');
        const r = await subscribe(ws, 'node-basic');
        const before = Date.now();
        const off = await publish(port, 'node-basic', { hello: 'ünï 😀', list: [1, 2] },
                                  { event: 'greet', priority: 2, userId: 'backend7' });
        check(off === r.offset + 1, `publish offset ${off} after subscribe offset ${r.offset}`);
        await waitMessages(ws, 1);
        const m = ws.messages[0];
        check(JSON.stringify(Object.keys(m)) === JSON.stringify(ENVELOPE),
              `envelope fields ${JSON.stringify(Object.keys(m))}, expected ${JSON.stringify(ENVELOPE)}`);
        check(typeof m.id === 'string' && m.id.length > 0 && m.event === 'greet' &&
              m.channel === 'node-basic' && m.priority === 2 && m.userId === 'backend7' &&
              m.offset === off && Number.isInteger(m.timestamp) &&
              m.timestamp >= before - 2000 && m.timestamp <= Date.now() + 2000,
              `envelope ${ws.raw[0]}`);
        check(JSON.stringify(m.data) === JSON.stringify({ hello: 'ünï 😀', list: [1, 2] }),
              `data ${JSON.stringify(m.data)}`);
        check(ws.raw[0].includes('"data":{"hello":"ünï 😀","list":[1,2]}'),
              `data not passed byte for byte: ${ws.raw[0]}`);
        ws.close();
    });
    add('client publish on chat: reaches another client with the publisher\'s userId', async () => {
        const port = srv.port;
        const a = await connect(port, 'alice');
        const b = await connect(port, 'bob');
        await subscribe(b, 'chat:node');
        const r = await command(a, 'publish', { channel: 'chat:node', event: 'text',
                                                data: { text: 'hi' } });
        check(r.ok === true && Number.isInteger(r.offset), `publish reply ${JSON.stringify(r)}`);
        await waitMessages(b, 1);
        const m = b.messages[0];
        check(m.userId === 'alice' && m.offset === r.offset && m.event === 'text' &&
              m.data.text === 'hi', `message ${b.raw[0]}`);
        const denied = await command(a, 'publish', { channel: 'news:x', data: 1 });
        check(denied.ok === false && denied.error && denied.error.code === 403,
              `publish outside --client-publish: ${JSON.stringify(denied)}`);
        a.close();
        b.close();
    });
    add('100 clients on 4 channels across 2 shards: same order everywhere, no gaps', async () => {
        const port = srv.port;
        const channels = ['node-o1', 'node-o2', 'node-o3', 'node-o4'];
        const clients = await Promise.all([...Array(100).keys()].map((k) => connect(port, `o${k}`)));
        const start = {};
        await Promise.all(clients.map(async (c, k) => {
            c.channel = channels[k % 4];
            start[k] = (await subscribe(c, c.channel)).offset;
        }));
        // Two API publishers and one WebSocket publisher interleave on every channel.
        const perChannel = 60;
        const pubWs = await connect(port, 'opub');
        const apiPub = async (name) => {
            for (let n = 0; n < perChannel; n++) {
                await publish(port, channels[n % 4], { p: name, seq: n });
            }
        };
        const wsPub = async () => {
            for (let n = 0; n < perChannel; n++) {
                const r = await command(pubWs, 'publish', { channel: 'chat:node-o',
                                                            data: { p: 'ws', seq: n } });
                check(r.ok === true, `ws publish: ${JSON.stringify(r)}`);
            }
        };
        for (const c of clients.slice(0, 20)) await subscribe(c, 'chat:node-o');
        await Promise.all([apiPub('a'), apiPub('b'), wsPub()]);
        const info = await Promise.all(channels.concat(['chat:node-o']).map((ch) =>
            api(port, 'GET', `/api/channels/${ch}`)));
        const last = {};
        for (const r of info) {
            check(r.status === 200 && r.json && Number.isInteger(r.json.offset),
                  `GET /api/channels/…: ${r.status} ${r.body}`);
            last[r.json.channel] = r.json.offset;
        }
        const seqAt = {};
        await Promise.all(clients.map(async (c, k) => {
            const mine = [c.channel].concat(k < 20 ? ['chat:node-o'] : []);
            const want = mine.reduce((s, ch) => s + last[ch] - (ch === c.channel ? start[k] : 0), 0);
            await waitMessages(c, want, 20000);
        }));
        clients.forEach((c, k) => {
            const byChannel = {};
            for (const m of c.messages) (byChannel[m.channel] = byChannel[m.channel] || []).push(m);
            const first = byChannel[c.channel] || [];
            first.forEach((m, i) => {
                check(m.offset === start[k] + 1 + i, `client ${k} ${c.channel}: offset ` +
                      `${m.offset} at position ${i}, expected ${start[k] + 1 + i}`);
                const key = `${m.channel}/${m.offset}`;
                const text = JSON.stringify(m.data) + m.id;
                seqAt[key] = seqAt[key] || text;
                check(seqAt[key] === text, `client ${k}: ${key} is ${text}, others saw ${seqAt[key]}`);
            });
            const lastSeq = {};
            for (const m of first) {
                check(m.data.seq > (lastSeq[m.data.p] ?? -1), `client ${k}: publisher ` +
                      `${m.data.p} seq ${m.data.seq} after ${lastSeq[m.data.p]} on ${c.channel}`);
                lastSeq[m.data.p] = m.data.seq;
            }
        });
        for (const c of clients.concat([pubWs])) c.close();
    });
    return list;
}

exitWith(runTap({
    cases,
    start: () => startServer(['--insecure', '--shards', '2', '--client-publish', 'chat']),
    header: (server) => `node ws ${require(path.join(wsDir, 'package.json')).version} ` +
                        `pub/sub against ringcastd --shards 2 (port ${server.port})`,
    beforeStop: () => agent.destroy(),
}));
