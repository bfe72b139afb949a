#!/usr/bin/python3
"""Handshake timeout, server pings with pong timeout, and idle timeout.

Usage: timeouts.py PATH/TO/ringcastd
Three servers with short timers (hundreds of milliseconds to a second and a half).

No absolute wall-clock bound: a timer check holds on a busy machine as long as the server
is correct, however slow the machine is.

* Early: a connection may not end before its configured timeout, measured from before the
  client connected (the server's timers round up, so they never fire early; a little slack
  covers its clock being read at the start of a loop pass).
* Late: it must end within `late_bound`: a few times the configured timeout, plus a floor,
  plus a multiple of a baseline taken in the same run (the slowest of a few connect +
  upgrade + echo round trips just before), so a slow machine widens the bound by itself.
* Keeping alive: a client that talks (or pings) at a cadence of a tenth of the idle
  timeout, for twice the timeout, stays open; the gaps it really left are measured, and a
  close after a gap shorter than the timeout is the server's fault.
* Answering pings: the pong timeout is many times the ping interval, so a slow client still
  answers in time; the pings' spacing is checked from their order, not counted per second.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, expect, fail  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

HANDSHAKE_MS = 500
PING_MS = 200
PONG_MS = 1500   # many ping intervals: a client answering late on a busy host still counts
IDLE_MS = 1000
CLOSE_MS = 2000  # the server's default --close-timeout-ms, passed explicitly
CADENCE_S = IDLE_MS / 1000 / 10  # keep-alive traffic every tenth of the idle timeout

# `late_bound` = TIMEOUT_FACTOR x the configured time + FLOOR_S + BASELINE_FACTOR x baseline.
TIMEOUT_FACTOR = 3
FLOOR_S = 1.5
BASELINE_FACTOR = 10
# The server's timers never fire early; its clock is read once per loop pass.
EARLY_SLACK_S = 0.05


def baseline(port):
    """The slowest of three connect + upgrade + echo round trips on `port`, now."""
    worst = 0.0
    for i in range(3):
        started = time.monotonic()
        with support.raw_ws(port, timeout=30) as ws:
            ws.send_frame(OP_TEXT, f"baseline {i}".encode())
            op, payload, _ = ws.recv_message(timeout=30)
            expect(op == OP_TEXT and payload == f"baseline {i}".encode(),
                   f"baseline echo {i}: op {op} {support.short(payload)}")
        worst = max(worst, time.monotonic() - started)
    return worst


def late_bound(timeout_s, port):
    """How late an event due `timeout_s` after a start may come, on this machine now."""
    return TIMEOUT_FACTOR * timeout_s + FLOOR_S + BASELINE_FACTOR * baseline(port)


def expect_in_window(elapsed, timeout_s, bound, what):
    expect(elapsed >= timeout_s - EARLY_SLACK_S,
           f"{what}: after {elapsed * 1000:.0f} ms, before the {timeout_s * 1000:.0f} ms "
           f"timeout")
    expect(elapsed <= bound,
           f"{what}: after {elapsed:.2f} s, later than {bound:.2f} s ({TIMEOUT_FACTOR} x the "
           f"{timeout_s * 1000:.0f} ms timeout + {FLOOR_S} s + {BASELINE_FACTOR} x this "
           f"run's round-trip baseline)")


def wait_closed(ws, budget, what):
    """Waits for EOF; returns the frames received before it."""
    try:
        return ws.wait_eof(budget)
    except support.timed_out:
        fail(f"{what}: connection still open after {budget:.1f}s")


def handshake_cases(port):
    timeout_s = HANDSHAKE_MS / 1000

    def silent_connection_closed():
        bound = late_bound(timeout_s, port)
        started = time.monotonic()  # before the connect: the server's timer starts later
        with support.raw_ws(port, handshake=False) as ws:
            wait_closed(ws, 2 * bound, f"--handshake-timeout-ms {HANDSHAKE_MS}, sent nothing")
            expect_in_window(time.monotonic() - started, timeout_s, bound,
                             "a connection that sent nothing was closed")

    def partial_request_closed():
        bound = late_bound(timeout_s, port)
        started = time.monotonic()
        with support.raw_ws(port, handshake=False) as ws:
            ws.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            wait_closed(ws, 2 * bound, "half an HTTP request then silence")
            expect_in_window(time.monotonic() - started, timeout_s, bound,
                             "a connection that sent half a request was closed")

    def trickling_request_still_closed():
        # One byte every 50 ms never finishes the head (246 bytes: 12 s at that pace): the
        # timeout is for the whole request, not between bytes (slowloris).
        bound = late_bound(timeout_s, port)
        request = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
        started = time.monotonic()
        with support.raw_ws(port, handshake=False) as ws:
            sent, closed = 0, False
            while not closed and time.monotonic() - started < 2 * bound:
                if sent < len(request):
                    if not ws.send(request[sent:sent + 1]):
                        closed = True
                        break
                    sent += 1
                try:
                    ws.sock.settimeout(0.05)
                    closed = ws.sock.recv(4096) == b""  # a 408 may come before the EOF
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
            elapsed = time.monotonic() - started
            expect(closed, f"a request trickled at 1 byte / 50 ms was still open after "
                   f"{elapsed:.1f}s ({sent} of {len(request)} bytes sent)")
            expect(sent < len(request), "test bug: the whole trickled request went out before "
                   "the server closed it")
            expect_in_window(elapsed, timeout_s, bound, "a trickled request was closed")

    def upgraded_connection_outlives_handshake_timeout():
        with support.raw_ws(port, timeout=30) as ws:
            time.sleep(timeout_s * 3)
            ws.send_frame(OP_TEXT, b"still here")
            op, payload, _ = ws.recv_message(timeout=30)
            expect(op == OP_TEXT and payload == b"still here",
                   f"after {HANDSHAKE_MS * 3} ms an upgraded connection got op {op} "
                   f"{support.short(payload)} instead of its echo")

    return [
        (f"--handshake-timeout-ms {HANDSHAKE_MS}: silent connection is closed",
         silent_connection_closed),
        (f"--handshake-timeout-ms {HANDSHAKE_MS}: half-sent request is closed",
         partial_request_closed),
        (f"--handshake-timeout-ms {HANDSHAKE_MS}: 1 byte / 50 ms request is closed",
         trickling_request_still_closed),
        (f"--handshake-timeout-ms {HANDSHAKE_MS}: does not apply after the upgrade",
         upgraded_connection_outlives_handshake_timeout),
    ]


def ping_cases(port):
    ping_s, pong_s = PING_MS / 1000, PONG_MS / 1000
    # Long enough that a client whose pongs did not count would have been closed.
    stay_s = 1.5 * (ping_s + pong_s)

    async def websockets_client_stays_connected():
        # The client library answers the server's pings by itself; it sends none of its
        # own (ping_interval=None), so only the pongs keep it alive.
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=30,
                                      close_timeout=3, ping_interval=None) as ws:
            await asyncio.sleep(stay_s)
            await ws.send("alive")
            try:
                got = await asyncio.wait_for(ws.recv(), 30)
            except websockets.exceptions.ConnectionClosed as e:
                fail(f"websockets client (answers pings) was closed: {e}")
            expect(got == "alive", f"echo after {stay_s:.2f} s of pings: {got!r}")

    def raw_client_answering_sees_pings():
        # Three pings, each answered: the next one may come only a ping interval after our
        # pong (the server pings a client silent for that long), and answering keeps the
        # connection open past the pong timeout. The server looks at a pong when the pong
        # timer fires, so the next ping may wait up to the pong timeout.
        want = 3
        bound = late_bound(ping_s + pong_s, port)
        # Clocks are read before the event that starts the server's silence (the upgrade, our
        # pong), so a measured gap is never shorter than the one the server saw.
        quiet_since = time.monotonic()
        with support.raw_ws(port, timeout=30) as ws:
            gaps = []
            while len(gaps) < want:
                try:
                    f = ws.recv_frame(timeout=2 * bound)
                except support.timed_out:
                    fail(f"--ping-interval-ms {PING_MS}: no ping {len(gaps) + 1} within "
                         f"{2 * bound:.1f}s")
                except support.connection_closed:
                    fail(f"connection closed after {len(gaps)} pings although each was "
                         f"answered")
                expect(f.opcode == OP_PING,
                       f"expected only pings from an idle echo connection, got {f}")
                expect(not f.masked, f"server ping is masked: {f}")
                expect(len(f.payload) <= 125, f"server ping over 125 bytes: {f}")
                gaps.append(time.monotonic() - quiet_since)
                quiet_since = time.monotonic()
                ws.send_frame(OP_PONG, f.payload)
            early = [round(g * 1000) for g in gaps if g < ping_s - EARLY_SLACK_S]
            expect(not early, f"--ping-interval-ms {PING_MS}: pings after {early} ms of "
                   f"silence; gaps (ms) {[round(g * 1000) for g in gaps]}")
            slow = [round(g, 2) for g in gaps if g > bound]
            expect(not slow, f"--ping-interval-ms {PING_MS}: pings only after {slow} s of "
                   f"silence (bound {bound:.2f} s)")
            ws.send_frame(OP_TEXT, b"ok")
            op, payload, _ = ws.recv_message(timeout=30)
            expect(op == OP_TEXT and payload == b"ok", f"echo after pings: {op} {payload!r}")

    def raw_client_ignoring_pings_is_closed():
        bound = late_bound(ping_s + pong_s, port)
        started = time.monotonic()
        with support.raw_ws(port, timeout=30) as ws:
            frames = wait_closed(ws, 2 * bound, "a client that never answers pings")
            elapsed = time.monotonic() - started
            ops = [f.opcode for f in frames]
            expect(ops[:1] == [OP_PING] and OP_CLOSE in ops,
                   f"expected a ping, then a close; frames: {frames}")
            close = frames[ops.index(OP_CLOSE)]
            expect(close.close_code() == 1001, f"expected close 1001, got {close}")
            data = [f for f in frames if f.opcode not in (OP_PING, OP_CLOSE)]
            expect(not data, f"unexpected frames before the close: {data}")
            expect_in_window(elapsed, ping_s + pong_s, bound,
                             "a client that never answered a ping was closed")
            print(f"# closed after {elapsed * 1000:.0f} ms (bound {bound:.2f} s); frames: "
                  f"{frames}", flush=True)

    return [
        (f"--ping-interval-ms {PING_MS}: websockets client answering pings stays "
         f"{stay_s:.2f} s", websockets_client_stays_connected),
        (f"--ping-interval-ms {PING_MS}: raw client answering 3 pings, each after a ping "
         f"interval of silence, stays", raw_client_answering_sees_pings),
        (f"--pong-timeout-ms {PONG_MS}: client that never answers pings is closed",
         raw_client_ignoring_pings_is_closed),
    ]


def idle_cases(port):
    idle_s, close_s = IDLE_MS / 1000, CLOSE_MS / 1000

    def silent_client_gets_1001():
        bound = late_bound(idle_s, port)
        started = time.monotonic()
        with support.raw_ws(port, timeout=30) as ws:
            try:
                f = ws.recv_frame(timeout=2 * bound)
            except support.timed_out:
                fail(f"--idle-timeout-ms {IDLE_MS}: nothing received within {2 * bound:.1f}s")
            except support.connection_closed as e:
                fail(f"--idle-timeout-ms {IDLE_MS}: TCP closed without a close frame ({e})")
            elapsed = time.monotonic() - started
            expect(f.opcode == OP_CLOSE and f.close_code() == 1001,
                   f"--idle-timeout-ms {IDLE_MS}: expected close 1001, got {f}")
            expect_in_window(elapsed, idle_s, bound, "a silent client got its idle close")
            ws.send_frame(OP_CLOSE, support.close_payload(1001))
            wait_closed(ws, late_bound(0, port), "after answering the idle close")

    def idle_close_without_reply_still_ends():
        # The client never answers the close: the server must drop TCP by itself, within
        # its close timeout.
        bound = late_bound(idle_s + close_s, port)
        started = time.monotonic()
        with support.raw_ws(port, timeout=30) as ws:
            frames = wait_closed(ws, 2 * bound, "idle close that the client never answers")
            elapsed = time.monotonic() - started
            expect(any(f.opcode == OP_CLOSE and f.close_code() == 1001 for f in frames),
                   f"expected a close 1001 before EOF, got {frames}")
            expect_in_window(elapsed, idle_s, bound, "an unanswered idle close ended TCP")

    def keeps_alive(exchange, what):
        # Traffic every CADENCE_S for twice the idle timeout. The gaps are measured: a close
        # is the server's fault only if every gap was shorter than the timeout.
        def check():
            with support.raw_ws(port, timeout=30) as ws:
                started = last = time.monotonic()
                gaps, i = [], 0
                while last - started < 2 * idle_s:
                    try:
                        exchange(ws, i)
                    except (support.timed_out, support.connection_closed) as e:
                        fail(f"{what} {i}: {type(e).__name__} {e}; largest gap so far "
                             f"{max(gaps, default=0) * 1000:.0f} ms, idle timeout {IDLE_MS} ms")
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now
                    i += 1
                    time.sleep(CADENCE_S)
                print(f"# {i} x {what} over {last - started:.2f} s, largest gap "
                      f"{max(gaps) * 1000:.0f} ms", flush=True)
        return check

    def text(ws, i):
        ws.send_frame(OP_TEXT, f"tick {i}".encode())
        op, payload, _ = ws.recv_message(timeout=30)
        expect(op == OP_TEXT and payload == f"tick {i}".encode(),
               f"tick {i}: got op {op} {support.short(payload)}")

    def ping(ws, i):
        # Inbound control frames count as activity too.
        ws.send_frame(OP_PING, f"p{i}".encode())
        f = ws.recv_frame(timeout=30)
        expect(f.opcode == OP_PONG and f.payload == f"p{i}".encode(),
               f"ping {i}: expected its pong, got {f}")

    cadence = f"every {CADENCE_S * 1000:.0f} ms for {2 * IDLE_MS} ms"
    return [
        (f"--idle-timeout-ms {IDLE_MS}: silent client gets close 1001, then EOF",
         silent_client_gets_1001),
        (f"--idle-timeout-ms {IDLE_MS}: server ends TCP even if the close is not answered",
         idle_close_without_reply_still_ends),
        (f"--idle-timeout-ms {IDLE_MS}: client sending text {cadence} stays open",
         keeps_alive(text, "text echo")),
        (f"--idle-timeout-ms {IDLE_MS}: client pinging {cadence} stays open",
         keeps_alive(ping, "ping")),
    ]


def main():
    binary = support.binary_from_argv()
    with support.server(binary, ["--handshake-timeout-ms", str(HANDSHAKE_MS)]) as hs, \
            support.server(binary, ["--ping-interval-ms", str(PING_MS),
                                    "--pong-timeout-ms", str(PONG_MS)]) as ping, \
            support.server(binary, ["--idle-timeout-ms", str(IDLE_MS),
                                    "--close-timeout-ms", str(CLOSE_MS),
                                    "--ping-interval-ms", "0"]) as idle:
        cases = handshake_cases(hs.port) + ping_cases(ping.port) + idle_cases(idle.port)
        cases += [
            ("handshake-timeout server exits 0 on SIGTERM", hs.stop_and_expect_clean_exit),
            ("ping server exits 0 on SIGTERM", ping.stop_and_expect_clean_exit),
            ("idle server exits 0 on SIGTERM", idle.stop_and_expect_clean_exit),
        ]
        return support.run_cases(cases, "ringcastd timeouts")


if __name__ == "__main__":
    sys.exit(main())
