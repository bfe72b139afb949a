#!/usr/bin/python3
"""A subscriber that stops reading must not hurt anyone else (DESIGN §2.7, backpressure).

Usage: pubsub_slow_consumer.py PATH/TO/ringcastd

What is judged: how much a stalled subscriber raises the latency of 1,000 readers, as a
ratio against a baseline measured in the same run, with the same server, the same readers
and the same load. An absolute latency bound would judge the host instead: on a busy
2-vCPU machine the readers' p99 swings by seconds while the stalled client costs them
little.

Setup: one server `--shards 2 --insecure --max-channels 200 --slow-consumer-bytes 8 MiB
--close-timeout-ms 10000`. 1,000 Python `websockets` readers in 2 processes, 10 on each
of 100 channels. The backend publishes through the API every 20 ms one batch: first
FIRE_PER_TICK firehose messages of 4 KiB to the channel `firehose`, then LOAD_PER_TICK
load messages (round the 100 channels, each stamped with its publish time and phase).
The firehose comes first in each batch, so a reader's latency includes the server's
work on the firehose published just before its message.

Phases (PHASES, each PHASE_SECONDS of publishing; a short unmeasured warm-up first):
  base   nobody holds `firehose`: the server parses and frames the firehose and delivers
         it to no one.
  stall  a fresh raw-socket client (SO_RCVBUF 4 KiB) has subscribed to `firehose` and to
         all 100 load channels, then never reads: its queue fills to the priority-3 mark
         (3/4 of 8 MiB) within the first second and every later message to it is dropped
         at that mark. After the phase, priority-2 firehose batches push it over the hard
         mark, and the client drains from the outside (see the checks).
The order is base stall stall base base stall stall base (ABBA twice), so a load drift on
the host during the run falls equally on both kinds. Between phases the readers are
synchronised (each must have every message published so far) and the stalled session
must be gone, so no phase inherits the previous one's backlog.

Readers' load is kept low (5,000 deliveries/s over 2 processes) so that their latency
shows the server and the scheduler, not a queue in Python: a saturated reader process
makes p99 the length of its backlog.

Checks:
  * every reader got every message of its channel, in order, exactly once: its k-th
    message carries the publisher's sequence number channel + 100·k, consecutive
    offsets, its own channel; nothing else arrives and no reader is closed;
  * harm ratio: per phase, p50 and p99 of all readers' latencies (publish stamp →
    receive). The median over the 4 stall phases of p99 must be at most
    RATIO_LIMIT (1.25) × the median over the 4 base phases, or exceed it by no more than
    SLACK_FACTOR × the baseline's own spread (max − min of the 4 base p99s; see
    ratio_bound()). Figures are printed.
  * each stalled client, seen from the outside: after its drain it read a close frame
    with code 1008 and then EOF; what it read before is in order (firehose numbers and
    each channel's sequence numbers strictly increasing) and fewer messages than were
    published to it (drops); and from /api/stats: dropped and slow_consumer_closes grew
    in its phase;
  * the server's RSS peak stayed under RSS_LIMIT_MB above its level before publishing,
    while several times that volume went to clients that do not read;
  * SIGTERM → exit status 0.
Every wait is bounded; the whole run is bounded by DEADLINE (about 40 s on a quiet host).
Exits 77 when python3-websockets is missing.
"""

import asyncio
import base64
import json
import multiprocessing
import os
import re
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")

FAST = 1000
PROCESSES = 2
CHANNELS = [f"load-{k}" for k in range(100)]
FIREHOSE = "firehose"
TICK = 0.02                    # one API batch per tick
LOAD_PER_TICK = 10             # 500 messages/s → 5,000 deliveries/s to the readers
FIRE_PER_TICK = 50             # 2,500 × 4 KiB/s = 10 MB/s to `firehose`
PHASE_SECONDS = 3.0
WARMUP_SECONDS = 1.0
PHASES = ["warmup", "base", "stall", "stall", "base", "base", "stall", "stall", "base"]
SLOW_BYTES = 8 << 20
CLOSE_TIMEOUT_MS = 10000
BURST = 128                    # priority-2 firehose messages per batch pushing past the mark
RATIO_LIMIT = 1.25
SLACK_FACTOR = 1.0
RSS_LIMIT_MB = 6 * SLOW_BYTES >> 20
DEADLINE = 110.0

LOAD_PAD = "L" * 200
FIRE_PAD = "F" * 4000
TICKS = round(PHASE_SECONDS / TICK)
WARMUP_TICKS = round(WARMUP_SECONDS / TICK)
assert TICKS * LOAD_PER_TICK % len(CHANNELS) == 0 and \
    WARMUP_TICKS * LOAD_PER_TICK % len(CHANNELS) == 0, "every channel gets as many per phase"


def phase_ticks(k):
    return WARMUP_TICKS if PHASES[k] == "warmup" else TICKS


# --------------------------------------------------------------------------------------
# Readers (a child process each)
# --------------------------------------------------------------------------------------

def reader_worker(port, first, count, conn):
    """Connects `count` readers (reader j on CHANNELS[j % 100]), reports "ready", then
    serves the parent's commands: ("sync", n, timeout) waits until every reader has n
    messages and answers with the stragglers; ("finish",) answers with the summary and the
    latencies by phase."""
    async def run():
        lat = [[] for _ in PHASES]
        state = []
        reached = {"n": 0, "target": 0}
        all_there = asyncio.Event()

        def handler(st):
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
                lat[d["p"]].append(now - d["t"])
                if st["got"] == reached["target"]:
                    reached["n"] += 1
                    if reached["n"] == count:
                        all_there.set()
            return on_message

        clients = []
        for j in range(first, first + count):
            st = {"index": j % len(CHANNELS), "channel": CHANNELS[j % len(CHANNELS)],
                  "got": 0, "next": None, "errors": [], "other": 0}
            c = await support.pubsub_client.connect(port, user=f"reader{j}",
                                                    on_message=handler(st))
            reply = await c.subscribe(st["channel"])
            st["next"] = reply["offset"] + 1
            state.append(st)
            clients.append(c)
        conn.send(("ready", None))
        loop = asyncio.get_running_loop()
        while True:
            has = await loop.run_in_executor(None, conn.poll, DEADLINE)
            if not has:
                return None
            cmd = conn.recv()
            if cmd[0] == "sync":
                _, target, timeout = cmd
                reached["target"] = target
                reached["n"] = sum(1 for st in state if st["got"] >= target)
                all_there.clear()
                if reached["n"] < count:
                    try:
                        await asyncio.wait_for(all_there.wait(), timeout)
                    except asyncio.TimeoutError:
                        pass
                behind = [(first + i, st["got"]) for i, st in enumerate(state)
                          if st["got"] < target]
                conn.send(("synced", {"n_behind": len(behind), "behind": behind[:5]}))
                continue
            break
        closed = sum(1 for c in clients if c.closed.is_set())
        errors = [(first + i, st["errors"][:3]) for i, st in enumerate(state) if st["errors"]]
        summary = {"clients": count, "errors": errors[:5], "n_errors": len(errors),
                   "closed": closed, "other": sum(st["other"] for st in state),
                   "got": sum(st["got"] for st in state),
                   "close_codes": sorted({c.close_code for c in clients if c.closed.is_set()}),
                   "lat": lat}
        for c in clients:
            c.ws.transport.abort()
        return summary

    try:
        conn.send(("result", asyncio.run(run())))
    except Exception as e:  # report, do not hang the parent
        conn.send(("error", repr(e)))


class readers:
    """The reader processes, driven over pipes; every wait bounded."""

    def __init__(self, port):
        ctx = multiprocessing.get_context("fork")
        self.workers = []
        per = FAST // PROCESSES
        for p in range(PROCESSES):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=reader_worker, args=(port, p * per, per, child),
                               daemon=True)
            proc.start()
            self.workers.append((proc, parent))

    def ask(self, cmd, expect_tag, timeout, what):
        out = []
        for _, parent in self.workers:
            parent.send(cmd)
        deadline = time.monotonic() + timeout
        for _, parent in self.workers:
            expect(parent.poll(max(0.1, deadline - time.monotonic())),
                   f"reader process gave no answer to {what} within {timeout:.0f} s")
            tag, val = parent.recv()
            expect(tag == expect_tag, f"reader process, {what}: {tag} {val}")
            out.append(val)
        return out

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        for _, parent in self.workers:
            expect(parent.poll(max(0.1, deadline - time.monotonic())),
                   f"readers not connected and subscribed within {timeout:.0f} s")
            tag, val = parent.recv()
            expect(tag == "ready", f"reader process: {tag} {val}")

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
# Publisher and RSS sampler
# --------------------------------------------------------------------------------------

class publisher:
    """Builds the API batches as text (the firehose entries are the same but for their
    number) and posts them on one keep-alive connection."""

    def __init__(self, port):
        self.api = support.api_client(port, timeout=20)
        self.li = 0      # next load sequence number (channel = li % 100)
        self.fi = 0      # next firehose number

    def post(self, entries, what):
        body = ('{"messages":[' + ",".join(entries) + "]}").encode()
        r = self.api.request("POST", "/api/publish", body)
        expect(r.status == 200 and len((r.json or {}).get("results", [])) == len(entries),
               f"publishing {what} ({len(entries)} messages): {r}")

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
            entries = self.fire_entries(FIRE_PER_TICK, 3)
            t = time.time() * 1000.0
            for _ in range(LOAD_PER_TICK):
                ch = CHANNELS[self.li % len(CHANNELS)]
                entries.append(f'{{"channel":"{ch}","event":"load","priority":3,"data":{{'
                               f'"s":{self.li},"c":"{ch}","t":{t:.3f},"p":{k},'
                               f'"pad":"{LOAD_PAD}"}}}}')
                self.li += 1
            self.post(entries, f"phase {k} tick {tick}")
        return time.monotonic() - start

    def stats(self):
        return self.api.stats()

    def close(self):
        self.api.close()


def sample_rss(pid, stop, samples):
    while not stop.is_set():
        v = support.read_rss_kb(pid)
        if v is not None:
            samples.append(v)
        time.sleep(0.05)


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------

def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def ratio_bound(base_p99s):
    """The stalled phases' median p99 may be RATIO_LIMIT × the baseline's median p99, or
    exceed the baseline by SLACK_FACTOR × the spread of the baseline's own phases (max −
    min of their p99s), whichever is larger. The slack is the noise floor measured in the
    same run: when the host adds more jitter between two baseline phases than 25 % of
    their p99, a 25 % bound would judge the host, not the stalled subscriber."""
    median = statistics.median(base_p99s)
    spread = max(base_p99s) - min(base_p99s)
    return max(RATIO_LIMIT * median, median + SLACK_FACTOR * spread), median, spread


# --------------------------------------------------------------------------------------

def case(binary):
    def run():
        started = time.monotonic()
        deadline = started + DEADLINE
        args = ["--insecure", "--shards", "2", "--max-channels", "200",
                "--slow-consumer-bytes", str(SLOW_BYTES),
                "--close-timeout-ms", str(CLOSE_TIMEOUT_MS)]
        with support.server(binary, args, echo_path=None) as srv:
            rd = readers(srv.port)
            pub = None
            try:
                rd.wait_ready(40)
                print(f"     {FAST} readers subscribed in {time.monotonic() - started:.1f}s",
                      flush=True)
                pub = publisher(srv.port)
                time.sleep(0.3)
                base_rss = support.read_rss_kb(srv.proc.pid)
                stop = threading.Event()
                samples = []
                sampler = threading.Thread(target=sample_rss,
                                           args=(srv.proc.pid, stop, samples), daemon=True)
                sampler.start()
                per_channel = 0
                stalled_figures = []
                to_stalled_mb = 0.0
                for k, kind in enumerate(PHASES):
                    raw = None
                    if kind == "stall":
                        before = pub.stats()
                        raw = stalled_client(srv.port, f"stalled{k}", [FIREHOSE] + CHANNELS)
                        fi0, li0 = pub.fi, pub.li
                    seconds = pub.phase(k, deadline)
                    per_channel += phase_ticks(k) * LOAD_PER_TICK // len(CHANNELS)
                    if raw is not None:
                        stalled_figures.append(
                            push_out_and_drain(pub, raw, k, before, fi0, li0, deadline))
                        to_stalled_mb += ((pub.fi - fi0) * 4100 + (pub.li - li0) * 300) / 1e6
                    remaining = deadline - time.monotonic()
                    expect(remaining > 1, f"run deadline reached after phase {k}")
                    synced = rd.ask(("sync", per_channel, remaining - 1), "synced",
                                    remaining, f"sync after phase {k}")
                    behind = sum(s["n_behind"] for s in synced)
                    expect(behind == 0, f"after phase {k} ({kind}), {behind} readers still "
                           f"lacked messages (of {per_channel} each): "
                           f"{[s['behind'] for s in synced]}")
                    if kind != "warmup":
                        print(f"     phase {k} {kind:5}: published in {seconds:.2f}s",
                              flush=True)
                stop.set()
                sampler.join(2)
                results = rd.ask(("finish",), "result", max(1, deadline - time.monotonic()),
                                 "finish")
                peak = max(samples) if samples else base_rss
                growth_mb = (peak - base_rss) / 1024.0
                judge(results, per_channel, stalled_figures)
                print(f"     server RSS {base_rss // 1024} MB → peak {peak // 1024} MB "
                      f"(+{growth_mb:.0f} MB) while {to_stalled_mb:.0f} MB went to stalled "
                      f"clients", flush=True)
                expect(growth_mb < RSS_LIMIT_MB, f"server RSS grew by {growth_mb:.0f} MB "
                       f"(limit {RSS_LIMIT_MB}) while {to_stalled_mb:.0f} MB went to "
                       f"clients that do not read")
                pub.close()
                srv.stop_and_expect_clean_exit()
            finally:
                rd.stop()
    return run


def push_out_and_drain(pub, raw, k, before, fi0, li0, deadline):
    """After stalled phase k: priority-2 firehose batches (never dropped) until the server
    has closed a slow consumer (bounded: twice the hard mark's worth), then the client
    drains from the outside. Checks what it saw; returns its figures."""
    closes0 = before["total"]["slow_consumer_closes"]
    batches = 0
    limit = 2 * SLOW_BYTES // (BURST * 4096) + 1
    while True:
        expect(batches < limit, f"phase {k}: the stalled client was not closed after "
               f"{batches} × {BURST} priority-2 messages of 4 KiB")
        expect(time.monotonic() < deadline, f"phase {k}: deadline while pushing")
        pub.post(pub.fire_entries(BURST, 2), f"phase {k} priority-2 burst")
        batches += 1
        after = pub.stats()
        if after["total"]["slow_consumer_closes"] > closes0:
            break
    published = (pub.fi - fi0) + (pub.li - li0)
    seen = drain_stalled(raw, max(1.0, min(CLOSE_TIMEOUT_MS / 2000.0,
                                             deadline - time.monotonic())))
    raw.close()
    received = seen["fire"] + seen["load"]
    dropped = after["total"]["dropped"] - before["total"]["dropped"]
    print(f"     phase {k} stall: stalled client got {received} of {published} messages "
          f"published to it, then close {seen['code']}{' + EOF' if seen['eof'] else ''} "
          f"(after {batches} priority-2 batches); stats: dropped +{dropped}, "
          f"slow_consumer_closes +{after['total']['slow_consumer_closes'] - closes0}",
          flush=True)
    expect(seen["code"] == 1008 and seen["eof"],
           f"phase {k}: the stalled client read close code {seen['code']} and "
           f"{'EOF' if seen['eof'] else 'no EOF'}; expected close 1008 then EOF")
    expect(not seen["disorder"] and seen["other"] == 0,
           f"phase {k}: the stalled client saw {seen['disorder'][:3]} and {seen['other']} "
           f"unexpected messages")
    expect(received < published, f"phase {k}: the stalled client read {received} messages "
           f"of {published} published to it: nothing was dropped")
    expect(dropped > 0, f"phase {k}: /api/stats dropped did not grow")
    # Gone before the next phase: the baseline must not carry a lingering session.
    wait_until = time.monotonic() + min(5.0, max(0.1, deadline - time.monotonic()))
    while pub.stats()["total"]["sessions"] != FAST:
        expect(time.monotonic() < wait_until, f"phase {k}: the stalled session still "
               f"open 5 s after its client closed")
        time.sleep(0.02)
    return {"received": received, "published": published, "dropped": dropped}


def judge(results, per_channel, stalled_figures):
    for r in results:
        expect(r["n_errors"] == 0 and r["closed"] == 0 and r["other"] == 0,
               f"readers: {r['n_errors']} of {r['clients']} saw order errors "
               f"{r['errors']}, {r['closed']} closed {r['close_codes']}, "
               f"{r['other']} unexpected messages")
    got = sum(r["got"] for r in results)
    expect(got == FAST * per_channel, f"{got} reader deliveries, expected "
           f"{FAST * per_channel}")
    figures = {}
    for k, kind in enumerate(PHASES):
        if kind == "warmup":
            continue
        lat = sorted(x for r in results for x in r["lat"][k])
        expect(len(lat) == FAST * TICKS * LOAD_PER_TICK // len(CHANNELS),
               f"phase {k}: {len(lat)} latencies")
        figures[k] = (kind, percentile(lat, 0.5), percentile(lat, 0.99), lat[-1])
    print("     readers' latency by phase (ms): " + "; ".join(
        f"{kind} p50 {p50:.1f} p99 {p99:.1f}" for kind, p50, p99, _ in figures.values()),
        flush=True)
    base99 = [p99 for kind, _, p99, _ in figures.values() if kind == "base"]
    stall99 = [p99 for kind, _, p99, _ in figures.values() if kind == "stall"]
    base50 = statistics.median(p50 for kind, p50, _, _ in figures.values() if kind == "base")
    stall50 = statistics.median(p50 for kind, p50, _, _ in figures.values() if kind == "stall")
    bound, median, spread = ratio_bound(base99)
    stall_median = statistics.median(stall99)
    print(f"     median p99: stall {stall_median:.1f} ms / base {median:.1f} ms = "
          f"{stall_median / median:.2f} (p50 ratio {stall50 / base50:.2f}); bound "
          f"{bound:.1f} ms = max({RATIO_LIMIT} × base, base + {SLACK_FACTOR} × spread "
          f"{spread:.1f} ms)", flush=True)
    expect(stall_median <= bound, f"readers' median p99 with a stalled subscriber "
           f"{stall_median:.1f} ms > bound {bound:.1f} ms (baseline {median:.1f} ms, "
           f"ratio {stall_median / median:.2f}, baseline spread {spread:.1f} ms)")


def main():
    binary = support.binary_from_argv()
    return support.run_cases(
        [(f"1 stalled subscriber among {FAST} readers: p99 within {RATIO_LIMIT} × a "
          f"same-run baseline, no loss for readers, 1008 + drops for the stalled one, "
          f"bounded RSS", case(binary))],
        f"slow consumer (websockets {websockets.__version__})")


if __name__ == "__main__":
    sys.exit(main())
