#!/usr/bin/python3
"""Handshake timeout, server pings with pong timeout, and idle timeout.

Usage: timeouts.py PATH/TO/ringcastd
Three servers with short timers (hundreds of milliseconds) so the whole file runs in a few
seconds. Upper bounds carry a generous margin for a loaded CI machine; the only lower
bounds are "not immediately" sanity checks at a fraction of the configured value.
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

HANDSHAKE_MS = 300
PING_MS = 200
PONG_MS = 200
IDLE_MS = 300
MARGIN_S = 1.5  # scheduling slack on a busy CI host; timers themselves may be coarse


def wait_closed(ws, budget, what):
    """Waits for EOF; returns (elapsed seconds, frames received before it)."""
    started = time.monotonic()
    try:
        frames = ws.wait_eof(budget)
    except support.timed_out:
        fail(f"{what}: connection still open after {budget:.1f}s")
    return time.monotonic() - started, frames


def handshake_cases(port):
    def silent_connection_closed():
        ws = support.raw_ws(port, handshake=False)
        with ws:
            elapsed, _ = wait_closed(ws, HANDSHAKE_MS / 1000 + MARGIN_S,
                                     f"--handshake-timeout-ms {HANDSHAKE_MS}, sent nothing")
            expect(elapsed >= HANDSHAKE_MS / 1000 / 3,
                   f"closed after {elapsed * 1000:.0f} ms, well before the "
                   f"{HANDSHAKE_MS} ms handshake timeout")

    def partial_request_closed():
        ws = support.raw_ws(port, handshake=False)
        with ws:
            ws.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            elapsed, _ = wait_closed(ws, HANDSHAKE_MS / 1000 + MARGIN_S,
                                     "half an HTTP request then silence")

    def trickling_request_still_closed():
        # One byte every 50 ms never finishes the head: the timeout is for the whole
        # request, not between bytes (slowloris).
        ws = support.raw_ws(port, handshake=False)
        with ws:
            started = time.monotonic()
            budget = HANDSHAKE_MS / 1000 + MARGIN_S
            request = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
            for byte in request:
                if not ws.send(bytes([byte])):
                    break
                try:
                    ws.sock.settimeout(0.05)
                    if ws.sock.recv(4096) == b"":
                        break
                except (TimeoutError, OSError):
                    pass
                if time.monotonic() - started > budget:
                    fail(f"a request trickled at 1 byte / 50 ms was not closed within "
                         f"{budget:.1f}s")

    def upgraded_connection_outlives_handshake_timeout():
        with support.raw_ws(port) as ws:
            time.sleep(HANDSHAKE_MS / 1000 * 3)
            ws.send_frame(OP_TEXT, b"still here")
            op, payload, _ = ws.recv_message(timeout=3)
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
    async def websockets_client_stays_connected():
        # The client library answers the server's pings by itself; it sends none of its
        # own (ping_interval=None), so only the pongs keep it alive.
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=5,
                                      close_timeout=3, ping_interval=None) as ws:
            await asyncio.sleep(1.5)
            await ws.send("alive")
            try:
                got = await asyncio.wait_for(ws.recv(), 3)
            except websockets.exceptions.ConnectionClosed as e:
                fail(f"websockets client (answers pings) was closed: {e}")
            expect(got == "alive", f"echo after 1.5 s of pings: {got!r}")

    def raw_client_answering_sees_pings():
        with support.raw_ws(port) as ws:
            deadline = time.monotonic() + 1.5
            pings = 0
            while time.monotonic() < deadline:
                try:
                    f = ws.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
                except support.timed_out:
                    break
                except support.connection_closed:
                    fail(f"connection closed after {pings} pings although each was answered")
                if f.opcode == OP_PING:
                    pings += 1
                    expect(not f.masked, f"server ping is masked: {f}")
                    expect(len(f.payload) <= 125, f"server ping over 125 bytes: {f}")
                    ws.send_frame(OP_PONG, f.payload)
                else:
                    fail(f"expected only pings from an idle echo connection, got {f}")
            expect(pings >= 2, f"--ping-interval-ms {PING_MS}: only {pings} pings in 1.5 s")
            ws.send_frame(OP_TEXT, b"ok")
            op, payload, _ = ws.recv_message(timeout=3)
            expect(op == OP_TEXT and payload == b"ok", f"echo after pings: {op} {payload!r}")

    def raw_client_ignoring_pings_is_closed():
        with support.raw_ws(port) as ws:
            started = time.monotonic()
            budget = (PING_MS + PONG_MS) / 1000 + MARGIN_S
            elapsed, frames = wait_closed(ws, budget, "a client that never answers pings")
            ops = [f.opcode for f in frames]
            expect(OP_PING in ops, f"closed without a ping first; frames: {frames}")
            data = [f for f in frames if f.opcode not in (OP_PING, OP_CLOSE)]
            expect(not data, f"unexpected frames before the close: {data}")
            print(f"     closed after {(time.monotonic() - started) * 1000:.0f} ms; frames: "
                  f"{frames}", flush=True)

    return [
        (f"--ping-interval-ms {PING_MS}: websockets client answering pings stays >1.5 s",
         websockets_client_stays_connected),
        (f"--ping-interval-ms {PING_MS}: raw client answering pings sees ≥2 pings, stays",
         raw_client_answering_sees_pings),
        (f"--pong-timeout-ms {PONG_MS}: client that never answers pings is closed",
         raw_client_ignoring_pings_is_closed),
    ]


def idle_cases(port):
    def silent_client_gets_1001():
        with support.raw_ws(port) as ws:
            budget = IDLE_MS / 1000 + MARGIN_S
            started = time.monotonic()
            try:
                f = ws.recv_frame(timeout=budget)
            except support.timed_out:
                fail(f"--idle-timeout-ms {IDLE_MS}: nothing received within {budget:.1f}s")
            except support.connection_closed as e:
                fail(f"--idle-timeout-ms {IDLE_MS}: TCP closed without a close frame ({e})")
            elapsed = time.monotonic() - started
            expect(f.opcode == OP_CLOSE and f.close_code() == 1001,
                   f"--idle-timeout-ms {IDLE_MS}: expected close 1001, got {f}")
            expect(elapsed >= IDLE_MS / 1000 / 3,
                   f"idle close after {elapsed * 1000:.0f} ms, well before {IDLE_MS} ms")
            ws.send_frame(OP_CLOSE, support.close_payload(1001))
            wait_closed(ws, 3.0, "after answering the idle close")

    def idle_close_without_reply_still_ends():
        # The client never answers the close: the server must drop TCP by itself (~2 s).
        with support.raw_ws(port) as ws:
            elapsed, frames = wait_closed(ws, IDLE_MS / 1000 + 2.0 + MARGIN_S + 1.0,
                                          "idle close that the client never answers")
            expect(any(f.opcode == OP_CLOSE and f.close_code() == 1001 for f in frames),
                   f"expected a close 1001 before EOF, got {frames}")

    def talking_client_stays():
        with support.raw_ws(port) as ws:
            for i in range(12):  # 12 x 100 ms = 4 idle timeouts' worth
                ws.send_frame(OP_TEXT, f"tick {i}".encode())
                op, payload, _ = ws.recv_message(timeout=3)
                expect(op == OP_TEXT and payload == f"tick {i}".encode(),
                       f"tick {i}: got op {op} {support.short(payload)}")
                time.sleep(0.1)

    def pinging_client_stays():
        # Inbound control frames count as activity too.
        with support.raw_ws(port) as ws:
            for i in range(12):
                ws.send_frame(support.OP_PING, f"p{i}".encode())
                f = ws.recv_frame(timeout=3)
                expect(f.opcode == OP_PONG and f.payload == f"p{i}".encode(),
                       f"ping {i}: expected its pong, got {f}")
                time.sleep(0.1)

    return [
        (f"--idle-timeout-ms {IDLE_MS}: silent client gets close 1001, then EOF",
         silent_client_gets_1001),
        (f"--idle-timeout-ms {IDLE_MS}: server ends TCP even if the close is not answered",
         idle_close_without_reply_still_ends),
        (f"--idle-timeout-ms {IDLE_MS}: client sending text every 100 ms stays open",
         talking_client_stays),
        (f"--idle-timeout-ms {IDLE_MS}: client pinging every 100 ms stays open",
         pinging_client_stays),
    ]


def main():
    binary = support.binary_from_argv()
    with support.server(binary, ["--handshake-timeout-ms", str(HANDSHAKE_MS)]) as hs, \
            support.server(binary, ["--ping-interval-ms", str(PING_MS),
                                    "--pong-timeout-ms", str(PONG_MS)]) as ping, \
            support.server(binary, ["--idle-timeout-ms", str(IDLE_MS),
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
