#!/usr/bin/python3
"""Per-user delivery: user:<id> channels, POST /api/send, GET /api/online, POST
/api/disconnect, with one user's connections on several shards; Python `websockets`.

Usage: pubsub_users.py PATH/TO/ringcastd
Server: `--shards 4 --insecure`. User 7 holds 3 connections (placed on at least two
shards, using the per-shard connection counts of GET /api/stats), user 8 one, user 9 one
and one anonymous connection as bystanders. Fails when python3-websockets is missing.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SHARDS = 4


def shard_counts(api):
    return [s.get("connections") for s in api.stats().get("shards", [])]


async def connect_spread(port, api, user, n, tries=24):
    """n connections of `user`, on at least two shards when the stats tell where a new
    connection landed (a connection on an already-used shard is replaced, bounded)."""
    conns, used = [], set()
    spare = []
    for _ in range(tries):
        if len(conns) == n:
            break
        before = await asyncio.to_thread(shard_counts, api)
        c = await pubsub_client.connect(port, user=user)
        await c.ok("ping")
        after = await asyncio.to_thread(shard_counts, api)
        landed = [i for i, (a, b) in enumerate(zip(before, after))
                  if isinstance(a, int) and isinstance(b, int) and b > a]
        shard = landed[0] if len(landed) == 1 else None
        if shard is None or shard not in used or len(used) >= 2 or len(conns) < n - 1:
            conns.append(c)
            used.add(shard)
        else:
            spare.append(c)
    while len(conns) < n:
        conns.append(spare.pop() if spare else await pubsub_client.connect(port, user=user))
    for c in spare:
        await c.close()
    return conns, used


def cases(port):
    state = {}

    async def setup_and_send():
        api = support.api_client(port)
        u7, shards7 = await connect_spread(port, api, "7", 3)
        u8 = await pubsub_client.connect(port, user="8")
        u9 = await pubsub_client.connect(port, user="9")
        anon = await pubsub_client.connect(port)
        placed = sorted(s for s in shards7 if s is not None)
        support.tap_comment(f"user 7 on shards {placed}; per-shard connections "
                            f"{shard_counts(api)}")
        # Four shards and up to 24 tries: all on one shard has odds 4 x (1/4)^24.
        expect(len(placed) >= 2, f"user 7's 3 connections are not on several shards: placed "
                                 f"{placed} (per-shard connections {shard_counts(api)})")
        state.update(api=api, u7=u7, u8=u8, u9=u9, anon=anon)
        await asyncio.gather(*(c.ok("ping") for c in u7 + [u8, u9, anon]))
        r = await asyncio.to_thread(api.ok, "POST", "/api/send",
                                    {"userId": "7", "event": "dm", "data": {"to": 7}})
        expect(r.get("ok") is True and support.is_int(r.get("offset")),
               f"POST /api/send: expected {{\"ok\":true,\"offset\":N}}, got {r}")
        for k, c in enumerate(u7):
            await c.wait_messages(1, 5, f"/api/send message (connection {k} of user 7)")
            support.check_envelope(c.messages[0][0], channel="user:7", event="dm",
                                   data={"to": 7}, priority=3, what=f"user 7 connection {k}")
            expect(c.parsed(0)["offset"] == r["offset"], f"offset {c.parsed(0)['offset']}, "
                   f"/api/send answered {r['offset']}")
        await quiet_for(u7 + [u8, u9, anon])
        for name, c in (("user 8", u8), ("user 9", u9), ("anonymous", anon)):
            expect(not c.messages, f"{name} received user 7's message: {c.messages[:1]}")
        for c in u7:
            expect(len(c.messages) == 1, f"user 7 got {len(c.messages)} copies")

    async def publish_to_user_channel():
        api, u7, u8 = state["api"], state["u7"], state["u8"]
        off = await asyncio.to_thread(api.publish, "user:7", {"via": "publish"}, event="p")
        for c in u7:
            await c.wait_messages(2, 5, "publish to user:7")
            support.check_envelope(c.messages[1][0], channel="user:7", event="p",
                                   data={"via": "publish"}, user_id=None,
                                   what="publish on user:7")
            expect(c.parsed(1)["offset"] == off, f"offset {c.parsed(1)['offset']} != {off}")
        off8 = await asyncio.to_thread(api.publish, "user:8", {"via": "publish"})
        await u8.wait_messages(1, 5, "publish to user:8")
        expect(u8.parsed(0)["channel"] == "user:8" and u8.parsed(0)["offset"] == off8,
               f"user 8 got {u8.messages[0][0]}")

    async def fresh_connection_is_subscribed():
        # "subscribed to user:<u> at once": a new connection gets the next message without
        # subscribing (after one ping round trip).
        api = state["api"]
        c = await pubsub_client.connect(port, user="fresh.user@x-1")
        await c.ok("ping")
        off = await asyncio.to_thread(api.publish, "user:fresh.user@x-1", {"hi": 1})
        await c.wait_messages(1, 5, "message on user:fresh.user@x-1")
        expect(c.parsed(0)["offset"] == off, f"{c.messages[0][0]}")
        await c.close()

    async def online():
        api = state["api"]
        # The connection closed in the previous case may take a moment to leave the
        # count (it is held on its user's home shard): poll, bounded.
        deadline = time.monotonic() + 5
        while True:
            r = await asyncio.to_thread(api.ok, "GET", "/api/online")
            users = r.get("users")
            expect(isinstance(users, list) and all(isinstance(u, dict) for u in users),
                   f"GET /api/online: {r}")
            got = {u.get("userId"): u.get("connections") for u in users}
            if (got, r.get("count")) == ({"7": 3, "8": 1, "9": 1}, 3):
                break
            if time.monotonic() > deadline:
                fail(f"GET /api/online: users {got} count {r.get('count')}, expected "
                     f"{{'7': 3, '8': 1, '9': 1}} and 3 (anonymous connections are not "
                     f"users); body {r}")
            await asyncio.sleep(0.05)

    async def disconnect():
        api, u7 = state["api"], state["u7"]
        r = await asyncio.to_thread(api.ok, "POST", "/api/disconnect",
                                    {"userId": "7", "code": 4000, "reason": "bye"})
        expect(r.get("ok") is True and r.get("connections") == 3,
               f"POST /api/disconnect user 7: {r}, expected {{\"ok\":true,\"connections\":3}}")
        for k, c in enumerate(u7):
            code, reason = await c.wait_closed(5)
            expect(code == 4000 and reason == "bye", f"user 7 connection {k}: closed with "
                   f"{code} {reason!r}, expected 4000 'bye'")
        deadline = time.monotonic() + 5
        while True:
            r = await asyncio.to_thread(api.ok, "GET", "/api/online")
            got = {u.get("userId"): u.get("connections") for u in r.get("users", [])}
            if got == {"8": 1, "9": 1} and r.get("count") == 2:
                break
            if time.monotonic() > deadline:
                fail(f"GET /api/online 5 s after the disconnect: {r}, expected 8 and 9 only")
            await asyncio.sleep(0.05)
        for name in ("u8", "u9", "anon"):
            expect(not state[name].closed.is_set(), f"{name} was closed by user 7's disconnect")
            await state[name].ok("ping")
        none = await asyncio.to_thread(api.ok, "POST", "/api/disconnect", {"userId": "nobody"})
        expect(none.get("ok") is True and none.get("connections") == 0,
               f"disconnect of a user with no connections: {none}")

    def bad_user_ids():
        for bad in ("a%20b", "x" * 65, "%C3%A9", "a/b", "a%22b"):
            resp = support.http_exchange(
                port, (f"GET /ws?user={bad} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
            expect(resp.status == 400, f"/ws?user={bad[:20]}: HTTP {resp.status}, expected 400")
        ok64 = support.raw_ws(port, "/ws?user=" + "y" * 64)
        ok64.close()

    async def cleanup():
        for name in ("u7", "u8", "u9", "anon"):
            for c in state.get(name, []) if name == "u7" else [state.get(name)]:
                if c is not None:
                    await c.close()
        if "api" in state:
            state["api"].close()

    return [
        ("POST /api/send reaches user 7's 3 connections (several shards) and no one else",
         setup_and_send),
        ("POST /api/publish on user:7 / user:8 reaches that user", publish_to_user_channel),
        ("a new connection is on user:<id> at once", fresh_connection_is_subscribed),
        ("GET /api/online: 7 with 3, 8 with 1, 9 with 1, count 3", online),
        ("POST /api/disconnect user 7: 3 closes with 4000 'bye'; online then 8 and 9",
         disconnect),
        ("user id outside [A-Za-z0-9_.@-]{1,64} → HTTP 400 before the upgrade", bad_user_ids),
        ("cleanup", cleanup),
    ]


def main():
    binary = support.binary_from_argv()
    with support.server(binary, ["--insecure", "--shards", str(SHARDS)],
                        echo_path=None) as srv:
        # One event loop for all cases: the connections live across them.
        loop = asyncio.new_event_loop()
        wrapped = []
        for name, fn in cases(srv.port):
            if asyncio.iscoroutinefunction(fn):
                def run(fn=fn):
                    loop.run_until_complete(asyncio.wait_for(fn(), 60))
                wrapped.append((name, run))
            else:
                wrapped.append((name, fn))
        status = support.run_cases(wrapped, f"pub/sub users, --shards {SHARDS} (websockets "
                                   f"{websockets.__version__})")
        leftover = asyncio.all_tasks(loop)
        for t in leftover:
            t.cancel()
        async def drain():
            await asyncio.gather(*leftover, return_exceptions=True)
        loop.run_until_complete(drain())
        loop.close()
        try:
            srv.stop_and_expect_clean_exit()
        except support.check_failed as e:
            support.tap_comment(f"FAIL clean exit\n{e}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
