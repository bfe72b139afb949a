// Shared by the Node integration scripts (the JavaScript side of support.py): requires `ws`
// and the binary (a missing one is a failure, not a skip: .ci/install always installs
// `ws`), starts and stops ringcastd, opens `ws` clients that queue what they receive,
// bounds every wait, and runs the cases printing TAP.
//
// Output (TAP): the plan `1..N` first, before any case runs, then `ok K - name` or
// `not ok K - name` per case, details on lines starting with `# `. A script that dies
// midway leaves its missing cases visible against the plan; one that cannot start prints
// `Bail out!`. Exit 0 only when all N cases passed, otherwise 1. Nothing here exits 77:
// these scripts have no environment-only skip.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');

// A failure that stops the script before (or instead of) its cases.
function bailOut(message) {
    console.log(`Bail out! ${message.split('\n')[0]}`);
    for (const line of message.split('\n').slice(1)) {
        console.log(`# ${line}`);
    }
    process.exit(1);
}

const wsDir = path.join(__dirname, 'node_modules', 'ws');
if (!fs.existsSync(wsDir)) {
    bailOut(`the Node module 'ws' is missing (${wsDir}): run ` +
            '`npm ci --prefix tests/integration` (.ci/install does)');
}
const WebSocket = require(wsDir);

const binary = process.argv[2] || process.env.RINGCASTD || '';
if (!binary || !fs.existsSync(binary)) {
    bailOut(`ringcastd binary not found: '${binary}' (pass its path as argument 1 or set ` +
            'RINGCASTD)');
}

const MIB = 1 << 20;

function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

function check(condition, message) {
    if (!condition) {
        throw new Error(message);
    }
}

// Starts ringcastd on an ephemeral loopback port (with --echo /echo when `echo`);
// resolves with {proc, port, output()}.
function startServer(extraArgs = [], { echo = false } = {}) {
    const args = ['--listen', '127.0.0.1:0', ...(echo ? ['--echo', '/echo'] : []), ...extraArgs];
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // A script that dies (an uncaught exception) must not leave its server running.
    const reap = () => proc.kill('SIGKILL');
    process.on('exit', reap);
    proc.on('exit', () => process.removeListener('exit', reap));
    const lines = [];
    const keep = (tag) => (chunk) => {
        for (const line of chunk.toString().split('\n')) {
            if (line && lines.length < 2000) {
                lines.push(`[${tag}] ${line}`);
            }
        }
    };
    proc.stderr.on('data', keep('err'));
    const output = () => 'server output (last lines):\n  ' + lines.slice(-40).join('\n  ');
    const ready = new Promise((resolve, reject) => {
        let buffered = '';
        proc.stdout.on('data', (chunk) => {
            keep('out')(chunk);
            buffered += chunk.toString();
            const m = /listening on [0-9.]+:(\d+)/.exec(buffered);
            if (m) {
                resolve(Number(m[1]));
            }
        });
        proc.on('exit', (code, sig) =>
            reject(new Error(`ringcastd exited (${code ?? sig}) before it was ready\n` +
                             output())));
        proc.on('error', reject);
    });
    return withTimeout(ready, 10000, 'ringcastd listening line')
        .then((port) => ({ proc, port, output }))
        .catch((e) => { proc.kill('SIGKILL'); throw e; });
}

function stopServer(server, timeoutMs = 5000) {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
        return Promise.resolve({ code: server.proc.exitCode, signal: server.proc.signalCode });
    }
    const exited = new Promise((resolve) =>
        server.proc.on('exit', (code, sig) => resolve({ code, signal: sig })));
    server.proc.kill('SIGTERM');
    return withTimeout(exited, timeoutMs, 'ringcastd exit after SIGTERM');
}

// A `ws` client of `url`, resolving with it once its handshake is done (bounded to 5 s):
// rejects on an error, or on a refused handshake with its HTTP status. `options` are ws's,
// over a 64 MiB maxPayload (ws offers permessage-deflate unless told
// `perMessageDeflate: false`); `onUpgrade(res)` sees the 101 response. Messages are queued
// on the client from the start, so none is missed between awaits: read them in order with
// nextMessage(ws).
function openClient(url, options = {}, onUpgrade = null) {
    const ws = new WebSocket(url, { maxPayload: 64 * MIB, ...options });
    ws.inbox = [];
    ws.waiters = [];
    ws.on('message', (data, isBinary) => {
        const item = { data, isBinary };
        const waiter = ws.waiters.shift();
        if (waiter) {
            waiter.resolve(item);
        } else {
            ws.inbox.push(item);
        }
    });
    ws.on('close', (code) => {
        for (const w of ws.waiters.splice(0)) {
            w.reject(new Error(`connection closed (code ${code}) while waiting for a message`));
        }
    });
    ws.on('error', () => {});  // surfaced through 'close' and the timeouts
    if (onUpgrade) {
        ws.once('upgrade', onUpgrade);
    }
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.once('unexpected-response', (req, res) =>
            reject(new Error(`handshake answered with HTTP ${res.statusCode}`)));
    }), 5000, 'WebSocket open');
}

// The next message, {data, isBinary}, of a client from openClient: the oldest queued, or the
// next to arrive within `ms`. Rejects when the client is not open or closes first.
function nextMessage(ws, ms = 10000) {
    if (ws.inbox.length) {
        return Promise.resolve(ws.inbox.shift());
    }
    if (ws.readyState !== WebSocket.OPEN) {
        return Promise.reject(new Error('connection is not open'));
    }
    return withTimeout(new Promise((resolve, reject) => ws.waiters.push({ resolve, reject })),
                       ms, 'message');
}

// The TAP text of one case's details: every line starts with `# `.
function details(text) {
    return String(text).split('\n').map((line) => `# ${line}`).join('\n');
}

// Runs a script's cases as TAP. `cases(srv)` builds the list before the server starts (the
// plan must come first); the cases read `srv.port` (and `srv.server`) when they run. Adds
// the "server exits 0 on SIGTERM" case, prints the plan, starts the server with `start()`,
// runs the cases in order (each bounded to 60 s) and resolves with the exit status.
async function runTap({ cases, start, header, beforeStop = () => {} }) {
    const srv = { port: 0, server: null };
    const list = cases(srv);
    list.push({
        name: 'server exits 0 on SIGTERM',
        fn: async () => {
            const server = srv.server;
            check(server.proc.exitCode === null && server.proc.signalCode === null,
                  'ringcastd died during the run ' +
                  `(${server.proc.exitCode ?? server.proc.signalCode})\n${server.output()}`);
            beforeStop();
            const { code, signal } = await stopServer(server);
            check(code === 0,
                  `exit ${code ?? signal} after SIGTERM, expected 0\n${server.output()}`);
        },
    });
    console.log(`1..${list.length}`);
    try {
        srv.server = await start();
    } catch (e) {
        bailOut(`ringcastd did not start: ${e && e.message || e}`);
    }
    srv.port = srv.server.port;
    console.log(details(header(srv.server)));
    let passed = 0;
    for (const [k, { name, fn }] of list.entries()) {
        const title = `${k + 1} - ${name.replace(/#/g, '\\#')}`;
        const started = Date.now();
        try {
            await withTimeout(fn(), 60000, name);
            passed += 1;
            console.log(`ok ${title}`);
        } catch (e) {
            console.log(`not ok ${title}\n` +
                        details(`after ${((Date.now() - started) / 1000).toFixed(2)} s: ` +
                                (e && e.message || e)));
        }
    }
    const server = srv.server;
    if (server.proc.exitCode === null && server.proc.signalCode === null) {
        server.proc.kill('SIGKILL');
    }
    console.log(`# ${passed} of ${list.length} passed`);
    return passed === list.length ? 0 : 1;
}

// The end of a script's main(): exits with runTap's status; an exception that escaped
// the cases is a bail-out (the cases not printed are the ones that did not run).
function exitWith(promise) {
    promise.then((code) => process.exit(code),
                 (e) => bailOut(`uncaught: ${e && e.stack || e}`));
}

// One HTTP request to ringcastd on 127.0.0.1:`port`; `body` (if given) is sent as JSON.
// Resolves with {status, text, json} (json: the parsed body, or null when it is not JSON),
// within 10 s. `agent`: an http.Agent to reuse a connection (default: Node's global one).
function httpRequest(port, method, pathName, body = undefined,
                     { agent = undefined, headers = {} } = {}) {
    return withTimeout(new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = http.request({ host: '127.0.0.1', port, method, path: pathName, agent,
                                   headers: { ...(data ? { 'Content-Type': 'application/json',
                                                           'Content-Length': data.length } : {}),
                                              ...headers } },
                                 (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString();
                let json = null;
                try {
                    json = JSON.parse(text);
                } catch {
                    json = null;
                }
                resolve({ status: res.statusCode, text, json });
            });
        });
        req.on('error', reject);
        req.end(data);
    }), 10000, `${method} ${pathName}`);
}

module.exports = { WebSocket, wsDir, binary, MIB, withTimeout, check, startServer, stopServer,
                   openClient, nextMessage, runTap, exitWith, httpRequest };
