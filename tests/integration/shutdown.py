#!/usr/bin/python3
"""SIGTERM / SIGINT: connected clients get close 1001 and ringcastd exits 0 within ~2 s.

Usage: shutdown.py PATH/TO/ringcastd
Each check starts its own server, because each one ends it.
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

EXIT_BUDGET_S = 5.0  # contract: ~2 s; the rest is slack for a loaded CI host


def cases(binary):
    def signal_closes_clients_with_1001(sig, n_clients):
        async def check():
            with support.server(binary) as srv:
                clients = [await websockets.connect(f"ws://127.0.0.1:{srv.port}/echo",
                                                    open_timeout=5, close_timeout=3,
                                                    ping_interval=None)
                           for _ in range(n_clients)]
                for i, ws in enumerate(clients):
                    await ws.send(f"hello {i}")
                    expect(await asyncio.wait_for(ws.recv(), 5) == f"hello {i}", "echo")
                started = time.monotonic()
                srv.proc.send_signal(sig)

                async def closed_code(ws):
                    try:
                        got = await asyncio.wait_for(ws.recv(), EXIT_BUDGET_S)
                        return f"a message {got!r} instead of a close"
                    except ConnectionClosed as e:
                        return e.rcvd.code if e.rcvd else f"no close frame ({e})"
                    except asyncio.TimeoutError:
                        return f"nothing within {EXIT_BUDGET_S}s"

                codes = await asyncio.gather(*(closed_code(ws) for ws in clients))
                bad = [(i, c) for i, c in enumerate(codes) if c != 1001]
                expect(not bad, f"{signal.Signals(sig).name}: clients that did not get "
                       f"close 1001 (index, what they got): {bad[:10]}")
                loop = asyncio.get_running_loop()
                try:
                    code = await loop.run_in_executor(
                        None, lambda: srv.proc.wait(timeout=EXIT_BUDGET_S))
                except Exception:
                    fail(f"ringcastd still running {EXIT_BUDGET_S}s after "
                         f"{signal.Signals(sig).name}\n{srv.output()}")
                expect(code == 0, f"exit status {code} after {signal.Signals(sig).name}, "
                       f"expected 0\n{srv.output()}")
                print(f"     exited {time.monotonic() - started:.2f}s after the signal",
                      flush=True)
        return check

    def raw_client_sees_1001_then_eof():
        with support.server(binary) as srv:
            with support.raw_ws(srv.port) as ws:
                ws.send_frame(OP_TEXT, b"x")
                op, _, _ = ws.recv_message()
                expect(op == OP_TEXT, "echo before the signal")
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    f = ws.recv_frame(timeout=EXIT_BUDGET_S)
                except (support.timed_out, support.connection_closed) as e:
                    fail(f"SIGTERM: expected close 1001 on a raw connection, got "
                         f"{type(e).__name__} {e}")
                expect(f.opcode == OP_CLOSE and f.close_code() == 1001,
                       f"SIGTERM: expected close 1001, got {f}")
                expect(not f.masked, f"server close frame is masked: {f}")
                ws.send_frame(OP_CLOSE, support.close_payload(1001))
                try:
                    ws.wait_eof(EXIT_BUDGET_S)
                except support.timed_out:
                    fail("SIGTERM: TCP still open after the close handshake")
            code = srv.stop(timeout=EXIT_BUDGET_S)
            expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")

    def raw_client_that_never_answers():
        # The drain must not wait forever for a client that ignores the close frame.
        with support.server(binary) as srv:
            ws = support.raw_ws(srv.port)
            with ws:
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    code = srv.proc.wait(timeout=EXIT_BUDGET_S)
                except Exception:
                    fail(f"ringcastd waited more than {EXIT_BUDGET_S}s for a client that "
                         f"never answers the close\n{srv.output()}")
                expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")

    def half_open_handshake_does_not_block_exit():
        with support.server(binary) as srv:
            ws = support.raw_ws(srv.port, handshake=False)
            with ws:
                ws.send(b"GET /echo HTTP/1.1\r\n")
                code = srv.stop(timeout=EXIT_BUDGET_S)
                expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")

    def idle_server_exits(sig):
        def check():
            with support.server(binary) as srv:
                code = srv.stop(sig, timeout=EXIT_BUDGET_S)
                expect(code == 0, f"exit status {code} after {signal.Signals(sig).name}\n"
                       f"{srv.output()}")
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
