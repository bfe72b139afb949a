#!/usr/bin/python3
"""Draining one of two ringcastd nodes behind HAProxy, with 2,000 clients and no message lost.

The stack of haproxy.py (docs/haproxy.md's configuration: TLS at HAProxy, PROXY v2, the agent
check on each node's --agent-check-listen). A backend publishes {"seq": n} to both nodes
(as a backend does with the embedded engine: every node gets every message) five times a
second. 2,000 clients connect through HAProxy (leastconn: about half on each node) and
subscribe. Node 1 gets SIGTERM with --drain-delay-ms 3000 --drain-seconds 10:

* its clients are closed with 1001, spread over the window; each reconnects to the same URL
  at once, HAProxy (told "drain" by the agent) sends it to node 2, and it subscribes with
  "recover": {"since": <timestamp of its last message, less a second>} (docs/protocol.md
  "Recovery by time"), dropping the seqs it has;
* no client misses a seq from its first to the last published, on either node;
* the reconnections are spread over the window (no second holds most of them);
* node 1 exits 0; HAProxy logs no 5xx.

The figures (clients, window, spread, messages lost) are printed as TAP comments.

Usage: haproxy_drain.py PATH/TO/ringcastd
"""

import asyncio
import collections
import json
import os
import re
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402
import haproxy as hp  # noqa: E402

import websockets  # noqa: E402  (haproxy.py has required it)

CLIENTS = int(os.environ.get("DRAIN_CLIENTS", "2000"))
DELAY_MS = 3000
WINDOW_S = 10
PUBLISH_EVERY_S = 0.2
CHANNEL = "feed:drain"
# What a client takes off its last timestamp when it recovers by time on another node: the
# nodes stamp the same message a little apart (docs/protocol.md "Recovery by time").
SINCE_MARGIN_MS = 1000
GUARD_S = 120


class client:
    """One subscriber that reconnects through HAProxy after a close and recovers by time."""

    def __init__(self, st, i):
        self.st, self.user = st, f"c{i}"
        self.source = f"127.0.{1 + i // 250}.{2 + i % 250}"
        self.seqs = set()
        self.last_ts = None
        self.closes = []      # (monotonic time, code)
        self.reconnects = []  # monotonic time the new session's subscribe was answered
        self.recovered = []   # the reply's "recovered" of each recovering subscribe
        self.refusals = 0     # reconnects refused (503 while the balancer still chose node 1)
        self.ws = None
        self.done = False

    async def connect_and_subscribe(self, recover):
        self.ws = await self.st.connect(self.user, self.source)
        cmd = {"op": "subscribe", "channel": CHANNEL, "id": 1}
        if recover is not None:
            cmd["recover"] = {"since": max(0, recover - SINCE_MARGIN_MS)}
        await self.ws.send(json.dumps(cmd))

    def take(self, raw):
        obj = json.loads(raw)
        if obj.get("op") == "reply":
            expect(obj.get("ok") is True, f"{self.user}: subscribe refused: {obj}")
            if "recovered" in obj:
                self.recovered.append(obj["recovered"])
                self.reconnects.append(time.monotonic())
            return
        if obj.get("channel") == CHANNEL:
            self.seqs.add(obj["data"]["seq"])
            self.last_ts = obj["timestamp"]

    async def run(self):
        while True:
            try:
                async for raw in self.ws:
                    self.take(raw)
            except websockets.exceptions.ConnectionClosed:
                pass
            self.closes.append((time.monotonic(), self.ws.close_code))
            if self.done:
                return
            deadline = time.monotonic() + GUARD_S
            while True:
                try:
                    await self.connect_and_subscribe(self.last_ts)
                    break
                except websockets.exceptions.InvalidStatusCode as e:
                    expect(e.status_code == 503, f"{self.user}: reconnect answered "
                                                 f"{e.status_code}")
                    self.refusals += 1
                except (OSError, asyncio.TimeoutError,
                        websockets.exceptions.WebSocketException):
                    pass
                if time.monotonic() > deadline:
                    fail(f"{self.user} could not reconnect through HAProxy")
                await asyncio.sleep(0.1)


class publisher(threading.Thread):
    """{"seq": n} to every node still up, in node order, every PUBLISH_EVERY_S."""

    def __init__(self, st):
        super().__init__(daemon=True)
        self.st, self.seq, self.halt = st, 0, threading.Event()
        self.accepted = collections.defaultdict(set)  # node index -> seqs it took
        self.failure = None

    def run(self):
        apis = [hp.api(n) for n in self.st.nodes]
        while not self.halt.is_set():
            self.seq += 1
            for i, api in enumerate(apis):
                if not self.st.nodes[i].alive():
                    continue
                try:
                    r = api.request("POST", "/api/publish",
                                    {"channel": CHANNEL, "data": {"seq": self.seq}})
                except OSError:
                    continue  # node 1 exiting at the end of its drain
                if r.status == 200:
                    self.accepted[i].add(self.seq)
                elif self.st.nodes[i].alive():
                    self.failure = f"node {i + 1} answered the publish of {self.seq}: {r}"
            time.sleep(PUBLISH_EVERY_S)
        for api in apis:
            api.close()


def largest_second(times):
    """How many of `times` fall in the busiest one-second bucket."""
    if not times:
        return 0
    start = min(times)
    return max(collections.Counter(int(t - start) for t in times).values())


def cases(binary):
    haproxy = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
    if haproxy is None:
        support.missing("haproxy (apt-get install haproxy)")
    openssl = shutil.which("openssl")
    if openssl is None:
        support.missing("openssl (apt-get install openssl)")

    async def drain_one_node():
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < CLIENTS + 200:
            support.skip(f"RLIMIT_NOFILE hard limit {hard} is below {CLIENTS + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        st = hp.stack(binary, haproxy, openssl, node_args=[
            "--max-connections-per-ip", "0", "--connect-rate-per-ip", "0",
            "--namespace", "feed:history=100000",
            "--drain-delay-ms", str(DELAY_MS), "--drain-seconds", str(WINDOW_S)],
            log_every_request=True)
        pub = publisher(st)
        try:
            clients = [client(st, i) for i in range(CLIENTS)]
            gate = asyncio.Semaphore(100)

            async def first(c):
                async with gate:
                    await c.connect_and_subscribe(None)

            started = time.monotonic()
            await asyncio.gather(*(first(c) for c in clients))
            tasks = [asyncio.ensure_future(c.run()) for c in clients]
            per_node = await hp.wait_online(st, CLIENTS, GUARD_S)
            support.tap_comment(f"{CLIENTS} clients connected through HAProxy in "
                                f"{time.monotonic() - started:.1f}s: "
                                f"{len(per_node[0])} on node 1, {len(per_node[1])} on node 2")
            expect(len(per_node[0]) > CLIENTS // 4,
                   f"leastconn gave node 1 only {len(per_node[0])} of {CLIENTS}")
            pub.start()
            await asyncio.sleep(2)
            t0 = time.monotonic()
            st.nodes[0].proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(st.nodes[0].proc.wait, DELAY_MS / 1000 + WINDOW_S + 60)
            ended = time.monotonic()
            expect(code == 0, f"node 1 exited {code} after its drain\n{st.nodes[0].output()}")
            # Everyone is on node 2 now; let the messages run a little, then stop.
            await hp.wait_online(st, CLIENTS, GUARD_S)
            await asyncio.sleep(2)
            pub.halt.set()
            await asyncio.to_thread(pub.join, 30)
            expect(pub.failure is None, pub.failure or "")
            last = max(pub.accepted[1])
            expect(pub.accepted[1] == set(range(1, last + 1)),
                   "node 2 took every publish")
            deadline = time.monotonic() + GUARD_S
            while any(last not in c.seqs for c in clients):
                if time.monotonic() > deadline:
                    behind = [c.user for c in clients if last not in c.seqs]
                    fail(f"{len(behind)} clients never got seq {last}: {behind[:5]}")
                await asyncio.sleep(0.2)
            for c in clients:
                c.done = True
            await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)

            moved = [c for c in clients if any(code == 1001 for _, code in c.closes)]
            lost = 0
            for c in clients:
                expected = set(range(min(c.seqs), last + 1))
                missing = expected - c.seqs
                lost += len(missing)
                expect(not missing, f"{c.user} missed seqs {sorted(missing)[:10]}")
            closes = [t for c in moved for t, code in c.closes if code == 1001]
            reconnects = [t for c in moved for t in c.reconnects]
            refusals = sum(c.refusals for c in clients)
            close_span = max(closes) - min(closes)
            support.tap_comment(
                f"node 1 drained {len(moved)} clients: first close {min(closes) - t0:.2f}s "
                f"after SIGTERM, closes spread over {close_span:.2f}s (window {WINDOW_S}s), "
                f"busiest second {largest_second(closes)} closes, reconnections spread over "
                f"{max(reconnects) - min(reconnects):.2f}s, busiest second "
                f"{largest_second(reconnects)}; node 1 exited {ended - t0:.1f}s after "
                f"SIGTERM; {last} seqs published, {lost} lost; {refusals} reconnects refused "
                f"503")
            expect(len(moved) == len(per_node[0]),
                   f"{len(moved)} clients closed 1001, node 1 held {len(per_node[0])}")
            expect(all(c.recovered == [True] for c in moved),
                   "every moved client recovered by time: "
                   f"{[(c.user, c.recovered) for c in moved if c.recovered != [True]][:5]}")
            expect(min(closes) - t0 >= DELAY_MS / 1000 * 0.95,
                   f"the first close came {min(closes) - t0:.2f}s after SIGTERM, before the "
                   f"{DELAY_MS} ms delay")
            expect(close_span >= WINDOW_S * 0.5,
                   f"closes spread over {close_span:.2f}s of a {WINDOW_S}s window")
            expect(largest_second(reconnects) <= len(reconnects) * 0.4,
                   f"{largest_second(reconnects)} of {len(reconnects)} reconnections in one "
                   f"second: not spread")
            log = st.haproxy_output_all()
            statuses = collections.Counter(re.findall(r"\] \S+ \S+ \S+ (\d{3}) ", log))
            support.tap_comment(f"HAProxy logged statuses {dict(statuses)}")
            fives = {s: n for s, n in statuses.items() if s.startswith("5")}
            expect(not fives, f"HAProxy logged 5xx: {fives}\n{log[-2000:]}")
            expect(statuses.get("101", 0) >= CLIENTS, "HAProxy logged the sessions (101)")
        finally:
            pub.halt.set()
            st.close()

    return [("2,000 clients behind HAProxy, one of two nodes drained: closes and "
             "reconnections spread over the window, no message lost, no 5xx",
             drain_one_node)]


if __name__ == "__main__":
    sys.exit(support.run_cases(cases(support.binary_from_argv()),
                               "drain behind HAProxy (docs/operations.md \"Drain\")",
                               case_timeout=400.0))
