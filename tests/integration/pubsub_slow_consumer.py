#!/usr/bin/python3
"""A subscriber that stops reading must not hurt anyone else (DESIGN §2.7, backpressure).

Usage: pubsub_slow_consumer.py PATH/TO/ringcastd
Server: `--shards 2 --insecure --max-channels 200 --slow-consumer-bytes 8388608`. One raw-socket client
(SO_RCVBUF 4 KiB) subscribes to every channel and never reads again. 1,000 Python
`websockets` clients in 2 processes keep reading, 10 per channel on 100 channels. The
backend publishes at a steady rate for about 8 s: 20,000 messages of 1 KiB on the 100
channels (each fast client gets 200) and 50,000 of 4 KiB on a channel only the slow
client holds (~200 MB queued at it; every 10th at priority 2 so the hard mark is reached,
not only the priority-3 drop mark). Fast clients get little each, so they stay far below
any mark even when this 2-CPU host lags.
Checks: every fast client got every message of its channel, in order, exactly once
(priority 3 to readers is never dropped); their p99 latency (publish time in data →
receive) under a generous bound (measured numbers printed); the slow client was closed
with 1008 or its messages were dropped (GET /api/stats: dropped or slow_consumer_closes
> 0); the server's RSS grew by less than 150 MB. The whole run is bounded to 90 s.
Exits 77 when python3-websockets is missing.
"""

import asyncio
import base64
import json
import multiprocessing
import os
import socket
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
LOAD_MESSAGES = 20000          # 1 KiB each, round the 100 channels
FIREHOSE_MESSAGES = 50000      # 4 KiB each, to the slow client only
SECONDS = 8.0                  # publishing time
TICK = 0.02
SLOW_BYTES = 8 << 20
P99_LIMIT_MS = 2000.0          # generous: 2 vCPUs shared by the server and 2 client processes
RSS_LIMIT_MB = 150
DEADLINE = 90.0


# --------------------------------------------------------------------------------------
# Fast clients (a child process each)
# --------------------------------------------------------------------------------------

def fast_worker(port, first, count, per_channel, conn):
    """Connects `count` clients (client j on CHANNELS[j % 100]), reports "ready", then
    reads until each has `per_channel` messages or the deadline; sends a summary back."""
    async def run():
        state = []
        lat = []

        def handler(st):
            def on_message(raw):
                now = time.time() * 1000.0
                m = json.loads(raw)
                d = m.get("data") if isinstance(m, dict) else None
                if not isinstance(d, dict) or "s" not in d:
                    st["other"] += 1
                    return
                if m["offset"] != st["next"] and st["next"] is not None:
                    st["errors"].append(f"offset {m['offset']} after {st['next'] - 1}")
                st["next"] = m["offset"] + 1
                if d["c"] != st["channel"]:
                    st["errors"].append(f"message of {d['c']}")
                st["got"] += 1
                lat.append(now - d["t"])
                if st["got"] >= per_channel:
                    st["done"].set()
            return on_message

        clients = []
        for j in range(first, first + count):
            st = {"channel": CHANNELS[j % len(CHANNELS)], "got": 0, "next": None,
                  "errors": [], "other": 0, "done": asyncio.Event()}
            c = await support.pubsub_client.connect(port, user=f"fast{j}",
                                                    on_message=handler(st))
            reply = await c.subscribe(st["channel"])
            st["next"] = reply["offset"] + 1
            state.append(st)
            clients.append(c)
        conn.send(("ready", None))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.poll, DEADLINE)  # "go"/stop from the parent
        budget = conn.recv()
        try:
            await asyncio.wait_for(asyncio.gather(*(st["done"].wait() for st in state)),
                                   budget)
        except asyncio.TimeoutError:
            pass
        closed = sum(1 for c in clients if c.closed.is_set())
        short_ = [(first + k, st["got"]) for k, st in enumerate(state) if st["got"] < per_channel]
        errors = [(first + k, st["errors"][:3]) for k, st in enumerate(state) if st["errors"]]
        lat.sort()
        summary = {"clients": count, "short": short_[:5], "n_short": len(short_),
                   "errors": errors[:5], "closed": closed, "n": len(lat),
                   "p50": lat[len(lat) // 2] if lat else None,
                   "p99": lat[int(len(lat) * 0.99)] if lat else None,
                   "max": lat[-1] if lat else None,
                   "close_codes": sorted({c.close_code for c in clients if c.closed.is_set()})}
        for c in clients:
            c.ws.transport.abort()
        return summary

    try:
        conn.send(("result", asyncio.run(run())))
    except Exception as e:  # report, do not hang the parent
        conn.send(("error", repr(e)))


# --------------------------------------------------------------------------------------
# The slow client: subscribes, then never reads
# --------------------------------------------------------------------------------------

def slow_client(port, channels):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect((support.LOOPBACK, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws?user=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
               f"Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
              .encode())
    raw = support.raw_ws.__new__(support.raw_ws)   # reuse its frame reader on our socket
    raw.sock, raw.buf, raw.eof, raw.timeout, raw.port = s, bytearray(), False, 5.0, port
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in raw.buf:
        raw._fill(deadline)
    head_end = raw.buf.index(b"\r\n\r\n") + 4
    expect(raw.buf.startswith(b"HTTP/1.1 101"), f"slow client handshake: {raw.buf[:100]!r}")
    del raw.buf[:head_end]
    for k, ch in enumerate(channels):
        raw.send_frame(support.OP_TEXT, json.dumps(
            {"op": "subscribe", "channel": ch, "id": k}).encode())
    replies = 0
    while replies < len(channels):
        op, payload, _ = raw.recv_message(5)
        m = json.loads(payload)
        expect(m.get("ok") is True, f"slow client subscribe: {m}")
        replies += 1
    return raw


def drain_slow(raw, timeout=5.0):
    """Reads what the server left for the slow client (bounded); returns
    (messages, close code or None, 'eof'/'open')."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        try:
            f = raw.recv_frame(max(0.01, deadline - time.monotonic()))
        except support.connection_closed:
            return n, None, "eof"
        except support.timed_out:
            return n, None, "open"
        if f.opcode == support.OP_CLOSE:
            return n, f.close_code(), "close"
        n += 1
    return n, None, "open"


# --------------------------------------------------------------------------------------
# Publisher and RSS sampler
# --------------------------------------------------------------------------------------

def publish_all(port, errors, progress):
    api = support.api_client(port, timeout=20)
    ticks = int(SECONDS / TICK)
    load_pad = "L" * 900
    fire_pad = "F" * 4000
    li = fi = 0
    start = time.monotonic()
    for tick in range(ticks):
        due = start + tick * TICK
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        msgs = []
        t = time.time() * 1000.0
        l_end = LOAD_MESSAGES * (tick + 1) // ticks
        f_end = FIREHOSE_MESSAGES * (tick + 1) // ticks
        while li < l_end:
            ch = CHANNELS[li % len(CHANNELS)]
            msgs.append({"channel": ch, "event": "load", "priority": 3,
                         "data": {"s": li, "c": ch, "t": t, "pad": load_pad}})
            li += 1
        while fi < f_end:
            msgs.append({"channel": "firehose", "event": "fire",
                         "priority": 2 if fi % 10 == 0 else 3,
                         "data": {"f": fi, "pad": fire_pad}})
            fi += 1
        try:
            r = api.request("POST", "/api/publish", {"messages": msgs})
        except Exception as e:
            errors.append(f"publish batch {tick}: {e!r}")
            return
        if r.status != 200 or len((r.json or {}).get("results", [])) != len(msgs):
            errors.append(f"publish batch {tick} ({len(msgs)} messages, "
                          f"{time.monotonic() - start:.1f}s into publishing): {r}")
            return
        progress["batches"] = tick + 1
    progress["seconds"] = time.monotonic() - start
    api.close()


def sample_rss(pid, stop, samples):
    while not stop.is_set():
        v = support.read_rss_kb(pid)
        if v is not None:
            samples.append(v)
        time.sleep(0.05)


# --------------------------------------------------------------------------------------

def case(binary):
    def run():
        started = time.monotonic()
        with support.server(binary, ["--insecure", "--shards", "2", "--max-channels", "200", "--slow-consumer-bytes",
                                     str(SLOW_BYTES)], echo_path=None) as srv:
            per_channel = LOAD_MESSAGES // len(CHANNELS)
            ctx = multiprocessing.get_context("fork")
            workers = []
            per = FAST // PROCESSES
            for p in range(PROCESSES):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=fast_worker,
                                   args=(srv.port, p * per, per, per_channel, child),
                                   daemon=True)
                proc.start()
                workers.append((proc, parent))
            try:
                for proc, parent in workers:
                    expect(parent.poll(40), "fast clients not connected and subscribed "
                           "within 40 s")
                    tag, val = parent.recv()
                    expect(tag == "ready", f"fast client process: {tag} {val}")
                print(f"     {FAST} fast clients subscribed in {time.monotonic() - started:.1f}s",
                      flush=True)
                slow = slow_client(srv.port, CHANNELS + ["firehose"])
                time.sleep(0.3)
                base_rss = support.read_rss_kb(srv.proc.pid)
                stop = threading.Event()
                samples = []
                sampler = threading.Thread(target=sample_rss,
                                           args=(srv.proc.pid, stop, samples), daemon=True)
                sampler.start()
                remaining = DEADLINE - (time.monotonic() - started)
                for _, parent in workers:
                    parent.send(max(5.0, remaining - 25))
                errors, progress = [], {}
                publish_all(srv.port, errors, progress)
                expect(not errors, f"publishing: {errors[0] if errors else ''}")
                results = []
                for proc, parent in workers:
                    wait = max(1.0, DEADLINE - 10 - (time.monotonic() - started))
                    expect(parent.poll(wait), "fast client process gave no result in time")
                    tag, val = parent.recv()
                    expect(tag == "result", f"fast client process failed: {val}")
                    results.append(val)
                stop.set()
                sampler.join(2)
                api = support.api_client(srv.port)
                total = api.stats().get("total", {})
                api.close()
                left, code, how = drain_slow(slow, 5.0)
                slow.close()
                peak = max(samples) if samples else base_rss
                growth_mb = (peak - base_rss) / 1024.0
                lat_n = sum(r["n"] for r in results)
                p99 = max(r["p99"] or 0 for r in results)
                p50 = max(r["p50"] or 0 for r in results)
                mx = max(r["max"] or 0 for r in results)
                print(f"     published {LOAD_MESSAGES} x 1 KiB + {FIREHOSE_MESSAGES} x 4 KiB in "
                      f"{progress.get('seconds', 0):.1f}s; fast deliveries {lat_n}; latency "
                      f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {mx:.0f} ms", flush=True)
                print(f"     slow client: {how}{f' {code}' if code else ''} after {left} "
                      f"readable messages; stats dropped {total.get('dropped')}, "
                      f"slow_consumer_closes {total.get('slow_consumer_closes')}; RSS "
                      f"{base_rss // 1024} MB → peak {peak // 1024} MB "
                      f"(+{growth_mb:.0f} MB)", flush=True)
                for r in results:
                    expect(r["n_short"] == 0 and not r["errors"] and r["closed"] == 0,
                           f"fast clients: {r['n_short']} of {r['clients']} missed messages "
                           f"(client, got of {per_channel}: {r['short']}), order errors "
                           f"{r['errors']}, {r['closed']} closed {r['close_codes']}")
                expect(lat_n == FAST * per_channel, f"{lat_n} fast deliveries, expected "
                       f"{FAST * per_channel}")
                expect(p99 < P99_LIMIT_MS, f"fast clients' p99 latency {p99:.0f} ms >= "
                       f"{P99_LIMIT_MS:.0f} ms")
                expect((total.get("dropped") or 0) > 0 or
                       (total.get("slow_consumer_closes") or 0) > 0,
                       f"the slow client neither had messages dropped nor was closed: "
                       f"stats total {total}")
                expect(code in (None, 1008), f"slow client closed with {code}, expected 1008")
                if code == 1008 or how == "eof":
                    expect((total.get("slow_consumer_closes") or 0) > 0,
                           f"slow client closed ({how} {code}) but slow_consumer_closes is "
                           f"{total.get('slow_consumer_closes')}")
                expect(growth_mb < RSS_LIMIT_MB, f"server RSS grew by {growth_mb:.0f} MB "
                       f"(limit {RSS_LIMIT_MB}) while ~{FIREHOSE_MESSAGES * 4 // 1024} MB went "
                       f"to a client that does not read")
                srv.stop_and_expect_clean_exit()
            finally:
                for proc, _ in workers:
                    if proc.is_alive():
                        proc.kill()
                    proc.join(2)
    return run


def main():
    binary = support.binary_from_argv()
    return support.run_cases(
        [(f"1 client that stops reading, {FAST} that read: no loss or delay for readers, "
          f"1008 or drops for the slow one, bounded RSS", case(binary))],
        f"slow consumer (websockets {websockets.__version__})")


if __name__ == "__main__":
    sys.exit(main())
