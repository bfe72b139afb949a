#!/usr/bin/python3
"""A subscriber that stops reading must not hurt anyone else (docs/architecture.md "Budgets").

Usage: pubsub_slow_consumer.py PATH/TO/ringcastd

What is judged: how much one stalled subscriber raises the latency of 1,000 readers, as a
ratio against a baseline measured in the same run, at the same moments, under the same
load. An absolute latency bound judges the host instead: on a busy 2-vCPU machine the
readers' p99 swings by hundreds of milliseconds from one second to the next, whatever the
stalled client costs; and phases measured one after the other (stalled, then not) differ
by as much as the host's load changes between them (tried first, one server, 3-s phases
in ABBA order: the ratio of their median p99s ranged 0.49-2.81 over 8 runs here).

How: two identical servers, A and B, each `--shards 2 --insecure --max-channels 200
--slow-consumer-bytes 8 MiB --close-timeout-ms 10000`, each with 1,000 Python `websockets`
readers, 10 on each of 100 channels. Each of the PROCESSES reader processes holds an
equal share of A's readers and the same share of B's (reader j of A and reader j of B
sit in one process, on the same channel), so a reader process the host stalls delays
both servers' readers alike. Every 20 ms the backend publishes one identical batch to
each server through the API, both sent before either answer is read, which server first
alternating: FIRE_PER_TICK firehose messages of 4 KiB to the channel `firehose`, then
LOAD_PER_TICK load messages round the 100 channels, stamped with their publish time and
phase. The firehose comes first in the batch, so a reader's latency includes what the
server does with the firehose just before its message.

Phases (PHASES, PHASE_SECONDS of publishing each, after an unmeasured 1-s warm-up): in
each, one server has the stalled client and the other has none (there `firehose` has no
subscriber: the server parses and frames it, then delivers it to no one). The roles go
A B B A B A A B, so whatever differs between the two servers or their readers falls
equally on both sides. The stalled client is a fresh raw socket (SO_RCVBUF 4 KiB),
subscribed to `firehose` and to all 100 load channels, that never reads: its queue fills
to the priority-3 mark (3/4 of 8 MiB) in about the first second and every later message
to it is dropped at that mark, so a phase covers both the queueing and the steady state
over the mark. After the phase, priority-2 firehose batches (never dropped) push it over
the hard mark and it drains from the outside. Between phases every reader must have had
every message published so far and the stalled session must be gone, so no phase
inherits a backlog.

The readers' load is kept low (1,000 deliveries/s per server, over 4 processes) so their
latency shows the servers and the scheduler, not a queue in Python: a saturated reader
process makes p99 the length of its backlog, the same on both sides, and the ratio 1.00
whatever the server does (seen at 4,000 deliveries/s in 2 processes on this busy host).
CPU seconds per process and phase are printed to show it.

Checks:
  * every reader got every message of its channel, in order, exactly once: its k-th
    message carries the publisher's sequence number channel + 100·k and the offset after
    the previous one; nothing else arrives and no reader is closed;
  * harm: p99 over all readers' latencies (publish stamp → receive) on the server that
    held the stalled client, pooled over the phases, against the same over the other
    server in the same phases: the ratio must be at most RATIO_LIMIT (1.25), and so must
    the p50 ratio. The p50 is there because on a busy host the p99 is the host's stalls,
    common to both sides: a test build that burnt 100 µs per message dropped for a
    connection over its mark (~25 % of a core on that shard) doubled the readers' p50
    under `stress-ng --cpu 2` while their p99 ratio stayed 1.00 in 2 runs of 3; without
    stress-ng it failed the p99 bound 3 times of 3 (×1.53-1.55). Printed with them:
    per-phase p50/p99 of both sides, and how much later the same message reached the
    same reader index on the stalled side (paired, so the host's jitter mostly cancels);
  * the readers kept up: the p50 without a stalled client is under a quarter of a phase
    (0.75 s). Past that the readers are the queue and the ratios say nothing: 2.1-2.4 s
    and ratios of 1.00 under `meson test` while its MALLOC_PERTURB_ reached the Python
    side (see python_without_malloc_perturb); 4.9-18 ms over 40 runs here otherwise,
    4.9-31 ms over 40 under `stress-ng --cpu 2`;
  * each stalled client, seen from the outside: after its drain it read a close frame
    with code 1008 and then EOF; what it read before is in order (firehose numbers and
    each channel's sequence numbers strictly increasing) and fewer messages than were
    published to it (drops); /api/stats agrees (dropped and slow_consumer_closes grew);
  * each server's RSS peak stayed under RSS_LIMIT_MB (6 × the slow-consumer mark) above
    its level before publishing, while over twice that went to its clients that do not
    read (printed);
  * SIGTERM → exit status 0 for both servers.
A second case, on its own server, checks the close deadline such a client relies on: one
that never reads, closed 1008 behind a full socket buffer, is torn down at
--close-timeout-ms and counted (deadline_case).
What this cannot see: a harm small against the readers' own latency, which on a busy
host is mostly the host's. The same test build at 30 µs per dropped message (1.5 ms per
20-ms tick on that shard) gave p99 ×1.07-1.17 and p50 ×1.22-1.34: it fails 1 run in 3.
Every wait is bounded, the whole run by DEADLINE (110 s; runs took 30-50 s here).
Fails when python3-websockets is missing.
"""

import asyncio
import base64
import json
import multiprocessing
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SERVERS = "AB"
READERS = 1000                 # per server
PROCESSES = 4                  # each holds READERS / PROCESSES readers of every server
CHANNELS = [f"load-{k}" for k in range(100)]
FIREHOSE = "firehose"
TICK = 0.02                    # one API batch per server per tick
LOAD_PER_TICK = 2              # 100 messages/s → 1,000 deliveries/s per server
FIRE_PER_TICK = 50             # 2,500 × 4 KiB/s = 10 MB/s to `firehose` on each server
PHASE_SECONDS = 3.0
WARMUP_SECONDS = 1.0
PHASES = [None, 0, 1, 1, 0, 1, 0, 0, 1]   # server with the stalled client (None: warm-up)
SLOW_BYTES = 8 << 20
CLOSE_TIMEOUT_MS = 10000
BURST = 128                    # priority-2 firehose messages per batch pushing past the mark
RATIO_LIMIT = 1.25
RSS_LIMIT_MB = 6 * SLOW_BYTES >> 20
DEADLINE = 110.0

LOAD_PAD = "L" * 200
FIRE_PAD = "F" * 4000
FIRE_BYTES = 4100              # one firehose envelope, about
LOAD_BYTES = 330


def phase_ticks(k):
    return round((WARMUP_SECONDS if PHASES[k] is None else PHASE_SECONDS) / TICK)


assert all(phase_ticks(k) * LOAD_PER_TICK % len(CHANNELS) == 0 for k in range(len(PHASES))), \
    "every channel gets as many messages in a phase"


# --------------------------------------------------------------------------------------
# Readers (a child process each)
# --------------------------------------------------------------------------------------

def reader_worker(ports, first, count, conn):
    """Connects `count` readers to each server (reader j on CHANNELS[j % 100]), reports
    "ready", then serves the parent's commands: ("sync", n, timeout) waits until every
    reader has n messages and answers with the stragglers and the process's CPU seconds;
    ("finish",) answers with the summary and the latencies by server and phase."""
    async def run():
        lat = [[[] for _ in PHASES] for _ in ports]    # [server][phase]: latency in ms
        key = [[[] for _ in PHASES] for _ in ports]    # ... of message s to reader j: s·R + j
        total = count * len(ports)
        reached = {"n": 0, "target": 0}
        all_there = asyncio.Event()

        def handler(st, mine, keys):
            def on_message(raw):
                now = time.time() * 1000.0
                m = json.loads(raw)
                d = m.get("data") if isinstance(m, dict) else None
                if not isinstance(d, dict) or "s" not in d:
                    st["other"] += 1
                    return
                k = st["got"]
                if d["s"] != st["index"] + len(CHANNELS) * k or d["c"] != st["channel"]:
                    st["errors"].append(f"message {k}: s={d['s']} c={d['c']}, expected "
                                        f"s={st['index'] + len(CHANNELS) * k}")
                if m["offset"] != st["next"]:
                    st["errors"].append(f"offset {m['offset']}, expected {st['next']}")
                st["next"] = m["offset"] + 1
                st["got"] = k + 1
                mine[d["p"]].append(now - d["t"])
                keys[d["p"]].append(d["s"] * READERS + st["j"])
                if st["got"] == reached["target"]:
                    reached["n"] += 1
                    if reached["n"] == total:
                        all_there.set()
            return on_message

        async def join(server, j):
            st = {"who": f"{SERVERS[server]}{j}", "j": j, "index": j % len(CHANNELS),
                  "channel": CHANNELS[j % len(CHANNELS)], "got": 0, "next": None,
                  "errors": [], "other": 0}
            c = await support.pubsub_client.connect(
                ports[server], user=f"reader{j}",
                on_message=handler(st, lat[server], key[server]))
            reply = await c.subscribe(st["channel"])
            st["next"] = reply["offset"] + 1
            return st, c

        state, clients = [], []
        todo = [(server, j) for server in range(len(ports))
                for j in range(first, first + count)]
        for i in range(0, len(todo), 20):     # 20 handshakes at a time
            for st, c in await asyncio.gather(*(join(*x) for x in todo[i:i + 20])):
                state.append(st)
                clients.append(c)
        conn.send(("ready", None))
        loop = asyncio.get_running_loop()
        while True:
            if not await loop.run_in_executor(None, conn.poll, DEADLINE):
                return None
            cmd = conn.recv()
            if cmd[0] != "sync":
                break
            _, target, timeout = cmd
            reached["target"] = target
            reached["n"] = sum(1 for st in state if st["got"] >= target)
            all_there.clear()
            if reached["n"] < total:
                try:
                    await asyncio.wait_for(all_there.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
            behind = [(st["who"], st["got"]) for st in state if st["got"] < target]
            cpu = os.times()
            conn.send(("synced", {"n_behind": len(behind), "behind": behind[:5],
                                  "cpu": cpu.user + cpu.system}))
        closed = [c for c in clients if c.closed.is_set()]
        errors = [(st["who"], st["errors"][:3]) for st in state if st["errors"]]
        summary = {"clients": len(clients), "errors": errors[:5], "n_errors": len(errors),
                   "closed": len(closed), "other": sum(st["other"] for st in state),
                   "got": sum(st["got"] for st in state),
                   "close_codes": sorted({c.close_code for c in closed}), "lat": lat,
                   "key": key}
        for c in clients:
            c.ws.transport.abort()
        return summary

    try:
        conn.send(("result", asyncio.run(run())))
    except Exception as e:  # report, do not hang the parent
        conn.send(("error", repr(e)))


class readers:
    """The reader processes, driven over pipes; every wait bounded."""

    def __init__(self, ports):
        ctx = multiprocessing.get_context("fork")
        self.workers = []
        per = READERS // PROCESSES
        for p in range(PROCESSES):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=reader_worker, args=(ports, p * per, per, child),
                               daemon=True)
            proc.start()
            self.workers.append((proc, parent))

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        for _, parent in self.workers:
            expect(parent.poll(max(0.1, deadline - time.monotonic())),
                   f"readers not connected and subscribed within {timeout:.0f} s")
            tag, val = parent.recv()
            expect(tag == "ready", f"reader process: {tag} {val}")

    def ask(self, cmd, expect_tag, timeout, what):
        for _, parent in self.workers:
            parent.send(cmd)
        deadline = time.monotonic() + timeout
        out = []
        for _, parent in self.workers:
            expect(parent.poll(max(0.1, deadline - time.monotonic())),
                   f"reader process gave no answer to {what} within {timeout:.0f} s")
            tag, val = parent.recv()
            expect(tag == expect_tag, f"reader process, {what}: {tag} {val}")
            out.append(val)
        return out

    def stop(self):
        for proc, _ in self.workers:
            if proc.is_alive():
                proc.kill()
            proc.join(2)


# --------------------------------------------------------------------------------------
# The stalled client: subscribes, then never reads until told to drain
# --------------------------------------------------------------------------------------

def stalled_client(port, user, channels):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect((support.LOOPBACK, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws?user={user} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    raw = support.raw_ws.__new__(support.raw_ws)   # reuse its frame reader on our socket
    raw.sock, raw.buf, raw.eof, raw.timeout, raw.port = s, bytearray(), False, 5.0, port
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in raw.buf:
        raw._fill(deadline)
    head_end = raw.buf.index(b"\r\n\r\n") + 4
    expect(raw.buf.startswith(b"HTTP/1.1 101"), f"stalled client handshake: {raw.buf[:100]!r}")
    del raw.buf[:head_end]
    for k, ch in enumerate(channels):
        raw.send_frame(support.OP_TEXT, json.dumps(
            {"op": "subscribe", "channel": ch, "id": k}).encode())
    replies = 0
    while replies < len(channels):
        op, payload, _ = raw.recv_message(5)
        m = json.loads(payload)
        expect(m.get("ok") is True, f"stalled client subscribe: {m}")
        replies += 1
    return raw


FIRE_NUMBER = re.compile(rb'"data":\{"f":(\d+),')
LOAD_NUMBER = re.compile(rb'"data":\{"s":(\d+),"c":"load-(\d+)"')


def drain_stalled(raw, timeout):
    """Reads everything the server left for the stalled client, up to its close frame and
    then EOF (bounded by `timeout`). Returns a dict: data messages read, close code (None
    if no close frame), whether EOF followed, and order violations seen."""
    deadline = time.monotonic() + timeout
    out = {"fire": 0, "load": 0, "code": None, "eof": False, "disorder": [], "other": 0}
    last_f, last_s = -1, {}
    while time.monotonic() < deadline:
        try:
            f = raw.recv_frame(max(0.01, deadline - time.monotonic()))
        except support.connection_closed:
            out["eof"] = True
            return out
        except support.timed_out:
            return out
        if f.opcode == support.OP_CLOSE:
            out["code"] = f.close_code()
            continue  # what must follow is EOF
        if out["code"] is not None:
            out["disorder"].append(f"a frame after the close frame: {f}")
            continue
        head = f.payload[:400]
        if (m := FIRE_NUMBER.search(head)) is not None:
            n = int(m.group(1))
            if n <= last_f:
                out["disorder"].append(f"firehose {n} after {last_f}")
            last_f = n
            out["fire"] += 1
        elif (m := LOAD_NUMBER.search(head)) is not None:
            s, ch = int(m.group(1)), int(m.group(2))
            if s <= last_s.get(ch, -1):
                out["disorder"].append(f"load-{ch}: {s} after {last_s[ch]}")
            last_s[ch] = s
            out["load"] += 1
        else:
            out["other"] += 1
    return out


# --------------------------------------------------------------------------------------
# Publisher, CPU and RSS
# --------------------------------------------------------------------------------------

class publisher:
    """Builds the API batches as text and posts them on one keep-alive connection per
    server; both servers get the same messages."""

    def __init__(self, ports):
        self.apis = [support.api_client(port, timeout=20) for port in ports]
        self.li = 0      # next load sequence number (channel = li % 100)
        self.fi = 0      # next firehose number

    def post(self, server, entries, what):
        body = ('{"messages":[' + ",".join(entries) + "]}").encode()
        r = self.apis[server].request("POST", "/api/publish", body)
        self.check(r, server, len(entries), what)

    def check(self, r, server, n, what):
        expect(r.status == 200 and len((r.json or {}).get("results", [])) == n,
               f"publishing {what} to {SERVERS[server]} ({n} messages): {r}")

    def post_both(self, bodies, order, what):
        """Sends both servers their body before reading either answer, so neither waits
        for the other's round trip."""
        for server in order:
            conn = self.apis[server].conn
            if conn.sock is None:
                conn.connect()
            conn.request("POST", "/api/publish", body=bodies[server][0],
                         headers={"Content-Type": "application/json"})
        for server in order:
            resp = self.apis[server].conn.getresponse()
            r = support.api_response(resp.status, {}, resp.read())
            self.check(r, server, bodies[server][1], what)

    def fire_entries(self, n, prio):
        out = []
        for _ in range(n):
            out.append(f'{{"channel":"{FIREHOSE}","event":"fire","priority":{prio},'
                       f'"data":{{"f":{self.fi},"pad":"{FIRE_PAD}"}}}}')
            self.fi += 1
        return out

    def phase(self, k, deadline):
        """Publishes phase k at a steady rate; returns its publishing time in seconds."""
        start = time.monotonic()
        for tick in range(phase_ticks(k)):
            expect(time.monotonic() < deadline, f"phase {k} still publishing at the deadline")
            delay = start + tick * TICK - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fire = self.fire_entries(FIRE_PER_TICK, 3)
            chans = [CHANNELS[(self.li + i) % len(CHANNELS)] for i in range(LOAD_PER_TICK)]
            order = (0, 1) if tick % 2 == 0 else (1, 0)
            bodies = {}
            for server in order:
                t = time.time() * 1000.0
                load = [f'{{"channel":"{ch}","event":"load","priority":3,"data":{{'
                        f'"s":{self.li + i},"c":"{ch}","t":{t:.3f},"p":{k},'
                        f'"pad":"{LOAD_PAD}"}}}}' for i, ch in enumerate(chans)]
                bodies[server] = (('{"messages":[' + ",".join(fire + load) + "]}").encode(),
                                  len(fire) + len(load))
            self.post_both(bodies, order, f"phase {k} tick {tick}")
            self.li += LOAD_PER_TICK
        return time.monotonic() - start

    def stats(self, server):
        return self.apis[server].stats()

    def close(self):
        for api in self.apis:
            api.close()


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_rss(pids, stop, peaks):
    while not stop.is_set():
        for i, pid in enumerate(pids):
            v = support.read_rss_kb(pid)
            if v is not None:
                peaks[i] = max(peaks[i], v)
        time.sleep(0.05)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * q))]


# --------------------------------------------------------------------------------------

def case(binary):
    def run():
        started = time.monotonic()
        deadline = started + DEADLINE
        # 1,000+ clients from 127.0.0.1 per server: the per-address limits are off.
        args = ["--insecure", "--shards", "2", "--max-channels", "200",
                "--slow-consumer-bytes", str(SLOW_BYTES),
                "--close-timeout-ms", str(CLOSE_TIMEOUT_MS),
                "--max-connections-per-ip", "0", "--connect-rate-per-ip", "0"]
        with support.server(binary, args, echo_path=None) as srv_a, \
                support.server(binary, args, echo_path=None) as srv_b:
            srvs = [srv_a, srv_b]
            pids = [s.proc.pid for s in srvs]
            rd = readers([s.port for s in srvs])
            try:
                rd.wait_ready(60)
                support.tap_comment(f"{READERS} readers on each of 2 servers subscribed in "
                      f"{time.monotonic() - started:.1f}s")
                pub = publisher([s.port for s in srvs])
                time.sleep(0.3)
                base_rss = [support.read_rss_kb(pid) for pid in pids]
                peaks = list(base_rss)
                stop = threading.Event()
                sampler = threading.Thread(target=sample_rss, args=(pids, stop, peaks),
                                           daemon=True)
                sampler.start()
                per_channel = 0
                last_cpu = [0.0] * PROCESSES
                stalled_mb = [0.0, 0.0]
                for k, stalled in enumerate(PHASES):
                    cpu0 = [cpu_seconds(pid) for pid in pids] + [sum(os.times()[:2])]
                    wall0 = time.monotonic()
                    if stalled is not None:
                        before = pub.stats(stalled)
                        raw = stalled_client(srvs[stalled].port, f"stalled{k}",
                                             [FIREHOSE] + CHANNELS)
                        fi0, li0 = pub.fi, pub.li
                    seconds = pub.phase(k, deadline)
                    per_channel += phase_ticks(k) * LOAD_PER_TICK // len(CHANNELS)
                    if stalled is not None:
                        outside = push_out_and_drain(pub, stalled, raw, k, before, fi0, li0,
                                                     deadline)
                        stalled_mb[stalled] += ((pub.fi - fi0) * FIRE_BYTES +
                                                (pub.li - li0) * LOAD_BYTES) / 1e6
                    drained_at = time.monotonic()
                    remaining = deadline - drained_at
                    expect(remaining > 1, f"run deadline reached after phase {k}")
                    synced = rd.ask(("sync", per_channel, remaining - 1), "synced",
                                    remaining, f"sync after phase {k}")
                    behind = sum(s["n_behind"] for s in synced)
                    expect(behind == 0, f"after phase {k}, {behind} readers still lacked "
                           f"messages (of {per_channel} each): "
                           f"{[s['behind'] for s in synced]}")
                    cpu = [s["cpu"] for s in synced]
                    if stalled is not None:
                        servers_cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0)]
                        publisher_cpu = sum(os.times()[:2]) - cpu0[2]
                        readers_cpu = [c - p for c, p in zip(cpu, last_cpu)]
                        support.tap_comment(f"phase {k}: stalled client on {SERVERS[stalled]}: "
                              f"{outside}\n       published in {seconds:.2f}s, readers "
                              f"caught up {time.monotonic() - drained_at:.2f}s after; CPU s "
                              f"over {time.monotonic() - wall0:.1f}s: servers "
                              f"{', '.join(f'{x:.2f}' for x in servers_cpu)}, publisher "
                              f"{publisher_cpu:.2f}, readers "
                              f"{', '.join(f'{x:.2f}' for x in readers_cpu)}")
                    last_cpu = cpu
                stop.set()
                sampler.join(2)
                results = rd.ask(("finish",), "result", max(1, deadline - time.monotonic()),
                                 "finish")
                judge(results, per_channel)
                for i in range(len(srvs)):
                    growth = (peaks[i] - base_rss[i]) / 1024.0
                    support.tap_comment(f"server {SERVERS[i]} RSS {base_rss[i] // 1024} MB → peak "
                          f"{peaks[i] // 1024} MB (+{growth:.0f} MB) while "
                          f"{stalled_mb[i]:.0f} MB went to its stalled clients")
                    # ASan keeps freed blocks in its quarantine (256 MB by default): RSS
                    # there says nothing about what ringcastd holds.
                    expect(support.asan_build(binary) or growth < RSS_LIMIT_MB,
                           f"server {SERVERS[i]} RSS grew by "
                           f"{growth:.0f} MB (limit {RSS_LIMIT_MB}) while "
                           f"{stalled_mb[i]:.0f} MB went to clients that do not read")
                pub.close()
                for s in srvs:
                    s.stop_and_expect_clean_exit()
            finally:
                rd.stop()
    return run


def push_out_and_drain(pub, server, raw, k, before, fi0, li0, deadline):
    """After phase k: priority-2 firehose batches (never dropped) to the stalled client's
    server until it has closed a slow consumer (bounded: twice the hard mark's worth), then
    the client drains from the outside. Checks what it saw; returns it as a sentence."""
    closes0 = before["total"]["slow_consumer_closes"]
    batches = 0
    limit = 2 * SLOW_BYTES // (BURST * 4096) + 1
    while True:
        expect(batches < limit, f"phase {k}: the stalled client was not closed after "
               f"{batches} × {BURST} priority-2 messages of 4 KiB")
        expect(time.monotonic() < deadline, f"phase {k}: deadline while pushing")
        pub.post(server, pub.fire_entries(BURST, 2), f"phase {k} priority-2 burst")
        batches += 1
        after = pub.stats(server)
        if after["total"]["slow_consumer_closes"] > closes0:
            break
    published = (pub.fi - fi0) + (pub.li - li0)
    drain_started = time.monotonic()
    seen = drain_stalled(raw, max(1.0, min(3 * CLOSE_TIMEOUT_MS / 1000.0,
                                             deadline - time.monotonic())))
    drain_seconds = time.monotonic() - drain_started
    raw.close()
    received = seen["fire"] + seen["load"]
    dropped = after["total"]["dropped"] - before["total"]["dropped"]
    outside = (f"read {received} of {published} messages published to it, then close "
               f"{seen['code']}{' + EOF' if seen['eof'] else ''} in {drain_seconds:.2f}s "
               f"(after {batches} priority-2 batches); stats: dropped +{dropped}, "
               f"slow_consumer_closes "
               f"+{after['total']['slow_consumer_closes'] - closes0}")
    expect(seen["code"] == 1008 and seen["eof"],
           f"phase {k}: the stalled client read close code {seen['code']} and "
           f"{'EOF' if seen['eof'] else 'no EOF'}; expected close 1008 then EOF ({outside})")
    expect(not seen["disorder"] and seen["other"] == 0,
           f"phase {k}: the stalled client saw {seen['disorder'][:3]} and {seen['other']} "
           f"unexpected messages")
    expect(received < published, f"phase {k}: the stalled client read {received} messages "
           f"of {published} published to it: nothing was dropped")
    expect(dropped > 0, f"phase {k}: /api/stats dropped did not grow")
    # Gone before the next phase: the server must not carry a lingering session into it.
    # Our close is its peer's EOF, so this takes a loop pass; the close timeout (×2) bounds it.
    wait = min(2 * CLOSE_TIMEOUT_MS / 1000.0, max(0.1, deadline - time.monotonic()))
    wait_until = time.monotonic() + wait
    while pub.stats(server)["total"]["sessions"] != READERS:
        expect(time.monotonic() < wait_until, f"phase {k}: the stalled session still "
               f"open {wait:.0f} s after its client closed")
        time.sleep(0.02)
    return outside


def judge(results, per_channel):
    for r in results:
        expect(r["n_errors"] == 0 and r["closed"] == 0 and r["other"] == 0,
               f"readers: {r['n_errors']} of {r['clients']} saw order errors "
               f"{r['errors']}, {r['closed']} closed {r['close_codes']}, "
               f"{r['other']} unexpected messages")
    got = sum(r["got"] for r in results)
    expect(got == len(SERVERS) * READERS * per_channel,
           f"{got} reader deliveries, expected {len(SERVERS) * READERS * per_channel}")
    stalled_lat, base_lat, later, rows = [], [], [], []
    for k, stalled in enumerate(PHASES):
        if stalled is None:
            continue
        s = {x: v for r in results for x, v in zip(r["key"][stalled][k], r["lat"][stalled][k])}
        b = {x: v for r in results for x, v in zip(r["key"][1 - stalled][k],
                                                     r["lat"][1 - stalled][k])}
        stalled_lat += s.values()
        base_lat += b.values()
        # The same message to the same reader index on the other server: how much later
        # the stalled server's reader got it (the host's jitter mostly cancels here).
        later += [v - b[x] for x, v in s.items() if x in b]
        rows.append(f"{SERVERS[stalled]}* {percentile(s.values(), .5):.1f}/"
                    f"{percentile(s.values(), .99):.1f} {SERVERS[1 - stalled]} "
                    f"{percentile(b.values(), .5):.1f}/{percentile(b.values(), .99):.1f}")
    support.tap_comment("readers' latency p50/p99 by phase (ms; * has the stalled client): "
          + ", ".join(rows))
    p50s, p50b = percentile(stalled_lat, .5), percentile(base_lat, .5)
    p99s, p99b = percentile(stalled_lat, .99), percentile(base_lat, .99)
    support.tap_comment(f"all phases: with a stalled client p50 {p50s:.1f} p99 {p99s:.1f} ms, "
          f"without p50 {p50b:.1f} p99 {p99b:.1f} ms: ratio p50 {p50s / p50b:.2f}, "
          f"p99 {p99s / p99b:.2f} (limit {RATIO_LIMIT} each); the same message to the "
          f"same reader index came later from the stalled server by p50 "
          f"{percentile(later, .5):.2f} ms, mean {sum(later) / len(later):.2f} ms, p99 "
          f"{percentile(later, .99):.1f} ms")
    # Readers that are themselves the queue make both sides wait alike (ratio 1.00 whatever
    # the server does): say so rather than pass on a measurement of Python.
    expect(p50b <= PHASE_SECONDS * 1000 / 4, f"the readers could not keep up: their p50 "
           f"without a stalled client was {p50b:.0f} ms, over a quarter of a phase; "
           f"both sides then wait in the same reader processes and the ratio cannot judge "
           f"the server (host too slow or too busy for {len(SERVERS) * READERS} Python "
           f"readers?)")
    expect(p99s <= RATIO_LIMIT * p99b, f"readers' p99 with a stalled subscriber "
           f"{p99s:.1f} ms > {RATIO_LIMIT} × {p99b:.1f} ms without one (ratio "
           f"{p99s / p99b:.2f})")
    expect(p50s <= RATIO_LIMIT * p50b, f"readers' p50 with a stalled subscriber "
           f"{p50s:.1f} ms > {RATIO_LIMIT} × {p50b:.1f} ms without one (ratio "
           f"{p50s / p50b:.2f})")


# --------------------------------------------------------------------------------------
# The close deadline: a slow consumer that never reads is dropped at --close-timeout-ms
# --------------------------------------------------------------------------------------

DEADLINE_CLOSE_MS = 2000
DEADLINE_SLOW_BYTES = 1 << 20
DEADLINE_RATIO = 1.5


def deadline_case(binary):
    """A raw client (SO_RCVBUF 4 KiB) on `firehose` that never reads: priority-2 batches
    fill the kernel's buffers and then its queue past --slow-consumer-bytes, so it is
    closed 1008 with the close frame stuck behind bytes it will never read. The close
    cannot finish, so --close-timeout-ms (T) must end it: the server tears the connection
    down at T after the close and counts `close_timeouts`. Seen from outside, without
    reading: the client writes one masked ping every 20 ms, and the first write after the
    server let go is answered with a reset (the server's socket is gone, or closed with our
    unread ping in it). Judged against T: the reset not before T after the last publish
    that may have closed it, and within DEADLINE_RATIO × T after the close was counted; the
    session is gone and close_timeouts grew by one."""
    def run():
        t_ms = DEADLINE_CLOSE_MS
        args = ["--insecure", "--shards", "1", "--slow-consumer-bytes", str(DEADLINE_SLOW_BYTES),
                "--close-timeout-ms", str(t_ms)]
        with support.server(binary, args, echo_path=None) as srv:
            pub = publisher([srv.port])
            before = pub.stats(0)["total"]
            raw = stalled_client(srv.port, "never-reads", [FIREHOSE])
            # What the kernel holds (several MB once the send buffer has grown) plus the
            # mark, with room to spare: priority 2 is never dropped, so this closes it.
            limit = (16 << 20) // (BURST * 4096)
            batches = 0
            while True:
                expect(batches < limit, f"not closed as a slow consumer after {batches} × "
                       f"{BURST} priority-2 messages of 4 KiB")
                posted_at = time.monotonic()
                pub.post(0, pub.fire_entries(BURST, 2), "priority-2 burst")
                batches += 1
                after = pub.stats(0)["total"]
                if after["slow_consumer_closes"] > before["slow_consumer_closes"]:
                    counted_at = time.monotonic()
                    break
            expect(after["close_timeouts"] == before["close_timeouts"],
                   f"close_timeouts grew before the close timeout: {after['close_timeouts']}")
            ping = support.encode_frame(support.OP_PING, b"p")
            reset_at = None
            raw.sock.settimeout(0.2)
            give_up = counted_at + 3 * t_ms / 1000.0
            while time.monotonic() < give_up:
                try:
                    raw.sock.send(ping)
                except (ConnectionResetError, BrokenPipeError):
                    reset_at = time.monotonic()
                    break
                except socket.timeout:
                    pass  # our own send buffer is full: the server is not reading either
                time.sleep(0.02)
            raw.close()
            expect(reset_at is not None, f"no reset {3 * t_ms} ms after the slow-consumer "
                   f"close with --close-timeout-ms {t_ms}: the session is still held")
            earliest = (reset_at - posted_at) * 1000.0
            latest = (reset_at - counted_at) * 1000.0
            support.tap_comment(f"--close-timeout-ms {t_ms}: closed 1008 after {batches} "
                                f"priority-2 batches; reset {latest:.0f}-{earliest:.0f} ms "
                                f"after the close ({latest / t_ms:.2f}-{earliest / t_ms:.2f} × T)")
            expect(earliest >= t_ms * 0.95, f"reset {earliest:.0f} ms after the last publish, "
                   f"before --close-timeout-ms {t_ms}: the close frame could not have left")
            expect(latest <= t_ms * DEADLINE_RATIO, f"reset {latest:.0f} ms after the close was "
                   f"counted, over {DEADLINE_RATIO} × --close-timeout-ms {t_ms}")
            end = pub.stats(0)["total"]
            expect(end["close_timeouts"] == before["close_timeouts"] + 1,
                   f"close_timeouts {before['close_timeouts']} → {end['close_timeouts']}, "
                   f"expected one more")
            expect(end["sessions"] == 0, f"{end['sessions']} sessions still open after the reset")
            pub.close()
            srv.stop_and_expect_clean_exit()
    return run


SERVER_PERTURB = "RINGCAST_TEST_SERVER_MALLOC_PERTURB_"


def python_without_malloc_perturb():
    """`meson test` sets MALLOC_PERTURB_, so glibc fills every allocation and every free.
    Right for the server, which keeps it; but it made the Python readers ~4 times slower
    (CPU per reader process and phase 0.3 s → 1.3 s), enough to make them the queue: p50
    2.1-2.4 s on both sides and ratios of 1.00 whatever the server did. So this script
    re-executes itself without it (glibc reads it once, at start) and puts it back in the
    environment only for the servers it starts."""
    value = os.environ.get("MALLOC_PERTURB_", "")
    if value not in ("", "0"):
        env = dict(os.environ)
        del env["MALLOC_PERTURB_"]
        env[SERVER_PERTURB] = value
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    value = os.environ.pop(SERVER_PERTURB, "")
    if value:
        os.environ["MALLOC_PERTURB_"] = value
        support.tap_comment(f"MALLOC_PERTURB_={value} for the servers only")


def main():
    python_without_malloc_perturb()
    binary = support.binary_from_argv()
    return support.run_cases(
        [(f"1 stalled subscriber among {READERS} readers: their p99 and p50 within "
          f"{RATIO_LIMIT} × a simultaneous baseline, no loss for readers, 1008 + drops "
          f"for the stalled one, bounded RSS", case(binary)),
         (f"a slow consumer that never reads is dropped at --close-timeout-ms "
          f"({DEADLINE_CLOSE_MS} ms): reset within {DEADLINE_RATIO} × it, counted in "
          f"close_timeouts", deadline_case(binary))],
        f"slow consumer (websockets {websockets.__version__})")


if __name__ == "__main__":
    sys.exit(main())
