#!/usr/bin/python3
"""Echo, ping/pong, close codes and the message-size limit, seen by Python `websockets`.

Usage: python_ws.py PATH/TO/ringcastd
The client is Debian's python3-websockets (10.x), a library nobody here wrote. Fails
when it is missing. Two servers: one with defaults, one with --max-message-bytes 1024.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SMALL_LIMIT = 1024
MIB = 1 << 20


def connect(port, **kw):
    # ping_interval=None: the client must not send keepalive pings of its own, so what we
    # see is exactly what the checks sent. max_size=None: accept 1 MiB echoes.
    opts = dict(open_timeout=5, close_timeout=3, ping_interval=None, max_size=None)
    opts.update(kw)
    return websockets.connect(f"ws://127.0.0.1:{port}/echo", **opts)


async def echo_one(ws, message, timeout=10):
    await ws.send(message)
    got = await asyncio.wait_for(ws.recv(), timeout)
    expect(type(got) is type(message),
           f"sent a {type(message).__name__} message, got a {type(got).__name__} back")
    expect(got == message, f"echo differs: sent {len(message)} units "
           f"{support.short(message if isinstance(message, bytes) else message.encode())}, got "
           f"{len(got)} {support.short(got if isinstance(got, bytes) else got.encode())}")


def cases(port, small_port):
    async def text_echo():
        async with connect(port) as ws:
            await echo_one(ws, "hello, ringcast")
            await echo_one(ws, "κόσμε — ünïcödé ✓ 😀")
            await echo_one(ws, "")

    async def binary_echo():
        async with connect(port) as ws:
            await echo_one(ws, bytes(range(256)))
            await echo_one(ws, b"\x00\xff\x00")
            await echo_one(ws, b"")

    async def text_1mib():
        async with connect(port) as ws:
            # Multi-byte characters so a UTF-8 boundary falls at every buffer offset.
            chunk = "abcé€😀"
            text = (chunk * (MIB // len(chunk.encode()) + 1)).encode()[:MIB]
            text = text.decode("utf-8", "ignore")  # trim a possibly cut last character
            await echo_one(ws, text, timeout=20)

    async def binary_1mib():
        async with connect(port) as ws:
            await echo_one(ws, os.urandom(MIB), timeout=20)

    async def pipelined():
        async with connect(port) as ws:
            sent = [f"message {i:05d} " + "x" * (i % 300) for i in range(2000)]
            for m in sent:
                await ws.send(m)
            for i, m in enumerate(sent):
                got = await asyncio.wait_for(ws.recv(), 10)
                expect(got == m, f"pipelined message {i}: expected {m[:40]!r}, got {got[:40]!r}")

    async def mixed_types_in_order():
        async with connect(port) as ws:
            sent = [("t%d" % i) if i % 2 else bytes([i % 256]) * (i + 1) for i in range(200)]
            for m in sent:
                await ws.send(m)
            for i, m in enumerate(sent):
                got = await asyncio.wait_for(ws.recv(), 10)
                expect(got == m, f"message {i}: expected {m!r:.40}, got {got!r:.40}")

    async def ping_pong():
        async with connect(port) as ws:
            for payload in (b"", b"ping-payload", os.urandom(125)):
                waiter = await ws.ping(payload)
                try:
                    await asyncio.wait_for(waiter, 5)
                except asyncio.TimeoutError:
                    fail(f"no pong for a ping with payload {support.short(payload)} in 5s")
            # A ping in the middle of traffic does not disturb the echo order.
            await ws.send("before")
            waiter = await ws.ping(b"mid")
            await ws.send("after")
            expect(await asyncio.wait_for(ws.recv(), 5) == "before", "echo order around a ping")
            expect(await asyncio.wait_for(ws.recv(), 5) == "after", "echo order around a ping")
            await asyncio.wait_for(waiter, 5)

    def close_round_trip(code, reason):
        async def check():
            ws = await connect(port)
            # Record the server's FIN as the transport delivers it: after close() the
            # client is closed either way (it aborts by itself once close_timeout runs
            # out), so only this says that the server closed the TCP connection.
            fin = []
            eof_received = ws.eof_received
            ws.eof_received = lambda: (fin.append(True), eof_received())[1]
            await echo_one(ws, "still open")
            await asyncio.wait_for(ws.close(code=code, reason=reason), 5)
            expect(ws.close_rcvd is not None,
                   f"closed with {code}: the server sent no close frame back")
            expect(ws.close_rcvd.code == code,
                   f"closed with {code}: the server's close carried {ws.close_rcvd.code}")
            expect(fin, f"closed with {code}: the server answered the close frame but never "
                        "closed the TCP connection (the client gave up waiting)")
        return check

    async def too_big_closes_1009():
        async with connect(small_port) as ws:
            await echo_one(ws, "x" * SMALL_LIMIT)  # exactly at the limit: allowed
            await echo_one(ws, b"\x01" * SMALL_LIMIT)
            await ws.send(b"\x02" * (SMALL_LIMIT + 1))
            try:
                got = await asyncio.wait_for(ws.recv(), 5)
                fail(f"a {SMALL_LIMIT + 1}-byte message with --max-message-bytes "
                     f"{SMALL_LIMIT} was answered with {support.short(got)}, expected close 1009")
            except ConnectionClosed as e:
                expect(e.rcvd is not None and e.rcvd.code == 1009,
                       f"expected close 1009 for a too-big message, got {e.rcvd}")
            except asyncio.TimeoutError:
                fail("no close within 5s after a too-big message")

    async def too_big_text_closes_1009():
        async with connect(small_port) as ws:
            await ws.send("y" * (4 * SMALL_LIMIT))
            try:
                await asyncio.wait_for(ws.recv(), 5)
                fail("too-big text message was echoed")
            except ConnectionClosed as e:
                expect(e.rcvd is not None and e.rcvd.code == 1009,
                       f"expected close 1009 for a too-big text message, got {e.rcvd}")

    async def fragmented_too_big_closes_1009():
        # websockets sends an iterable as one fragmented message: the limit applies to the
        # whole message, not to each frame.
        async with connect(small_port) as ws:
            await ws.send(iter([b"a" * 600, b"b" * 424]))  # 1024 in total: allowed
            got = await asyncio.wait_for(ws.recv(), 5)
            expect(got == b"a" * 600 + b"b" * 424, f"fragmented 1024-byte echo: {len(got)} bytes")
            await ws.send(iter([b"a" * 600, b"b" * 600]))
            try:
                got = await asyncio.wait_for(ws.recv(), 5)
                fail(f"two 600-byte fragments with --max-message-bytes {SMALL_LIMIT} were "
                     f"echoed ({len(got)} bytes), expected close 1009")
            except ConnectionClosed as e:
                expect(e.rcvd is not None and e.rcvd.code == 1009,
                       f"expected close 1009 for a too-big fragmented message, got {e.rcvd}")

    async def many_connections_at_once():
        async def one(i):
            async with connect(port) as ws:
                await echo_one(ws, f"client {i}")
        await asyncio.gather(*(one(i) for i in range(100)))

    result = [
        ("text echo (ascii, multi-byte, empty)", text_echo),
        ("binary echo (all byte values, empty)", binary_echo),
        ("1 MiB text message echoed", text_1mib),
        ("1 MiB binary message echoed", binary_1mib),
        ("2000 pipelined text messages echoed in order", pipelined),
        ("200 alternating text/binary messages echoed in order with their types",
         mixed_types_in_order),
        ("ping is answered by a pong (empty, short, 125-byte payloads)", ping_pong),
        ("100 simultaneous connections each get their echo", many_connections_at_once),
    ]
    for code, reason in ((1000, ""), (1000, "bye"), (1001, "going"), (1003, ""),
                         (3000, "app"), (4999, "last private code")):
        result.append((f"client close {code} {reason!r} is answered with close {code}",
                       close_round_trip(code, reason)))
    result += [
        (f"--max-message-bytes {SMALL_LIMIT}: at the limit echoed, one byte more → close 1009",
         too_big_closes_1009),
        (f"--max-message-bytes {SMALL_LIMIT}: 4x too-big text → close 1009",
         too_big_text_closes_1009),
        (f"--max-message-bytes {SMALL_LIMIT}: fragmented 1024 echoed, 2 x 600 → close 1009",
         fragmented_too_big_closes_1009),
    ]
    return result


def main():
    binary = support.binary_from_argv()
    with support.server(binary) as srv, \
            support.server(binary, ["--max-message-bytes", str(SMALL_LIMIT)]) as small:
        all_cases = cases(srv.port, small.port)
        all_cases.append(("default server exits 0 on SIGTERM", srv.stop_and_expect_clean_exit))
        all_cases.append(("--max-message-bytes server exits 0 on SIGTERM",
                          small.stop_and_expect_clean_exit))
        return support.run_cases(all_cases, "python websockets against ringcastd --echo")


if __name__ == "__main__":
    sys.exit(main())
