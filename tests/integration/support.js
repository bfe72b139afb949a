// Shared by the Node integration scripts (the JavaScript side of support.py): skips with
// 77 when `ws` or the binary is missing, starts and stops ringcastd, bounds every wait, and
// runs cases with one line each plus the plain "N passed, N failed" line.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const SKIP = 77;
const wsDir = path.join(__dirname, 'node_modules', 'ws');
if (!fs.existsSync(wsDir)) {
    console.log(`SKIP: ${wsDir} is missing (run: npm ci --prefix tests/integration)`);
    process.exit(SKIP);
}
const WebSocket = require(wsDir);

const binary = process.argv[2] || process.env.RINGCASTD || '';
if (!binary || !fs.existsSync(binary)) {
    console.log(`SKIP: ringcastd binary not found: '${binary}' (pass its path as argument 1)`);
    process.exit(SKIP);
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

// Adds the "server exits 0 on SIGTERM" case, runs `list` in order (each bounded to 60 s),
// prints one line per case and the summary; resolves with the exit status.
async function runCases(server, list, beforeStop = () => {}) {
    list.push({
        name: 'server exits 0 on SIGTERM',
        fn: async () => {
            check(server.proc.exitCode === null && server.proc.signalCode === null,
                  'ringcastd died during the run ' +
                  `(${server.proc.exitCode ?? server.proc.signalCode})\n${server.output()}`);
            beforeStop();
            const { code, signal } = await stopServer(server);
            check(code === 0,
                  `exit ${code ?? signal} after SIGTERM, expected 0\n${server.output()}`);
        },
    });
    const failed = [];
    for (const { name, fn } of list) {
        const started = Date.now();
        try {
            await withTimeout(fn(), 60000, name);
            console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(2)}s)`);
        } catch (e) {
            failed.push(name);
            console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(2)}s)\n     ` +
                        String(e && e.message || e).replace(/\n/g, '\n     '));
        }
    }
    if (server.proc.exitCode === null && server.proc.signalCode === null) {
        server.proc.kill('SIGKILL');
    }
    console.log(`${list.length - failed.length} passed, ${failed.length} failed`);
    return failed.length ? 1 : 0;
}


module.exports = { WebSocket, wsDir, binary, MIB, withTimeout, check, startServer, stopServer,
                   runCases };
