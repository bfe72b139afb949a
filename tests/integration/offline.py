#!/usr/bin/python3
"""Offline messages per user (docs/protocol.md "Offline messages"): what is sent to
user:<id> while the user has no connection is kept on the channel's home shard and
delivered, in order, to the user's first connection; Python `websockets` clients, users by
`?user=` (`--insecure`).

Servers `--shards 2` (default --offline-messages 100), `--offline-messages 5
--offline-ttl-s 1`, and `--offline-messages 0`:

* 3 messages sent to an offline user arrive on its first connection, in order, then live
  ones; a second connection does not get them again; after a reconnect nothing is replayed
  that the user already got; users homed on both shards; offline_delivered counts them;
* the count keeps the newest 5 of 8; the ttl drops them after 1 s;
* 0 turns it off.

Usage: offline.py PATH/TO/ringcastd. Fails without python3-websockets.
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")


def user_homed_on(shard, shards, prefix):
    return support.homed_on(shard, shards, lambda i: f"{prefix}{i}", key=lambda u: "user:" + u)


def send(api, user, n):
    return api.ok("POST", "/api/send", {"userId": user, "event": "note", "data": {"n": n}})


def data_of(c):
    return [json.loads(raw)["data"]["n"] for raw, _, _ in c.messages]


async def settle_then(c, n, timeout=10.0):
    await c.wait_messages(n, timeout=timeout)
    await asyncio.sleep(0.2)  # anything extra would arrive now


def main():
    binary = support.binary_from_argv()
    servers = {
        "default": support.server(binary, ["--shards", "2", "--insecure"], echo_path=None),
        "small": support.server(binary, ["--shards", "2", "--insecure", "--offline-messages", "5",
                                         "--offline-ttl-s", "1"], echo_path=None),
        "off": support.server(binary, ["--shards", "2", "--insecure", "--offline-messages", "0"],
                              echo_path=None),
    }
    port = servers["default"].port
    api = support.api_client(port)

    async def kept_then_delivered_once():
        before = api.stats()["total"]["offline_delivered"]
        for shard in (0, 1):
            user = user_homed_on(shard, 2, f"off{shard}-")
            for n in (1, 2, 3):
                send(api, user, n)
            c = await pubsub_client.connect(port, user=user)
            await settle_then(c, 3)
            expect(data_of(c) == [1, 2, 3], f"{user}: first connection got {data_of(c)}")
            offsets = [json.loads(raw)["offset"] for raw, _, _ in c.messages]
            expect(offsets == [1, 2, 3], f"{user}: offsets {offsets}")
            send(api, user, 4)
            await settle_then(c, 4)
            expect(data_of(c) == [1, 2, 3, 4], f"{user}: then live: {data_of(c)}")
            second = await pubsub_client.connect(port, user=user)
            await second.ok("ping")
            send(api, user, 5)
            await settle_then(second, 1)
            expect(data_of(second) == [5], f"{user}: a second connection: {data_of(second)}")
            await c.ws.close()
            await second.ws.close()
            # Gone and back: nothing it already had is replayed; what came meanwhile is.
            await asyncio.sleep(0.3)
            send(api, user, 6)
            again = await pubsub_client.connect(port, user=user)
            await settle_then(again, 1)
            expect(data_of(again) == [6], f"{user}: after a reconnect: {data_of(again)}")
            await again.ws.close()
        after = api.stats()["total"]["offline_delivered"]
        expect(after - before == 8, f"offline_delivered {before} -> {after}, expected +8")

    async def count_and_ttl_bound_them():
        p = servers["small"].port
        small = support.api_client(p)
        for n in range(1, 9):
            send(small, "counted", n)
        c = await pubsub_client.connect(p, user="counted")
        await settle_then(c, 5)
        expect(data_of(c) == [4, 5, 6, 7, 8], f"the newest 5 of 8: {data_of(c)}")
        await c.ws.close()
        send(small, "aged", 1)
        # Kept at least 1 whole second, gone before 2: 2.5 s is past it however the
        # seconds fall (a semantic bound, not a speed check).
        time.sleep(2.5)
        c = await pubsub_client.connect(p, user="aged")
        await c.ok("ping")
        await asyncio.sleep(0.3)
        expect(data_of(c) == [], f"older than the ttl: {data_of(c)}")
        await c.ws.close()
        small.close()

    async def zero_turns_it_off():
        p = servers["off"].port
        off = support.api_client(p)
        send(off, "nobody", 1)
        c = await pubsub_client.connect(p, user="nobody")
        await c.ok("ping")
        await asyncio.sleep(0.3)
        expect(data_of(c) == [], f"--offline-messages 0: {data_of(c)}")
        await c.ws.close()
        off.close()

    try:
        status = support.run_cases([
            ("sent while offline: delivered in order to the first connection, once",
             kept_then_delivered_once),
            ("--offline-messages keeps the newest, --offline-ttl-s drops the old",
             count_and_ttl_bound_them),
            ("--offline-messages 0 keeps nothing", zero_turns_it_off),
        ], title="offline messages per user")
        for name, s in servers.items():
            expect(s.alive(), f"server {name} died: {s.output()}")
    finally:
        api.close()
        for s in servers.values():
            s.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
