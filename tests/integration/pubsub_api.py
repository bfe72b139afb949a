#!/usr/bin/python3
"""The backend HTTP API (docs/protocol.md "Backend API"): publish (single, batch),
broadcast (everyone, channel list), stats, channels, the API key, error statuses and
keep-alive; stdlib http.client for HTTP, Python `websockets` for the receiving side.

Usage: pubsub_api.py PATH/TO/ringcastd
Servers: `--shards 4 --insecure`, and one with an API key (RINGCAST_API_KEY) for 401.
Fails when python3-websockets is missing.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, is_int, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SHARDS = 4
KEY = "s3cr3t-key_for.tests"
MIB = 1 << 20
HANG_S = 30  # only against a hang: reads that end on an event wait at most this long
STATS_KEYS = ["connections", "subscriptions", "messages_in", "messages_out", "dropped",
              "slow_consumer_closes"]
# Exposed in /api/stats once every counter came from one table per struct (issue 12).
STATS_KEYS_12 = ["accept_errors", "closed", "frames_sent", "recv_rearms", "cq_overflows",
                 "loop_iterations", "command_busy_refused", "api_busy_refused"]


def expect_api_error(r, status, what):
    err = r.json.get("error") if isinstance(r.json, dict) else None
    expect(r.status == status and isinstance(err, dict) and err.get("code") == status
           and isinstance(err.get("message"), str),
           f"{what}: expected HTTP {status} with {{\"error\":{{\"code\":{status},\"message\":"
           f"\"…\"}}}}, got {r}")


def cases(port, key_port):
    async def publish_single_and_batch():
        sub = await pubsub_client.connect(port, user="1")
        await sub.subscribe("api-a")
        await sub.subscribe("api-b")
        api = support.api_client(port)
        o1 = await asyncio.to_thread(api.publish, "api-a", {"k": 1})
        o2 = await asyncio.to_thread(api.publish, "api-a", {"k": 2}, event="e", priority=2)
        expect(o2 == o1 + 1, f"two publishes: offsets {o1}, {o2}")
        batch = {"messages": [{"channel": "api-a", "data": {"k": 3}},
                              {"channel": "api-b", "data": {"k": 4}},
                              {"channel": "api-a", "data": {"k": 5}, "event": "x"},
                              {"channel": "api-b", "data": {"k": 6}, "userId": "u1"}]}
        r = await asyncio.to_thread(api.ok, "POST", "/api/publish", batch)
        res = r.get("results")
        expect(r.get("ok") is True and isinstance(res, list) and len(res) == 4
               and all(isinstance(x, dict) and is_int(x.get("offset")) for x in res),
               f"batch of 4: expected {{\"ok\":true,\"results\":[{{\"offset\":N}} x4]}}, got {r}")
        offs = [x["offset"] for x in res]
        expect(offs[0] == o2 + 1 and offs[2] == o2 + 2 and offs[3] == offs[1] + 1,
               f"batch offsets {offs} after {o2} on api-a: per channel they must continue "
               f"by one")
        await sub.wait_messages(6)
        got = [(sub.parsed(k)["channel"], sub.parsed(k)["offset"], sub.parsed(k)["data"]["k"])
               for k in range(6)]
        a = [g for g in got if g[0] == "api-a"]
        b = [g for g in got if g[0] == "api-b"]
        expect([g[2] for g in a] == [1, 2, 3, 5] and [g[1] for g in a] ==
               [o1, o2, offs[0], offs[2]], f"api-a deliveries {a}")
        expect([g[2] for g in b] == [4, 6] and [g[1] for g in b] == [offs[1], offs[3]],
               f"api-b deliveries {b}")
        m6 = next(sub.parsed(k) for k in range(6) if sub.parsed(k)["data"]["k"] == 6)
        expect(m6["userId"] == "u1", f"batch message with userId: {m6}")
        api.close()
        await sub.close()

    async def broadcast():
        clients = [await pubsub_client.connect(port, user=f"b{k}") for k in range(5)]
        clients.append(await pubsub_client.connect(port))
        await quiet_for(clients, 0.1)
        api = support.api_client(port)
        r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast",
                                    {"event": "all", "data": {"b": 1}, "priority": 2})
        expect(r.get("ok") is True and r.get("connections") == 6,
               f"broadcast to every connection (6 open): {r}, expected connections 6")
        for k, c in enumerate(clients):
            await c.wait_messages(1, HANG_S, "broadcast")
            m = c.parsed(0)
            expect(m.get("event") == "all" and m.get("data") == {"b": 1},
                   f"client {k}: broadcast arrived as {c.messages[0][0]}")
        await clients[0].subscribe("bc-x")
        await clients[1].subscribe("bc-y")
        await clients[2].subscribe("bc-x")
        await clients[2].subscribe("bc-y")
        r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast",
                                    {"channels": ["bc-x", "bc-y"], "event": "some",
                                     "data": {"b": 2}})
        expect(r.get("ok") is True and isinstance(r.get("results"), list)
               and len(r["results"]) == 2, f"broadcast to 2 channels: {r}")
        await clients[0].wait_messages(2, HANG_S, "broadcast on bc-x")
        await clients[1].wait_messages(2, HANG_S, "broadcast on bc-y")
        await clients[2].wait_messages(3, HANG_S, "broadcast on bc-x and bc-y")
        await quiet_for(clients)
        counts = [len(c.messages) for c in clients]
        expect(counts == [2, 2, 3, 1, 1, 1], f"messages per client after the channel "
               f"broadcast: {counts}, expected [2, 2, 3, 1, 1, 1]")
        chans = sorted(clients[2].parsed(k)["channel"] for k in (1, 2))
        expect(chans == ["bc-x", "bc-y"], f"client on both channels got {chans}")
        api.close()
        await asyncio.gather(*(c.close() for c in clients))

    async def stats_and_channels():
        api = support.api_client(port)
        s0 = await asyncio.to_thread(api.stats)
        total, shards = s0.get("total"), s0.get("shards")
        expect(isinstance(total, dict) and isinstance(shards, list) and len(shards) == SHARDS,
               f"GET /api/stats: expected total object and {SHARDS} shards, got {s0}")
        for k in STATS_KEYS:
            expect(is_int(total.get(k)), f"stats total.{k} is {total.get(k)!r}: {s0}")
        subs = [await pubsub_client.connect(port, user=f"c{k}") for k in range(12)]
        for c in subs:
            await c.subscribe("stat-chan")
        for c in subs[:5]:
            await c.subscribe("stat-other")
        epoch = (await subs[0].subscribe("stat-chan"))["epoch"]
        offs = [await asyncio.to_thread(api.publish, "stat-chan", {"n": n}) for n in range(10)]
        for c in subs:
            await c.wait_messages(10)
        s1 = await asyncio.to_thread(api.stats)
        t1 = s1["total"]
        expect(t1["connections"] >= 12 and t1["connections"] - total["connections"] >= 12,
               f"connections {total['connections']} → {t1['connections']} with 12 opened")
        expect(t1["subscriptions"] - total["subscriptions"] >= 17,
               f"subscriptions {total['subscriptions']} → {t1['subscriptions']} after 17")
        expect(t1["messages_in"] - total["messages_in"] >= 10,
               f"messages_in {total['messages_in']} → {t1['messages_in']} after 10 publishes")
        expect(t1["messages_out"] - total["messages_out"] >= 120,
               f"messages_out {total['messages_out']} → {t1['messages_out']} after 10 x 12")
        per = [s.get("connections") for s in s1["shards"]]
        expect(all(is_int(x) for x in per), f"shard connections {per}: each must be an "
               f"integer")
        expect(sum(per) == t1["connections"], f"shard connections {per} do not add up "
               f"to total {t1['connections']}")
        print(f"# per-shard connections {per}", flush=True)
        stats_figures_move(total, s1)
        r = await asyncio.to_thread(api.ok, "GET", "/api/channels")
        listed = {c.get("channel"): c.get("subscribers") for c in r.get("channels", [])}
        expect(listed.get("stat-chan") == 12 and listed.get("stat-other") == 5,
               f"GET /api/channels: stat-chan {listed.get('stat-chan')}, stat-other "
               f"{listed.get('stat-other')}, expected 12 and 5 (summed over shards); {r}")
        info = await asyncio.to_thread(api.ok, "GET", "/api/channels/stat-chan")
        expect(info == {"channel": "stat-chan", "subscribers": 12, "offset": offs[-1],
                        "epoch": epoch},
               f"GET /api/channels/stat-chan: {info}, expected subscribers 12, offset "
               f"{offs[-1]}, epoch {epoch!r}")
        await subs[0].ok("unsubscribe", channel="stat-chan")
        info = await asyncio.to_thread(api.ok, "GET", "/api/channels/stat-chan")
        expect(info.get("subscribers") == 11, f"after one unsubscribe: {info}")
        await asyncio.gather(*(c.close() for c in subs))
        # The server releases a socket after the close handshake: wait for `closed` to count
        # the 12, bounded by HANG_S.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANG_S
        while True:
            t2 = (await asyncio.to_thread(api.stats))["total"]
            if t2["closed"] - t1["closed"] >= 12 or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        expect(t2["closed"] - t1["closed"] >= 12,
               f"closed {t1['closed']} → {t2['closed']} after closing 12 connections")
        expect(t2["connections"] == t2["accepted"] - t2["closed"],
               f"connections {t2['connections']} is not accepted {t2['accepted']} - closed "
               f"{t2['closed']}")
        api.close()

    def stats_figures_move(before, after):
        """The figures exposed in issue 12 are in the total and in every shard, and move
        with the traffic of stats_and_channels; the legacy sums agree with their parts."""
        t0, t1 = before, after["total"]
        for obj in [t1] + after["shards"]:
            missing = [k for k in STATS_KEYS_12 if not is_int(obj.get(k))]
            expect(not missing, f"/api/stats object without {missing}: {obj}")
            expect(set(obj) == set(t1), f"a shard's stats keys differ from the total's: "
                   f"{sorted(set(obj) ^ set(t1))}")
            expect(obj["loop_iterations"] > 0, f"loop_iterations {obj['loop_iterations']}: "
                   f"every shard's loop has turned")
        expect(t1["frames_sent"] - t0["frames_sent"] >= 120,
               f"frames_sent {t0['frames_sent']} → {t1['frames_sent']} after 120 deliveries")
        expect(t1["loop_iterations"] > t0["loop_iterations"],
               f"loop_iterations {t0['loop_iterations']} → {t1['loop_iterations']}")
        expect(t1["busy_refused"] == t1["command_busy_refused"] + t1["api_busy_refused"],
               f"busy_refused {t1['busy_refused']} is not command_busy_refused "
               f"{t1['command_busy_refused']} + api_busy_refused {t1['api_busy_refused']}")
        expect(t1["dropped"] == sum(t1["dropped_by_priority"].values()),
               f"dropped {t1['dropped']} is not the sum of {t1['dropped_by_priority']}")
        for k in STATS_KEYS_12:
            expect(t1[k] == sum(s[k] for s in after["shards"]),
                   f"total {k} {t1[k]} is not the sum of the shards' "
                   f"{[s[k] for s in after['shards']]}")

    def api_key():
        r = support.api_client(key_port).request("GET", "/api/stats")
        expect_api_error(r, 401, "GET /api/stats without Authorization")
        r = support.api_client(key_port, "wrong").request("GET", "/api/stats")
        expect_api_error(r, 401, "GET /api/stats with a wrong bearer")
        r = support.api_client(key_port).request("POST", "/api/publish",
                                                 {"channel": "c", "data": 1},
                                                 headers={"Authorization": f"Basic {KEY}"})
        expect_api_error(r, 401, "POST /api/publish with 'Basic KEY'")
        r = support.api_client(key_port, KEY + "x").request("POST", "/api/publish",
                                                            {"channel": "c", "data": 1})
        expect_api_error(r, 401, "bearer with one extra character")
        good = support.api_client(key_port, KEY)
        r = good.request("GET", "/api/stats")
        expect(r.status == 200 and isinstance(r.json, dict), f"with the key: {r}")
        r = good.request("POST", "/api/publish", {"channel": "c", "data": 1})
        expect(r.status == 200 and r.json.get("ok") is True, f"publish with the key: {r}")
        resp = support.http_exchange(key_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        expect(resp.status == 200, f"/healthz needs no key: {resp}")

    def bad_requests():
        api = support.api_client(port)
        for body, what in (('{"channel":"c","data":', "truncated JSON"),
                           ("hello", "not JSON"),
                           ("[1,2]", "an array"),
                           ('{"channel":"bad channel","data":1}', "channel with a space"),
                           ('{"channel":"","data":1}', "empty channel"),
                           ('{"data":1}', "no channel"),
                           ('{"channel":"c","data":1,"event":"a\\"b"}', "event with a quote"),
                           ('{"channel":"c","data":1,"priority":"high"}', "priority a string"),
                           ('{"messages":{"channel":"c"}}', "messages not an array"),
                           ('{"messages":"x"}', "messages a string"),
                           ('{"messages":[{"channel":"ok"},{"channel":"bad name"}]}',
                            "a bad channel inside a batch")):
            r = api.request("POST", "/api/publish", body)
            expect_api_error(r, 400, f"POST /api/publish {what} {body!r}")
        r = api.request("POST", "/api/send", '{"data":1}')
        expect_api_error(r, 400, "POST /api/send without userId")
        r = api.request("POST", "/api/broadcast", '{"channels":"x","data":1}')
        expect_api_error(r, 400, "POST /api/broadcast with channels not an array")
        r = api.request("GET", "/api/nothing-here")
        expect_api_error(r, 404, "GET /api/nothing-here")
        r = api.request("POST", "/api/publishx", {"channel": "c", "data": 1})
        expect_api_error(r, 404, "POST /api/publishx")
        r = api.request("GET", "/api/publish")
        expect_api_error(r, 405, "GET /api/publish")
        r = api.request("POST", "/api/stats", "{}")
        expect_api_error(r, 405, "POST /api/stats")
        r = api.request("DELETE", "/api/online")
        expect_api_error(r, 405, "DELETE /api/online")
        api.close()

    def body_limit():
        api = support.api_client(port)
        head = '{"channel":"big","data":"'
        tail = '"}'
        exact = head + "a" * (MIB - len(head) - len(tail)) + tail
        r = api.request("POST", "/api/publish", exact)
        expect(r.status == 200 and r.json.get("ok") is True,
               f"a body of exactly 1 MiB must be accepted: {r}")
        over = head + "a" * (MIB + 1 - len(head) - len(tail)) + tail
        try:
            r = api.request("POST", "/api/publish", over)
        except (ConnectionError, OSError) as e:
            # The server may answer and close before reading the body; read it raw.
            r = None
            err = e
        if r is None:
            resp = support.http_exchange(
                port, (f"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       f"application/json\r\nContent-Length: {len(over)}\r\n\r\n").encode()
                + over.encode(), timeout=10)
            expect(resp.status == 413, f"body of 1 MiB + 1: HTTP {resp.status} (and http.client "
                   f"saw {err!r}), expected 413")
        else:
            expect_api_error(r, 413, "body of 1 MiB + 1")
        # Announced but not sent: refused from the header alone (a server waiting for the
        # body would never answer; the wait is only against that hang).
        resp = support.http_exchange(
            port, b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n",
            timeout=HANG_S)
        expect(resp.status == 413, f"Content-Length 50000000 (no body sent): HTTP "
               f"{resp.status}, expected 413 without the body")
        api.close()

    def keep_alive():
        api = support.api_client(port)
        for k in range(20):
            path, body = [("/api/stats", None), ("/api/online", None),
                          ("/api/publish", {"channel": "ka", "data": k}),
                          ("/api/channels", None)][k % 4]
            r = api.request("POST" if body is not None else "GET", path, body)
            expect(r.status == 200, f"request {k} on the kept-alive connection: {r}")
            expect(r.headers.get("connection", "").lower() != "close",
                   f"request {k}: the server asked to close ({r.headers})")
        r = api.request("GET", "/api/nope")
        expect(r.status == 404, f"404 on the kept-alive connection: {r}")
        r = api.request("GET", "/api/stats")
        expect(r.status == 200, f"a request after a 404 on the same connection: {r}")
        expect(api.reconnects == 0, f"http.client had to reconnect {api.reconnects} times: "
               f"the server did not keep the connection alive")
        api.close()
        # Two requests in one write (pipelined) are answered in order. The second asks the
        # server to close after it, so the read ends on that EOF, not after a fixed time.
        req = (b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /api/publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Length: 25\r\n\r\n"
               b'{"channel":"ka","data":1}')
        with support.raw_ws(port, handshake=False, timeout=HANG_S) as raw:
            raw.send(req)
            data = raw.read_until_eof(HANG_S)
            expect(raw.eof, f"pipelined requests, the second with Connection: close: the "
                   f"connection was still open after {HANG_S}s; got {support.short(data, 400)}")
        expect(data.count(b"HTTP/1.1 200") == 2 and data.index(b'"total"') <
               data.index(b'"offset"'),
               f"two pipelined requests: expected two 200s, stats first: {support.short(data, 400)}")

    return [
        ("POST /api/publish: single, batch; offsets per channel; delivery",
         publish_single_and_batch),
        ("POST /api/broadcast: every connection, a channel list", broadcast),
        ("GET /api/stats shape and counters; /api/channels(/name) across shards",
         stats_and_channels),
        ("API key: 401 without / with a wrong bearer, 200 with it", api_key),
        ("400 bad bodies, 404 unknown /api path, 405 wrong method", bad_requests),
        ("413 for a body over 1 MiB (exactly 1 MiB accepted)", body_limit),
        ("keep-alive: 22 requests on one connection; pipelined requests", keep_alive),
    ]


def keyed_server(binary):
    """A server whose API key comes from RINGCAST_API_KEY (the server copies the
    environment when it starts; the key never appears on its command line)."""
    os.environ["RINGCAST_API_KEY"] = KEY
    try:
        return support.server(binary, ["--insecure", "--shards", "2"], echo_path=None)
    finally:
        del os.environ["RINGCAST_API_KEY"]


def main():
    binary = support.binary_from_argv()
    with support.server(binary, ["--insecure", "--shards", str(SHARDS)],
                        echo_path=None) as srv, keyed_server(binary) as keyed:
        status = support.run_cases(cases(srv.port, keyed.port),
                                   f"backend API, --shards {SHARDS} (websockets "
                                   f"{websockets.__version__})")
        for s in (srv, keyed):
            try:
                s.stop_and_expect_clean_exit()
            except support.check_failed as e:
                support.tap_comment(f"FAIL clean exit\n{e}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
