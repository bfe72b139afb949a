#!/usr/bin/python3
"""SIGTERM / SIGINT: connected clients get close 1001 and ringcastd exits 0 within its drain
contract.

Usage: shutdown.py PATH/TO/ringcastd
Each check starts its own server, because each one ends it.

No absolute wall-clock bound: the exit must come within `exit_bound`, the drain contract
(--shutdown-timeout-ms, passed explicitly, plus the second the server waits for final
completions) plus a floor plus a multiple of a baseline taken from the same server just
before the signal (the slowest of a few connect + upgrade + echo round trips), so a slow
machine widens the bound by itself. Waits give up only after HANG_S, against a hang.
"""

import asyncio
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import OP_CLOSE, OP_TEXT, expect, fail  # noqa: E402

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SHUTDOWN_MS = 2000  # the server's default --shutdown-timeout-ms, passed explicitly
FINAL_STALL_S = 1.0  # after that the server waits this long for its final completions
FLOOR_S = 1.5
BASELINE_FACTOR = 10
HANG_S = 60  # only against a hang


def baseline(port):
    """The slowest of three connect + upgrade + echo round trips on `port`, now."""
    worst = 0.0
    for i in range(3):
        started = time.monotonic()
        with support.raw_ws(port, timeout=HANG_S) as ws:
            ws.send_frame(OP_TEXT, f"baseline {i}".encode())
            op, payload, _ = ws.recv_message(timeout=HANG_S)
            expect(op == OP_TEXT and payload == f"baseline {i}".encode(),
                   f"baseline echo {i}: op {op} {support.short(payload)}")
        worst = max(worst, time.monotonic() - started)
    return worst


def exit_bound(port):
    """How long after the signal the exit may come, on this machine now."""
    return SHUTDOWN_MS / 1000 + FINAL_STALL_S + FLOOR_S + BASELINE_FACTOR * baseline(port)


def start(binary):
    return support.server(binary, ["--shutdown-timeout-ms", str(SHUTDOWN_MS)])


def expect_exit_in_time(took, bound, what):
    expect(took <= bound, f"{what}: exited {took:.2f} s after the signal, later than "
           f"{bound:.2f} s ({SHUTDOWN_MS} ms shutdown timeout + {FINAL_STALL_S:.0f} s + "
           f"{FLOOR_S} s + {BASELINE_FACTOR} x this run's round-trip baseline)")


def cases(binary):
    def signal_closes_clients_with_1001(sig, n_clients):
        async def check():
            with start(binary) as srv:
                clients = [await websockets.connect(f"ws://127.0.0.1:{srv.port}/echo",
                                                    open_timeout=HANG_S, close_timeout=3,
                                                    ping_interval=None)
                           for _ in range(n_clients)]
                for i, ws in enumerate(clients):
                    await ws.send(f"hello {i}")
                    expect(await asyncio.wait_for(ws.recv(), HANG_S) == f"hello {i}", "echo")
                bound = await asyncio.to_thread(exit_bound, srv.port)
                started = time.monotonic()
                srv.proc.send_signal(sig)

                async def closed_code(ws):
                    try:
                        got = await asyncio.wait_for(ws.recv(), HANG_S)
                        return f"a message {got!r} instead of a close"
                    except ConnectionClosed as e:
                        return e.rcvd.code if e.rcvd else f"no close frame ({e})"
                    except asyncio.TimeoutError:
                        return f"nothing within {HANG_S}s"

                codes = await asyncio.gather(*(closed_code(ws) for ws in clients))
                bad = [(i, c) for i, c in enumerate(codes) if c != 1001]
                expect(not bad, f"{signal.Signals(sig).name}: clients that did not get "
                       f"close 1001 (index, what they got): {bad[:10]}")
                loop = asyncio.get_running_loop()
                try:
                    code = await loop.run_in_executor(
                        None, lambda: srv.proc.wait(timeout=HANG_S))
                except Exception:
                    fail(f"ringcastd still running {HANG_S}s after "
                         f"{signal.Signals(sig).name}\n{srv.output()}")
                took = time.monotonic() - started
                expect(code == 0, f"exit status {code} after {signal.Signals(sig).name}, "
                       f"expected 0\n{srv.output()}")
                expect_exit_in_time(took, bound, f"{n_clients} clients")
                print(f"# exited {took:.2f}s after the signal (bound {bound:.2f} s)",
                      flush=True)
        return check

    def raw_client_sees_1001_then_eof():
        with start(binary) as srv:
            bound = exit_bound(srv.port)
            with support.raw_ws(srv.port, timeout=HANG_S) as ws:
                ws.send_frame(OP_TEXT, b"x")
                op, _, _ = ws.recv_message()
                expect(op == OP_TEXT, "echo before the signal")
                started = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    f = ws.recv_frame(timeout=HANG_S)
                except (support.timed_out, support.connection_closed) as e:
                    fail(f"SIGTERM: expected close 1001 on a raw connection, got "
                         f"{type(e).__name__} {e}")
                expect(f.opcode == OP_CLOSE and f.close_code() == 1001,
                       f"SIGTERM: expected close 1001, got {f}")
                expect(not f.masked, f"server close frame is masked: {f}")
                ws.send_frame(OP_CLOSE, support.close_payload(1001))
                try:
                    ws.wait_eof(HANG_S)
                except support.timed_out:
                    fail("SIGTERM: TCP still open after the close handshake")
            code = srv.stop(timeout=HANG_S)
            expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")
            expect_exit_in_time(time.monotonic() - started, bound, "a raw client")

    def raw_client_that_never_answers():
        # The drain must not wait forever for a client that ignores the close frame.
        with start(binary) as srv:
            bound = exit_bound(srv.port)
            ws = support.raw_ws(srv.port, timeout=HANG_S)
            with ws:
                started = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    code = srv.proc.wait(timeout=HANG_S)
                except Exception:
                    fail(f"ringcastd waited more than {HANG_S}s for a client that never "
                         f"answers the close\n{srv.output()}")
                took = time.monotonic() - started
                expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")
                expect_exit_in_time(took, bound, "a client that never answers the close")

    def half_open_handshake_does_not_block_exit():
        with start(binary) as srv:
            bound = exit_bound(srv.port)
            ws = support.raw_ws(srv.port, handshake=False, timeout=HANG_S)
            with ws:
                ws.send(b"GET /echo HTTP/1.1\r\n")
                started = time.monotonic()
                code = srv.stop(timeout=HANG_S)
                expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")
                expect_exit_in_time(time.monotonic() - started, bound,
                                    "a half-received handshake")

    def idle_server_exits(sig):
        def check():
            with start(binary) as srv:
                bound = exit_bound(srv.port)
                started = time.monotonic()
                code = srv.stop(sig, timeout=HANG_S)
                expect(code == 0, f"exit status {code} after {signal.Signals(sig).name}\n"
                       f"{srv.output()}")
                expect_exit_in_time(time.monotonic() - started, bound, "no clients")
        return check

    return [
        ("SIGTERM with no clients → exit 0", idle_server_exits(signal.SIGTERM)),
        ("SIGINT with no clients → exit 0", idle_server_exits(signal.SIGINT)),
        ("SIGTERM: 20 websockets clients get close 1001, exit 0",
         signal_closes_clients_with_1001(signal.SIGTERM, 20)),
        ("SIGINT: 3 websockets clients get close 1001, exit 0",
         signal_closes_clients_with_1001(signal.SIGINT, 3)),
        ("SIGTERM: raw client gets an unmasked close 1001, then EOF after its reply",
         raw_client_sees_1001_then_eof),
        ("SIGTERM: a client that never answers the close does not block the exit",
         raw_client_that_never_answers),
        ("SIGTERM: a half-received handshake does not block the exit",
         half_open_handshake_does_not_block_exit),
    ]


def main():
    binary = support.binary_from_argv()
    return support.run_cases(cases(binary), "ringcastd shutdown on signals")


if __name__ == "__main__":
    sys.exit(main())
