#!/usr/bin/python3
"""permessage-deflate (RFC 7692) on /ws and the echo endpoint, seen from outside.

Usage: deflate.py PATH/TO/ringcastd
Clients nobody here wrote (Python `websockets`, which offers permessage-deflate by default)
and raw sockets (to see RSV1 and the compressed bytes on the wire, and to send what no
real client sends: a decompression bomb, broken deflate data):
  * negotiation: the 101 answers websockets' offer with server_no_context_takeover and
    websockets agrees; server_max_window_bits / client_max_window_bits / client_no_context_
    takeover echoed; a malformed header or an offer with an unknown parameter gets a 101
    without the extension; --permessage-deflate=off answers no extension at all;
  * a channel message of at least --deflate-threshold-bytes reaches a raw subscriber
    compressed (RSV1, inflates with Python's zlib to the same envelope a subscriber without
    deflate gets), a shorter one uncompressed; 60 websockets subscribers on 2 shards all get
    every large message intact while the server compressed each message at most once per
    shard (deflate_compressions);
  * a client whose server_max_window_bits is 9 gets a 2 KB message uncompressed and a
    400-byte one compressed (the shared frame fits its window only then);
  * a compressed publish from websockets (context takeover, several messages) and from a
    raw client (no context takeover) is delivered; counters in /api/stats and /metrics;
  * a decompression bomb (a few KB inflating to 64 MiB) is closed with 1009, the server's
    RSS stays bounded over 20 bombs; invalid deflate data → 1007; invalid UTF-8 once inflated
    → 1007; RSV1 on a connection that did not negotiate, or on a continuation → 1002;
  * --deflate-memory-budget-bytes: offers past the budget are declined (counted), offers
    with client_no_context_takeover cost nothing and are still accepted.
Fails when python3-websockets is missing.
"""

import asyncio
import json
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

BINARY = support.binary_from_argv()
OFFER = "Sec-WebSocket-Extensions: permessage-deflate"
TAIL = b"\x00\x00\xff\xff"


def deflate(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    expect(out.endswith(TAIL), "zlib sync flush should end in 00 00 ff ff")
    return out[:-4]


def inflate(payload):
    d = zlib.decompressobj(-15)
    return d.decompress(payload + TAIL)


def extensions_of(head):
    fields = support.parse_header_fields(head.partition(b"\r\n")[2])
    return fields.get("sec-websocket-extensions")


def big_data(n):
    """A JSON value of about n bytes that looks like a real feed (compresses ~5-10x)."""
    rows = []
    i = 0
    while sum(len(r) for r in rows) < n:
        rows.append('{"sym":"ACME%d","px":%d.%02d,"qty":%d}' % (i % 9, 100 + i % 17, i % 100,
                                                                 i * 7 % 1000))
        i += 1
    return "[" + ",".join(rows) + "]"


def raw_sub(port, channel, user, headers=(OFFER,)):
    c = support.raw_ws(port, path=f"/ws?user={user}", headers=list(headers))
    c.send_frame(support.OP_TEXT, json.dumps({"op": "subscribe", "channel": channel,
                                              "id": 1}).encode())
    f = c.recv_frame()
    expect(f.opcode == support.OP_TEXT and b'"ok":true' in f.payload,
           f"subscribe reply expected, got {f}")
    return c


def message_of(f):
    """The envelope text of a frame from the server, inflated if RSV1 is set."""
    return inflate(f.payload) if f.rsv == 4 else f.payload


def case_negotiation():
    with support.server(BINARY, ["--insecure"]) as srv:
        cases = [
            ("permessage-deflate", "permessage-deflate; server_no_context_takeover"),
            ("permessage-deflate; client_max_window_bits",
             "permessage-deflate; server_no_context_takeover"),
            ("permessage-deflate; client_no_context_takeover; server_max_window_bits=10; "
             "client_max_window_bits=\"12\"",
             "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
             "server_max_window_bits=10; client_max_window_bits=12"),
            ("permessage-deflate; bogus=1, permessage-deflate; server_max_window_bits=11",
             "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"),
            ("permessage-deflate; bogus", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; client_max_window_bits=\"10", None),  # malformed
            ("x-webkit-deflate-frame", None),
        ]
        for path in ("/ws?user=n", "/echo"):
            for offer, want in cases:
                with support.raw_ws(srv.port, path=path,
                                    headers=[f"Sec-WebSocket-Extensions: {offer}"]) as c:
                    got = extensions_of(c.response_head)
                    expect(got == want, f"{path} offer {offer!r}: answered {got!r}, "
                                        f"expected {want!r}")
            with support.raw_ws(srv.port, path=path) as c:
                expect(extensions_of(c.response_head) is None,
                       "no offer: the 101 must not name an extension")
        srv.stop_and_expect_clean_exit()


async def case_websockets_agrees():
    with support.server(BINARY, ["--insecure"]) as srv:
        ws = await websockets.connect(support.ws_url(srv.port, "w"), compression="deflate")
        ext = ws.response_headers.get("Sec-WebSocket-Extensions")
        expect(ext == "permessage-deflate; server_no_context_takeover",
               f"websockets' offer answered with {ext!r}")
        expect(len(ws.extensions) == 1 and ws.extensions[0].name == "permessage-deflate",
               f"websockets did not take the extension: {ws.extensions}")
        expect(ws.extensions[0].remote_no_context_takeover,
               "websockets should know the server keeps no context")
        # Echo through the deflate connection, both ways, large and small.
        echo = await websockets.connect(f"ws://127.0.0.1:{srv.port}/echo",
                                        compression="deflate", max_size=None)
        for text in ("hi", big_data(100_000)):
            await echo.send(text)
            expect(await echo.recv() == text, "echo through deflate changed the message")
        await echo.close()
        await ws.close()
        srv.stop_and_expect_clean_exit()


async def case_off():
    with support.server(BINARY, ["--insecure", "--permessage-deflate=off"]) as srv:
        with support.raw_ws(srv.port, path="/ws?user=o", headers=[OFFER]) as c:
            expect(extensions_of(c.response_head) is None,
                   "--permessage-deflate=off: the 101 named an extension")
        ws = await websockets.connect(support.ws_url(srv.port, "o"), compression="deflate")
        expect(not ws.extensions, f"off, but websockets negotiated {ws.extensions}")
        await ws.close()
        srv.stop_and_expect_clean_exit()


def case_broadcast_compressed_and_small_plain():
    with support.server(BINARY, ["--insecure", "--shards", "2"]) as srv:
        api = support.api_client(srv.port)
        z = raw_sub(srv.port, "feed", "z")
        plain = raw_sub(srv.port, "feed", "p", headers=())
        large = big_data(4000)
        api.publish("feed", large)
        fz, fp = z.recv_frame(), plain.recv_frame()
        expect(fz.rsv == 4 and fz.fin, f"large message: expected RSV1 on a final frame, {fz}")
        expect(fp.rsv == 0, f"the subscriber without deflate got RSV bits: {fp}")
        expect(message_of(fz) == fp.payload,
               "the inflated message differs from the uncompressed one")
        support.tap_comment(f"envelope of {len(fp.payload)} B sent as {len(fz.payload)} B "
                            f"compressed ({len(fp.payload) / len(fz.payload):.1f}x)")
        expect(len(fz.payload) * 3 < len(fp.payload), "a JSON feed should compress 3x or more")
        api.publish("feed", {"n": 1})
        fz, fp = z.recv_frame(), plain.recv_frame()
        expect(fz.rsv == 0 and fz.payload == fp.payload,
               f"a message under --deflate-threshold-bytes must go uncompressed: {fz}")
        stats = api.stats()["total"]
        expect(stats["compressed_messages_out"] == 1 and stats["deflate_compressions"] == 1,
               f"counters: {({k: v for k, v in stats.items() if 'compress' in k})}")
        z.close()
        plain.close()
        srv.stop_and_expect_clean_exit()


def case_threshold_zero():
    with support.server(BINARY, ["--insecure", "--deflate-threshold-bytes", "0"]) as srv:
        api = support.api_client(srv.port)
        z = raw_sub(srv.port, "t", "z")
        api.publish("t", {"n": 1})
        f = z.recv_frame()
        expect(f.rsv == 4, f"--deflate-threshold-bytes 0: even a small message compressed, {f}")
        expect(json.loads(message_of(f))["data"] == {"n": 1}, "inflated envelope")
        srv.stop_and_expect_clean_exit()


def case_small_window():
    with support.server(BINARY, ["--insecure"]) as srv:
        api = support.api_client(srv.port)
        c = raw_sub(srv.port, "w9", "s",
                    headers=[OFFER + "; server_max_window_bits=9"])
        expect("server_max_window_bits=9" in (extensions_of(c.response_head) or ""),
               f"window 9 not echoed: {c.response_head!r}")
        api.publish("w9", "x" * 2000)
        f = c.recv_frame()
        expect(f.rsv == 0, f"a 2 KB message does not fit a 512-byte window: sent plain, {f}")
        api.publish("w9", "y" * 300)
        f = c.recv_frame()
        expect(f.rsv == 4, f"a ~400-byte message fits a 512-byte window: compressed, {f}")
        d = zlib.decompressobj(-9)
        expect(json.loads(d.decompress(f.payload + TAIL))["data"] == "y" * 300,
               "inflating with a 9-bit window")
        srv.stop_and_expect_clean_exit()


async def case_many_subscribers():
    with support.server(BINARY, ["--insecure", "--shards", "2"]) as srv:
        api = support.api_client(srv.port)
        subs = [await pubsub_client.connect(srv.port, f"u{i}", compression="deflate")
                for i in range(60)]
        for s in subs:
            await s.command("subscribe", channel="many")
        payloads = [big_data(1000 + 3000 * k) for k in range(5)]
        for p in payloads:
            api.publish("many", json.loads(p))
        deadline = time.monotonic() + 20
        while any(len(s.messages) < len(payloads) for s in subs):
            expect(time.monotonic() < deadline, "not every subscriber got every message")
            await asyncio.sleep(0.05)
        for s in subs:
            got = [s.parsed(i)["data"] for i in range(len(payloads))]
            expect(got == [json.loads(p) for p in payloads], f"{s.user}: messages differ")
        stats = api.stats()["total"]
        expect(stats["compressed_messages_out"] == 60 * len(payloads),
               f"compressed deliveries {stats['compressed_messages_out']}, expected "
               f"{60 * len(payloads)}")
        expect(stats["deflate_compressions"] <= 2 * len(payloads),
               f"compressed {stats['deflate_compressions']} times for {len(payloads)} "
               f"messages on 2 shards: not once per shard")
        for s in subs:
            await s.ws.close()
        srv.stop_and_expect_clean_exit()


async def case_compressed_publish():
    with support.server(BINARY, ["--insecure", "--client-publish", "pub"]) as srv:
        api = support.api_client(srv.port)
        reader = raw_sub(srv.port, "pub:x", "r", headers=())
        # websockets compresses what it sends, keeping its context between messages.
        pub = await pubsub_client.connect(srv.port, "p", compression="deflate")
        for k in range(4):
            data = big_data(2000 + 500 * k)
            reply = await pub.command("publish", channel="pub:x", data=json.loads(data))
            expect(reply.get("ok") is True, f"compressed publish refused: {reply}")
            f = reader.recv_frame()
            expect(json.loads(f.payload)["data"] == json.loads(data), "published data differs")
        await pub.ws.close()
        # A raw client without context takeover.
        with support.raw_ws(srv.port, path="/ws?user=q",
                            headers=[OFFER + "; client_no_context_takeover"]) as q:
            cmd = json.dumps({"op": "publish", "channel": "pub:x", "data": big_data(3000),
                              "id": 5}).encode()
            q.send_frame(support.OP_TEXT, deflate(cmd), rsv=4)
            f = q.recv_frame()
            expect(b'"ok":true' in message_of(f), f"raw compressed publish: {f}")
            # Fragmented: RSV1 on the first frame only.
            z = deflate(cmd.replace(b'"id":5', b'"id":6'))
            q.send_frame(support.OP_TEXT, z[:10], fin=False, rsv=4)
            q.send_frame(support.OP_CONT, z[10:])
            f = q.recv_frame()
            expect(b'"ok":true' in message_of(f), f"fragmented compressed publish: {f}")
        for _ in range(2):
            reader.recv_frame()
        stats = api.stats()["total"]
        expect(stats["compressed_messages_in"] >= 6 and
               stats["inflated_bytes_in"] > stats["compressed_bytes_in"],
               f"inbound counters: {({k: v for k, v in stats.items() if 'in' in k})}")
        metrics = api.request("GET", "/metrics").body.decode()
        for name in ("ringcast_compressed_messages_in_total", "ringcast_deflate_bomb_closes_total",
                     "ringcast_compressed_messages_out_total", "ringcast_deflate_negotiated_total"):
            expect(name in metrics, f"/metrics lacks {name}")
        reader.close()
        srv.stop_and_expect_clean_exit()


def case_bombs_and_bad_data():
    limit = 1 << 20
    with support.server(BINARY, ["--insecure", "--max-message-bytes", str(limit)]) as srv:
        api = support.api_client(srv.port)
        bomb = deflate(b" " * (64 << 20))
        support.tap_comment(f"bomb: {len(bomb)} B inflating to 64 MiB")
        expect(len(bomb) < 128 * 1024, "the bomb should be small")
        rss0 = support.read_rss_kb(srv.proc.pid)
        for i in range(20):
            with support.raw_ws(srv.port, path=f"/ws?user=b{i}", headers=[OFFER]) as c:
                c.send_frame(support.OP_TEXT, bomb, rsv=4)
                op, payload, _ = c.recv_message()
                expect(op == support.OP_CLOSE and payload[:2] == (1009).to_bytes(2, "big"),
                       f"bomb: expected close 1009, got {op} {payload!r}")
        rss1 = support.read_rss_kb(srv.proc.pid)
        support.tap_comment(f"RSS {rss0} KiB → {rss1} KiB over 20 bombs")
        # Under ASan the quarantine keeps what each bomb's inflate freed (80 MiB over the 20
        # in CI's ASan stage): the bound is for the real allocator.
        expect(support.asan_build(BINARY) or rss1 - rss0 < 24 * 1024,
               f"RSS grew by {rss1 - rss0} KiB over 20 bombs")
        # Exactly at the limit, compressed: accepted (echo sends it back).
        with support.raw_ws(srv.port, path="/echo", headers=[OFFER]) as c:
            c.send_frame(support.OP_BINARY, deflate(b"a" * limit), rsv=4)
            op, payload, _ = c.recv_message(timeout=10)
            expect(op == support.OP_BINARY and len(payload) == limit,
                   f"a message inflating to exactly the limit: {op} {len(payload)}")
        bad = [
            ("not deflate data", support.OP_TEXT, b"\xff\xfe\xfd garbage", 4, 1007),
            ("invalid UTF-8 once inflated", support.OP_TEXT, deflate(b"ok \xc3\x28"), 4, 1007),
            ("RSV2", support.OP_TEXT, deflate(b"{}"), 2, 1002),
        ]
        for what, op_, payload_, rsv, code in bad:
            with support.raw_ws(srv.port, path="/ws?user=x", headers=[OFFER]) as c:
                c.send_frame(op_, payload_, rsv=rsv)
                op, payload, _ = c.recv_message()
                expect(op == support.OP_CLOSE and payload[:2] == code.to_bytes(2, "big"),
                       f"{what}: expected close {code}, got {op} {payload!r}")
        with support.raw_ws(srv.port, path="/ws?user=x", headers=[OFFER]) as c:
            c.send_frame(support.OP_TEXT, b"{", fin=False)
            c.send_frame(support.OP_CONT, b"}", rsv=4)
            op, payload, _ = c.recv_message()
            expect(op == support.OP_CLOSE and payload[:2] == (1002).to_bytes(2, "big"),
                   f"RSV1 on a continuation: expected 1002, got {op} {payload!r}")
        with support.raw_ws(srv.port, path="/ws?user=x") as c:  # nothing negotiated
            c.send_frame(support.OP_TEXT, deflate(b"{}"), rsv=4)
            op, payload, _ = c.recv_message()
            expect(op == support.OP_CLOSE and payload[:2] == (1002).to_bytes(2, "big"),
                   f"RSV1 without the extension: expected 1002, got {op} {payload!r}")
        stats = api.stats()["total"]
        expect(stats["deflate_bomb_closes"] == 20 and stats["deflate_invalid_closes"] == 1,
               f"close counters: bombs {stats['deflate_bomb_closes']}, invalid "
               f"{stats['deflate_invalid_closes']}")
        srv.stop_and_expect_clean_exit()


def case_memory_budget():
    # 40 KiB per context-takeover inflater at a 15-bit window: 100 000 B hold two.
    with support.server(BINARY, ["--insecure", "--shards", "1",
                                 "--deflate-memory-budget-bytes", "100000"]) as srv:
        api = support.api_client(srv.port)
        held = [support.raw_ws(srv.port, path=f"/ws?user=m{i}", headers=[OFFER])
                for i in range(3)]
        answered = [extensions_of(c.response_head) for c in held]
        expect(answered[0] and answered[1] and answered[2] is None,
               f"budget for two: answers {answered}")
        with support.raw_ws(srv.port, path="/ws?user=n",
                            headers=[OFFER + "; client_no_context_takeover"]) as c:
            expect(extensions_of(c.response_head) is not None,
                   "client_no_context_takeover costs no budget: must be accepted")
        stats = api.stats()["total"]
        expect(stats["deflate_declined_budget"] == 1, f"declined {stats['deflate_declined_budget']}")
        held[0].close()
        time.sleep(0.3)
        with support.raw_ws(srv.port, path="/ws?user=m9", headers=[OFFER]) as c:
            expect(extensions_of(c.response_head) is not None,
                   "a closed connection gives its budget back")
        for c in held[1:]:
            c.close()
        srv.stop_and_expect_clean_exit()


sys.exit(support.run_cases([
    ("negotiation: offers, parameters, declines", case_negotiation),
    ("websockets negotiates and echoes through deflate", case_websockets_agrees),
    ("--permessage-deflate=off: no extension", case_off),
    ("large broadcast compressed, small plain", case_broadcast_compressed_and_small_plain),
    ("--deflate-threshold-bytes 0", case_threshold_zero),
    ("server_max_window_bits=9 gets what fits", case_small_window),
    ("60 websockets subscribers, once per shard", case_many_subscribers),
    ("compressed publishes (takeover and not)", case_compressed_publish),
    ("bombs 1009, bad data 1007, RSV misuse 1002", case_bombs_and_bad_data),
    ("--deflate-memory-budget-bytes", case_memory_budget),
], title="permessage-deflate", case_timeout=120))
