#!/usr/bin/python3
"""What `POST /api/broadcast` answers (docs/protocol.md "Backend API": `{"ok":true,
"connections":N}` to every connection, `{"ok":true,"results":[…]}` with `"channels"`),
checked against numbers this script set up, not against the server's counters.

Server: `--shards 2 --insecure --echo /echo`. Five pub/sub connections (user u1 twice,
u2, two anonymous), one echo client and the API's own HTTP connection.

* To every connection: exactly `{"ok":true,"connections":5}` (the echo client and the
  HTTP connection are not pub/sub connections); each of the five gets the message once,
  with the event, data and priority sent (priority 3 when none is given), the echo
  client nothing; after one closes, exactly 4.
* To a channel list: `bx-a` published 3 times before, `bx-b` once, `bx-c` never,
  `bx-empty` never and without subscribers: `["bx-a","bx-b","bx-c","bx-empty"]` answers
  exactly `{"ok":true,"results":[{"offset":4},{"offset":2},{"offset":1},{"offset":1}]}`
  (one result per listed channel, in list order, each the channel's next offset); each
  subscriber gets it once per channel it is on, at that offset; `GET
  /api/channels/bx-empty` shows offset 1 and 0 subscribers; a list of one still answers
  the `results` shape.
* Refusals: an empty list, a bad name (the message names `channels[1]`), 1001 channels,
  a `messages` batch: 400 with the error body; GET: 405; nobody receives anything.
* `id` is unique per message (docs/protocol.md "Server → client"): two broadcasts to
  every connection sent at the same moment through API connections on the two shards
  (their request counters brought level first) carry different ids, 150 times.

Usage: broadcast_results.py PATH/TO/ringcastd. Exits 77 without python3-websockets.
"""

import asyncio
import collections
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")

SHARDS = 2
PAIRS = 150


def expect_400(r, what, mentions=None):
    err = (r.json or {}).get("error") if isinstance(r.json, dict) else None
    expect(r.status == 400 and isinstance(err, dict) and err.get("code") == 400,
           f"{what}: expected 400 with an error body, got {r}")
    if mentions:
        expect(mentions in err.get("message", ""), f"{what}: message {err.get('message')!r} "
               f"does not name {mentions}")


def cases(binary):
    async def setup(srv):
        users = ["u1", "u1", "u2", None, None]
        clients = [await pubsub_client.connect(srv.port, user=u) for u in users]
        echo = await websockets.connect(f"ws://{support.LOOPBACK}:{srv.port}/echo",
                                        open_timeout=10, ping_interval=None)
        await echo.send("hello")
        expect(await asyncio.wait_for(echo.recv(), 10) == "hello", "echo")
        await quiet_for(clients, 0.05)
        return clients, echo

    async def to_every_connection():
        with support.server(binary, ["--shards", str(SHARDS), "--insecure"]) as srv:
            clients, echo = await setup(srv)
            api = support.api_client(srv.port)
            body = {"event": "all", "data": {"b": [1, "x"]}, "priority": 2}
            r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast", body)
            expect(r == {"ok": True, "connections": 5},
                   f"broadcast to every connection: {r}, expected connections 5 (5 pub/sub "
                   f"connections; the echo client and this HTTP connection are not)")
            r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast", {"data": 7})
            expect(r == {"ok": True, "connections": 5}, f"second broadcast: {r}")
            await quiet_for(clients)
            for k, c in enumerate(clients):
                got = [(c.parsed(i)["event"], c.parsed(i)["data"], c.parsed(i)["priority"])
                       for i in range(len(c.messages))]
                expect(got == [("all", {"b": [1, "x"]}, 2), ("message", 7, 3)],
                       f"connection {k}: {got}")
            await echo.send("still echo")
            expect(await asyncio.wait_for(echo.recv(), 10) == "still echo",
                   "the echo client got something other than its echo")
            await clients[4].close()
            await clients[4].wait_closed()
            # The server tears the session down when the close handshake ends; a broadcast
            # racing that may still count it, so wait (bounded) for a count of 4.
            deadline = time.monotonic() + 10
            counts = []
            while True:
                r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast", {"data": "after"})
                counts.append(r.get("connections"))
                if r.get("connections") != 5 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            expect(counts[-1] == 4 and set(counts) <= {4, 5},
                   f"broadcasts after one of 5 closed answered connections {counts}")
            await quiet_for(clients[:4])
            for k, c in enumerate(clients[:4]):
                expect(len(c.messages) == 2 + len(counts),
                       f"connection {k}: {len(c.messages)} messages for {2 + len(counts)} "
                       f"broadcasts")
            await echo.close()
            for c in clients[:4]:
                await c.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def to_channel_list():
        with support.server(binary, ["--shards", str(SHARDS), "--insecure"]) as srv:
            clients, echo = await setup(srv)
            subs = {0: ["bx-a", "bx-b"], 1: ["bx-a"], 2: ["bx-c"], 3: [], 4: []}
            for k, chans in subs.items():
                for ch in chans:
                    await clients[k].subscribe(ch)
            api = support.api_client(srv.port)
            for ch, n in (("bx-a", 3), ("bx-b", 1)):
                for i in range(n):
                    await asyncio.to_thread(api.publish, ch, {"pre": i})
            await quiet_for(clients)
            before = [len(c.messages) for c in clients]
            names = ["bx-a", "bx-b", "bx-c", "bx-empty"]
            r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast",
                                        {"channels": names, "event": "some", "data": {"s": 1},
                                         "priority": 1})
            want = {"ok": True, "results": [{"offset": 4}, {"offset": 2}, {"offset": 1},
                                            {"offset": 1}]}
            expect(r == want, f"broadcast to {names}: {r}, expected {want}")
            await quiet_for(clients)
            offsets = dict(zip(names, (4, 2, 1, 1)))
            for k, c in enumerate(clients):
                got = sorted((c.parsed(i)["channel"], c.parsed(i)["offset"])
                             for i in range(before[k], len(c.messages)))
                want_k = sorted((ch, offsets[ch]) for ch in subs[k])
                expect(got == want_k, f"connection {k} (on {subs[k]}): got {got}, expected "
                       f"{want_k}")
                for i in range(before[k], len(c.messages)):
                    m = c.parsed(i)
                    expect(m["event"] == "some" and m["data"] == {"s": 1} and m["priority"] == 1
                           and m["userId"] is None, f"connection {k}: {m}")
            info = await asyncio.to_thread(api.ok, "GET", "/api/channels/bx-empty")
            expect(info.get("offset") == 1 and info.get("subscribers") == 0,
                   f"/api/channels/bx-empty after the broadcast: {info}")
            r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast",
                                        {"channels": ["bx-c"], "data": 2})
            expect(r == {"ok": True, "results": [{"offset": 2}]}, f"a list of one: {r}")
            await clients[2].wait_messages(before[2] + 2, 10, "the second bx-c broadcast")
            await echo.close()
            for c in clients:
                await c.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def refusals():
        with support.server(binary, ["--shards", str(SHARDS), "--insecure"]) as srv:
            clients, echo = await setup(srv)
            await clients[0].subscribe("bx-a")
            api = support.api_client(srv.port)
            r = await asyncio.to_thread(api.request, "POST", "/api/broadcast",
                                        {"channels": [], "data": 1})
            expect_400(r, "an empty channel list")
            r = await asyncio.to_thread(api.request, "POST", "/api/broadcast",
                                        {"channels": ["bx-a", "bad name"], "data": 1})
            expect_400(r, "a bad channel name", "channels[1]")
            r = await asyncio.to_thread(api.request, "POST", "/api/broadcast",
                                        {"channels": [f"c{i}" for i in range(1001)], "data": 1})
            expect_400(r, "1001 channels")
            r = await asyncio.to_thread(api.request, "POST", "/api/broadcast",
                                        {"messages": [{"data": 1}, {"data": 2}]})
            expect_400(r, "a messages batch")
            r = await asyncio.to_thread(api.request, "GET", "/api/broadcast")
            expect(r.status == 405, f"GET /api/broadcast: {r}")
            await quiet_for(clients)
            expect(not any(c.messages for c in clients), "a refused broadcast was delivered")
            await echo.close()
            for c in clients:
                await c.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def ids_unique_across_shards():
        with support.server(binary, ["--shards", str(SHARDS)], echo_path=None) as srv:
            sub = await pubsub_client.connect(srv.port)
            await sub.ok("ping")
            probe = support.api_client(srv.port)

            def per_shard():
                return [s["connections"] for s in probe.stats()["shards"]]
            # Two keep-alive API connections on different shards (where one landed is read
            # from the per-shard connection counts).
            conns, tries = {}, 0
            while len(conns) < 2 and tries < 40:
                tries += 1
                a = support.api_client(srv.port)
                before = await asyncio.to_thread(per_shard)
                a.conn.connect()
                await asyncio.sleep(0.05)
                after = await asyncio.to_thread(per_shard)
                grew = [i for i in range(SHARDS) if after[i] > before[i]]
                if len(grew) == 1 and grew[0] not in conns:
                    conns[grew[0]] = a
                else:
                    a.close()
            expect(len(conns) == 2, f"no API connection on each shard after {tries} tries")
            a0, a1 = conns[0], conns[1]

            # Each shard numbers its API requests; bring the two counters level.
            def token_of(raw):
                m = re.match(r'\{"id":"b-(?:\d+-)+(\d+)"', raw)  # the last part
                return int(m.group(1)) if m else None
            for a, tag in ((a0, "t0"), (a1, "t1")):
                await asyncio.to_thread(a.ok, "POST", "/api/broadcast", {"data": tag})
            await quiet_for([sub])
            tok = {json.loads(raw)["data"]: token_of(raw) for raw, _, _ in sub.messages}
            expect(None not in tok.values(), f"broadcast ids: {[m[0][:40] for m in sub.messages]}")
            diff = tok["t1"] - tok["t0"]
            for _ in range(abs(diff)):
                await asyncio.to_thread((a0 if diff > 0 else a1).stats)
            sub.messages.clear()

            def pairs():
                for i in range(PAIRS):
                    bar = threading.Barrier(2, timeout=10)

                    def go(a, tag):
                        bar.wait()
                        a.ok("POST", "/api/broadcast", {"data": tag})
                    ts = [threading.Thread(target=go, args=(a, f"{i}-{k}"))
                          for k, a in enumerate((a0, a1))]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join(30)
            await asyncio.to_thread(pairs)
            await sub.wait_messages(2 * PAIRS, 30, "broadcasts")
            await quiet_for([sub])
            ids = [json.loads(raw)["id"] for raw, _, _ in sub.messages]
            dups = [i for i, n in collections.Counter(ids).items() if n > 1]
            for a in (a0, a1, probe):
                a.close()
            await sub.close()
            srv.stop_and_expect_clean_exit()
            expect(not dups, f"{len(dups)} of {len(ids)} broadcast message ids were given to two "
                   f"different messages (e.g. {dups[:3]}): a broadcast's id is built from the "
                   f"answering shard's millisecond clock and its own request counter, so two "
                   f"shards produce the same id; docs/protocol.md says ids are unique per "
                   f"message")

    return [
        ("to every connection: connections = the 5 pub/sub connections, then 4",
         to_every_connection),
        ("to a channel list: results = each listed channel's next offset, in order",
         to_channel_list),
        ("refusals: empty list, bad name, 1001 channels, batch, GET", refusals),
        (f"message ids unique: {PAIRS} pairs of simultaneous broadcasts from two shards",
         ids_unique_across_shards),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"/api/broadcast results (websockets "
                               f"{websockets.__version__})", case_timeout=120))
