#!/usr/bin/python3
"""Acknowledged delivery (docs/protocol.md "Acks"): messages of a namespace marked `ack`,
and priority-1 messages to user:<id>, wait for the client's {"op":"ack"}; unacknowledged
after --ack-timeout-ms they are sent again on that connection, once; a user: message never
acknowledged is sent again to the user's next connection; a client that never acks is
closed like a slow consumer. Python `websockets` clients, users by `?user=` (`--insecure`).

Servers `--shards 2 --namespace orders:history=100,ack --ack-timeout-ms 300` (channels and
users homed on both shards), and the same with `--slow-consumer-bytes 65536`:

* 3 messages, ack through 2: only the 3rd comes again, exactly once, after the timeout;
  then ack 3 empties the window (ack_pending, acked, ack_resent in /api/stats);
* refusals: ack on a channel not subscribed (404), on a namespace without acks (400), a
  missing offset (400);
* user: critical messages: a connection dropped without a close gets its unacknowledged
  critical message again on the next connection (not the acknowledged one, not the normal
  one); acknowledged, it is not sent again (ack_replayed);
* recovery in an ack namespace: recovered messages wait for acks as well (resent once);
* a client that never acks: closed 1008 "too many unacknowledged messages" at the byte
  bound (--slow-consumer-bytes) and at 4,096 messages, while one that acks as it goes
  stays open through the same stream (ack_closes).

Usage: acks.py PATH/TO/ringcastd. Fails without python3-websockets.
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

TIMEOUT_MS = 300
MAX_UNACKED = 4096  # acks.h max_unacked_messages


def channel_homed_on(shard, prefix):
    return support.homed_on(shard, 2, lambda i: f"orders:{prefix}{i}")


def user_homed_on(shard, prefix):
    return support.homed_on(shard, 2, lambda i: f"{prefix}{i}", key=lambda u: "user:" + u)


def ns(c):
    return [c.parsed(i)["data"]["n"] for i in range(len(c.messages))]


def offsets(c):
    return [c.parsed(i)["offset"] for i in range(len(c.messages))]


async def quiet(seconds):
    await asyncio.sleep(seconds)


async def gone(api, user, timeout=10.0):
    """Waits until the server has no connection of `user` any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        online = api.ok("GET", "/api/online")
        users = online.get("users", online)
        names = [u.get("userId") if isinstance(u, dict) else u for u in users] \
            if isinstance(users, list) else list(users)
        if user not in names:
            return
        await asyncio.sleep(0.05)
    support.fail(f"{user} still online after {timeout}s")


def main():
    binary = support.binary_from_argv()
    base = ["--shards", "2", "--insecure", "--namespace", "orders:history=100,ack",
            "--namespace", "plain:history=10", "--ack-timeout-ms", str(TIMEOUT_MS)]
    servers = {
        "acks": support.server(binary, base, echo_path=None),
        "tight": support.server(binary, base + ["--slow-consumer-bytes", "65536"],
                                echo_path=None),
    }
    port = servers["acks"].port
    api = support.api_client(port)

    def publish(channel, n, a=None, **extra):
        return (a or api).ok("POST", "/api/publish",
                             {"channel": channel, "event": "order", "data": {"n": n}, **extra})

    async def resent_once_after_the_timeout():
        for shard in (0, 1):
            channel = channel_homed_on(shard, "once")
            before = api.stats()["total"]
            c = await pubsub_client.connect(port, user=f"buyer{shard}")
            await c.subscribe(channel)
            for n in (1, 2, 3):
                publish(channel, n)
            await c.wait_messages(3)
            reply = await c.ok("ack", channel=channel, offset=2)
            expect(reply.get("acked") == 2, f"{channel}: ack through 2 answered {reply}")
            await c.wait_messages(4, timeout=10.0, what="messages (the resend)")
            expect(ns(c)[3] == 3 and offsets(c)[3] == 3,
                   f"{channel}: the resend is message 3 at offset 3: {ns(c)} {offsets(c)}")
            # Once: nothing more however long it stays unacknowledged.
            await quiet(TIMEOUT_MS * 5 / 1000)
            expect(ns(c) == [1, 2, 3, 3], f"{channel}: got {ns(c)}, expected [1, 2, 3, 3]")
            mid = api.stats()["total"]
            expect(mid["ack_pending"] - before["ack_pending"] == 1,
                   f"ack_pending {before['ack_pending']} -> {mid['ack_pending']}")
            expect(mid["ack_resent"] - before["ack_resent"] == 1,
                   f"ack_resent {before['ack_resent']} -> {mid['ack_resent']}")
            reply = await c.ok("ack", channel=channel, offset=3)
            expect(reply.get("acked") == 1, f"{channel}: ack 3 answered {reply}")
            reply = await c.ok("ack", channel=channel, offset=3)
            expect(reply.get("acked") == 0, f"{channel}: acking again answered {reply}")
            after = api.stats()["total"]
            expect(after["ack_pending"] == before["ack_pending"],
                   f"ack_pending back to {before['ack_pending']}: {after['ack_pending']}")
            expect(after["acked"] - before["acked"] == 3,
                   f"acked {before['acked']} -> {after['acked']}, expected +3")
            await c.ws.close()

    async def refusals_say_why():
        c = await pubsub_client.connect(port, user="refused")
        reply = await c.command("ack", channel="orders:none", offset=1)
        expect(reply.get("ok") is False and reply["error"]["code"] == 404,
               f"ack on a channel not subscribed: {reply}")
        await c.subscribe("plain:1")
        reply = await c.command("ack", channel="plain:1", offset=1)
        expect(reply.get("ok") is False and reply["error"]["code"] == 400 and
               "acks are off" in reply["error"]["message"], f"ack without acks: {reply}")
        reply = await c.command("ack", channel="plain:1")
        expect(reply.get("ok") is False and reply["error"]["message"] == "offset is missing",
               f"ack without offset: {reply}")
        # A message of a namespace without acks is never resent.
        publish("plain:1", 1)
        await c.wait_messages(1)
        await quiet(TIMEOUT_MS * 3 / 1000)
        expect(ns(c) == [1], f"plain:1 got {ns(c)}")
        await c.ws.close()

    async def user_critical_replayed_until_acked():
        before = api.stats()["total"]
        for shard in (0, 1):
            user = user_homed_on(shard, f"crit{shard}-")
            send = lambda n, p: api.ok("POST", "/api/send", {  # noqa: E731
                "userId": user, "event": "alert", "data": {"n": n}, "priority": p})
            c = await pubsub_client.connect(port, user=user)
            await c.ok("ping")
            send(1, 1)
            send(2, 3)
            send(3, 1)
            await c.wait_messages(3)
            expect(ns(c) == [1, 2, 3], f"{user}: live {ns(c)}")
            reply = await c.ok("ack", channel="user:" + user, offset=1)
            expect(reply.get("acked") == 1, f"{user}: ack 1 answered {reply}")
            # Dropped without a close frame, as a killed process or a lost network.
            c.ws.transport.abort()
            await gone(api, user)
            again = await pubsub_client.connect(port, user=user)
            await again.wait_messages(1)
            await quiet(0.2)
            expect(ns(again) == [3] and offsets(again) == [3],
                   f"{user}: the next connection got {ns(again)} at {offsets(again)}, "
                   f"expected only the unacknowledged critical [3]")
            reply = await again.ok("ack", channel="user:" + user, offset=3)
            expect(reply.get("acked") == 1, f"{user}: ack 3 answered {reply}")
            await again.ws.close()
            await gone(api, user)
            third = await pubsub_client.connect(port, user=user)
            await third.ok("ping")
            await quiet(0.3)
            expect(ns(third) == [], f"{user}: acknowledged, yet sent again: {ns(third)}")
            await third.ws.close()
        after = api.stats()["total"]
        expect(after["ack_replayed"] - before["ack_replayed"] == 2,
               f"ack_replayed {before['ack_replayed']} -> {after['ack_replayed']}, expected +2")

    async def recovered_messages_wait_for_acks():
        channel = channel_homed_on(1, "recover")
        first = await pubsub_client.connect(port, user="recoverer")
        sub = await first.subscribe(channel)
        for n in (1, 2):
            publish(channel, n)
        await first.wait_messages(2)
        await first.ok("ack", channel=channel, offset=1)
        first.ws.transport.abort()
        publish(channel, 3)
        c = await pubsub_client.connect(port, user="recoverer")
        reply = await c.ok("subscribe", channel=channel,
                           recover={"epoch": sub["epoch"], "offset": 1})
        expect(reply.get("recovered") is True, f"recover from the last ack: {reply}")
        await c.wait_messages(2)
        expect(ns(c) == [2, 3], f"recovered {ns(c)}")
        await c.ok("ack", channel=channel, offset=2)
        await c.wait_messages(3, what="messages (the resend of 3)")
        await quiet(TIMEOUT_MS * 3 / 1000)
        expect(ns(c) == [2, 3, 3], f"recovered 3 resent once: {ns(c)}")
        await c.ws.close()

    async def never_acking_is_bounded():
        p = servers["tight"].port
        tight = support.api_client(p)
        before = tight.stats()["total"]
        channel = "orders:firehose"
        lazy = await pubsub_client.connect(p, user="lazy")
        await lazy.subscribe(channel)
        diligent = await pubsub_client.connect(p, user="diligent")
        await diligent.subscribe(channel)
        blob = "x" * 1000
        # ~1 KB messages: 65 of them are past the 64 KiB bound for the one that never acks.
        for n in range(1, 101):
            tight.ok("POST", "/api/publish", {"channel": channel, "data": {"n": n, "b": blob}})
            if n % 10 == 0:
                await diligent.wait_messages(n)
                await diligent.ok("ack", channel=channel, offset=diligent.parsed(n - 1)["offset"])
        await lazy.wait_closed(timeout=10.0)
        expect(lazy.close_code == 1008 and lazy.close_reason == "too many unacknowledged messages",
               f"the client that never acks: closed {lazy.close_code} {lazy.close_reason!r}")
        # Closed when the window passes 65,536 bytes of frames: at message k. The server's
        # count of frames queued says where; the client may get fewer (what was still
        # unsent is dropped with the close, as for a slow consumer).
        frame = len(lazy.messages[0][0].encode()) + 4  # 2-byte length header: 126..65535
        k = 65536 // frame + 1
        sent = tight.stats()["total"]["messages_out"] - before["messages_out"]
        expect(sent == 100 + k and len(lazy.messages) <= k,
               f"frames of {frame} B: queued {sent} (100 to the client that acks, expected "
               f"{k} to the other), and it got {len(lazy.messages)}")
        await diligent.ok("ping")
        expect(not diligent.closed.is_set() and len(diligent.messages) == 100,
               f"the client that acks: {len(diligent.messages)} messages, closed "
               f"{diligent.close_code}")
        await diligent.ws.close()
        after = tight.stats()["total"]["ack_closes"]
        expect(after - before["ack_closes"] == 1,
               f"ack_closes {before['ack_closes']} -> {after}, expected +1")
        tight.close()
        # The count bound (the default 4 MiB byte bound is far): small messages, more of
        # them than a window holds.
        before = api.stats()["total"]
        counted = await pubsub_client.connect(port, user="counted")
        await counted.subscribe("orders:many")
        batch = [{"channel": "orders:many", "data": n} for n in range(200)]
        for _ in range((MAX_UNACKED + 1 + 199) // 200):
            api.ok("POST", "/api/publish", {"messages": batch})
        await counted.wait_closed(timeout=10.0)
        expect(counted.close_code == 1008, f"past {MAX_UNACKED}: closed {counted.close_code}")
        sent = api.stats()["total"]["messages_out"] - before["messages_out"]
        expect(sent == MAX_UNACKED + 1 and len(counted.messages) <= MAX_UNACKED + 1,
               f"queued {sent} frames (expected the close at {MAX_UNACKED + 1}), the client "
               f"got {len(counted.messages)}")
        after = api.stats()["total"]["ack_closes"]
        expect(after - before["ack_closes"] == 1,
               f"ack_closes {before['ack_closes']} -> {after}, expected +1")

    try:
        status = support.run_cases([
            ("unacknowledged past the timeout: sent again on the connection, once",
             resent_once_after_the_timeout),
            ("ack refusals say why; namespaces without acks never resend", refusals_say_why),
            ("user: critical messages: sent again to the next connection until acknowledged",
             user_critical_replayed_until_acked),
            ("recovered messages of an ack namespace wait for acks too",
             recovered_messages_wait_for_acks),
            ("a client that never acks is closed like a slow consumer", never_acking_is_bounded),
        ], title="acknowledged delivery")
        for name, s in servers.items():
            expect(s.alive(), f"server {name} died: {s.output()}")
    finally:
        api.close()
        for s in servers.values():
            s.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
