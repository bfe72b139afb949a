#!/usr/bin/env node
// The Socket.IO demo page (/socketio, README "Set up") in headless Chromium: a page written
// for an ordinary Socket.IO server, loading the unchanged socket.io-client bundle from
// /socket.io/socket.io.js (--socketio-client-js, the npm package's dist/socket.io.min.js)
// and calling io() with its default transports. It connects (long-polling first, then the
// upgrade to WebSocket), joins the room "news" with an ack, and shows what a backend
// publishes with a plain HTTP POST (the page's curl line) — with no script error.
//
// Usage: node socketio_browser.js PATH/TO/ringcastd
// Chromium: $CHROMIUM, else /usr/bin/chromium (.ci/install installs it); missing is a
// failure. Server: --shards 2 on 127.0.0.1:0, no credentials.
'use strict';

const fs = require('fs');
const path = require('path');
const { check, startServer, runTap, exitWith, httpRequest } = require('./support.js');
const { chromium, launchChromium, devtools, textOf, waitFor } = require('./chromium.js');

const bundle = path.join(__dirname, 'node_modules', 'socket.io-client', 'dist',
                         'socket.io.min.js');
for (const needed of [chromium, bundle]) {
    if (!fs.existsSync(needed)) {
        console.log(`Bail out! missing dependency: ${needed} (run: bash .ci/install)`);
        process.exit(1);
    }
}

const post = (port, pathName, body) => httpRequest(port, 'POST', pathName, body);
const get = (port, pathName) => httpRequest(port, 'GET', pathName);

function main() {
    const state = { chrome: null, cdp: null, session: null };
    const logText = () => textOf(state.cdp, state.session, 'log');

    const cases = (srv) => [
        {
            name: 'the bundle is served at /socket.io/socket.io.js, byte for byte',
            fn: async () => {
                const r = await get(srv.port, '/socket.io/socket.io.js');
                check(r.status === 200, `status ${r.status}`);
                check(r.text === fs.readFileSync(bundle, 'utf8'), 'not the file given');
            },
        },
        {
            name: 'the page connects with the default transports, upgrades and joins "news"',
            fn: async () => {
                state.chrome = await launchChromium();
                const cdp = state.cdp = await devtools.connect(state.chrome.url);
                const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
                const { sessionId } = await cdp.send('Target.attachToTarget',
                                                     { targetId, flatten: true });
                state.session = sessionId;
                for (const domain of ['Page', 'Runtime', 'Log', 'Network']) {
                    await cdp.send(`${domain}.enable`, {}, sessionId);
                }
                await cdp.send('Page.navigate', { url: `http://127.0.0.1:${srv.port}/socketio` },
                               sessionId);
                const joined = await waitFor('joined news over websocket', 20000, async () => {
                    const log = await logText();
                    const transport = await textOf(cdp, sessionId, 'transport');
                    return { ok: /joined news at offset \d+/.test(log) && transport === 'websocket',
                             log, transport };
                });
                console.log(`# ${joined.log.trim().split('\n').pop()} (${joined.transport})`);
                // The default transports: the session began with a long-polling request.
                const polled = cdp.events.some((e) => e.method === 'Network.requestWillBeSent' &&
                    /\/socket\.io\/\?EIO=4&transport=polling/.test(e.params.request.url));
                check(polled, 'no long-polling request: the page did not use the default transports');
            },
        },
        {
            name: 'what a backend publishes to "news" shows on the page',
            fn: async () => {
                const text = `hello from the test ${Date.now()}`;
                const r = await post(srv.port, '/api/publish',
                                     { channel: 'news', event: 'notification', data: { text } });
                check(r.status === 200 && /"ok":true/.test(r.text), `publish: ${r.status} ${r.text}`);
                await waitFor('the published text on the page', 10000, async () => {
                    const log = await logText();
                    return { ok: log.includes(JSON.stringify({ text })), log: log.slice(-300) };
                });
            },
        },
        {
            name: 'no script error, no console error; the server counted one Socket.IO connect',
            fn: async () => {
                const bad = state.cdp.events.filter((e) =>
                    e.method === 'Runtime.exceptionThrown' ||
                    (e.method === 'Log.entryAdded' && e.params.entry.level === 'error' &&
                     !/\/favicon\.ico$/.test(e.params.entry.url || '')) ||
                    (e.method === 'Runtime.consoleAPICalled' && e.params.type === 'error'));
                check(bad.length === 0, `the page reported: ${JSON.stringify(bad).slice(0, 1500)}`);
                const stats = JSON.parse((await get(srv.port, '/api/stats')).text).total;
                check(stats.socketio_connects >= 1, `socketio_connects ${stats.socketio_connects}`);
                check(stats.socketio_polling_refused === 0,
                      `socketio_polling_refused ${stats.socketio_polling_refused}`);
            },
        },
    ];

    return runTap({
        cases,
        start: () => startServer(['--shards', '2', '--socketio-client-js', bundle]),
        header: (server) => `ringcastd on 127.0.0.1:${server.port}, ${chromium}`,
        beforeStop: () => {
            if (state.cdp) state.cdp.ws.terminate();
            if (state.chrome) {
                state.chrome.proc.kill('SIGKILL');
                try {
                    fs.rmSync(state.chrome.dir, { recursive: true, force: true, maxRetries: 10,
                                                  retryDelay: 100 });
                } catch (e) {
                    console.log(`# left ${state.chrome.dir}: ${e.message}`);
                }
            }
        },
    });
}

exitWith(main());
