// Headless Chromium (Debian's `chromium`) driven over the DevTools protocol with the `ws`
// client, for the browser tests (dashboard_browser.js, socketio_browser.js): no browser
// automation library. As root Chromium needs --no-sandbox.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { WebSocket, withTimeout } = require('./support.js');

const chromium = process.env.CHROMIUM || '/usr/bin/chromium';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Headless Chromium with a DevTools endpoint on an ephemeral port; resolves with
// {proc, url, dir} once it prints "DevTools listening on ws://…".
function launchChromium() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-browser-'));
    const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                  '--no-first-run', '--no-default-browser-check', '--disable-extensions',
                  '--remote-debugging-port=0', `--user-data-dir=${path.join(dir, 'profile')}`,
                  'about:blank'];
    const proc = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const reap = () => proc.kill('SIGKILL');
    process.on('exit', reap);
    let err = '';
    const ready = new Promise((resolve, reject) => {
        proc.stderr.on('data', (chunk) => {
            err += chunk.toString();
            const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
            if (m) {
                resolve({ proc, url: m[1], dir });
            }
        });
        proc.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${err}`)));
    });
    return withTimeout(ready, 30000, 'chromium DevTools endpoint');
}

// The DevTools protocol over one WebSocket: send() resolves with a command's result,
// events are kept in `events` and handed to `onEvent`.
class devtools {
    constructor(ws) {
        this.ws = ws;
        this.next = 1;
        this.pending = new Map();
        this.events = [];
        ws.on('message', (raw) => {
            const msg = JSON.parse(raw.toString());
            if (msg.id !== undefined) {
                const p = this.pending.get(msg.id);
                this.pending.delete(msg.id);
                if (p) {
                    if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
                    else p.resolve(msg.result);
                }
                return;
            }
            this.events.push(msg);
        });
    }

    static async connect(url) {
        const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 });
        await withTimeout(new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
        }), 10000, 'DevTools WebSocket');
        return new devtools(ws);
    }

    send(method, params = {}, sessionId = undefined) {
        const id = this.next++;
        const message = { id, method, params };
        if (sessionId) message.sessionId = sessionId;
        return withTimeout(new Promise((resolve, reject) => {
            this.pending.set(id, { resolve, reject, method });
            this.ws.send(JSON.stringify(message));
        }), 30000, method);
    }
}

// A page's text content of element `id`, through Runtime.evaluate.
async function textOf(cdp, session, id) {
    const r = await cdp.send('Runtime.evaluate', {
        expression: `(document.getElementById(${JSON.stringify(id)}) || {}).textContent`,
        returnByValue: true,
    }, session);
    return r.result.value;
}

async function waitFor(what, timeoutMs, probe) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
        last = await probe();
        if (last.ok) return last;
        await sleep(200);
    }
    throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}


module.exports = { chromium, sleep, launchChromium, devtools, textOf, waitFor };
