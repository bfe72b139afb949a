#!/usr/bin/python3
"""`?user=` is ignored without `--insecure` (docs/protocol.md "Identity": "Without
--insecure (or without ?user=) a connection is anonymous: ?user= is ignored, the
connection is on no user: channel and gets nothing sent to that user").

Every other pub/sub script runs with --insecure, so this one runs the same scenario on two
servers, `--shards 2 --client-publish chat` with and without `--insecure`, and requires
the identity to show on the first (so the observations below can see it) and nowhere on
the second:

* user 7 holds three connections (`/ws?user=7`), user 8 one, plus an anonymous
  subscriber of `chat:room`;
* `POST /api/send` to user 7 and `POST /api/publish` on `user:7`: with --insecure each of
  user 7's connections gets both (and user 8 none); without, nobody gets anything;
* `GET /api/online`: users 7 (3 connections) and 8 (1) / `{"users":[],"count":0}`;
  `GET /api/channels` lists `user:7` with 3 subscribers / no `user:` channel at all;
* a publish to `chat:room` from a `?user=7` connection carries `"userId":"7"` / `null`;
* `subscribe user:7` from a `?user=7` connection: ok (already on it) / 403 (another
  user's channel); `unsubscribe user:7`: 403 (its own) / 404 (not subscribed);
* `POST /api/disconnect` user 7: `connections` 3 and close 4000 on each / `connections`
  0 and every connection still answers a ping;
* `?user=` with a malformed id (`a b`, 65 characters): 400 with --insecure; without it
  the upgrade succeeds (the parameter is not even read).

Usage: user_query_secure.py PATH/TO/ringcastd. Exits 77 without python3-websockets.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")


async def scenario(binary, insecure):
    args = ["--shards", "2", "--client-publish", "chat"] + (["--insecure"] if insecure else [])
    mode = "--insecure" if insecure else "no --insecure"
    with support.server(binary, args, echo_path=None) as srv:
        api = support.api_client(srv.port)
        u7 = [await pubsub_client.connect(srv.port, user="7") for _ in range(3)]
        u8 = await pubsub_client.connect(srv.port, user="8")
        anon = await pubsub_client.connect(srv.port)
        await anon.subscribe("chat:room")
        everyone = u7 + [u8, anon]
        await asyncio.gather(*(c.ok("ping") for c in everyone))

        r = await asyncio.to_thread(api.ok, "POST", "/api/send",
                                    {"userId": "7", "event": "for7", "data": {"n": 1}})
        expect(r.get("ok") is True and r.get("offset") == 1,
               f"{mode}: /api/send to 7: {r}, expected offset 1 (first on user:7)")
        r = await asyncio.to_thread(api.ok, "POST", "/api/publish",
                                    {"channel": "user:7", "event": "for7", "data": {"n": 2}})
        expect(r.get("offset") == 2, f"{mode}: /api/publish on user:7: {r}, expected offset 2")
        await quiet_for(everyone)
        for i, c in enumerate(u7):
            got = [(c.parsed(k)["channel"], c.parsed(k)["data"]) for k in range(len(c.messages))]
            want = [("user:7", {"n": 1}), ("user:7", {"n": 2})] if insecure else []
            expect(got == want, f"{mode}: user 7's connection {i} got {got}, expected {want}")
        expect(not u8.messages and not anon.messages,
               f"{mode}: user 8 / anonymous got {u8.messages[:1]} {anon.messages[:1]}")

        online = await asyncio.to_thread(api.ok, "GET", "/api/online")
        want = ({"users": [{"userId": "7", "connections": 3}, {"userId": "8", "connections": 1}],
                 "count": 2} if insecure else {"users": [], "count": 0})
        expect(online == want, f"{mode}: /api/online {online}, expected {want}")
        chans = await asyncio.to_thread(api.ok, "GET", "/api/channels")
        users = {c["channel"]: c["subscribers"] for c in chans.get("channels", [])
                 if c["channel"].startswith("user:")}
        want = {"user:7": 3, "user:8": 1} if insecure else {}
        expect(users == want, f"{mode}: user channels in /api/channels {users}, expected {want}")

        r = await u7[0].command("publish", channel="chat:room", data={"by": "u7"})
        expect(r.get("ok") is True, f"{mode}: publish to chat:room: {r}")
        await anon.wait_messages(1, 10, "the chat:room publish")
        m = anon.parsed(0)
        want_user = "7" if insecure else None
        expect(m["userId"] == want_user, f"{mode}: a ?user=7 connection's publish carries "
               f"userId {m['userId']!r}, expected {want_user!r}")

        r = await u7[1].command("subscribe", channel="user:7")
        if insecure:
            expect(r.get("ok") is True, f"{mode}: user 7 subscribing to user:7: {r}")
        else:
            expect(r.get("ok") is False and r["error"]["code"] == 403,
                   f"{mode}: a ?user=7 connection subscribing to user:7: {r}, expected 403")
        r = await u7[1].command("unsubscribe", channel="user:7")
        code = 403 if insecure else 404
        expect(r.get("ok") is False and r["error"]["code"] == code,
               f"{mode}: unsubscribe user:7 from a ?user=7 connection: {r}, expected {code}")

        r = await asyncio.to_thread(api.ok, "POST", "/api/disconnect",
                                    {"userId": "7", "code": 4000, "reason": "bye"})
        want = 3 if insecure else 0
        expect(r == {"ok": True, "connections": want},
               f"{mode}: /api/disconnect 7: {r}, expected connections {want}")
        if insecure:
            for c in u7:
                code, reason = await c.wait_closed(10)
                expect(code == 4000 and reason == "bye", f"{mode}: user 7 closed {code} "
                       f"{reason!r}, expected 4000 'bye'")
        else:
            await asyncio.sleep(0.2)
            await asyncio.gather(*(c.ok("ping") for c in u7))
            expect(not any(c.closed.is_set() for c in u7), f"{mode}: a ?user=7 connection "
                   f"was closed by /api/disconnect")

        # A malformed id: refused only where it is read.
        for bad in ("a%20b", "x" * 65):
            url = f"ws://{support.LOOPBACK}:{srv.port}/ws?user={bad}"
            if insecure:
                try:
                    ws = await websockets.connect(url, open_timeout=10)
                    await ws.close()
                    support.fail(f"{mode}: ?user={bad[:10]}… was accepted")
                except websockets.exceptions.InvalidStatusCode as e:
                    expect(e.status_code == 400, f"{mode}: ?user={bad[:10]}… → {e.status_code}")
            else:
                ws = await websockets.connect(url, open_timeout=10)
                c = pubsub_client(ws)
                await c.ok("ping")
                await c.close()
        for c in everyone:
            await c.close()
        api.close()
        srv.stop_and_expect_clean_exit()


def cases(binary):
    async def with_insecure():
        await scenario(binary, True)

    async def without_insecure():
        await scenario(binary, False)

    return [
        ("--insecure (the control): ?user=7 is user 7 in send, online, channels, publish, "
         "disconnect", with_insecure),
        ("no --insecure: ?user=7 is anonymous everywhere; a malformed ?user= is not read",
         without_insecure),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"?user= without --insecure (websockets "
                               f"{websockets.__version__})", case_timeout=60))
