#!/usr/bin/env node
// /dashboard in headless Chromium (Debian's `chromium`), driven over the DevTools protocol
// with the `ws` client (no browser automation library): the page loads under its own
// Content-Security-Policy without a violation or a script error, connects to sys:stats,
// shows non-zero messages/s and deliveries/s while traffic runs, its connection count
// matches GET /api/stats, and its shard table has one row per shard. A screenshot is
// written to a temporary directory (or to the path after --screenshot: how
// docs/dashboard.png is made).
//
// Usage: node dashboard_browser.js PATH/TO/ringcastd [--screenshot PATH]
// Chromium: $CHROMIUM, else /usr/bin/chromium (.ci/install installs it); missing is a
// failure. As root it needs --no-sandbox. Server: --shards 2 on 127.0.0.1:0, no
// credentials, so this host's page may watch (docs/security.md). Traffic: 5 subscribers
// of `bench:room` and a bounded publish loop through POST /api/publish (batches of 20,
// for at most 20 s), so deliveries are five times the publishes.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { WebSocket, withTimeout, check, startServer, runTap, exitWith, httpRequest } = require('./support.js');
const { chromium, sleep, launchChromium, devtools, textOf, waitFor } = require('./chromium.js');

const screenshotArg = process.argv.indexOf('--screenshot');
const screenshotPath = screenshotArg > 0 ? path.resolve(process.argv[screenshotArg + 1]) : null;
const SUBSCRIBERS = 5;

if (!fs.existsSync(chromium)) {
    console.log(`Bail out! missing dependency: ${chromium} (apt-get install chromium; ` +
                'run: bash .ci/install)');
    process.exit(1);
}

// "1.2k" → 1200, "3.50M" → 3500000, "—" → NaN.
function parseFigure(text) {
    const m = /^([0-9.]+)(k|M)?$/.exec(String(text).trim());
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
}

const apiRequest = (agent, port, method, pathName, body) =>
    httpRequest(port, method, pathName, body, { agent });

function subscriber(port) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
    ws.received = 0;
    ws.on('message', () => { ws.received += 1; });
    ws.on('error', () => {});
    return withTimeout(new Promise((resolve, reject) => {
        ws.once('open', () => {
            ws.send(JSON.stringify({ op: 'subscribe', channel: 'bench:room', id: 1 }));
            ws.once('message', () => resolve(ws));
        });
        ws.once('error', reject);
    }), 10000, 'subscriber');
}

function main() {
    const state = { chrome: null, cdp: null, session: null, agent: null, subs: [], traffic: null,
                    seen: null };
    const dashboard = (srv) => `http://127.0.0.1:${srv.port}/dashboard`;

    const cases = (srv) => [
        {
            name: 'the page loads in headless Chromium and connects to sys:stats',
            fn: async () => {
                state.chrome = await launchChromium();
                const cdp = state.cdp = await devtools.connect(state.chrome.url);
                const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
                const { sessionId } = await cdp.send('Target.attachToTarget',
                                                     { targetId, flatten: true });
                state.session = sessionId;
                for (const domain of ['Page', 'Runtime', 'Log']) {
                    await cdp.send(`${domain}.enable`, {}, sessionId);
                }
                await cdp.send('Emulation.setDeviceMetricsOverride',
                               { width: 1280, height: 860, deviceScaleFactor: 1, mobile: false },
                               sessionId);
                await cdp.send('Page.navigate', { url: dashboard(srv) }, sessionId);
                await waitFor('status "live"', 20000, async () => {
                    const cls = await cdp.send('Runtime.evaluate', {
                        expression: "document.getElementById('status').className",
                        returnByValue: true }, sessionId);
                    return { ok: cls.result.value === 'ok', status: await textOf(cdp, sessionId, 'status') };
                });
            },
        },
        {
            name: 'no CSP violation, no script error, no console error',
            fn: async () => {
                const bad = state.cdp.events.filter((e) =>
                    e.method === 'Runtime.exceptionThrown' ||
                    (e.method === 'Log.entryAdded' &&
                     ['error', 'warning'].includes(e.params.entry.level) &&
                     !/\/favicon\.ico$/.test(e.params.entry.url || '')) || // the browser's own ask
                    (e.method === 'Runtime.consoleAPICalled' && e.params.type === 'error'));
                check(bad.length === 0, `the page reported: ${JSON.stringify(bad).slice(0, 1500)}`);
            },
        },
        {
            name: 'non-zero messages/s and deliveries/s while traffic runs; one row per shard',
            fn: async () => {
                for (let i = 0; i < SUBSCRIBERS; i++) {
                    state.subs.push(await subscriber(srv.port));
                }
                state.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
                let stop = false;
                let published = 0;
                const started = Date.now();
                state.traffic = (async () => {
                    while (!stop && Date.now() - started < (screenshotPath ? 40000 : 20000)) {
                        const messages = Array.from({ length: 20 },
                                                    (_, k) => ({ channel: 'bench:room', data: { k } }));
                        const r = await apiRequest(state.agent, srv.port, 'POST', '/api/publish',
                                                   { messages });
                        check(r.status === 200, `publish: ${r.status}`);
                        published += 20;
                        // For the docs picture, a rate that changes every 4 s draws a
                        // sparkline worth looking at.
                        const slow = screenshotPath && Math.floor((Date.now() - started) / 4000) % 2;
                        await sleep(slow ? 40 : 10);
                    }
                })();
                const seen = await waitFor('non-zero rates on the page', 15000, async () => {
                    const inText = await textOf(state.cdp, state.session, 'in_per_s');
                    const outText = await textOf(state.cdp, state.session, 'out_per_s');
                    const inRate = parseFigure(inText);
                    const outRate = parseFigure(outText);
                    return { ok: inRate > 0 && outRate >= inRate * (SUBSCRIBERS - 1),
                             inText, outText };
                });
                state.seen = seen;
                console.log(`# page while publishing: ${seen.inText} in/s, ${seen.outText} out/s`);
                const rows = await state.cdp.send('Runtime.evaluate', {
                    expression: "document.getElementById('shards').rows.length",
                    returnByValue: true }, state.session);
                check(rows.result.value === 2, `${rows.result.value} shard rows, expected 2`);
                const top = await textOf(state.cdp, state.session, 'channels');
                check(top.startsWith(`bench:room${SUBSCRIBERS}`),
                      `top channels begin ${JSON.stringify(top.slice(0, 40))}, not bench:room`);
                // The latency card is computed from the snapshot's histogram: a figure,
                // not "—", while messages flow.
                const latency = await waitFor('a publish→send p99 on the page', 10000, async () => {
                    const p99 = await textOf(state.cdp, state.session, 'p99');
                    return { ok: p99 !== '' && p99 !== '—', p99 };
                });
                console.log(`# publish→send p99 on the page: ${latency.p99}`);
                // Another snapshot or two with traffic (a fuller sparkline for the docs
                // picture); the screenshot follows at once, the last rates still showing.
                await sleep(screenshotPath ? 25000 : 1500);
                stop = true;
                await state.traffic;
                check(published > 0, 'nothing published');
            },
        },
        {
            name: 'a screenshot of the live page',
            fn: async () => {
                const height = await state.cdp.send('Runtime.evaluate', {
                    expression: 'document.body.scrollHeight + 24', returnByValue: true },
                                                    state.session);
                const shot = await state.cdp.send('Page.captureScreenshot', {
                    format: 'png',
                    clip: { x: 0, y: 0, width: 1280, height: height.result.value, scale: 1 },
                }, state.session);
                const out = screenshotPath ||
                    path.join(state.chrome.dir, 'dashboard.png');
                fs.writeFileSync(out, Buffer.from(shot.data, 'base64'));
                const size = fs.statSync(out).size;
                check(size > 10000, `screenshot ${out}: ${size} bytes`);
                console.log(`# screenshot: ${out} (${size} bytes)`);
            },
        },
        {
            name: 'the connection count matches GET /api/stats',
            fn: async () => {
                // Quiet now: what the page shows stays what the server counts, give or take
                // the browser's idle HTTP connection, which it may close at any time.
                const { ok, page, api } = await waitFor('connections agree', 10000, async () => {
                    const pageCount = parseFigure(await textOf(state.cdp, state.session, 'connections'));
                    const stats = await apiRequest(state.agent, srv.port, 'GET', '/api/stats');
                    const apiCount = stats.json.total.connections;
                    return { ok: Math.abs(pageCount - apiCount) <= 1 &&
                                 pageCount >= SUBSCRIBERS + 2, page: pageCount, api: apiCount };
                });
                check(ok, `page ${page}, /api/stats ${api}`);
                console.log(`# connections: page ${page}, /api/stats ${api}`);
            },
        },
    ];

    return runTap({
        cases,
        start: () => startServer(['--shards', '2']),
        header: (server) => `ringcastd on 127.0.0.1:${server.port}, ${chromium}`,
        beforeStop: () => {
            for (const s of state.subs) s.terminate();
            if (state.agent) state.agent.destroy();
            if (state.cdp) state.cdp.ws.terminate();
            if (state.chrome) {
                state.chrome.proc.kill('SIGKILL');
                // The profile only; the screenshot stays. Chromium may still be writing as
                // it dies: retried, and a leftover temporary directory fails nothing.
                try {
                    fs.rmSync(path.join(state.chrome.dir, 'profile'),
                              { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
                } catch (e) {
                    console.log(`# left ${state.chrome.dir}/profile: ${e.message}`);
                }
            }
        },
    });
}

exitWith(main());
