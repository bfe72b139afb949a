#!/usr/bin/env node
// Pub/sub basics seen by Node's `ws` (npm): subscribe, publish through the backend API,
// the envelope, per-channel order across 2 shards, 100 clients.
//
// Usage: node node_pubsub.js PATH/TO/ringcastd
// Server: --shards 2 --insecure --client-publish chat. `ws` comes from
// tests/integration/node_modules (npm ci --prefix tests/integration); without it, or
// without the binary, the script fails. Every wait is bounded. Prints TAP (support.js):
// the plan first, then one `ok` / `not ok` line per case.
//
// What a client must receive is derived from what the test published (count, order and
// content of each publisher's stream as sent); the server's offsets are checked against
// that, never used to decide what to expect.
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

// A ping round trip: replies come back in command order, so everything the server sent
// this connection before answering is in `ws.messages` afterwards.
async function roundTrip(ws) {
    const r = await command(ws, 'ping');
    check(r.ok === true, `ping: ${JSON.stringify(r)}`);
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
        const data = { hello: 'ünï 😀', list: [1, 2] };
        const off = await publish(port, 'node-basic', data,
                                  { event: 'greet', priority: 2, userId: 'backend7' });
        check(off === r.offset + 1, `publish offset ${off} after subscribe offset ${r.offset}`);
        await waitMessages(ws, 1);
        await roundTrip(ws);
        check(ws.messages.length === 1, `published 1 message, received ${ws.messages.length}`);
        const m = ws.messages[0];
        check(JSON.stringify(Object.keys(m)) === JSON.stringify(ENVELOPE),
              `envelope fields ${JSON.stringify(Object.keys(m))}, expected ${JSON.stringify(ENVELOPE)}`);
        check(typeof m.id === 'string' && m.id.length > 0 && m.event === 'greet' &&
              m.channel === 'node-basic' && m.priority === 2 && m.userId === 'backend7' &&
              m.offset === off && Number.isInteger(m.timestamp) &&
              m.timestamp >= before - 2000 && m.timestamp <= Date.now() + 2000,
              `envelope ${ws.raw[0]}`);
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
        await roundTrip(b);
        check(b.messages.length === 1, `published 1 message, received ${b.messages.length}`);
        const m = b.messages[0];
        check(m.userId === 'alice' && m.offset === r.offset && m.event === 'text' &&
              b.raw[0].includes('"data":{"text":"hi"}'), `message ${b.raw[0]}`);
        const denied = await command(a, 'publish', { channel: 'news:x', data: 1 });
        check(denied.ok === false && denied.error && denied.error.code === 403,
              `publish outside --client-publish: ${JSON.stringify(denied)}`);
        a.close();
        b.close();
    });
    add('100 clients on 4 channels across 2 shards: every stream exactly as published',
        async () => {
        const port = srv.port;
        const channels = ['node-o1', 'node-o2', 'node-o3', 'node-o4'];
        const chat = 'chat:node-o';
        const clients = await Promise.all([...Array(100).keys()].map((k) => connect(port, `o${k}`)));
        // Every subscription takes effect before the first publish, so every subscriber of a
        // channel must receive everything published to it.
        const start = clients.map(() => ({})); // client -> channel -> subscribe reply offset
        await Promise.all(clients.map(async (c, k) => {
            c.channels = [channels[k % 4]].concat(k < 20 ? [chat] : []);
            for (const ch of c.channels) {
                start[k][ch] = (await subscribe(c, ch)).offset;
            }
        }));
        // What the test publishes, per channel: {data, userId, offset from the reply}.
        // Two API publishers and one WebSocket publisher interleave on the channels.
        const perPublisher = 60;
        const sent = Object.fromEntries(channels.concat([chat]).map((ch) => [ch, []]));
        const pubWs = await connect(port, 'opub');
        const apiPub = async (name) => {
            for (let n = 0; n < perPublisher; n++) {
                const ch = channels[n % 4];
                const data = { p: name, seq: n };
                sent[ch].push({ data, userId: null, offset: await publish(port, ch, data) });
            }
        };
        const wsPub = async () => {
            for (let n = 0; n < perPublisher; n++) {
                const data = { p: 'ws', seq: n };
                const r = await command(pubWs, 'publish', { channel: chat, data });
                check(r.ok === true && Number.isInteger(r.offset),
                      `ws publish: ${JSON.stringify(r)}`);
                sent[chat].push({ data, userId: 'opub', offset: r.offset });
            }
        };
        await Promise.all([apiPub('a'), apiPub('b'), wsPub()]);
        const key = (data) => `${data.p}/${data.seq}`;
        const byKey = {};
        for (const ch of Object.keys(sent)) {
            for (const item of sent[ch]) byKey[`${ch} ${key(item.data)}`] = item;
        }
        // Expected per client: the count of what was published to its channels. A client
        // still short when the wait gives up is reported after the stream checks below,
        // which name the missing message.
        const short = [];
        await Promise.all(clients.map(async (c, k) => {
            const want = c.channels.reduce((s, ch) => s + sent[ch].length, 0);
            try {
                await waitMessages(c, want, 20000);
            } catch (e) {
                short.push(`client ${k} on ${c.channels.join(' + ')}: ${e.message}`);
                return;
            }
            await roundTrip(c);
            check(c.messages.length === want, `client ${k} on ${c.channels.join(' + ')}: ` +
                  `published ${want} messages, received ${c.messages.length}`);
        }));
        const reference = {}; // channel -> the first client's stream (keys in arrival order)
        clients.forEach((c, k) => {
            for (const ch of c.channels) {
                const stream = [];
                c.messages.forEach((m, i) => { if (m.channel === ch) stream.push([m, c.raw[i]]); });
                const where = `client ${k} on ${ch}`;
                // Content as sent: each message is one the test published there, byte for
                // byte, with its publisher's userId.
                for (const [m, raw] of stream) {
                    const item = m.data && byKey[`${ch} ${key(m.data)}`];
                    check(item !== undefined, `${where}: a message nobody published: ${raw}`);
                    check(raw.includes(`"data":${JSON.stringify(item.data)},`) &&
                          m.userId === item.userId && m.event === 'message' && m.priority === 3,
                          `${where}: ${raw} differs from what was published ` +
                          `(data ${JSON.stringify(item.data)}, userId ${item.userId})`);
                }
                // Each publisher's messages in the order it sent them, none missing or twice.
                for (const p of ['a', 'b', 'ws']) {
                    const got = stream.filter(([m]) => m.data.p === p).map(([m]) => m.data.seq);
                    const want = sent[ch].filter((x) => x.data.p === p).map((x) => x.data.seq);
                    check(JSON.stringify(got) === JSON.stringify(want),
                          `${where}: publisher ${p} sent seq ${JSON.stringify(want)}, ` +
                          `received ${JSON.stringify(got)}`);
                }
                check(stream.length === sent[ch].length,
                      `${where}: published ${sent[ch].length}, received ${stream.length}`);
                // One order for everyone on the channel.
                const keys = stream.map(([m]) => key(m.data));
                reference[ch] = reference[ch] || { k, keys };
                check(JSON.stringify(keys) === JSON.stringify(reference[ch].keys),
                      `${where}: order ${keys.join(' ')}\n` +
                      `client ${reference[ch].k} saw ${reference[ch].keys.join(' ')}`);
                // The server's offsets, checked against that: +1 from the subscribe reply
                // with no gap, and each message at the offset its publish reply named.
                stream.forEach(([m, raw], i) => {
                    check(m.offset === start[k][ch] + 1 + i, `${where}: offset ${m.offset} ` +
                          `at position ${i}, expected ${start[k][ch] + 1 + i}`);
                    check(m.offset === byKey[`${ch} ${key(m.data)}`].offset,
                          `${where}: ${raw} at offset ${m.offset}, its publish reply said ` +
                          `${byKey[`${ch} ${key(m.data)}`].offset}`);
                });
            }
        });
        check(short.length === 0, `${short.length} clients short:\n${short.join('\n')}`);
        // The channel's offset moved by exactly what was published.
        for (const ch of Object.keys(sent)) {
            const r = await api(port, 'GET', `/api/channels/${ch}`);
            const k = clients.findIndex((c) => c.channels.includes(ch));
            check(r.status === 200 && r.json && r.json.offset === start[k][ch] + sent[ch].length,
                  `GET /api/channels/${ch}: ${r.status} ${r.body}; expected offset ` +
                  `${start[k][ch]} + ${sent[ch].length} published`);
        }
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
