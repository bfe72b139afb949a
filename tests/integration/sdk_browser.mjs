#!/usr/bin/env node
// The JavaScript SDK in headless Chromium (Debian's `chromium`): a page served from
// loopback imports the compiled ES modules with a plain <script type="module"> (no
// bundler), connects with the browser's own WebSocket, subscribes, and receives what
// POST /api/publish sends, with no script error on the page.
//
// Usage: node --test-reporter=tap sdk_browser.mjs PATH/TO/ringcastd. Chromium: $CHROMIUM,
// else /usr/bin/chromium (.ci/install installs it); missing is a failure. Driven over the
// DevTools protocol with npm `ws`, as dashboard_browser.js does. Every wait is bounded.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { buildSdk, closeAgent, publish, support, waitUntil } from './sdk_support.mjs';

const { WebSocket, startServer, stopServer, withTimeout } = support;
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const state = { server: null, files: null, chrome: null, cdp: null, profile: null };

after(async () => {
    state.cdp?.ws.terminate();
    const chrome = state.chrome;
    if (chrome && chrome.exitCode === null && chrome.signalCode === null) {
        const exited = new Promise((resolve) => chrome.once('exit', resolve));
        chrome.kill('SIGKILL');
        await withTimeout(exited, 10000, 'chromium exit after SIGKILL');
    }
    state.files?.closeAllConnections();
    state.files?.close();
    closeAgent();
    if (state.profile) {
        // A leftover temporary directory fails nothing (Chromium's helpers may still be
        // writing into it as they die).
        try {
            fs.rmSync(state.profile, { recursive: true, force: true, maxRetries: 10,
                                       retryDelay: 100 });
        } catch (e) {
            console.log(`# left ${state.profile}: ${e.message}`);
        }
    }
    if (state.server) {
        const { code, signal } = await stopServer(state.server);
        assert.equal(code, 0, `ringcastd exit ${code ?? signal}\n${state.server.output()}`);
    }
});

// Serves the page and the compiled SDK under /sdk/ from `sdkDir`.
function serveFiles(sdkDir) {
    const page = '<!doctype html><meta charset="utf-8"><title>ringcast SDK</title>\n' +
        '<script type="module">\n' +
        "import { RingcastClient } from './sdk/index.js';\n" +
        'window.received = [];\n' +
        "const url = new URLSearchParams(location.search).get('ws');\n" +
        'const client = new RingcastClient(url);\n' +
        "const sub = client.subscribe('feed:browser', (m) => { window.received.push(m); });\n" +
        'client.connect().then(() => sub.ready).then((r) => { window.subscribed = r; },\n' +
        '    (e) => { window.failure = String(e); });\n' +
        '</script>\n';
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/') {
            res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
            return res.end(page);
        }
        const file = path.join(sdkDir, path.basename(url.pathname));
        if (url.pathname.startsWith('/sdk/') && file.endsWith('.js') && fs.existsSync(file)) {
            res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
            return res.end(fs.readFileSync(file));
        }
        res.writeHead(404);
        res.end();
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function launchChromium(profile) {
    const proc = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu',
                                  '--disable-dev-shm-usage', '--no-first-run',
                                  '--no-default-browser-check', '--disable-extensions',
                                  '--remote-debugging-port=0', `--user-data-dir=${profile}`,
                                  'about:blank'],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
    process.on('exit', () => proc.kill('SIGKILL'));
    let err = '';
    return withTimeout(new Promise((resolve, reject) => {
        proc.stderr.on('data', (chunk) => {
            err += chunk.toString();
            const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
            if (m) resolve({ proc, url: m[1] });
        });
        proc.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${err}`)));
    }), 30000, 'chromium DevTools endpoint');
}

// The DevTools protocol: send() resolves with a result; events are kept in `events`.
async function devtools(url) {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20 });
    await withTimeout(new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
    }), 10000, 'DevTools WebSocket');
    const cdp = { ws, next: 1, pending: new Map(), events: [] };
    ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString());
        const p = msg.id !== undefined && cdp.pending.get(msg.id);
        if (!p) return void cdp.events.push(msg);
        cdp.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result);
    });
    cdp.send = (method, params = {}, sessionId = undefined) => {
        const id = cdp.next++;
        return withTimeout(new Promise((resolve, reject) => {
            cdp.pending.set(id, { resolve, reject, method });
            ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
        }), 30000, method);
    };
    return cdp;
}

test('a page importing the compiled ESM SDK receives what POST /api/publish sends',
     async () => {
    assert.ok(fs.existsSync(chromium),
              `missing dependency: ${chromium} (apt-get install chromium; bash .ci/install)`);
    const { dir } = await buildSdk();
    state.server = await startServer(['--namespace', 'feed:history=100']);
    state.files = await serveFiles(dir);
    state.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-chromium-'));
    const chrome = await launchChromium(state.profile);
    state.chrome = chrome.proc;
    state.cdp = await devtools(chrome.url);
    const cdp = state.cdp;
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
    await cdp.send('Runtime.enable', {}, sessionId);
    await cdp.send('Log.enable', {}, sessionId);
    const ws = `ws://127.0.0.1:${state.server.port}/ws`;
    const page = `http://127.0.0.1:${state.files.address().port}/?ws=${encodeURIComponent(ws)}`;
    await cdp.send('Page.navigate', { url: page }, sessionId);
    const evaluate = async (expression) =>
        (await cdp.send('Runtime.evaluate', { expression, returnByValue: true }, sessionId))
            .result.value;
    const subscribed = await waitUntil('the page subscribed', 30000,
        () => evaluate('window.subscribed || (window.failure && {failure: window.failure})'),
        () => JSON.stringify(cdp.events.slice(-5)));
    assert.equal(subscribed.failure, undefined, subscribed.failure);
    assert.equal(subscribed.channel, 'feed:browser');
    const offset = await publish(state.server.port, 'feed:browser', 'greet', { text: 'hé 😀' });
    const received = await waitUntil('the message on the page', 20000,
        () => evaluate('window.received.length === 1 && window.received'));
    assert.deepEqual(received.map((m) => [m.event, m.data, m.offset]),
                     [['greet', { text: 'hé 😀' }, offset]]);
    const problems = cdp.events.filter((e) => e.method === 'Runtime.exceptionThrown' ||
        (e.method === 'Runtime.consoleAPICalled' && e.params.type === 'error') ||
        (e.method === 'Log.entryAdded' && e.params.entry.level === 'error' &&
         !/favicon\.ico$/.test(e.params.entry.url || '')));
    assert.deepEqual(problems, []);
});

