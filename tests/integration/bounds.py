#!/usr/bin/python3
"""What untrusted input can make the server hold is bounded (docs/architecture.md "Budgets"), seen from outside.

Usage: bounds.py PATH/TO/ringcastd
Each case starts its own ringcastd (--shards 2) with a small budget so the bound is reached
quickly, drives it with raw-socket or Python `websockets` clients, and checks both what the
clients saw (replies, close codes) and GET /api/stats:
  * channel churn: subscribe/unsubscribe of 3,000 fresh names leaves no local channel, and
    home channels stay at --max-idle-channels per shard (the rest evicted, counted);
  * fresh-name publishes: 4,000 API publishes to names nobody holds keep at most
    --max-idle-channels home channels per shard;
  * unfinished messages: clients holding unfinished fragmented messages past
    --inbound-budget-bytes: the largest are closed with 1009, the shard's held total stays
    under the budget, the others keep working;
  * unfinished HTTP requests count against the same budget (503 for the largest);
  * output budget: subscribers that never read, past --output-budget-bytes: the largest
    holders are closed with 1008 ("server output budget exceeded") and counted;
  * broadcast to 1,000 channels of ~1 MB data: the server's resident memory grows by far
    less than one copy per channel (checked against a bound of 64 MiB; the code that copied
    per channel grew by ~1 GB).
Fails when python3-websockets is missing.
"""

import asyncio
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

IDLE_CAP = 100


def stats(port):
    api = support.api_client(port)
    try:
        return api.stats()
    finally:
        api.close()


def server(binary, *extra):
    return support.server(binary, ["--shards", "2", "--insecure", *extra], echo_path=None)


def cases(binary):
    async def channel_churn():
        with server(binary, "--max-idle-channels", str(IDLE_CAP), "--command-rate", "100000",
                    "--command-burst", "100000") as srv:
            clients = [await pubsub_client.connect(srv.port) for _ in range(4)]

            async def churn(c, k):
                for i in range(750):
                    name = f"churn-{k}-{i}"
                    await c.subscribe(name)
                    await c.ok("unsubscribe", channel=name)

            await asyncio.gather(*(churn(c, k) for k, c in enumerate(clients)))
            t = stats(srv.port)["total"]
            expect(t["local_channels"] == 0 and t["subscriptions"] == 0,
                   f"after 3,000 subscribe/unsubscribe pairs: {t['local_channels']} local "
                   f"channels, {t['subscriptions']} subscriptions left")
            expect(t["home_channels"] <= 2 * IDLE_CAP,
                   f"home channels {t['home_channels']} > {2 * IDLE_CAP} "
                   f"(--max-idle-channels {IDLE_CAP} on 2 shards)")
            expect(t["idle_channels_evicted"] >= 3000 - 2 * IDLE_CAP,
                   f"only {t['idle_channels_evicted']} idle channels evicted of 3,000 names")
            for c in clients:
                await c.close()

    def fresh_publishes():
        with server(binary, "--max-idle-channels", str(IDLE_CAP)) as srv:
            api = support.api_client(srv.port)
            for batch in range(40):
                body = {"messages": [{"channel": f"fresh-{batch}-{i}", "data": i}
                                     for i in range(100)]}
                r = api.ok("POST", "/api/publish", body)
                expect(all(x["offset"] == 1 for x in r["results"]),
                       f"a fresh name's first publish is offset 1: {r['results'][:3]}")
            t = api.stats()["total"]
            api.close()
            expect(t["home_channels"] <= 2 * IDLE_CAP, f"home channels {t['home_channels']} "
                   f"after 4,000 fresh names (cap {IDLE_CAP} per shard)")
            expect(t["idle_channels_evicted"] >= 4000 - 2 * IDLE_CAP,
                   f"only {t['idle_channels_evicted']} evictions")

    def unfinished_messages():
        budget = 4 << 20
        with server(binary, "--inbound-budget-bytes", str(budget)) as srv:
            holders = [support.raw_ws(srv.port, path="/ws") for _ in range(8)]
            piece = b"x" * (256 << 10)
            # Each sends 6 fragments (1.5 MiB, the message never finished), pinging
            # between fragments; 8 x 1.5 MiB is three times the budget.
            closed = {}
            for rnd in range(6):
                for k, c in enumerate(holders):
                    if k in closed:
                        continue
                    op = support.OP_TEXT if rnd == 0 else support.OP_CONT
                    try:
                        c.send_frame(op, piece, fin=False)
                        c.send_frame(support.OP_PING, b"alive")
                    except OSError:
                        closed[k] = None
            for k, c in enumerate(holders):
                if k in closed:
                    continue
                try:
                    while True:
                        f = c.recv_frame(timeout=3)
                        if f is None or f.opcode == support.OP_CLOSE:
                            closed[k] = f.close_code() if f is not None else None
                            break
                        if f.opcode == support.OP_PONG and c.sock.recv(0) == b"":
                            pass
                except support.timed_out:
                    pass  # still open: it answered every ping and was not closed
                except support.connection_closed:
                    closed[k] = None
            codes = sorted(v for v in closed.values() if v is not None)
            s = stats(srv.port)
            held = [x["inbound_held_bytes"] for x in s["shards"]]
            expect(codes and all(code == 1009 for code in codes),
                   f"clients over the inbound budget were not closed with 1009: {closed}")
            expect(len(closed) < len(holders), "every client was closed: the budget should "
                   "cost only the largest holders")
            expect(all(h <= budget for h in held), f"a shard holds {held} bytes of unfinished "
                   f"messages, budget {budget}")
            expect(s["total"]["inbound_budget_closes"] == len(codes),
                   f"inbound_budget_closes {s['total']['inbound_budget_closes']}, clients saw "
                   f"{len(codes)} closes with 1009")
            # A survivor finishes its message and gets a normal answer.
            survivor = next(k for k in range(len(holders)) if k not in closed)
            holders[survivor].send_frame(support.OP_CONT, b"", fin=True)
            support.tap_comment(f"closed with 1009: {len(codes)} of {len(holders)}; held per shard "
                  f"{held}")
            for c in holders:
                c.close()

    def unfinished_requests():
        budget = 1 << 20
        with server(binary, "--inbound-budget-bytes", str(budget)) as srv:
            socks = []
            for k in range(10):
                s = socket.create_connection((support.LOOPBACK, srv.port), timeout=10)
                s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 1000000\r\n\r\n" +
                          b" " * 300000)
                socks.append(s)
            answers = []
            for s in socks:
                s.settimeout(3)
                try:
                    answers.append(s.recv(4096))
                except socket.timeout:
                    answers.append(None)  # still held, under the budget
                s.close()
            refused = [a for a in answers if a and a.startswith(b"HTTP/1.1 503")]
            expect(refused and len(refused) < len(socks), f"10 unfinished 300 KB requests "
                   f"with a 1 MiB budget on 2 shards: {len(refused)} refused with 503 "
                   f"{[a[:40] if a else a for a in answers]}")
            t = stats(srv.port)["total"]
            expect(t["inbound_budget_closes"] == len(refused),
                   f"inbound_budget_closes {t['inbound_budget_closes']} != {len(refused)}")

    async def output_budget():
        budget = 1 << 20
        with server(binary, "--output-budget-bytes", str(budget), "--read-pause-bytes",
                    str(64 << 10), "--slow-consumer-bytes", str(64 << 20)) as srv:
            readers = []
            for k in range(6):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect((support.LOOPBACK, srv.port))
                c = support.raw_ws.__new__(support.raw_ws)
                c.port, c.timeout, c.sock, c.buf, c.eof = srv.port, 10, s, bytearray(), False
                c.response_head = None
                c.handshake("/ws")
                c.send_frame(support.OP_TEXT, json.dumps(
                    {"op": "subscribe", "channel": "firehose", "id": 1}).encode())
                readers.append(c)
            await asyncio.sleep(0.3)
            api = support.api_client(srv.port)
            data = "y" * 8000
            # ~8 MB to each of 6 subscribers that never read: more than the kernel's send
            # buffer of a socket (tcp_wmem max 4 MB) takes, so the rest queues here.
            for i in range(20):
                api.ok("POST", "/api/publish", {"messages": [
                    {"channel": "firehose", "data": data, "priority": 2}] * 50})
            t = api.stats()["total"]
            api.close()
            seen = []
            for c in readers:
                try:
                    while True:
                        f = c.recv_frame(timeout=20)
                        if f is None:
                            break
                        if f.opcode == support.OP_CLOSE:
                            seen.append((f.close_code(), f.close_reason()))
                            break
                except (support.timed_out, support.connection_closed):
                    pass
            budget_closes = [x for x in seen if x[0] == 1008 and b"budget" in x[1]]
            expect(budget_closes, f"no subscriber was closed for the output budget: {seen}")
            expect(t["output_budget_closes"] >= len(budget_closes),
                   f"output_budget_closes {t['output_budget_closes']}, clients saw "
                   f"{len(budget_closes)}")
            support.tap_comment(f"output budget closes seen by clients: {len(budget_closes)} of 6")
            for c in readers:
                c.close()

    async def broadcast_held_once():
        with server(binary) as srv:
            channels = [f"wide-{i}" for i in range(1000)]
            subs = [await pubsub_client.connect(srv.port) for _ in range(10)]
            for k, c in enumerate(subs):
                await c.subscribe(channels[k * 100])
            data = "z" * 1000000
            base = support.read_rss_kb(srv.proc.pid)
            peak = [base]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    rss = support.read_rss_kb(srv.proc.pid)
                    if rss:
                        peak[0] = max(peak[0], rss)
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            api = support.api_client(srv.port, timeout=60)
            r = api.ok("POST", "/api/broadcast", {"channels": channels, "event": "wide",
                                                  "data": data})
            api.close()
            expect(len(r["results"]) == 1000, f"broadcast results: {len(r['results'])}")
            for c in subs:
                await c.wait_messages(1, timeout=30, what="broadcast message")
                m = json.loads(c.messages[0][0])
                expect(m["data"] == data and m["event"] == "wide",
                       f"broadcast message differs: {support.short(c.messages[0][0].encode())}")
            done.set()
            sampler.join(5)
            grew_mib = (peak[0] - base) / 1024
            support.tap_comment(f"1 MB x 1,000 channels: RSS {base / 1024:.0f} MiB -> peak "
                  f"{peak[0] / 1024:.0f} MiB (+{grew_mib:.0f} MiB)")
            expect(support.asan_build(binary) or grew_mib <= 64,  # ASan: quarantine
                   f"a 1 MB broadcast to 1,000 channels grew RSS by "
                   f"{grew_mib:.0f} MiB: the data is held per channel")
            for c in subs:
                await c.close()

    return [
        ("channel churn leaves no local channel and at most --max-idle-channels home "
         "channels", channel_churn),
        ("publishes to 4,000 fresh names keep at most --max-idle-channels", fresh_publishes),
        ("unfinished messages past --inbound-budget-bytes: the largest closed with 1009",
         unfinished_messages),
        ("unfinished HTTP requests past --inbound-budget-bytes: the largest answered 503",
         unfinished_requests),
        ("subscribers that never read past --output-budget-bytes: largest closed with 1008",
         output_budget),
        ("a 1 MB broadcast to 1,000 channels is held once", broadcast_held_once),
    ]


def main():
    binary = support.binary_from_argv()
    return support.run_cases(cases(binary), title="bounds on what clients can make the server "
                             "hold", case_timeout=90)


if __name__ == "__main__":
    sys.exit(main())
