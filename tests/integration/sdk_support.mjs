// Shared by the SDK tests (sdk_node.mjs, sdk_browser.mjs): compiles clients/js with its
// pinned tsc into a temporary directory (so a test never runs a stale dist/), and the
// backend API as a test calls it. ringcastd itself is started with support.js.
//
// Needs `npm ci --prefix clients/js` (typescript) and `npm ci --prefix tests/integration`
// (ws); .ci/install runs both. A missing one is a failure with the command to run, never
// a skip.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sdkDir = path.resolve(here, '..', '..', 'clients', 'js');
export const support = createRequire(import.meta.url)('./support.js');

/**
 * Compiles the SDK into a fresh temporary directory; resolves with {dir, sdk}: the
 * directory holding index.js and the imported module.
 */
export async function buildSdk() {
    const tsc = path.join(sdkDir, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!fs.existsSync(tsc)) {
        throw new Error(`the SDK's compiler is missing (${tsc}): run ` +
                        '`npm ci --prefix clients/js` (.ci/install does)');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-sdk-'));
    execFileSync(process.execPath, [tsc, '-p', path.join(sdkDir, 'tsconfig.json'),
                                    '--outDir', dir],
                 { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
    // The compiled files are ES modules; a package.json saying so lets Node load them
    // from a directory outside the package.
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
    const sdk = await import(pathToFileURL(path.join(dir, 'index.js')).href);
    return { dir, sdk };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** The backend API on `port`: resolves {status, json}; bounded to 10 s. */
export function api(port, method, urlPath, body) {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    return support.withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent,
                                   headers: data ? { 'Content-Type': 'application/json',
                                                     'Content-Length': data.length } : {} },
                                 (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString();
                let json = null;
                try { json = JSON.parse(text); } catch { /* left null */ }
                resolve({ status: res.statusCode, json, text });
            });
        });
        req.on('error', reject);
        if (data) req.write(data);
        req.end();
    }), 10000, `${method} ${urlPath}`);
}

/** POST /api/publish of one message; resolves with its offset. */
export async function publish(port, channel, event, data) {
    const r = await api(port, 'POST', '/api/publish', { channel, event, data });
    if (r.status !== 200 || !r.json || r.json.ok !== true) {
        throw new Error(`POST /api/publish ${channel}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    return r.json.offset;
}

export function closeAgent() {
    agent.destroy();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` every 20 ms until it returns a truthy value; throws after `ms` with
 * `what` and the last `describe()`. Every wait in these tests is one of these.
 */
export async function waitUntil(what, ms, probe, describe = () => '') {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value) {
            return value;
        }
        if (Date.now() > deadline) {
            throw new Error(`not within ${ms} ms: ${what} ${describe()}`);
        }
        await sleep(20);
    }
}
