#!/usr/bin/python3
"""Graceful drain (docs/operations.md "Drain") on one ringcastd, with real clients.

* SIGTERM: /readyz turns 503 and the agent check answers "drain" at once while /healthz
  stays 200 and new sessions are still taken during --drain-delay-ms; then every session
  is closed with 1001 "server draining", spread over --drain-seconds (not all at once), after
  every message queued for it (each client's offsets have no gap up to its close); a new
  session while closing gets 503 with Retry-After; the process exits 0.
* POST /api/drain starts the same drain (202; asking again says "already"); a second
  SIGTERM during a drain stops at once, exit 0.

Timing is judged against the settings given, with slack for a busy machine only in the
direction a busy machine errs (later, never earlier).

Usage: drain.py PATH/TO/ringcastd
"""

import asyncio
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

support.require_websockets()

BINARY = support.binary_from_argv()
CHANNEL = "feed:drain"
CLIENTS = 40
DELAY_MS = 1500
WINDOW_S = 3
AGENT_PATTERN = re.compile(r"agent check on [0-9.]+:(\d+)")


def agent_port(srv):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in srv.lines():
            m = AGENT_PATTERN.search(line)
            if m:
                return int(m.group(1))
        time.sleep(0.05)
    fail(f"no 'agent check on' line\n{srv.output()}")


def agent_says(port):
    with socket.create_connection((support.LOOPBACK, port), timeout=5) as s:
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data.decode()
            data += chunk


def get(port, path):
    api = support.api_client(port)
    try:
        return api.request("GET", path)
    finally:
        api.close()


def wait_until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    fail(f"{what}: not within {timeout}s")


class publisher(threading.Thread):
    """Publishes {"seq": n} to CHANNEL every few ms until stopped or refused."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.sent, self.halt = port, 0, threading.Event()

    def run(self):
        api = support.api_client(self.port, timeout=5)
        try:
            while not self.halt.is_set():
                r = api.request("POST", "/api/publish", {"channel": CHANNEL,
                                                         "data": {"seq": self.sent + 1}})
                if r.status != 200:
                    return
                self.sent += 1
                time.sleep(0.005)
        except OSError:
            return  # the server went away: the drain is over
        finally:
            api.close()


def check_no_gap(c):
    offsets = [c.parsed(i)["offset"] for i in range(len(c.messages))]
    expect(offsets == list(range(offsets[0], offsets[0] + len(offsets))) if offsets else True,
           f"user {c.user}: offsets with a gap before its close: {offsets[:5]}…{offsets[-5:]}")
    return len(offsets)


async def sigterm_drains_paced():
    srv = support.server(BINARY, ["--shards", "2", "--drain-delay-ms", str(DELAY_MS),
                                  "--drain-seconds", str(WINDOW_S),
                                  "--agent-check-listen", "127.0.0.1:0",
                                  "--namespace", "feed:history=10000"])
    with srv:
        aport = agent_port(srv)
        expect(get(srv.port, "/readyz").status == 200, "/readyz before the drain: 200")
        expect(agent_says(aport) == "up ready\n", "agent before the drain: 'up ready'")
        clients = [await support.pubsub_client.connect(srv.port, user=f"u{i}")
                   for i in range(CLIENTS)]
        for c in clients:
            r = await c.command("subscribe", channel=CHANNEL)
            expect(r.get("ok") is True, f"subscribe: {r}")
        pub = publisher(srv.port)
        pub.start()
        await asyncio.sleep(0.3)
        closes = {}
        for c in clients:
            c.closed_at = None

        async def watch(c):
            await c.closed.wait()
            closes[c.user] = time.monotonic()

        watchers = [asyncio.ensure_future(watch(c)) for c in clients]
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(wait_until, "/readyz 503 after SIGTERM",
                                lambda: get(srv.port, "/readyz").status == 503, 5)
        body = get(srv.port, "/readyz").json
        expect(body == {"status": "draining"}, f"/readyz while draining: {body}")
        expect(agent_says(aport) == "drain\n", "agent while draining: 'drain'")
        expect(get(srv.port, "/healthz").status == 200, "/healthz stays 200 while draining")
        announced = time.monotonic()
        late = await support.pubsub_client.connect(srv.port, user="late")
        late_connected = time.monotonic()
        r = await late.command("subscribe", channel=CHANNEL)
        expect(r.get("ok") is True, f"late subscribe: {r}")
        watchers.append(asyncio.ensure_future(watch(late)))
        if closes:
            support.tap_comment("the late client connected after the first close "
                                "(a very busy machine); its acceptance is not judged")
        else:
            expect(late_connected - t0 < DELAY_MS / 1000,
                   "the late client connected within the delay")
        # Wait for the first close, then a new session is refused.
        await asyncio.wait_for(asyncio.shield(asyncio.wait(
            watchers, return_when=asyncio.FIRST_COMPLETED)), 20)
        first_close = min(closes.values())
        expect(first_close - t0 >= DELAY_MS / 1000 * 0.95,
               f"first close {first_close - t0:.2f}s after SIGTERM, before the "
               f"{DELAY_MS} ms delay")
        refused = support.http_exchange(srv.port, support.upgrade_request("/ws?user=x"))
        expect(refused.status == 503 and "retry-after" in refused.headers,
               f"a new session while closing: expected 503 with Retry-After, got {refused}")
        stats = await asyncio.to_thread(lambda: support.api_client(srv.port).stats())
        expect(stats["total"]["drain_closes"] >= 1,
               f"drain_closes while closing: {stats['total'].get('drain_closes')}")
        await asyncio.wait_for(asyncio.gather(*watchers), WINDOW_S + 20)
        pub.halt.set()
        code = await asyncio.to_thread(srv.proc.wait, 20)
        expect(code == 0, f"exit status after the drain: {code}\n{srv.output()}")
        everyone = clients + [late]
        received = 0
        for c in everyone:
            expect(c.close_code == 1001 and "draining" in (c.close_reason or ""),
                   f"user {c.user}: closed {c.close_code} {c.close_reason!r}, expected "
                   f"1001 'server draining…'")
            received += check_no_gap(c)
        times = sorted(closes[c.user] - first_close for c in everyone)
        span = times[-1]
        support.tap_comment(f"{len(everyone)} sessions closed over {span:.2f}s "
                            f"(window {WINDOW_S}s), first {first_close - t0:.2f}s after "
                            f"SIGTERM; {received} messages received, {pub.sent} published")
        expect(span >= WINDOW_S * 0.4,
               f"closes spread over {span:.2f}s, expected most of the {WINDOW_S}s window")
        half = sum(1 for t in times if t < span / 2)
        expect(half <= len(times) * 0.8,
               f"{half} of {len(times)} closed in the first half of the spread: not paced")
        expect(pub.sent > 0 and received > 0, "messages flowed during the drain")


async def api_drain_then_second_sigterm():
    srv = support.server(BINARY, ["--drain-delay-ms", "60000", "--drain-seconds", "60"])
    with srv:
        c = await support.pubsub_client.connect(srv.port, user="one")
        r = await c.command("subscribe", channel="news")
        expect(r.get("ok") is True, f"subscribe: {r}")
        api = support.api_client(srv.port)
        first = await asyncio.to_thread(api.request, "POST", "/api/drain", {})
        expect(first.status == 202 and first.json == {"ok": True, "draining": True},
               f"POST /api/drain: {first}")
        await asyncio.to_thread(wait_until, "/readyz 503 after POST /api/drain",
                                lambda: get(srv.port, "/readyz").status == 503, 5)
        again = await asyncio.to_thread(api.request, "POST", "/api/drain", {})
        expect(again.status == 202 and again.json.get("already") is True,
               f"POST /api/drain again: {again}")
        wrong = await asyncio.to_thread(api.request, "GET", "/api/drain")
        expect(wrong.status == 405, f"GET /api/drain: {wrong}")
        api.close()
        expect(any("POST /api/drain: draining" in line for line in srv.lines()),
               f"the log names the API as the drain's cause\n{srv.output()}")
        expect(not c.closed.is_set(), "the session stays open during the delay")
        t0 = time.monotonic()
        code = await asyncio.to_thread(srv.stop, signal.SIGTERM, 10)
        expect(code == 0, f"exit status after a second SIGTERM: {code}")
        expect(time.monotonic() - t0 < 10, "a second SIGTERM stops at once")
        await asyncio.wait_for(c.closed.wait(), 5)
        expect(c.close_code == 1001, f"closed {c.close_code} {c.close_reason!r}")


sys.exit(support.run_cases([
    ("SIGTERM drains: readyz and the agent say so, sessions closed 1001 paced over the "
     "window after their queued messages, new ones 503, exit 0", sigterm_drains_paced),
    ("POST /api/drain drains like SIGTERM, asking again says already, a second SIGTERM "
     "stops at once", api_drain_then_second_sigterm),
], title="graceful drain", case_timeout=90))
