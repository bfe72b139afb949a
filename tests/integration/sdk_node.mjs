#!/usr/bin/env node
// The JavaScript SDK (clients/js) against a real ringcastd, with Node's test runner:
//
// * subscribe, then what POST /api/publish sends arrives in order, typed handlers by event;
//   a client publish answers its offset, a refused one rejects with code and reason;
//   presence; the outgoing queue's bound while disconnected (queue_full, then timeout);
// * the connection dropped twice (POST /api/disconnect for its user) while an API
//   publisher keeps going: the client reconnects, resubscribes with `recover` and hands
//   every message to the application exactly once, in order (`recovered: true` each time);
// * SIGKILL of the server mid-stream and a restart on the same port: the new epoch makes
//   the recovery fail, which the application is told (`recoveryFailed`, `recovered:
//   false`), and the live stream continues;
// * acks in an `ack` namespace: with `ackNamespaces` nothing is resent; without, the
//   server's resends are dropped as duplicates by offset;
// * `npm pack` of the package (package.json, README.md, the compiled dist/) installs into
//   an empty project and imports by its name, declarations included;
// * JWT (HS256, `--jwt-leeway-s 2`, 3-second tokens): the connection stays up across
//   refreshes by `getToken`; a refresh that comes too late gets close 4001, a fresh token
//   and a reconnect that recovers what was published meanwhile.
//
// Usage: node --test-reporter=tap sdk_node.mjs PATH/TO/ringcastd (meson passes the binary).
// Prints TAP. No wall-clock bound is asserted; every wait is bounded (waitUntil).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { api, buildSdk, closeAgent, publish, sdkDir, sleep, support,
         waitUntil } from './sdk_support.mjs';

const { WebSocket, startServer, stopServer } = support;
let sdk;
let sdkBuild;
const servers = [];
const clients = [];

let basic;  // one server for the cases that need no restart of their own

before(async () => {
    ({ sdk, dir: sdkBuild } = await buildSdk());
    basic = await server(['--shards', '2', '--insecure', '--client-publish', 'chat',
                          '--namespace', 'feed:history=1000', '--namespace', 'room:presence',
                          '--namespace', 'orders:history=100,ack', '--ack-timeout-ms', '1000']);
});

after(async () => {
    for (const client of clients) client.close();
    for (const server of servers) {
        if (server.proc.exitCode === null && server.proc.signalCode === null) {
            const { code, signal } = await stopServer(server);
            assert.equal(code, 0, `ringcastd exit ${code ?? signal} after SIGTERM\n${server.output()}`);
        }
    }
    closeAgent();
});

async function server(args, port = 0) {
    const s = await startServer([...(port ? ['--listen', `127.0.0.1:${port}`] : []), ...args]);
    servers.push(s);
    return s;
}

// A client with fast reconnects; tests close it through `clients` at the end.
function client(port, options = {}) {
    const c = new sdk.RingcastClient(`ws://127.0.0.1:${port}/ws`, {
        WebSocket, backoff: { initialMs: 50, maxMs: 500 }, ...options });
    c.errors = [];
    c.on('error', (e) => c.errors.push(e));
    clients.push(c);
    return c;
}

const bounded = (promise, what, ms = 10000) => support.withTimeout(promise, ms, what);

// Publishes seq 1..count to `channel` through the API, calling `between(seq)` after each.
async function publishSeq(port, channel, count, between = async () => {}) {
    for (let seq = 1; seq <= count; seq++) {
        await publish(port, channel, 'seq', { seq });
        await between(seq);
    }
}

function assertExactlyOnce(received, count) {
    const seqs = received.map((m) => m.data.seq);
    assert.deepEqual(seqs, Array.from({ length: count }, (_, k) => k + 1),
                     'every message exactly once, in order');
    for (let k = 1; k < received.length; k++) {
        assert.equal(received[k].offset, received[k - 1].offset + 1, `offset after ${k}`);
    }
}

test('subscribe: what POST /api/publish sends arrives in order, handlers typed by event',
     async () => {
    const c = client(basic.port, { params: { user: 'alice' } });
    const all = [];
    const ticks = [];
    const sub = c.subscribe('feed:basic', (m) => { all.push(m); });
    sub.on('tick', (data, message) => ticks.push([data.n, message.offset]));
    await bounded(c.connect(), 'connect');
    const ready = await bounded(sub.ready, 'subscribe reply');
    assert.equal(ready.resubscribed, false);
    for (let n = 1; n <= 5; n++) {
        await publish(basic.port, 'feed:basic', n % 2 ? 'tick' : 'tock', { n });
    }
    await waitUntil('5 messages', 10000, () => all.length === 5, () => `(${all.length})`);
    assert.deepEqual(all.map((m) => m.data.n), [1, 2, 3, 4, 5]);
    assert.deepEqual(all.map((m) => m.offset), [1, 2, 3, 4, 5].map((k) => ready.offset + k));
    assert.deepEqual(ticks.map(([n]) => n), [1, 3, 5]);
    assert.deepEqual(sub.position, { epoch: ready.epoch, offset: ready.offset + 5 });
    assert.deepEqual(c.errors, []);
});

test('publish answers the offset; a refusal rejects with the code and reason', async () => {
    const c = client(basic.port, { params: { user: 'bob' } });
    const got = [];
    c.subscribe('chat:room', (m) => { got.push(m); });
    await bounded(c.connect(), 'connect');
    const { offset } = await bounded(c.publish('chat:room', 'text', { text: 'hi' }), 'publish');
    assert.ok(Number.isInteger(offset) && offset >= 1, `offset ${offset}`);
    await waitUntil('own publish delivered', 10000, () => got.length === 1);
    assert.equal(got[0].userId, 'bob');
    const refused = await c.publish('feed:basic', 'x', {}).then(() => null, (e) => e);
    assert.ok(refused instanceof sdk.RingcastError, `rejected with ${refused}`);
    assert.equal(refused.code, 403);
    assert.match(refused.reason, /publish/);
});

test('presence lists the subscribed users', async () => {
    const a = client(basic.port, { params: { user: 'carol' } });
    const b = client(basic.port, { params: { user: 'dave' } });
    const joins = [];
    a.subscribe('room:1', undefined, { onPresence: (e) => joins.push(e) });
    await bounded(a.connect(), 'connect a');
    await bounded(b.connect(), 'connect b');
    await bounded(b.subscribe('room:1').ready, 'subscribe b');
    const answer = await bounded(b.presence('room:1'), 'presence');
    assert.equal(answer.users, 2);
    assert.deepEqual(answer.members.map((m) => m.userId), ['carol', 'dave']);
    await waitUntil("dave's join seen by carol", 10000,
                    () => joins.some((e) => e.type === 'join' && e.userId === 'dave'));
});

test('while disconnected, commands queue up to maxQueuedCommands, then queue_full', async () => {
    // A port nothing listens on: the client keeps retrying and never opens.
    const c = client(1, { maxQueuedCommands: 3, commandTimeoutMs: 300 });
    void c.connect().catch(() => {});
    const queued = [1, 2, 3].map((n) => c.publish('chat:room', 'text', { n }).then(
        () => null, (e) => e));
    const full = await c.publish('chat:room', 'text', { n: 4 }).then(() => null, (e) => e);
    assert.equal(full?.code, 'queue_full');
    assert.equal(c.queuedCommands, 3);
    const outcomes = await bounded(Promise.all(queued), 'queued commands time out');
    assert.deepEqual(outcomes.map((e) => e?.code), ['timeout', 'timeout', 'timeout']);
    assert.equal(c.queuedCommands, 0);
    c.close();
    assert.equal((await c.connect().then(() => null, (e) => e))?.code, 'closed');
});

test('dropped twice while publishing continues: every message exactly once, in order',
     async () => {
    const c = client(basic.port, { params: { user: 'erin' } });
    const received = [];
    const results = [];
    const sub = c.subscribe('feed:live', (m) => { received.push(m); });
    c.on('subscribed', (r) => results.push(r));
    await bounded(c.connect(), 'connect');
    await bounded(sub.ready, 'subscribe');
    const COUNT = 300;
    const drops = new Set([60, 180]);
    await publishSeq(basic.port, 'feed:live', COUNT, async (seq) => {
        if (drops.has(seq)) {
            // Drop a live subscription, not a client still coming back from the last drop.
            await waitUntil('subscribed again before the drop', 20000,
                            () => c.state === 'open' && sub.state === 'active',
                            () => `(state ${c.state}, subscription ${sub.state})`);
            const r = await api(basic.port, 'POST', '/api/disconnect',
                                { userId: 'erin', code: 4000, reason: 'test drop' });
            assert.ok(r.json?.connections >= 1, `disconnect: ${r.text}`);
        }
    });
    await waitUntil(`${COUNT} messages`, 20000, () => received.length >= COUNT,
                    () => `(${received.length}, state ${c.state})`);
    // Replies come in command order: whatever the server sent before is in by now.
    await bounded(c.ping(), 'round trip');
    assertExactlyOnce(received, COUNT);
    const again = results.filter((r) => r.resubscribed);
    assert.ok(again.length >= 2, `resubscribed ${again.length} times`);
    assert.ok(again.every((r) => r.recovered === true), JSON.stringify(again));
});

test('SIGKILL and restart on the same port: the failed recovery is reported, live continues',
     async () => {
    let s = await server(['--insecure', '--namespace', 'feed:history=1000']);
    const port = s.port;
    const c = client(port, { params: { user: 'frank' } });
    const received = [];
    const failed = [];
    const sub = c.subscribe('feed:k', (m) => { received.push(m); },
                            { onRecoveryFailed: (r) => failed.push(r) });
    const failedEvents = [];
    c.on('recoveryFailed', (r) => failedEvents.push(r));
    await bounded(c.connect(), 'connect');
    const first = await bounded(sub.ready, 'subscribe');
    await publishSeq(port, 'feed:k', 10);
    await waitUntil('10 before the kill', 10000, () => received.length === 10);
    s.proc.kill('SIGKILL');
    await bounded(new Promise((r) => (s.proc.exitCode !== null || s.proc.signalCode !== null)
        ? r() : s.proc.once('exit', r)), 'killed server exit');
    await waitUntil('client notices', 10000, () => c.state !== 'open');
    s = await server(['--insecure', '--namespace', 'feed:history=1000'], port);
    await waitUntil('recovery failure reported', 20000, () => failed.length === 1,
                    () => `(state ${c.state})`);
    assert.equal(failed[0].recovered, false);
    assert.notEqual(failed[0].epoch, first.epoch, 'a restarted server has a new epoch');
    assert.deepEqual(failedEvents, failed);
    const base = received.length;
    await publish(port, 'feed:k', 'seq', { seq: 11 });
    await waitUntil('live after the restart', 10000, () => received.length === base + 1);
    assert.equal(received.at(-1).data.seq, 11);
    assert.deepEqual(sub.position, { epoch: failed[0].epoch, offset: received.at(-1).offset });
});

async function ackStats(port) {
    const r = await api(port, 'GET', '/api/stats');
    const { ack_pending: pending, acked, ack_resent: resent } = r.json.total;
    return { pending, acked, resent };
}

test('ack namespaces: acked messages are not resent; resends are dropped by offset',
     async () => {
    const start = await ackStats(basic.port);
    const acking = client(basic.port, { params: { user: 'gina' }, ackNamespaces: ['orders'] });
    const got = [];
    acking.subscribe('orders:1', (m) => { got.push(m.data.n); });
    await bounded(acking.connect(), 'connect');
    await bounded(acking.ping(), 'ping');
    for (let n = 1; n <= 3; n++) await publish(basic.port, 'orders:1', 'order', { n });
    // Once all 3 are acked no resend can come; one that came would be counted already.
    // The client acks within ackDelayMs (100) of handling, a tenth of --ack-timeout-ms.
    await waitUntil('3 acked', 10000, async () => (await ackStats(basic.port)).acked >= start.acked + 3);
    const mid = await ackStats(basic.port);
    assert.equal(mid.resent, start.resent, 'nothing resent to the acking client');
    assert.deepEqual(got, [1, 2, 3]);

    const silent = client(basic.port, { params: { user: 'hank' } });
    const seen = [];
    const sub = silent.subscribe('orders:2', (m) => { seen.push(m.data.n); });
    await bounded(silent.connect(), 'connect');
    await bounded(sub.ready, 'subscribe');
    for (let n = 1; n <= 3; n++) await publish(basic.port, 'orders:2', 'order', { n });
    await waitUntil('3 resent', 10000, async () => (await ackStats(basic.port)).resent >= mid.resent + 3);
    await waitUntil('duplicates dropped', 10000, () => sub.duplicates === 3);
    assert.deepEqual(seen, [1, 2, 3]);
});

// ---- JWT ----------------------------------------------------------------------------

const secret = crypto.randomBytes(32).toString('hex');
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
function jwt(sub, ttlSeconds) {
    const now = Math.floor(Date.now() / 1000);
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + ttlSeconds })}`;
    return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

// The server closes at exp + leeway: 2 s beyond the client's refresh at 80 % of a 3-second
// token's lifetime leaves a busy machine 2.6 s for the round trip.
const LEEWAY_S = 2;
let jwtServer;
async function startJwtServer() {
    if (!jwtServer) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-jwt-'));
        const file = path.join(dir, 'secret');
        fs.writeFileSync(file, secret, { mode: 0o400 });
        jwtServer = await server(['--jwt-secret-file', file, '--jwt-leeway-s', String(LEEWAY_S),
                                  '--namespace', 'feed:public,history=1000']);
    }
    return jwtServer;
}

test('getToken: 3-second tokens are refreshed on the open connection', async () => {
    const s = await startJwtServer();
    let calls = 0;
    const c = client(s.port, { getToken: async () => { calls += 1; return jwt('ivy', 3); } });
    const refreshed = [];
    const drops = [];
    c.on('tokenRefreshed', (r) => refreshed.push(r));
    c.on('disconnected', (d) => drops.push(d));
    const got = [];
    c.subscribe('feed:t', (m) => { got.push(m); });
    await bounded(c.connect(), 'connect');
    await waitUntil('3 refreshes', 20000, () => refreshed.length >= 3,
                    () => `(${refreshed.length}, drops ${JSON.stringify(drops)})`);
    assert.deepEqual(drops, [], 'the connection stayed up');
    assert.ok(refreshed.every((r) => Number.isInteger(r.expiresAt)));
    await publish(s.port, 'feed:t', 'seq', { seq: 1 });
    await waitUntil('delivered after refreshes', 10000, () => got.length === 1);
    assert.equal(calls, 1 + refreshed.length);
});

test('a refresh too late: close 4001, a fresh token, reconnect and recovery', async () => {
    const s = await startJwtServer();
    let calls = 0;
    let firstExp = 0;
    const c = client(s.port, {
        getToken: async () => {
            calls += 1;
            if (calls === 1) {
                firstExp = Math.floor(Date.now() / 1000) + 3;
                return jwt('jack', 3);
            }
            if (calls === 2) {
                // The refresh's token comes after the first one expired.
                await sleep(Math.max(0, (firstExp + LEEWAY_S) * 1000 + 1500 - Date.now()));
            }
            return jwt('jack', 60);
        },
    });
    const drops = [];
    c.on('disconnected', (d) => drops.push(d));
    const received = [];
    const results = [];
    const sub = c.subscribe('feed:late', (m) => { received.push(m); },
                            { onSubscribed: (r) => results.push(r) });
    await bounded(c.connect(), 'connect');
    await bounded(sub.ready, 'subscribe');
    await publishSeq(s.port, 'feed:late', 3);
    await waitUntil('close 4001', 20000, () => drops.some((d) => d.code === 4001));
    await publishSeq(s.port, 'feed:late', 3);  // around the reconnect
    await waitUntil('6 messages', 20000, () => received.length >= 6,
                    () => `(${received.length}, state ${c.state})`);
    assert.deepEqual(received.map((m) => m.data.seq), [1, 2, 3, 1, 2, 3]);
    assert.ok(results.at(-1).resubscribed && results.at(-1).recovered === true,
              JSON.stringify(results));
    assert.ok(calls >= 3, `getToken called ${calls} times`);
});

test('npm pack makes a package that installs and imports by name', async () => {
    // The package as `npm pack` in clients/js makes it (its prepack builds dist/), from
    // this run's build, so the source tree is not written to.
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-pkg-'));
    for (const file of ['package.json', 'README.md']) {
        fs.copyFileSync(path.join(sdkDir, file), path.join(pkg, file));
    }
    fs.cpSync(sdkBuild, path.join(pkg, 'dist'), { recursive: true,
                                                  filter: (f) => !f.endsWith('package.json') });
    const npm = (args, cwd) => execFileSync('npm', args, {
        cwd, encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = npm(['pack', '--ignore-scripts', '--loglevel=error'], pkg).trim().split('\n').at(-1);
    const project = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-install-'));
    fs.writeFileSync(path.join(project, 'package.json'), '{"name":"check","private":true}\n');
    npm(['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error',
         path.join(pkg, tarball)], project);
    const installed = path.join(project, 'node_modules', 'ringcast-client');
    assert.ok(fs.existsSync(path.join(installed, 'dist', 'index.d.ts')), 'declarations installed');
    assert.ok(fs.existsSync(path.join(installed, 'README.md')), 'README installed');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e',
        "import * as m from 'ringcast-client'; console.log(Object.keys(m).sort().join(' '));"],
        { cwd: project, encoding: 'utf8', timeout: 30000 });
    assert.equal(out.trim(), 'RingcastClient RingcastError Subscription isTransient');
    fs.rmSync(pkg, { recursive: true, force: true });
    fs.rmSync(project, { recursive: true, force: true });
});
