#!/usr/bin/python3
"""Presence (docs/protocol.md "Presence"): who is subscribed to a channel of a namespace
marked `presence`, kept by the channel's home shard; join / leave events to its
subscribers; the presence command; GET /api/presence/<channel> and the counts in
GET /api/channels/<name>. Python `websockets` clients, users by `?user=` (`--insecure`).

Servers `--shards 2` and `--shards 4` with `--namespace room:presence`, and `--shards 2
--presence-max-members 3`. Where a connection lands is the kernel's choice (SO_REUSEPORT);
connect_on() reconnects until the per-shard `sessions` gauge of /api/stats shows the new
connection on the wanted shard, so a user's connections are spread over known shards.

* a user's first connection makes one join, on every shard's subscribers; the second, on
  another shard, none; closing the first makes no leave; the last one going by a TCP reset
  without a close frame makes one leave; anonymous connections are counted, never named;
* the presence command's members and counts, GET /api/presence and the users / anonymous
  counts of GET /api/channels agree; /api/online still lists the users;
* a namespace not marked presence: the command and the API answer 400; another user's
  user: channel 403;
* past --presence-max-members users: no events, no list ("listed":false), counts only;
  presence_events_suppressed counts it.

Usage: presence.py PATH/TO/ringcastd. Fails without python3-websockets.
"""

import asyncio
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

ARGS = ["--insecure", "--namespace", "room:presence"]
PLACE_TRIES = 80  # connections tried to land one on a given shard: (1 - 1/4)^80 ≈ 1e-10
WAIT_S = 5.0      # a hang guard for a gauge to move, not a speed check


def sessions_by_shard(api):
    return [s["sessions"] for s in api.stats()["shards"]]


async def wait_sessions(api, want):
    deadline = time.monotonic() + WAIT_S
    while True:
        now = sessions_by_shard(api)
        if sum(now) == want:
            return now
        if time.monotonic() > deadline:
            support.fail(f"sessions per shard {now}, expected {want} in all")
        await asyncio.sleep(0.02)


async def connect_on(port, api, shard, user=None):
    """A pubsub_client of `user` whose connection is served by `shard`."""
    for _ in range(PLACE_TRIES):
        before = sessions_by_shard(api)
        c = await pubsub_client.connect(port, user=user)
        after = await wait_sessions(api, sum(before) + 1)
        landed = [i for i in range(len(after)) if after[i] > before[i]]
        if landed == [shard]:
            return c
        await c.close()
        await wait_sessions(api, sum(before))
    support.fail(f"no connection of {PLACE_TRIES} landed on shard {shard}")


def reset(c):
    """Ends `c` like a killed process whose kernel resets the connection: no close frame,
    an RST (SO_LINGER 0)."""
    sock = c.ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.ws.transport.abort()
    c._reader.cancel()


def events(c):
    out = []
    for i in range(len(c.messages)):
        m = c.parsed(i)
        if m.get("op") == "presence":
            out.append((m["type"], m["channel"], m["userId"]))
    return out


async def wait_events(clients, n, what):
    deadline = time.monotonic() + WAIT_S * 2
    while any(len(events(c)) < n for c in clients):
        if time.monotonic() > deadline:
            support.fail(f"{what}: events {[events(c) for c in clients]}, expected {n} each")
        await asyncio.sleep(0.02)


def presence_api(api, channel):
    return api.ok("GET", f"/api/presence/{channel}")


def main():
    binary = support.binary_from_argv()
    servers = {
        2: support.server(binary, ["--shards", "2", *ARGS], echo_path=None),
        4: support.server(binary, ["--shards", "4", *ARGS], echo_path=None),
        "cut": support.server(binary, ["--shards", "2", *ARGS, "--presence-max-members", "3"],
                              echo_path=None),
    }

    def join_and_leave(shards):
        async def case():
            port = servers[shards].port
            api = support.api_client(port)
            room = f"room:{shards}"
            last = shards - 1
            # A watcher on the first and on the last shard (anonymous).
            watchers = [await connect_on(port, api, 0), await connect_on(port, api, last)]
            for w in watchers:
                await w.subscribe(room)
            # ann's first connection on shard 0: one join on both shards.
            ann1 = await connect_on(port, api, 0, "ann")
            await ann1.subscribe(room)
            await wait_events(watchers, 1, "ann's first connection")
            # Her second, on the last shard, and bob's on shard 1: only bob is announced.
            ann2 = await connect_on(port, api, last, "ann")
            await ann2.subscribe(room)
            bob = await connect_on(port, api, 1, "bob")
            await bob.subscribe(room)
            await wait_events(watchers, 2, "bob's connection")
            await quiet_for([*watchers, ann1, ann2, bob])
            want = [("join", room, "ann"), ("join", room, "bob")]
            for w in watchers:
                expect(events(w) == want, f"after ann x2 and bob: {events(w)}, expected {want}")
            expect(events(bob) == [("join", room, "bob")],
                   f"bob gets his own join: {events(bob)}")

            members = [{"userId": "ann", "connections": 2}, {"userId": "bob", "connections": 1}]
            reply = await watchers[1].ok("presence", channel=room)
            expected = {"op": "reply", "ok": True, "channel": room, "users": 2,
                        "connections": 5, "anonymous": 2, "members": members}
            got = {k: v for k, v in reply.items() if k != "id"}
            expect(got == expected, f"presence command: {reply}, expected {expected}")
            body = presence_api(api, room)
            expect(body == {k: v for k, v in expected.items() if k not in ("op", "ok")},
                   f"GET /api/presence/{room}: {body}")
            info = api.ok("GET", f"/api/channels/{room}")
            expect(info.get("users") == 2 and info.get("anonymous") == 2
                   and info.get("subscribers") == 5, f"GET /api/channels/{room}: {info}")
            online = api.ok("GET", "/api/online")
            users = {u["userId"]: u["connections"] for u in online["users"]}
            expect(users.get("ann") == 2 and users.get("bob") == 1,
                   f"/api/online still answers: {online}")

            # Her first connection closes cleanly: she is still there.
            await ann1.close()
            await quiet_for([*watchers, ann2])
            for w in watchers:
                expect(events(w) == want, f"after ann's first closed: {events(w)}")
            # Her last one is reset: one leave, everywhere.
            reset(ann2)
            await wait_events(watchers, 3, "ann's last connection reset")
            await quiet_for([*watchers, bob])
            want.append(("leave", room, "ann"))
            for w in watchers:
                expect(events(w) == want, f"after ann's last went: {events(w)}, expected {want}")
            body = presence_api(api, room)
            expect(body["users"] == 1 and body["connections"] == 3 and
                   body["members"] == [{"userId": "bob", "connections": 1}],
                   f"GET /api/presence after ann left: {body}")
            stats = api.stats()["total"]
            expect(stats["presence_members"] == 1 and stats["presence_channels"] == 1
                   and stats["presence_joins"] >= 2 and stats["presence_leaves"] >= 1,
                   f"presence counters: { {k: v for k, v in stats.items() if 'presence' in k} }")
            for c in (*watchers, bob):
                await c.close()
            api.close()
        return case

    async def refusals():
        port = servers[2].port
        api = support.api_client(port)
        c = await pubsub_client.connect(port, user="carol")
        reply = await c.command("presence", channel="lobby:1")
        expect(reply.get("ok") is False and reply["error"]["code"] == 400,
               f"presence on a namespace without it: {reply}")
        reply = await c.command("presence", channel="user:dave")
        expect(reply.get("ok") is False and reply["error"]["code"] == 403,
               f"presence on another user's channel: {reply}")
        r = api.request("GET", "/api/presence/lobby:1")
        expect(r.status == 400, f"GET /api/presence/lobby:1: {r}")
        # Nobody there: counts of zero and an empty list.
        body = presence_api(api, "room:empty")
        expect(body == {"channel": "room:empty", "users": 0, "connections": 0, "anonymous": 0,
                        "members": []}, f"GET /api/presence/room:empty: {body}")
        info = api.ok("GET", "/api/channels/user:carol")
        expect("users" not in info, f"a channel outside presence has no counts: {info}")
        await c.close()
        api.close()

    async def cut_off():
        port = servers["cut"].port
        api = support.api_client(port)
        room = "room:big"
        watcher = await pubsub_client.connect(port)
        await watcher.subscribe(room)
        users = []
        for k in range(4):
            u = await pubsub_client.connect(port, user=f"u{k}")
            await u.subscribe(room)
            users.append(u)
        await wait_events([watcher], 3, "the first three users")
        await quiet_for([watcher, *users])
        want = [("join", room, f"u{k}") for k in range(3)]
        expect(events(watcher) == want, f"past 3 users no join: {events(watcher)}")
        reply = await watcher.ok("presence", channel=room)
        expect(reply.get("listed") is False and "members" not in reply and
               reply.get("users") == 4 and reply.get("connections") == 5,
               f"past the cut-off, counts only: {reply}")
        body = presence_api(api, room)
        expect(body.get("listed") is False and "members" not in body and body["users"] == 4,
               f"GET /api/presence past the cut-off: {body}")
        # From four users a leave is not sent either; from three it is.
        await users[3].close()
        await users[2].close()
        await wait_events([watcher], 4, "a leave from three users")
        await quiet_for([watcher])
        expect(events(watcher) == [*want, ("leave", room, "u2")],
               f"leaves around the cut-off: {events(watcher)}")
        stats = api.stats()["total"]
        expect(stats["presence_events_suppressed"] == 2,
               f"presence_events_suppressed {stats['presence_events_suppressed']}, expected 2")
        for c in (watcher, *users[:2]):
            await c.close()
        api.close()

    try:
        status = support.run_cases([
            ("--shards 2: join on a user's first connection, leave on its last (reset); "
             "command, API and counts agree", join_and_leave(2)),
            ("--shards 4: the same", join_and_leave(4)),
            ("outside presence namespaces 400, another user's channel 403, nobody: zeros",
             refusals),
            ("--presence-max-members 3: past it no events and no list", cut_off),
        ], title="presence")
        for name, s in servers.items():
            expect(s.alive(), f"server {name} died: {s.output()}")
    finally:
        for s in servers.values():
            s.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
