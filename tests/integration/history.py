#!/usr/bin/python3
"""Channel history (docs/protocol.md "History"): `--namespace NS:history=N[,history-ttl=S]`
keeps a channel's last N messages on its home shard, `GET /api/history/<channel>?since=&limit=`
returns them; Python `websockets` subscribers and the stdlib HTTP client.

Server: `--shards 4`, no JWT keys (history rules need none), `--namespace chat:history=5`,
`--namespace feed:history=1000`, `--namespace brief:history=100,history-ttl=1`,
`--namespace big:history=1000` with `--history-budget-bytes 65536`.

* the last 5 of 8 messages come back in order, byte for byte what a live subscriber
  received, on channels homed on every shard; `missed` says how many after `since` are gone;
* paging through 250 messages with `limit=100` returns each once, in order, `more` until
  the last page;
* a message older than its ttl is gone (history_evicted_age), one just published is there;
* the shard's budget: 200 messages of ~1 KiB into 64 KiB keep the newest, drop the oldest
  (history_evicted_budget), and history_bytes stays within the budget on every shard;
* refusals: bad since/limit 400, an unknown channel 404, a namespace without history 404
  "this channel keeps no history"; an access rule without JWT keys is refused at start.

Usage: history.py PATH/TO/ringcastd. Fails without python3-websockets.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SHARDS = 4
BUDGET = 65536
ARGS = ["--shards", str(SHARDS), "--namespace", "chat:history=5",
        "--namespace", "feed:history=1000", "--namespace", "brief:history=100,history-ttl=1",
        "--namespace", "big:history=1000", "--history-budget-bytes", str(BUDGET)]


def history(api, channel, **params):
    query = urllib.parse.urlencode(params)
    path = "/api/history/" + urllib.parse.quote(channel, safe="") + ("?" + query if query else "")
    return api.request("GET", path)


def history_ok(api, channel, **params):
    r = history(api, channel, **params)
    expect(r.status == 200 and isinstance(r.json, dict),
           f"history of {channel} {params}: {r}")
    return r.json


def offsets(page):
    return [m["offset"] for m in page["messages"]]


def main():
    binary = support.binary_from_argv()
    srv = support.server(binary, ARGS, echo_path=None)
    port = srv.port
    api = support.api_client(port)

    # One chat channel homed on each shard.
    chats = [support.homed_on(shard, SHARDS, lambda i: f"chat:room-{i}")
             for shard in range(SHARDS)]

    async def last_five_as_delivered():
        sub = await pubsub_client.connect(port)
        for ch in chats:
            await sub.subscribe(ch)
        for ch in chats:
            for n in range(1, 9):
                api.publish(ch, {"n": n, "ch": ch})
        await sub.wait_messages(8 * len(chats))
        live = {}
        for raw, _, _ in sub.messages:
            live.setdefault(json.loads(raw)["channel"], []).append(raw)
        for ch in chats:
            page = history_ok(api, ch)
            expect(offsets(page) == [4, 5, 6, 7, 8] and page["offset"] == 8
                   and page["first"] == 4 and page["more"] is False,
                   f"{ch}: {page}")
            # Byte for byte the envelopes the subscriber received (the same frames).
            got = [json.dumps(m, separators=(",", ":")) for m in page["messages"]]
            expect(got == live[ch][3:], f"{ch}: history {got} vs live {live[ch][3:]}")
            expect(isinstance(page["epoch"], str) and page["epoch"], f"epoch: {page}")
            expect(page["missed"] == 3, f"{ch}: 1-3 are gone after since=0: {page}")
            tail = history_ok(api, ch, since=6)
            expect(offsets(tail) == [7, 8] and tail["missed"] == 0, f"since=6: {tail}")
            none = history_ok(api, ch, since=8)
            expect(offsets(none) == [] and none["more"] is False, f"since=8: {none}")
        per_shard = [s["history_channels"] for s in api.stats()["shards"]]
        expect(per_shard == [1] * SHARDS, f"one chat channel kept per home shard: {per_shard}")
        await sub.ws.close()

    def paging_returns_each_once_in_order():
        ch = "feed:pages"
        for n in range(1, 251):
            api.publish(ch, {"n": n})
        seen, since, pages = [], 0, 0
        while True:
            page = history_ok(api, ch, since=since, limit=100)
            pages += 1
            seen += [m["data"]["n"] for m in page["messages"]]
            expect(page["missed"] == 0, f"nothing of feed:pages is gone: {page['missed']}")
            if not page["more"]:
                break
            since = page["messages"][-1]["offset"]
            expect(pages < 10, "paging does not end")
        expect(seen == list(range(1, 251)) and pages == 3,
               f"{pages} pages, {len(seen)} messages, first {seen[:3]}, last {seen[-3:]}")

    def ttl_drops_old_messages():
        ch = "brief:x"
        before = api.stats()["total"]["history_evicted_age"]
        api.publish(ch, {"n": 1})
        expect(offsets(history_ok(api, ch)) == [1], "just published: kept")
        # A ttl of 1 s keeps a message through the next whole second at most: 2.5 s later
        # it is gone however the seconds fall (a semantic bound, not a speed check).
        time.sleep(2.5)
        api.publish(ch, {"n": 2})
        page = history_ok(api, ch)
        expect(offsets(page) == [2] and page["missed"] == 1, f"after the ttl: {page}")
        after = api.stats()["total"]["history_evicted_age"]
        expect(after - before == 1, f"history_evicted_age {before} -> {after}")

    def budget_drops_the_oldest():
        ch = "big:x"
        blob = "x" * 1000
        for n in range(1, 201):
            api.publish(ch, {"n": n, "blob": blob})
        page = history_ok(api, ch, limit=1000)
        kept = [m["data"]["n"] for m in page["messages"]]
        expect(kept and kept[-1] == 200 and kept == list(range(kept[0], 201)),
               f"the newest kept, contiguous: {kept[:3]}…{kept[-3:]}")
        expect(len(kept) < 64, f"64 KiB cannot hold {len(kept)} messages of 1 KiB")
        expect(page["missed"] == kept[0] - 1, f"missed: {page['missed']}, first {kept[0]}")
        stats = api.stats()
        expect(stats["total"]["history_evicted_budget"] >= 200 - len(kept),
               f"history_evicted_budget {stats['total']['history_evicted_budget']}")
        for s in stats["shards"]:
            expect(s["history_bytes"] <= BUDGET, f"a shard over its budget: {s['history_bytes']}")

    def refusals():
        for params, reason in (({"since": "x"}, "since must be"), ({"since": "-1"}, "since"),
                               ({"limit": "0"}, "limit must be 1 to 1000"),
                               ({"limit": "1001"}, "limit must be"), ({"limit": "ten"}, "limit")):
            r = history(api, chats[0], **params)
            expect(r.status == 400 and reason in r.json["error"]["message"], f"{params}: {r}")
        r = history(api, "chat:never-used")
        expect(r.status == 404 and r.json["error"]["message"] == "no such channel", f"{r}")
        api.publish("lobby", {"n": 1})
        r = history(api, "lobby")
        expect(r.status == 404 and "keeps no history" in r.json["error"]["message"], f"{r}")
        r = history(api, "bad channel")
        expect(r.status == 400, f"an invalid name: {r}")
        r = api.request("POST", "/api/history/" + chats[0])
        expect(r.status == 405, f"POST: {r}")
        rr = subprocess.run([binary, "--listen", f"{support.LOOPBACK}:0", "--namespace",
                             "chat:public,history=5", "--check-config"],
                            capture_output=True, text=True, timeout=30)
        expect(rr.returncode != 0 and "--namespace needs JWT keys" in rr.stderr,
               f"an access rule without keys: exit {rr.returncode} {rr.stderr!r}")

    try:
        status = support.run_cases([
            ("the last 5 of 8 come back as delivered, on every home shard",
             last_five_as_delivered),
            ("paging through 250 with limit=100: each once, in order",
             paging_returns_each_once_in_order),
            ("history-ttl=1 drops a message older than its ttl", ttl_drops_old_messages),
            ("--history-budget-bytes keeps the newest, drops the oldest",
             budget_drops_the_oldest),
            ("bad since/limit 400, unknown 404, no history 404, access rule needs keys",
             refusals),
        ], title="channel history")
        expect(srv.alive(), f"server died: {srv.output()}")
    finally:
        api.close()
        srv.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
