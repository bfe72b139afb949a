#!/usr/bin/env node
// /socket.io/ seen by npm's socket.io-client 4.8.1, unchanged, with transports: ["websocket"]
// (docs/socketio.md), and by a raw `ws` client where the bytes matter.
//
// Usage: node socketio.js PATH/TO/ringcastd
// The main server: `--shards 2 --client-publish pub,chat --socketio --socketio-namespace
// chat`; the JWT, heartbeat, custom-event, --socketio=off and restart cases start servers
// of their own (each must exit 0 on SIGTERM). Cases:
//  * join_room with its ack ({ok, channel, epoch, offset}); API publishes arrive as the
//    event with exactly the data as its first argument (objects, strings, numbers, arrays,
//    null, unicode, 100 KB) and nothing after it but the recovery tag when the CONNECT
//    reply carried a pid (connection state recovery, on by default); the default event
//    "message"; 200 concurrent publishes in the order of their offsets; the data spliced
//    byte for byte into `42["event",<data>(,"<tag>")]` (raw ws);
//  * leave_room stops delivery (a later publish on another room arrives, a second client
//    still subscribed gets the first); leaving twice is 404;
//  * client publish (room, data): ack {ok, offset} and delivery, on "/" and on /chat; 403
//    outside --client-publish, 400 for malformed arguments and names, "ringcast:error"
//    when no ack was asked for;
//  * --socketio-namespace chat: room r1 of /chat is channel chat:r1 (on its own connection
//    and multiplexed with "/"), "/" joining chat:r1 is 403, /nope → "Invalid namespace";
//  * JWT (--jwt-secret-file, --namespace rules, --api-key-file): auth.token connects, joins
//    and publishes by the rules; no token / bad signature / malformed / expired →
//    connect_error "not authorized" with data.reason (counted in /api/stats); a token for
//    another user on a multiplexed namespace; user:<sub> gets /api/publish and /api/send;
//  * heartbeat (--socketio-ping-interval-ms 300 --socketio-ping-timeout-ms 300): the client
//    stays 3 s and still receives; the open packet's fields; a raw client that never
//    answers "2" is closed 1001 after ≥ the interval and before 10 × (interval + timeout);
//    one that answers but never CONNECTs is closed 1008 by --handshake-timeout-ms;
//  * custom --socketio-join-event / --socketio-leave-event; reserved names refused at start;
//  * the polling handshake (200, upgrades ["websocket"]); a default-transport client
//    (polling, then the upgrade) joins and receives; EIO=3 and unknown transports → 400;
//    --socketio=off → 404;
//  * SIGTERM, a restart on the same port: the unchanged client reconnects by itself,
//    re-joins in its "connect" handler and receives;
//  * NestJS-gateway-style front-end code (emit with ack callbacks, socket.timeout().emit,
//    emitWithAck, on('notification')) unchanged;
//  * binary attachments → ack ok:false 415 (and "ringcast:error" without an ack), the
//    connection still usable; permessage-deflate negotiated by socket.io-client's ws: a
//    10 KB publish intact and compressed (/api/stats), a 10 KB client emit compressed in.
// Prints TAP (support.js); a missing socket.io-client, `ws` or binary fails, never skips.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { WebSocket, withTimeout, check, startServer, stopServer, runTap, exitWith } =
    require('./support.js');

const sioDir = path.join(__dirname, 'node_modules', 'socket.io-client');
if (!fs.existsSync(sioDir)) {
    console.log(`Bail out! the Node module 'socket.io-client' is missing (${sioDir}): run ` +
                '`npm ci --prefix tests/integration` (.ci/install does)');
    process.exit(1);
}
const { io, Manager } = require(sioDir);
const sioVersion = require(path.join(sioDir, 'package.json')).version;

// Every wait below is a hang guard, not a verdict.
const WAIT_MS = 10000;
const ACK_MS = 5000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const show = (v) => {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 300 ? `${s.slice(0, 300)}…` : s;
};

// --- clients, closed at the end of the case that opened them -----------------------------

const live = new Set();

function track(thing) {
    live.add(thing);
    return thing;
}

function closeAll() {
    for (const thing of live) {
        try {
            if (thing instanceof WebSocket) {
                thing.terminate();
            } else {
                thing.io.reconnection(false);
                thing.disconnect();
                thing.io.engine?.close();
            }
        } catch (e) {
            // already closed
        }
    }
    live.clear();
}

const scoped = (fn) => async () => {
    try {
        await fn();
    } finally {
        closeAll();
    }
};

// An inbox of every event the socket receives (onAny), so none is missed between awaits.
function withInbox(socket) {
    socket.inbox = [];
    socket.waiters = [];
    socket.onAny((event, ...args) => {
        const item = { event, args };
        const i = socket.waiters.findIndex((w) => w.want(item));
        if (i >= 0) {
            socket.waiters.splice(i, 1)[0].resolve(item);
        } else {
            socket.inbox.push(item);
        }
    });
    return socket;
}

// The next event (of that name when given).
function nextEvent(socket, name = null, ms = WAIT_MS) {
    const want = (item) => name === null || item.event === name;
    const i = socket.inbox.findIndex(want);
    if (i >= 0) {
        return Promise.resolve(socket.inbox.splice(i, 1)[0]);
    }
    return withTimeout(new Promise((resolve) => socket.waiters.push({ want, resolve })),
                       ms, `event ${name ?? '(any)'}`);
}

// A channel message as socket.io-client hands it to a listener: the event, the published data
// as the first argument and, when the server does connection state recovery (its CONNECT
// reply carried a pid), the server's delivery tag as a last, string argument (what socket.io
// 4.6+ appends and socket.io-client keeps as its offset); nothing else.
function isDelivery(socket, got, event, data) {
    const tagged = Boolean(socket._pid);
    return got.event === event && got.args.length === (tagged ? 2 : 1) && same(got.args[0], data) &&
           (!tagged || (typeof got.args[1] === 'string' && got.args[1].length > 0));
}

async function expectDelivery(socket, event, data, what) {
    const got = await nextEvent(socket);
    check(isDelivery(socket, got, event, data),
          `${what}: expected ${event} ${show(data)}${socket._pid ? ' + tag' : ''}, got ${show(got)}`);
    return got;
}

const sioOptions = (extra = {}) => ({
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    ...extra,
});

function client(url, extra = {}) {
    return track(withInbox(io(url, sioOptions(extra))));
}

// Resolves when the socket is connected; a connect_error rejects with its message and data.
function connected(socket, ms = WAIT_MS) {
    if (socket.connected) {
        return Promise.resolve(socket);
    }
    return withTimeout(new Promise((resolve, reject) => {
        socket.once('connect', () => resolve(socket));
        socket.once('connect_error', (e) =>
            reject(new Error(`connect_error: ${e.message} ${show(e.data)}`)));
    }), ms, 'Socket.IO connect');
}

// Resolves with the connect_error (message, data); a connect rejects.
function refused(socket, ms = WAIT_MS) {
    return withTimeout(new Promise((resolve, reject) => {
        socket.once('connect', () => reject(new Error('connected, expected connect_error')));
        socket.once('connect_error', (e) => resolve(e));
    }), ms, 'Socket.IO connect_error');
}

async function connect(url, extra = {}) {
    return connected(client(url, extra));
}

const ack = (socket, ...args) => socket.timeout(ACK_MS).emitWithAck(...args);

async function join(socket, room, event = 'join_room') {
    const reply = await ack(socket, event, room);
    check(reply && reply.ok === true && typeof reply.epoch === 'string' && reply.epoch &&
          Number.isInteger(reply.offset) && reply.offset >= 0,
          `${event} ${room}: ${show(reply)}`);
    return reply;
}

function expectRefusal(reply, code, what) {
    check(reply && reply.ok === false && reply.error && reply.error.code === code &&
          typeof reply.error.message === 'string' && reply.error.message.length > 0,
          `${what}: expected ok:false code ${code}, got ${show(reply)}`);
}

// A raw `ws` client on /socket.io/ with an inbox of its text messages.
function raw(port, query = 'EIO=4&transport=websocket', options = {}) {
    const ws = track(new WebSocket(`ws://127.0.0.1:${port}/socket.io/?${query}`,
                                   { perMessageDeflate: false, ...options }));
    ws.inbox = [];
    ws.waiters = [];
    ws.closed = new Promise((resolve) =>
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(),
                                                   at: Date.now() })));
    ws.on('message', (data, isBinary) => {
        const item = { text: data.toString(), isBinary, at: Date.now() };
        if (ws.onEach) {
            ws.onEach(item);
        }
        const waiter = ws.waiters.shift();
        if (waiter) {
            waiter(item);
        } else {
            ws.inbox.push(item);
        }
    });
    ws.on('error', () => {});
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.once('unexpected-response', (req, res) =>
            reject(Object.assign(new Error(`handshake answered with HTTP ${res.statusCode}`),
                                 { status: res.statusCode })));
    }), WAIT_MS, 'raw WebSocket open');
}

function rawNext(ws, ms = WAIT_MS) {
    if (ws.inbox.length) {
        return Promise.resolve(ws.inbox.shift());
    }
    return withTimeout(new Promise((resolve) => ws.waiters.push(resolve)), ms, 'raw message');
}

// --- the backend API ------------------------------------------------------------------------

// curl-style: one POST through fetch, the JSON answer.
async function api(port, method, urlPath, body, { key = null, rawBody = null } = {}) {
    const headers = {};
    if (body !== undefined || rawBody !== null) {
        headers['Content-Type'] = 'application/json';
    }
    if (key) {
        headers.Authorization = `Bearer ${key}`;
    }
    const res = await withTimeout(fetch(`http://127.0.0.1:${port}${urlPath}`, {
        method, headers, body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    }), WAIT_MS, `${method} ${urlPath}`);
    const text = await withTimeout(res.text(), WAIT_MS, `${method} ${urlPath} body`);
    let json = null;
    try {
        json = JSON.parse(text);
    } catch (e) {
        // not JSON: the caller looks at text
    }
    return { status: res.status, text, json };
}

async function publish(port, message, options = {}) {
    const r = await api(port, 'POST', '/api/publish', message, options);
    check(r.status === 200 && r.json && r.json.ok === true && Number.isInteger(r.json.offset),
          `publish ${show(message)}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    return r.json.offset;
}

// The same on a connection of its own (agent: false), for a server that restarts on the
// port: no pooled keep-alive socket to the old process.
function postOnce(port, urlPath, body) {
    return withTimeout(new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath,
                                   agent: false,
                                   headers: { 'Content-Type': 'application/json' } },
                                 (res) => {
                                     let text = '';
                                     res.on('data', (c) => { text += c; });
                                     res.on('end', () => resolve({ status: res.statusCode, text }));
                                 });
        req.on('error', reject);
        req.end(data);
    }), WAIT_MS, `POST ${urlPath}`);
}

async function stats(port, key = null) {
    const r = await api(port, 'GET', '/api/stats', undefined, { key });
    check(r.status === 200 && r.json && r.json.total, `GET /api/stats: ${r.status}`);
    return r.json.total;
}

// Another ringcastd for one case: fn(server), then SIGTERM and exit status 0.
async function withServer(args, fn) {
    const server = await startServer(args);
    let result;
    try {
        result = await fn(server);
    } catch (e) {
        closeAll();
        await stopServer(server).catch(() => {});
        throw e;
    }
    closeAll();
    const { code, signal } = await stopServer(server);
    check(code === 0, `exit ${code ?? signal} after SIGTERM, expected 0\n${server.output()}`);
    return result;
}

// --- data -----------------------------------------------------------------------------------

// ~n bytes of varied text, some of it outside ASCII.
function text(n, seed = 1) {
    const words = ['ring', 'cast', 'é', 'naïve', '漢字', 'Ωμέγα', '🎉', 'x', '"q"', '\\', 'tab\t'];
    let out = '';
    let i = seed;
    while (Buffer.byteLength(out) < n) {
        i = (i * 1103515245 + 12345) % 2147483648;
        out += words[i % words.length] + (i % 7 === 0 ? '\n' : ' ');
    }
    return out;
}

function rows(bytes) {
    const out = [];
    for (let i = 0; JSON.stringify(out).length < bytes; ++i) {
        out.push({ sym: `ACME${i % 9}`, px: 100 + (i % 17) + (i % 100) / 100, qty: (i * 7) % 1000 });
    }
    return out;
}

const PAYLOADS = [
    { kind: 'object', n: 1, nested: { a: [1, 2, { b: null }], t: true, f: false } },
    'a plain string',
    '',
    42,
    -3.25,
    0,
    1e21,
    [1, 'two', { three: 3 }, null, [], {}],
    [],
    {},
    true,
    null,
    'unicode: é 漢字 🎉 👩‍👩‍👧 \u2028\u2029 "quoted" \\ back\\slash \t tab \n line \u0001',
    { '🎉': 'key with an emoji', 'ключ': 'значение', 'a"b': 'c\\d' },
    { big: text(100 * 1024) },
];

// --- JWT (HS256 by node's crypto) -------------------------------------------------------------

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
function jwt(secret, claims) {
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

function tempFile(name, content) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-socketio-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o600 });
    return file;
}

// --- cases ----------------------------------------------------------------------------------

function cases(srv) {
    const url = () => `http://127.0.0.1:${srv.port}`;
    return [
        {
            name: 'join_room acks; API publishes arrive as the event with exactly their data',
            fn: scoped(async () => {
                const s = await connect(url());
                const joined = await join(s, 'news');
                check(joined.channel === 'news', `ack channel: ${show(joined)}`);
                let expectOffset = joined.offset;
                for (const data of PAYLOADS) {
                    const offset = await publish(srv.port, { channel: 'news', event: 'notification', data });
                    check(offset === ++expectOffset, `offset ${offset}, expected ${expectOffset}`);
                    await expectDelivery(s, 'notification', data, `published ${show(data)}`);
                }
                // An event name with a colon, and the default event.
                await publish(srv.port, { channel: 'news', event: 'test:progress', data: { p: 50 } });
                await expectDelivery(s, 'test:progress', { p: 50 }, 'test:progress');
                await publish(srv.port, { channel: 'news', data: 'no event given' });
                await expectDelivery(s, 'message', 'no event given', 'default event');
                check(s.inbox.length === 0, `unexpected events: ${show(s.inbox)}`);
            }),
        },
        {
            name: '200 concurrent publishes arrive in the order of their offsets',
            fn: scoped(async () => {
                const s = await connect(url());
                const joined = await join(s, 'ordered');
                const bySeq = new Map();
                let next = 0;
                // 8 requests in flight: the order is the server's, named by the offsets.
                await Promise.all(Array.from({ length: 8 }, async () => {
                    while (next < 200) {
                        const seq = next++;
                        bySeq.set(seq, await publish(srv.port, {
                            channel: 'ordered', event: 'tick', data: { seq, pad: 'p'.repeat(seq) },
                        }));
                    }
                }));
                const offsets = [...bySeq.values()].sort((a, b) => a - b);
                check(same(offsets, Array.from({ length: 200 }, (_, i) => joined.offset + 1 + i)),
                      `publish offsets are not ${joined.offset + 1}..${joined.offset + 200}`);
                const expected = [...bySeq.entries()].sort((a, b) => a[1] - b[1]).map(([seq]) => seq);
                const got = [];
                for (let i = 0; i < 200; ++i) {
                    const e = await nextEvent(s);
                    check(isDelivery(s, e, 'tick', e.args[0]) &&
                          e.args[0].pad === 'p'.repeat(e.args[0].seq),
                          `message ${i}: ${show(e)}`);
                    got.push(e.args[0].seq);
                }
                check(same(got, expected),
                      `received order differs from offset order (first 20: got ${show(got.slice(0, 20))}, ` +
                      `expected ${show(expected.slice(0, 20))})`);
            }),
        },
        {
            name: 'the data is spliced byte for byte: 42["event",<data as published>]',
            fn: scoped(async () => {
                const ws = await raw(srv.port);
                const open = await rawNext(ws);
                check(open.text.startsWith('0{'), `open packet: ${open.text}`);
                ws.send('40');
                const conn = await rawNext(ws);
                check(/^40\{"sid":"[^"]+"/.test(conn.text), `CONNECT reply: ${conn.text}`);
                const tagged = 'pid' in JSON.parse(conn.text.slice(2));
                ws.send('421["join_room","verbatim"]');
                const reply = await rawNext(ws);
                check(reply.text.startsWith('431[{"ok":true,"channel":"verbatim","epoch":"'),
                      `join ACK: ${reply.text}`);
                const s = await connect(url());
                await join(s, 'verbatim');
                const dataTexts = [
                    '{ "a" : [1, 2.50, 1e3, -0, "\\u00e9\\ud83c\\udf89", "tab\\t"],\n "b":null }',
                    '"\\"quoted\\" \\\\ \\/ \\u2028"',
                    '12345678901234567890',
                    '[ ]',
                ];
                for (const dataText of dataTexts) {
                    await publish(srv.port, null, {
                        rawBody: `{"channel":"verbatim","event":"raw:ev","data":${dataText}}`,
                    });
                    const got = await rawNext(ws);
                    // With recovery the server's delivery tag follows the data.
                    const want = `42["raw:ev",${dataText}`;
                    const tail = got.text.startsWith(want) ? got.text.slice(want.length) : null;
                    check(!got.isBinary && tail !== null &&
                          (tagged ? /^,"[^"\\]+"\]$/.test(tail) : tail === ']'),
                          `raw client got ${show(got.text)}, expected ${show(want)}` +
                          (tagged ? ',"<tag>"]' : ']'));
                    const parsed = await nextEvent(s);
                    check(isDelivery(s, parsed, 'raw:ev', JSON.parse(dataText)),
                          `socket.io-client got ${show(parsed)} for ${dataText}`);
                }
            }),
        },
        {
            name: 'leave_room stops delivery; leaving twice is 404',
            fn: scoped(async () => {
                const s = await connect(url());
                const other = await connect(url());
                await join(s, 'leave-a');
                await join(s, 'leave-b');
                await join(other, 'leave-a');
                await publish(srv.port, { channel: 'leave-a', event: 'ev', data: 'a1' });
                await expectDelivery(s, 'ev', 'a1', 'a1 not received');
                await expectDelivery(other, 'ev', 'a1', 'a1 not received by other');
                const left = await ack(s, 'leave_room', 'leave-a');
                check(same(left, { ok: true }), `leave ack: ${show(left)}`);
                await publish(srv.port, { channel: 'leave-a', event: 'ev', data: 'a2' });
                await publish(srv.port, { channel: 'leave-b', event: 'ev', data: 'b1' });
                // The message after the leave reached a subscriber; the leaver gets only b1.
                await expectDelivery(other, 'ev', 'a2', 'a2 not received by other');
                await expectDelivery(s, 'ev', 'b1', `expected b1 next: ${show(s.inbox)}`);
                await sleep(300);
                expectRefusal(await ack(s, 'leave_room', 'leave-a'), 404, 'second leave');
                check(s.inbox.length === 0, `received after leave_room: ${show(s.inbox)}`);
                const ch = await api(srv.port, 'GET', '/api/channels/leave-a');
                check(ch.json && ch.json.subscribers === 1, `/api/channels/leave-a: ${ch.text}`);
            }),
        },
        {
            name: 'client publish (room, data): ack and delivery; 403 outside --client-publish; 400',
            fn: scoped(async () => {
                const pub = await connect(url());
                const reader = await connect(url());
                const joined = await join(reader, 'pub:room');
                const sent = { text: 'hi', n: 1, u: 'é🎉' };
                const r = await ack(pub, 'chat_message', 'pub:room', sent);
                check(r && r.ok === true && r.offset === joined.offset + 1,
                      `publish ack: ${show(r)} (joined at ${joined.offset})`);
                await expectDelivery(reader, 'chat_message', sent, 'delivered');
                // No data argument: null.
                const r2 = await ack(pub, 'bare', 'pub:room');
                check(r2 && r2.ok === true && r2.offset === joined.offset + 2, `bare ack: ${show(r2)}`);
                await expectDelivery(reader, 'bare', null, 'bare not null');
                // Refused: outside --client-publish, and malformed.
                expectRefusal(await ack(pub, 'chat_message', 'lobby', sent), 403, 'publish to lobby');
                expectRefusal(await ack(pub, 'chat_message', 'user:7', sent), 403, 'publish to user:7');
                expectRefusal(await ack(pub, 'chat_message', 42, sent), 400, 'room 42');
                expectRefusal(await ack(pub, 'chat_message', { room: 'pub:room' }), 400, 'room object');
                expectRefusal(await ack(pub, 'chat_message'), 400, 'no arguments');
                expectRefusal(await ack(pub, 'chat_message', 'pub:room', 1, 2), 400, 'two data arguments');
                expectRefusal(await ack(pub, 'chat_message', 'pub:bad room', 1), 400, 'bad channel name');
                expectRefusal(await ack(pub, 'join_room', 'x'.repeat(256)), 400, '256-byte room');
                expectRefusal(await ack(pub, 'join_room', null), 400, 'null room');
                // Without an ack callback the refusal is the event "ringcast:error".
                pub.emit('chat_message', 'lobby', sent);
                const err = await nextEvent(pub, 'ringcast:error');
                check(err.args.length === 1 && err.args[0].ok === false &&
                      err.args[0].error && err.args[0].error.code === 403,
                      `ringcast:error: ${show(err)}`);
                // On /chat (also a --client-publish namespace) the room is chat:<room>.
                const chatPub = await connect(`${url()}/chat`);
                const chatReader = await connect(`${url()}/chat`);
                const cj = await join(chatReader, 'r2');
                check(cj.channel === 'chat:r2', `chat join: ${show(cj)}`);
                const cr = await ack(chatPub, 'say', 'r2', ['x', 1]);
                check(cr && cr.ok === true && cr.offset === cj.offset + 1, `chat publish ack: ${show(cr)}`);
                await expectDelivery(chatReader, 'say', ['x', 1], 'chat message not delivered');
                await sleep(200);
                check(reader.inbox.length === 0, `reader got refused publishes: ${show(reader.inbox)}`);
            }),
        },
        {
            name: '--socketio-namespace chat: /chat room r1 is chat:r1; "/" may not join it; /nope refused',
            fn: scoped(async () => {
                const chat = await connect(`${url()}/chat`);   // a connection with only /chat
                const cj = await join(chat, 'r1');
                check(cj.channel === 'chat:r1', `join r1 on /chat: ${show(cj)}`);
                // "/" and /chat multiplexed on one connection (one Manager).
                const root = await connect(url());
                const chat2 = track(withInbox(root.io.socket('/chat')));
                await connected(chat2);
                check(chat2.io.engine === root.io.engine, 'not multiplexed');
                await join(chat2, 'r1');
                await join(root, 'lobby2');
                expectRefusal(await ack(root, 'join_room', 'chat:r1'), 403, '"/" joining chat:r1');
                expectRefusal(await ack(root, 'chat_message', 'chat:r1', 1), 403, '"/" publishing to chat:r1');
                await publish(srv.port, { channel: 'chat:r1', event: 'notification', data: { to: 'r1' } });
                await publish(srv.port, { channel: 'lobby2', event: 'notification', data: { to: 'lobby2' } });
                await expectDelivery(chat, 'notification', { to: 'r1' }, `/chat: ${show(chat.inbox)}`);
                await expectDelivery(chat2, 'notification', { to: 'r1' }, `/chat (multiplexed): ${show(chat2.inbox)}`);
                await expectDelivery(root, 'notification', { to: 'lobby2' }, `"/": ${show(root.inbox)}`);
                await sleep(300);
                check(chat.inbox.length === 0 && chat2.inbox.length === 0 && root.inbox.length === 0,
                      `crossed namespaces: ${show([chat.inbox, chat2.inbox, root.inbox])}`);
                const nope = client(`${url()}/nope`);
                const e = await refused(nope);
                check(e.message === 'Invalid namespace', `/nope: ${e.message} ${show(e.data)}`);
                // The same on a connection that has "/" already.
                const nope2 = track(withInbox(root.io.socket('/nope')));
                const e2 = await refused(nope2);
                check(e2.message === 'Invalid namespace', `/nope multiplexed: ${e2.message}`);
                check(root.connected, '"/" lost with the refused namespace');
                await join(root, 'lobby3');
            }),
        },
        {
            name: 'JWT: auth.token connects; no/bad/malformed/expired token → "not authorized" + reason; user:<sub>',
            fn: scoped(async () => {
                const secret = crypto.randomBytes(32).toString('hex');
                const secretFile = tempFile('jwt-secret', secret);
                const apiKey = crypto.randomBytes(24).toString('hex');
                const keyFile = tempFile('api-keys', `backend:publish,admin:${apiKey}\n`);
                const now = () => Math.floor(Date.now() / 1000);
                const token = (sub, extra = {}) => jwt(secret, { sub, iat: now(), exp: now() + 600, ...extra });
                await withServer(['--jwt-secret-file', secretFile, '--api-key-file', keyFile,
                                  '--namespace', 'pub:public,publish', '--namespace', 'room:public',
                                  '--namespace', 'chat:public,publish',
                                  '--socketio-namespace', 'chat'], async (server) => {
                    const u = `http://127.0.0.1:${server.port}`;
                    const before = await stats(server.port, apiKey);
                    const alice = await connect(u, { auth: { token: token('alice') } });
                    await join(alice, 'room:a');
                    await join(alice, 'lobby');
                    expectRefusal(await ack(alice, 'join_room', 'user:bob'), 403, 'join user:bob');
                    expectRefusal(await ack(alice, 'join_room', 'secret:x'), 403, 'join secret:x');
                    const pr = await ack(alice, 'say', 'pub:x', { t: 1 });
                    check(pr && pr.ok === true && Number.isInteger(pr.offset), `publish pub:x: ${show(pr)}`);
                    expectRefusal(await ack(alice, 'say', 'room:a', { t: 1 }), 403, 'publish room:a');
                    // user:alice: a backend publish and /api/send reach her connection on "/".
                    const noKey = await api(server.port, 'POST', '/api/publish',
                                            { channel: 'user:alice', event: 'dm', data: 1 });
                    check(noKey.status === 401, `publish without the API key: ${noKey.status}`);
                    await publish(server.port, { channel: 'user:alice', event: 'dm', data: { hello: 'alice' } },
                                  { key: apiKey });
                    await expectDelivery(alice, 'dm', { hello: 'alice' }, `user:alice publish: ${show(alice.inbox)}`);
                    const sent = await api(server.port, 'POST', '/api/send',
                                           { userId: 'alice', event: 'direct', data: [1, 2] }, { key: apiKey });
                    check(sent.status === 200, `/api/send: ${sent.status} ${sent.text}`);
                    await expectDelivery(alice, 'direct', [1, 2], `/api/send: ${show(alice.inbox)}`);
                    // A JWT namespace: /chat with the token.
                    const chat = await connect(`${u}/chat`, { auth: { token: token('carol') } });
                    const cj = await join(chat, 'r1');
                    check(cj.channel === 'chat:r1', `chat join: ${show(cj)}`);
                    const cr = await ack(chat, 'say', 'r1', 'hello');
                    check(cr && cr.ok === true, `chat publish: ${show(cr)}`);
                    await expectDelivery(chat, 'say', 'hello', 'own chat publish');
                    // Refusals.
                    const reasons = [];
                    for (const [what, auth, reason] of [
                        ['no token', undefined, 'token required'],
                        ['bad signature', { token: jwt('another secret, 32 bytes long......',
                                                       { sub: 'alice', exp: now() + 600 }) }, 'bad signature'],
                        ['malformed', { token: 'not.a.jwt' }, 'malformed token'],
                        ['expired', { token: token('alice', { iat: now() - 7200, exp: now() - 3600 }) },
                         'token expired'],
                    ]) {
                        const e = await refused(client(u, auth ? { auth } : {}));
                        check(e.message === 'not authorized' && e.data && e.data.reason === reason,
                              `${what}: ${e.message} ${show(e.data)}, expected reason ${reason}`);
                        reasons.push(reason);
                    }
                    // On "/" with alice, then /chat with bob's token on the same connection.
                    const m = new Manager(u, sioOptions());
                    const root = track(withInbox(m.socket('/', { auth: { token: token('alice') } })));
                    await connected(root);
                    const other = track(withInbox(m.socket('/chat', { auth: { token: token('bob') } })));
                    const e = await refused(other);
                    check(e.message === 'not authorized' && e.data && e.data.reason === 'token for another user',
                          `bob on alice's connection: ${e.message} ${show(e.data)}`);
                    check(root.connected, 'alice lost "/" with the refused namespace');
                    await join(root, 'room:b');
                    const after = await stats(server.port, apiKey);
                    const delta = (k) => (after[k] ?? NaN) - (before[k] ?? NaN);
                    check(delta('refused_token_missing') === 1 && delta('refused_token_expired') === 1 &&
                          delta('refused_token_invalid') === 2,
                          `refusal counters moved missing ${delta('refused_token_missing')}, expired ` +
                          `${delta('refused_token_expired')}, invalid ${delta('refused_token_invalid')}; ` +
                          'expected 1, 1, 2');
                });
            }),
        },
        {
            name: 'heartbeat --socketio-ping-interval-ms 300 --socketio-ping-timeout-ms 300',
            fn: scoped(async () => {
                const interval = 300;
                const timeout = 300;
                const handshake = 1000;
                await withServer(['--socketio-ping-interval-ms', String(interval),
                                  '--socketio-ping-timeout-ms', String(timeout),
                                  '--handshake-timeout-ms', String(handshake)], async (server) => {
                    const u = `http://127.0.0.1:${server.port}`;
                    // socket.io-client answers the pings and stays.
                    const s = client(u);
                    let opened = null;
                    s.io.engine.once('handshake', (data) => { opened = data; });
                    await connected(s);
                    let pings = 0;
                    const disconnects = [];
                    s.io.engine.on('ping', () => { pings += 1; });
                    s.on('disconnect', (reason) => disconnects.push(reason));
                    check(opened && opened.pingInterval === interval && opened.pingTimeout === timeout,
                          `the client's handshake: ${show(opened)}`);
                    await join(s, 'hb');
                    const started = Date.now();
                    await sleep(3000);
                    const held = Date.now() - started;
                    check(disconnects.length === 0 && s.connected,
                          `disconnected during ${held} ms: ${show(disconnects)}`);
                    check(pings >= 3, `${pings} pings in ${held} ms (interval ${interval})`);
                    await publish(server.port, { channel: 'hb', event: 'after', data: pings });
                    await expectDelivery(s, 'after', pings, 'publish after 3 s');
                    console.log(`# socket.io-client: ${pings} pings in ${held} ms`);

                    // A raw client that never answers "2".
                    const ws = await raw(server.port);
                    const open = await rawNext(ws);
                    check(open.text[0] === '0', `open packet: ${open.text}`);
                    const hs = JSON.parse(open.text.slice(1));
                    check(/^[A-Za-z0-9_-]{20,}$/.test(hs.sid) && same(hs.upgrades, []) &&
                          hs.pingInterval === interval && hs.pingTimeout === timeout &&
                          Number.isInteger(hs.maxPayload) && hs.maxPayload > 0,
                          `open packet: ${open.text}`);
                    ws.send('40');
                    const conn = await rawNext(ws);
                    check(conn.text.startsWith('40{"sid":'), `CONNECT reply: ${conn.text}`);
                    const bound = 10 * (interval + timeout);
                    const closed = await withTimeout(ws.closed, bound + WAIT_MS, 'close of a silent client');
                    const took = closed.at - open.at;
                    const seen = ws.inbox.map((m) => m.text);
                    check(seen.includes('2'), `no ping before the close: ${show(seen)}`);
                    check(closed.code === 1001, `close ${closed.code} ${closed.reason}, expected 1001`);
                    check(took >= interval && took < bound,
                          `closed ${took} ms after the open packet; expected ≥ ${interval} and < ${bound}`);
                    console.log(`# raw client ignoring pings closed ${took} ms after open ` +
                                `(${closed.code} ${closed.reason})`);

                    // A raw client that answers pings but never sends CONNECT.
                    const quiet = await raw(server.port);
                    quiet.onEach = (m) => { if (m.text === '2') quiet.send('3'); };
                    const qopen = await rawNext(quiet);
                    const qclosed = await withTimeout(quiet.closed, 10 * handshake + WAIT_MS, 'close without CONNECT');
                    const qtook = qclosed.at - qopen.at;
                    check(qclosed.code === 1008, `close ${qclosed.code} ${qclosed.reason}, expected 1008`);
                    check(qtook >= handshake / 2 && qtook < 10 * handshake,
                          `closed ${qtook} ms after open; expected ≥ ${handshake / 2} and < ${10 * handshake}`);
                    check(s.connected, 'the socket.io-client went away');
                });
            }),
        },
        {
            name: '--socketio-join-event / --socketio-leave-event; reserved names refused at start',
            fn: scoped(async () => {
                await withServer(['--socketio-join-event', 'subscribe', '--socketio-leave-event', 'unsubscribe'],
                                 async (server) => {
                    const u = `http://127.0.0.1:${server.port}`;
                    const s = await connect(u);
                    const j = await join(s, 'custom', 'subscribe');
                    check(j.channel === 'custom', `subscribe ack: ${show(j)}`);
                    await publish(server.port, { channel: 'custom', event: 'e', data: 1 });
                    await expectDelivery(s, 'e', 1, 'not delivered');
                    // join_room is now an ordinary event: a publish, refused here.
                    expectRefusal(await ack(s, 'join_room', 'custom2'), 403, 'join_room as a publish');
                    check(same(await ack(s, 'unsubscribe', 'custom'), { ok: true }), 'unsubscribe');
                    await publish(server.port, { channel: 'custom', event: 'e', data: 2 });
                    await sleep(300);
                    expectRefusal(await ack(s, 'unsubscribe', 'custom'), 404, 'second unsubscribe');
                    check(s.inbox.length === 0, `after unsubscribe: ${show(s.inbox)}`);
                });
                for (const args of [['--socketio-join-event', 'connect'],
                                    ['--socketio-leave-event', 'disconnect']]) {
                    let started = null;
                    try {
                        started = await startServer(args);
                    } catch (e) {
                        check(/exited \(2\)/.test(e.message) && e.message.includes(args[0]) &&
                              e.message.includes('reserved'),
                              `${args.join(' ')}: ${e.message.split('\n').slice(0, 3).join(' / ')}`);
                    }
                    if (started) {
                        await stopServer(started).catch(() => {});
                        throw new Error(`${args.join(' ')} started`);
                    }
                }
            }),
        },
        {
            name: 'polling handshake and upgrade (default transports); EIO=3 → 400; --socketio=off → 404',
            fn: scoped(async () => {
                // The long-polling handshake (served since 60d05ff; the first draft refused it).
                const polling = await api(srv.port, 'GET', '/socket.io/?EIO=4&transport=polling');
                check(polling.status === 200 && polling.text.startsWith('0{'),
                      `polling handshake: ${polling.status} ${polling.text}`);
                const hs = JSON.parse(polling.text.slice(1));
                check(typeof hs.sid === 'string' && same(hs.upgrades, ['websocket']) &&
                      hs.pingInterval === 25000 && hs.pingTimeout === 20000,
                      `polling open packet: ${polling.text}`);
                const eio3 = await api(srv.port, 'GET', '/socket.io/?EIO=3&transport=polling');
                check(eio3.status === 400 && /EIO|Engine\.IO/.test(eio3.text),
                      `EIO=3: ${eio3.status} ${eio3.text}`);
                const e3 = await raw(srv.port, 'EIO=3&transport=websocket').then(
                    () => null, (e) => e);
                check(e3 && e3.status === 400, `EIO=3 upgrade: ${e3 && e3.message}`);
                const unknown = await api(srv.port, 'GET', '/socket.io/?EIO=4&transport=flash');
                check(unknown.status === 400, `transport=flash: ${unknown.status} ${unknown.text}`);
                // A client left on its default transports: polling, then the upgrade.
                const dflt = track(withInbox(io(url(), { forceNew: true, reconnection: false })));
                let first = null;
                dflt.io.engine.once('handshake', () => { first = dflt.io.engine.transport.name; });
                await connected(dflt);
                const upgraded = withTimeout(new Promise((resolve) => {
                    if (dflt.io.engine.transport.name === 'websocket') resolve();
                    else dflt.io.engine.once('upgrade', () => resolve());
                }), WAIT_MS, 'upgrade to websocket');
                await join(dflt, 'polled');
                await upgraded;
                check(first === 'polling' && dflt.io.engine.transport.name === 'websocket',
                      `transports: ${first} then ${dflt.io.engine.transport.name}`);
                await publish(srv.port, { channel: 'polled', event: 'p', data: { n: 1 } });
                await expectDelivery(dflt, 'p', { n: 1 }, 'after the upgrade');
                await withServer(['--socketio=off'], async (server) => {
                    const off = await api(server.port, 'GET', '/socket.io/?EIO=4&transport=websocket');
                    check(off.status === 404, `--socketio=off: ${off.status} ${off.text}`);
                    const up = await raw(server.port).then(() => null, (err) => err);
                    check(up && up.status === 404, `--socketio=off upgrade: ${up && up.message}`);
                    const c = client(`http://127.0.0.1:${server.port}`);
                    await refused(c);
                });
            }),
        },
        {
            name: 'SIGTERM and a restart on the same port: the client reconnects, re-joins, receives',
            fn: scoped(async () => {
                let server = await startServer([]);
                const port = server.port;
                const u = `http://127.0.0.1:${port}`;
                try {
                    const s = track(withInbox(io(u, {
                        transports: ['websocket'], forceNew: true,
                        reconnectionDelay: 100, reconnectionDelayMax: 500,
                    })));
                    // What an application does: (re-)join in its connect handler.
                    const joins = [];
                    const disconnects = [];
                    let waitJoin = null;
                    s.on('connect', () => {
                        s.emit('join_room', 'restart', (reply) => {
                            joins.push(reply);
                            if (waitJoin) waitJoin();
                        });
                    });
                    s.on('disconnect', (reason) => disconnects.push(reason));
                    const joined = (n) => withTimeout(new Promise((resolve) => {
                        waitJoin = () => { if (joins.length >= n) resolve(); };
                        waitJoin();
                    }), 30000, `join number ${n}`);
                    await joined(1);
                    check(joins[0] && joins[0].ok === true, `first join: ${show(joins[0])}`);
                    await publish(port, { channel: 'restart', event: 'n', data: 1 });
                    await expectDelivery(s, 'n', 1, 'before the restart');
                    const { code, signal } = await stopServer(server);
                    check(code === 0, `exit ${code ?? signal} after SIGTERM\n${server.output()}`);
                    await withTimeout(new Promise((resolve) => {
                        if (disconnects.length) resolve(); else s.once('disconnect', () => resolve());
                    }), WAIT_MS, 'disconnect');
                    check(disconnects[0] === 'transport close' || disconnects[0] === 'transport error',
                          `disconnect reason ${disconnects[0]} (the client reconnects only after a ` +
                          'transport close/error, not "io server disconnect")');
                    server = await startServer(['--listen', `127.0.0.1:${port}`]);
                    check(server.port === port, `restarted on ${server.port}, not ${port}`);
                    await joined(2);
                    check(joins[1] && joins[1].ok === true, `second join: ${show(joins[1])}`);
                    check(s.connected && !s.recovered, `connected ${s.connected}, recovered ${s.recovered}`);
                    const r = await postOnce(port, '/api/publish', { channel: 'restart', event: 'n', data: 2 });
                    check(r.status === 200, `publish after restart: ${r.status} ${r.text}`);
                    await expectDelivery(s, 'n', 2, `after the restart: ${show(s.inbox)}`);
                    check(joins.length === 2, `${joins.length} joins`);
                } finally {
                    closeAll();
                    const { code, signal } = await stopServer(server);
                    check(code === 0, `exit ${code ?? signal} after SIGTERM\n${server.output()}`);
                }
            }),
        },
        {
            name: 'NestJS-gateway-style front-end code works unchanged',
            fn: scoped(async () => {
                // As written against a NestJS @WebSocketGateway() (socket.io adapter):
                const notifications = [];
                const socket = track(io(url(), { transports: ['websocket'], forceNew: true,
                                                 reconnection: false }));
                socket.on('notification', (payload) => notifications.push(payload));
                const ready = new Promise((resolve, reject) => {
                    socket.on('connect', () => {
                        socket.emit('join_room', 'orders', (res) => {
                            if (res && res.ok) resolve(res); else reject(new Error(`join: ${show(res)}`));
                        });
                    });
                    socket.on('connect_error', (err) => reject(err));
                });
                const res = await withTimeout(ready, WAIT_MS, 'join in the connect handler');
                check(res.channel === 'orders', `join ack: ${show(res)}`);
                // socket.timeout(ms).emit(..., (err, res) => …): err null when answered.
                const viaTimeout = await new Promise((resolve) =>
                    socket.timeout(ACK_MS).emit('join_room', 'orders:eu', (err, r) => resolve({ err, r })));
                check(viaTimeout.err === null && viaTimeout.r && viaTimeout.r.ok === true,
                      `timeout().emit: ${show(viaTimeout)}`);
                // emitWithAck, with and without timeout().
                const r2 = await socket.timeout(ACK_MS).emitWithAck('join_room', 'invoices');
                check(r2.ok === true && r2.channel === 'invoices', `emitWithAck: ${show(r2)}`);
                const r3 = await withTimeout(socket.emitWithAck('leave_room', 'invoices'), ACK_MS, 'emitWithAck');
                check(same(r3, { ok: true }), `leave: ${show(r3)}`);
                // A chat message to a room (room, payload) with an ack.
                const sent = await socket.timeout(ACK_MS).emitWithAck('message', 'pub:orders', { text: 'hi' });
                check(sent.ok === true, `message ack: ${show(sent)}`);
                // The backend notifies.
                for (const [channel, data] of [['orders', { id: 1, status: 'paid' }],
                                               ['orders:eu', { id: 2, status: 'shipped' }],
                                               ['invoices', { id: 3 }],
                                               ['orders', { id: 4, status: 'done' }]]) {
                    await publish(srv.port, { channel, event: 'notification', data });
                }
                await withTimeout((async () => {
                    while (notifications.length < 3) await sleep(20);
                })(), WAIT_MS, 'three notifications');
                await sleep(300);
                check(same(notifications.map((n) => n.id).sort(), [1, 2, 4]),
                      `notifications: ${show(notifications)} (invoices was left)`);
                // socket.disconnect(); socket.connect(): a fresh session, joined again.
                socket.disconnect();
                socket.connect();
                await connected(socket);
                const again = await socket.timeout(ACK_MS).emitWithAck('join_room', 'orders');
                check(again.ok === true, `join after reconnecting by hand: ${show(again)}`);
                await publish(srv.port, { channel: 'orders', event: 'notification', data: { id: 5 } });
                await withTimeout((async () => {
                    while (notifications.length < 4) await sleep(20);
                })(), WAIT_MS, 'notification after connect()');
                check(notifications[3].id === 5, `after connect(): ${show(notifications)}`);
            }),
        },
        {
            name: 'binary attachments → ack ok:false 415; permessage-deflate both ways',
            fn: scoped(async () => {
                const s = await connect(url());
                expectRefusal(await ack(s, 'chat_message', 'pub:bin', Buffer.from([1, 2, 3])), 415, 'Buffer');
                expectRefusal(await ack(s, 'chat_message', 'pub:bin', { file: new Uint8Array(1000) }), 415,
                              'nested Uint8Array');
                s.emit('chat_message', 'pub:bin', Buffer.from('abc'));
                const err = await nextEvent(s, 'ringcast:error');
                check(err.args[0] && err.args[0].ok === false && err.args[0].error.code === 415,
                      `ringcast:error: ${show(err)}`);
                check(s.connected, 'the connection did not survive the refusal');
                // The same connection: its ws negotiated permessage-deflate.
                const ext = s.io.engine.transport.ws && s.io.engine.transport.ws.extensions;
                check(ext === 'permessage-deflate', `socket.io-client's ws took '${ext}'`);
                await join(s, 'deflated');
                const reader = await connect(url());
                await join(reader, 'pub:deflated');
                const before = await stats(srv.port);
                const big = rows(10 * 1024);
                await publish(srv.port, { channel: 'deflated', event: 'feed', data: big });
                await expectDelivery(s, 'feed', big, '10 KB publish differs');
                const middle = await stats(srv.port);
                const out = middle.compressed_messages_out - before.compressed_messages_out;
                const outBytes = middle.compressed_bytes_out - before.compressed_bytes_out;
                const compressions = middle.deflate_compressions - before.deflate_compressions;
                check(out === 1 && compressions === 1 && outBytes > 0 && outBytes < JSON.stringify(big).length,
                      `compressed out ${out} message(s), ${outBytes} bytes for ${JSON.stringify(big).length}, ` +
                      `${compressions} compressions; expected 1, fewer bytes, 1`);
                // A 10 KB client emit: ws compresses it (threshold 1024), the server inflates.
                const r = await ack(s, 'feed', 'pub:deflated', big);
                check(r && r.ok === true, `client publish: ${show(r)}`);
                await expectDelivery(reader, 'feed', big, '10 KB emit differs');
                const after = await stats(srv.port);
                const inMsgs = after.compressed_messages_in - middle.compressed_messages_in;
                check(inMsgs >= 1, `compressed messages in: ${inMsgs}`);
                console.log(`# 10 KB publish: ${JSON.stringify(big).length} bytes of data sent as ` +
                            `${outBytes} compressed; client emit compressed in: ${inMsgs}`);
            }),
        },
    ];
}

exitWith(runTap({
    cases,
    start: () => startServer(['--shards', '2', '--client-publish', 'pub,chat', '--socketio',
                              '--socketio-namespace', 'chat']),
    header: (server) => `socket.io-client ${sioVersion} (transports: websocket) against ` +
                        `ringcastd (port ${server.port})`,
    beforeStop: closeAll,
}));
