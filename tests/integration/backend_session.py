#!/usr/bin/python3
"""The backend WebSocket publisher session (docs/protocol.md "Identity", the backend
paragraph): a `/ws` upgrade carrying `Authorization: Bearer KEY` may publish to any
channel — `user:` channels and namespaces outside `--client-publish` included — at its
own command rate (`--backend-command-rate`, `--backend-command-burst`); the same upgrade
without the key, with a wrong key or another scheme, or to a server with no key at all
is an ordinary client.

Usage: backend_session.py PATH/TO/ringcastd
Servers: `--shards 2 --insecure --client-publish chat` with RINGCAST_API_KEY set (user
connections come from ?user=); rate servers with `--backend-command-rate R
--backend-command-burst B` and a generous client rate. Exits 77 without
python3-websockets.

Checks:
* a backend session publishes to `feed` (no namespace), `news:x` (not a client
  namespace) and `user:7`: each answered ok with the next offset of that channel, and
  each delivered — to the subscribers of `feed` / `news:x` and to user 7's connection
  (on `user:7` from the start) — with the event, data and priority sent and `userId`
  null; the scheme is matched in any case (`bearer KEY`); a backend session may also
  subscribe and ping like a client;
* no Authorization, `Bearer KEY` + one character, `Basic KEY` and, on a server without
  a key, `Bearer KEY`: the upgrade succeeds (101) and the session is a client: 403 on
  `feed`, `news:x` and `user:7`, ok on `chat:room` (with its `userId`, null when
  anonymous), and nothing published by it reaches anyone;
* rate: a backend session sending 200 pings back to back on a server with
  `--backend-command-rate 10 --backend-command-burst 20` (client rate 1000/s, burst
  1000) gets at least 20 answered and at most 20 + 10·t + 1 (t: seconds from the first
  ping sent to the last reply read), one 429 with `"id":null`; a client session on the
  same server gets all 200; `rate_limited` equals the pings the backend saw go
  unanswered. The same with rate 1 and burst 50 (at least 50, at most 50 + t + 1), so
  the burst and the rate are each the flag's own.
"""

import asyncio
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")

KEY = "backend-session-key-0123456789"
ENV = "RINGCAST_API_KEY"


@contextlib.contextmanager
def key_in_environment(value):
    """RINGCAST_API_KEY for servers started inside the block (None: unset)."""
    old = os.environ.pop(ENV, None)
    if value is not None:
        os.environ[ENV] = value
    try:
        yield
    finally:
        os.environ.pop(ENV, None)
        if old is not None:
            os.environ[ENV] = old


async def connect(port, auth=None, user=None):
    headers = {"Authorization": auth} if auth is not None else {}
    return await pubsub_client.connect(port, user=user, extra_headers=headers)


def cases(binary):
    async def backend_publishes_anywhere():
        with key_in_environment(KEY), support.server(
                binary, ["--shards", "2", "--insecure", "--client-publish", "chat"],
                echo_path=None) as srv:
            api = support.api_client(srv.port, KEY)
            sub = await connect(srv.port)
            for ch in ("feed", "news:x"):
                await sub.subscribe(ch)
            u7 = await connect(srv.port, user="7")
            await u7.ok("ping")
            # Offsets before: each channel starts where the API says it is.
            before = {}
            for ch in ("feed", "news:x", "user:7"):
                r = await asyncio.to_thread(api.request, "GET", f"/api/channels/{ch}")
                before[ch] = r.json["offset"] if r.status == 200 else 0
            sent = []
            for auth in (f"Bearer {KEY}", f"bearer {KEY}", f"BEARER {KEY}"):
                backend = await connect(srv.port, auth)
                for ch, prio in (("feed", 1), ("news:x", 4), ("user:7", 2)):
                    data = {"from": auth.split()[0], "ch": ch}
                    r = await backend.command("publish", channel=ch, event="ev", data=data,
                                              priority=prio)
                    expect(r.get("ok") is True and r.get("offset") == before[ch] + 1,
                           f"backend ({auth.split()[0]}) publish to {ch}: {r}, expected ok "
                           f"with offset {before[ch] + 1}")
                    before[ch] += 1
                    sent.append((ch, prio, data, r["offset"]))
                await backend.subscribe("feed")
                await backend.ok("ping")
                await backend.close()
            await sub.wait_messages(6, 10, "backend publishes on feed and news:x")
            await u7.wait_messages(3, 10, "backend publishes on user:7")
            for ch, prio, data, off in sent:
                who = u7 if ch == "user:7" else sub
                found = [who.parsed(i) for i in range(len(who.messages))
                         if who.parsed(i)["channel"] == ch and who.parsed(i)["offset"] == off]
                expect(len(found) == 1, f"{ch} offset {off} arrived {len(found)} times")
                m = found[0]
                expect(m["event"] == "ev" and m["data"] == data and m["priority"] == prio
                       and m["userId"] is None,
                       f"{ch}: delivered {m}, expected event ev, data {data}, priority "
                       f"{prio}, userId null")
            await quiet_for([sub, u7])
            expect(len(sub.messages) == 6 and len(u7.messages) == 3,
                   f"subscriber got {len(sub.messages)} (expected 6), user 7 got "
                   f"{len(u7.messages)} (expected 3)")
            await sub.close()
            await u7.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def check_ordinary_client(port, auth, user, what):
        c = await connect(port, auth, user)
        for ch in ("feed", "news:x", "user:7"):
            r = await c.command("publish", channel=ch, data={"x": 1})
            expect(r.get("ok") is False and r["error"]["code"] == 403,
                   f"{what}: publish to {ch} answered {r}, expected 403 (a client)")
        r = await c.command("publish", channel="chat:room", data={"who": what})
        expect(r.get("ok") is True, f"{what}: publish to chat:room (a client namespace): {r}")
        return c

    async def without_the_key_it_is_a_client():
        with key_in_environment(KEY), support.server(
                binary, ["--shards", "2", "--insecure", "--client-publish", "chat"],
                echo_path=None) as srv:
            sub = await connect(srv.port)
            await sub.subscribe("feed")
            await sub.subscribe("news:x")
            await sub.subscribe("chat:room")
            u7 = await connect(srv.port, user="7")
            await u7.ok("ping")
            clients = []
            for auth, user, what in ((None, None, "no Authorization"),
                                     (f"Bearer {KEY}x", None, "Bearer KEY+1 char"),
                                     (f"Bearer {KEY[:-1]}", None, "Bearer KEY-1 char"),
                                     (f"Basic {KEY}", None, "Basic KEY"),
                                     (KEY, None, "the bare key"),
                                     (None, "8", "user 8, no key")):
                clients.append(await check_ordinary_client(srv.port, auth, user, what))
            await quiet_for([sub, u7])
            got = [(sub.parsed(i)["channel"], sub.parsed(i)["userId"])
                   for i in range(len(sub.messages))]
            expect(got == [("chat:room", None)] * 5 + [("chat:room", "8")],
                   f"subscriber got {got}: only the six chat:room publishes (userId null, "
                   f"and 8 for user 8) may arrive")
            expect(not u7.messages, f"user 7 got {u7.messages[:1]}")
            for c in clients + [sub, u7]:
                await c.close()
            srv.stop_and_expect_clean_exit()
        # A server without any key: a bearer header makes nothing special.
        with key_in_environment(None), support.server(
                binary, ["--shards", "2", "--client-publish", "chat"], echo_path=None) as srv:
            c = await check_ordinary_client(srv.port, f"Bearer {KEY}", None,
                                            "Bearer on a server without a key")
            await c.close()
            srv.stop_and_expect_clean_exit()

    async def rate_case(rate, burst, pings=200):
        with key_in_environment(KEY), support.server(
                binary, ["--shards", "2", "--backend-command-rate", str(rate),
                         "--backend-command-burst", str(burst), "--command-rate", "1000",
                         "--command-burst", "1000"], echo_path=None) as srv:
            api = support.api_client(srv.port, KEY)
            backend = await connect(srv.port, f"Bearer {KEY}")
            client = await connect(srv.port)
            results = {}
            for name, c in (("backend", backend), ("client", client)):
                pending = []
                t0 = time.monotonic()
                for _ in range(pings):
                    _, fut, sending = c.send_command("ping")
                    await sending
                    pending.append(fut)
                # Replies keep command order: once a later ping is answered, every earlier
                # one that will be answered has been. Wait for one refill so it gets in.
                await asyncio.sleep(max(1.1, 1.5 / rate))
                await c.ok("ping", timeout=30)
                elapsed = time.monotonic() - t0
                answered = sum(1 for f in pending if f.done() and not f.cancelled()
                               and f.exception() is None)
                for f in pending:
                    f.cancel()
                results[name] = (answered, elapsed, list(c.null_replies))
            answered, elapsed, nulls = results["backend"]
            print(f"     rate {rate}/s burst {burst}: backend {answered} of {pings} in "
                  f"{elapsed:.2f}s, client {results['client'][0]}", flush=True)
            limit = burst + rate * elapsed + 1
            expect(burst <= answered <= limit,
                   f"backend session: {answered} of {pings} pings answered; with "
                   f"--backend-command-burst {burst} and --backend-command-rate {rate} over "
                   f"{elapsed:.2f}s expected {burst}..{limit:.0f}")
            expect(any(r.get("error", {}).get("code") == 429 for _, r in nulls),
                   f"backend session: no 429 with id null: {nulls[:2]}")
            expect(results["client"][0] == pings,
                   f"client session: {results['client'][0]} of {pings} answered with "
                   f"--command-burst 1000 (the backend flags must not apply to it)")
            stats = await asyncio.to_thread(api.stats)
            # The trailing pings were answered; only the first burst's unanswered ones count.
            expect(stats["total"]["rate_limited"] == pings - answered,
                   f"rate_limited {stats['total']['rate_limited']}, the backend saw "
                   f"{pings - answered} pings go unanswered")
            await backend.close()
            await client.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def backend_rate_and_burst():
        await rate_case(10, 20)

    async def backend_burst_is_its_own():
        await rate_case(1, 50)

    return [
        ("backend session (Bearer KEY, any case) publishes to feed, news:x, user:7; "
         "delivered with userId null", backend_publishes_anywhere),
        ("without the key / wrong key / other scheme / keyless server: an ordinary client",
         without_the_key_it_is_a_client),
        ("--backend-command-rate 10 --backend-command-burst 20: 20..20+10t of 200 pings, "
         "client unaffected", backend_rate_and_burst),
        ("--backend-command-rate 1 --backend-command-burst 50: 50..50+t of 200 pings",
         backend_burst_is_its_own),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"backend WebSocket session (websockets "
                               f"{websockets.__version__})", case_timeout=90))
