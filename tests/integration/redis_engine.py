#!/usr/bin/python3
"""The Redis engine (--engine redis, docs/scaling.md): several ringcastd nodes share one
real redis-server (Debian's, started here on a loopback port) and behave as one server.
Python `websockets` clients, the backend API over HTTP.

* three nodes, two shards each: three backends publish at once, one through each node, on
  channels homed on every shard; every subscriber on every node gets every message once,
  in one order (offsets 1..N, the same message ids everywhere), each backend's messages
  in the order it sent them;
* recovery across nodes: a client that got messages on node A recovers on node B, which
  never carried the channel (history read from Redis Streams), and on A restarted (its
  own history gone with the process); after a kill -9 of A its clients recover on B;
* Redis restarted under load: no node crashes; publishes are refused 503 with a reason
  while Redis is down, /readyz says "engine down" and /healthz stays 200; afterwards the
  nodes resubscribe and subscribers get what is published again;
* presence over three nodes: a user's first connection anywhere is one join on every node,
  its last one a leave; the presence command and GET /api/presence count every node; a
  node killed with -9 stops counting once its liveness expires, and its users' leaves
  reach the other nodes (its entries swept from Redis);
* --max-connections-per-user counts every node: at the limit an upgrade is refused 429 on
  every node, a close on one node frees a slot on another, and the connections of a node
  killed with -9 stop counting once its liveness key expires (6 s);
* POST /api/broadcast to every connection reaches every connection of every node once;
* GET /api/history answers from Redis's stream on any node, the same page everywhere;
* Redis frozen (SIGSTOP): a subscribe waiting for its point is answered once the node
  gives up on Redis, not when Redis comes back; a channel only subscribed to keeps its
  order in Redis for an hour;
* the subscriber connection killed mid-stream (CLIENT KILL TYPE pubsub): the node reads
  what was published meanwhile from the stream, so its subscribers get every message
  once, in order, without recovering;
* start-up refuses a bad --engine or --redis-url with a sentence.

Usage: redis_engine.py PATH/TO/ringcastd. Fails without python3-websockets or redis-server.
"""

import asyncio
import functools
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brokers  # noqa: E402
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

HISTORY = ["--namespace", "chat:history=1000"]


def node(binary, redis, shards=2, extra=()):
    return support.server(binary, ["--shards", str(shards), "--engine", "redis",
                                   "--redis-url", redis.url, *HISTORY, *extra], echo_path=None)


def wait_ready(srv, timeout=10.0):
    """Until /readyz answers 200 (every link of the shard that answers is up)."""
    api = support.api_client(srv.port)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if api.request("GET", "/readyz").status == 200:
                return
            time.sleep(0.05)
    finally:
        api.close()
    support.fail(f"node on {srv.port} not ready within {timeout}s")


def wait_all_links(srv, timeout=15.0):
    """Until every shard's Redis links are up (engine_links_up == engine_links)."""
    api = support.api_client(srv.port)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            t = api.request("GET", "/api/stats").json["total"]
            if t["engine_links"] > 0 and t["engine_links_up"] == t["engine_links"]:
                return
            time.sleep(0.05)
    finally:
        api.close()
    support.fail(f":{srv.port}: Redis links not all up within {timeout}s")


def offsets(c):
    return [c.parsed(i)["offset"] for i in range(len(c.messages))]


def channel_names(c):
    """The channel names c's messages carry (recovered ones included)."""
    return {c.parsed(i)["channel"] for i in range(len(c.messages))}


class publisher:
    """Publishes {"from": tag, "n": k} for k = 1..count through one node, from a thread."""

    def __init__(self, port, channel, tag, count, pause=0.0):
        self.port, self.channel, self.tag, self.count, self.pause = port, channel, tag, count, pause
        self.offsets = []
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        api = support.api_client(self.port)
        try:
            for n in range(1, self.count + 1):
                self.offsets.append(api.publish(self.channel, {"from": self.tag, "n": n}))
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as e:  # reported by join()
            self.error = e
        finally:
            api.close()

    def join(self):
        self.thread.join(60)
        expect(not self.thread.is_alive(), f"publisher {self.tag} did not finish")
        if self.error is not None:
            raise self.error


async def three_nodes_one_order(binary):
    with brokers.redis_server() as redis:
        nodes = [node(binary, redis) for _ in range(3)]
        try:
            for n in nodes:
                wait_ready(n)
            channels = [support.homed_on(s, 2, lambda i: f"chat:order{i}") for s in range(2)]
            subs = []
            for n in nodes:
                for ch in channels:
                    for _ in range(2):
                        c = await pubsub_client.connect(n.port)
                        reply = await c.subscribe(ch)
                        expect(reply.get("offset") == 0, f"a fresh channel's point: {reply}")
                        subs.append((ch, c))
            per = 100
            pubs = [publisher(n.port, ch, f"{i}", per) for i, n in enumerate(nodes)
                    for ch in channels]
            for p in pubs:
                await asyncio.to_thread(p.join)
            total = per * len(nodes)
            reference = {}
            for ch, c in subs:
                await c.wait_messages(total, timeout=20)
                got = [c.parsed(i) for i in range(len(c.messages))]
                expect([m["offset"] for m in got] == list(range(1, total + 1)),
                       f"{ch}: offsets {[m['offset'] for m in got][:10]}...")
                order = [(m["id"], m["data"]["from"], m["data"]["n"]) for m in got]
                reference.setdefault(ch, order)
                expect(order == reference[ch], f"{ch}: two subscribers saw different orders")
                for tag in ("0", "1", "2"):
                    mine = [n for _, f, n in order if f == tag]
                    expect(mine == list(range(1, per + 1)),
                           f"{ch}: publisher {tag}'s messages out of order: {mine[:10]}")
            for ch in channels:
                expect(len({i for i, _, _ in reference[ch]}) == total,
                       f"{ch}: message ids are not unique")
            for _, c in subs:
                await c.ws.close()
        finally:
            for n in nodes:
                n.kill()


async def recovery_across_nodes(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis), node(binary, redis)
        try:
            wait_ready(a)
            wait_ready(b)
            channel = "chat:rec"
            c = await pubsub_client.connect(a.port)
            point = await c.subscribe(channel)
            api_a = support.api_client(a.port)
            for n in range(20):
                api_a.publish(channel, {"n": n})
            await c.wait_messages(20)
            epoch = point["epoch"]
            seen = offsets(c)[-1]
            await c.ws.close()
            api_a.close()
            a.stop()  # node A goes; the backend goes on through B
            api_b = support.api_client(b.port)
            for n in range(20, 50):
                api_b.publish(channel, {"n": n})
            # B never carried the channel: its history comes from Redis.
            r = await pubsub_client.connect(b.port)
            reply = await r.command("subscribe", channel=channel,
                                    recover={"epoch": epoch, "offset": seen})
            expect(reply.get("recovered") is True and reply.get("epoch") == epoch
                   and reply.get("offset") == seen, f"recover on B: {reply}")
            for n in range(50, 55):
                api_b.publish(channel, {"n": n})
            await r.wait_messages(55 - seen)
            expect(offsets(r) == list(range(seen + 1, 56)), f"on B: {offsets(r)}")
            expect(channel_names(r) == {channel},
                   f"recovered on B, channels {channel_names(r)}")
            expect([r.parsed(i)["data"]["n"] for i in range(len(r.messages))]
                   == list(range(seen, 55)), "the recovered data is the published data")
            # A restarted: a new process, nothing in its own memory; Redis has it all.
            a2 = node(binary, redis)
            try:
                wait_ready(a2)
                r2 = await pubsub_client.connect(a2.port)
                reply = await r2.command("subscribe", channel=channel,
                                         recover={"epoch": epoch, "offset": 5})
                expect(reply.get("recovered") is True and reply.get("offset") == 5,
                       f"recover on A restarted: {reply}")
                await r2.wait_messages(50)
                expect(offsets(r2) == list(range(6, 56)), f"on A restarted: {offsets(r2)[:5]}")
                ids_b = [r.parsed(i)["id"] for i in range(len(r.messages))]
                ids_a = [r2.parsed(i)["id"] for i in range(len(r2.messages))][seen - 5:]
                expect(ids_a == ids_b, "the same messages carry the same ids on both nodes")
                # By time, on a node: the first message stamped at or after a time.
                stamp = r2.parsed(10)["timestamp"]
                r3 = await pubsub_client.connect(a2.port)
                reply = await r3.command("subscribe", channel=channel, recover={"since": stamp})
                expect(reply.get("recovered") is True, f"recover by time: {reply}")
                await r3.wait_messages(1)
                first = r3.parsed(0)
                expect(first["timestamp"] >= stamp and first["offset"] <= 16,
                       f"recover by time started at {first}")
                for cl in (r2, r3):
                    await cl.ws.close()
            finally:
                a2.kill()
            # An epoch Redis never had: not recovered, live from the point.
            bad = await pubsub_client.connect(b.port)
            reply = await bad.command("subscribe", channel=channel,
                                      recover={"epoch": "nope", "offset": 3})
            expect(reply.get("recovered") is False and reply.get("offset") == 55,
                   f"a foreign epoch: {reply}")
            await bad.ws.close()
            await r.ws.close()
            api_b.close()
        finally:
            a.kill()
            b.kill()


async def killed_node_clients_recover_elsewhere(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis), node(binary, redis)
        try:
            wait_ready(a)
            wait_ready(b)
            channels = [f"chat:k{i}" for i in range(4)]
            clients = []
            for ch in channels:
                c = await pubsub_client.connect(a.port)
                clients.append((ch, c, await c.subscribe(ch)))
            pubs = [publisher(b.port, ch, "b", 200, pause=0.002) for ch in channels]
            await asyncio.sleep(0.15)
            a.kill()  # SIGKILL: no close frames
            last = {}
            for ch, c, _ in clients:
                await c.wait_closed(5)
                last[ch] = offsets(c)[-1] if c.messages else 0
            for p in pubs:
                await asyncio.to_thread(p.join)
            for ch, _, point in clients:
                r = await pubsub_client.connect(b.port)
                reply = await r.command("subscribe", channel=ch,
                                        recover={"epoch": point["epoch"], "offset": last[ch]})
                expect(reply.get("recovered") is True, f"{ch}: {reply}")
                await r.wait_messages(200 - last[ch])
                expect(channel_names(r) == {ch},
                       f"{ch}: recovered with channels {channel_names(r)}")
                expect(offsets(r) == list(range(last[ch] + 1, 201)),
                       f"{ch}: recovered {offsets(r)[:5]}... after {last[ch]}")
                await r.ws.close()
        finally:
            a.kill()
            b.kill()


async def redis_restart_under_load(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis), node(binary, redis)
        try:
            wait_ready(a)
            wait_ready(b)
            channel = "chat:live"
            c = await pubsub_client.connect(b.port)
            await c.subscribe(channel)
            api = support.api_client(a.port)
            statuses = {}
            stop = threading.Event()

            def load():
                api2 = support.api_client(a.port)
                k = 0
                while not stop.is_set() and k < 20000:
                    k += 1
                    r = api2.request("POST", "/api/publish", {"channel": channel, "data": k})
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.status == 503:
                        statuses["reason"] = r.json.get("error") if r.json else r.body
                        time.sleep(0.005)
                api2.close()

            t = threading.Thread(target=load, daemon=True)
            t.start()
            await asyncio.sleep(0.3)
            redis.stop()
            seen_down = False
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not seen_down:
                seen_down = api.request("GET", "/readyz").status == 503
                await asyncio.sleep(0.02)
            expect(seen_down, "/readyz did not turn 503 while Redis was down")
            expect(api.request("GET", "/healthz").status == 200, "/healthz while Redis down")
            r = api.request("POST", "/api/publish", {"channel": channel, "data": "down"})
            expect(r.status == 503 and "Redis" in r.body.decode(),
                   f"a publish while Redis is down: {r}")
            await asyncio.sleep(0.3)
            redis.start()
            wait_ready(a, timeout=15)
            wait_ready(b, timeout=15)
            stop.set()
            await asyncio.to_thread(t.join, 30)
            expect(statuses.get(200, 0) > 0 and statuses.get(503, 0) > 0,
                   f"publishes during the restart: {statuses}")
            expect(a.alive() and b.alive(), "a node died with Redis")
            # /readyz answered for one shard of each node; the other's links may still be
            # reconnecting (a publish homed there would get 503): wait for every link.
            for srv in (a, b):
                await asyncio.to_thread(wait_all_links, srv)
            # Resubscribed: a publish now reaches B's subscriber (a new epoch: Redis kept
            # nothing, so offsets start again).
            before = len(c.messages)
            got = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and got is None:
                api.publish(channel, "after")
                await asyncio.sleep(0.1)
                for i in range(before, len(c.messages)):
                    if c.parsed(i)["data"] == "after":
                        got = c.parsed(i)
            expect(got is not None, "nothing reached the subscriber after Redis came back")
            # The engine's figures: every link back up, each went down once and came up
            # twice; A counted the refused publishes, B what it received for its watch.
            ta = api.request("GET", "/api/stats").json["total"]
            expect(ta["engine_links"] > 0 and ta["engine_links_up"] == ta["engine_links"],
                   f"links after the restart: {ta['engine_links_up']} of {ta['engine_links']}")
            expect(ta["engine_disconnects"] >= ta["engine_links"]
                   and ta["engine_connects"] >= 2 * ta["engine_links"],
                   f"A's engine figures: {({k: v for k, v in ta.items() if 'engine' in k})}")
            expect(ta["engine_publish_failed"] > 0 and ta["engine_published"] > 0,
                   f"A's publishes: {ta['engine_published']} ordered, "
                   f"{ta['engine_publish_failed']} failed")
            api_b = support.api_client(b.port)
            tb = api_b.request("GET", "/api/stats").json["total"]
            expect(tb["engine_watched"] >= 1 and tb["engine_received"] > 0,
                   f"B's watch: {tb['engine_watched']} channels, {tb['engine_received']} received")
            metrics = api_b.request("GET", "/metrics").body.decode()
            for stem in ("ringcast_engine_links_up{", "ringcast_engine_disconnects_total{",
                         "ringcast_engine_received_total{"):
                expect(stem in metrics, f"/metrics has no {stem}")
            api_b.close()
            await c.ws.close()
            api.close()
        finally:
            a.kill()
            b.kill()


def upgrade_status(port, user):
    """The status of a /ws upgrade for `user` (the connection is not kept)."""
    return support.http_exchange(port, support.upgrade_request(f"/ws?user={user}")).status


async def user_limit_across_nodes(binary):
    limit = ["--max-connections-per-user", "3", "--insecure"]  # --insecure: ?user= is the id
    with brokers.redis_server() as redis:
        a, b = node(binary, redis, extra=limit), node(binary, redis, extra=limit)
        c = node(binary, redis, extra=limit)
        held = []
        try:
            for srv in (a, b, c):
                wait_ready(srv)
            # Three connections of u1 over two nodes: the fourth is refused on every node.
            held += [await pubsub_client.connect(a.port, user="u1") for _ in range(2)]
            held.append(await pubsub_client.connect(b.port, user="u1"))
            for srv in (a, b, c):
                status = await asyncio.to_thread(upgrade_status, srv.port, "u1")
                expect(status == 429, f"a 4th connection of u1 on :{srv.port}: {status}; "
                       f"{redis.cli('HGETALL', 'ringcast:user:{u1}')} {redis.cli('KEYS', '*')}")
            # One closed on A frees a slot on C (its release reaches Redis after the close).
            await held.pop(0).ws.close()
            status, deadline = 429, time.monotonic() + 10
            while status == 429 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                status = await asyncio.to_thread(upgrade_status, c.port, "u1")
            expect(status == 101, f"after one of u1's connections closed on A, C answered "
                   f"{status}")
            # kill -9 of a node holding all of u2's connections: the others refuse u2 until
            # the dead node's liveness expires, then admit it.
            held2 = [await pubsub_client.connect(c.port, user="u2") for _ in range(3)]
            status = await asyncio.to_thread(upgrade_status, a.port, "u2")
            expect(status == 429, f"u2 holds 3 on C, A answered {status}")
            c.kill()
            killed = time.monotonic()
            deadline = killed + 30
            while status == 429 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                status = await asyncio.to_thread(upgrade_status, a.port, "u2")
            expect(status == 101, f"u2 still refused 30 s after its node was killed: {status}")
            waited = time.monotonic() - killed
            stats = support.api_client(a.port).stats()["total"]
            expect(stats["engine_user_claims_refused"] >= 2 and stats["engine_user_claims"] >= 4,
                   f"A's claims: {stats['engine_user_claims']}, refused "
                   f"{stats['engine_user_claims_refused']}")
            print(f"# u2 admitted on A {waited:.1f} s after its node was killed "
                  f"(liveness 6 s, refreshed every 2 s)")
            for h in held + held2:
                await h.ws.close()
        finally:
            for srv in (a, b, c):
                srv.kill()


def presence_events(c):
    """The (type, userId) of c's presence events, in arrival order."""
    out = []
    for i in range(len(c.messages)):
        m = c.parsed(i)
        if m.get("op") == "presence":
            out.append((m["type"], m["userId"]))
    return out


async def wait_presence(clients, want, what, timeout=10.0):
    """Until every client's presence events include every (type, user) of `want`: a hang
    guard, not a speed check."""
    deadline = time.monotonic() + timeout
    while any(not set(want) <= set(presence_events(c)) for c in clients):
        if time.monotonic() > deadline:
            support.fail(f"{what}: events {[presence_events(c) for c in clients]}, "
                         f"expected {want} in each")
        await asyncio.sleep(0.02)


async def presence_across_nodes(binary):
    extra = ["--insecure", "--namespace", "room:presence"]  # --insecure: ?user= is the id
    room = "room:x"
    with brokers.redis_server() as redis:
        a, b, c = (node(binary, redis, extra=extra) for _ in range(3))
        try:
            for srv in (a, b, c):
                wait_ready(srv)
            # A watcher on A and one on B (each node then receives the channel).
            wa = await pubsub_client.connect(a.port, user="wa")
            await wa.subscribe(room)
            wb = await pubsub_client.connect(b.port, user="wb")
            await wb.subscribe(room)
            await wait_presence([wa], [("join", "wb")], "wb's join on A")
            # bob on B and on C, cat and an anonymous connection on C: one join per user,
            # on every node, whichever node the connection is on.
            bob_b = await pubsub_client.connect(b.port, user="bob")
            await bob_b.subscribe(room)
            bob_c = await pubsub_client.connect(c.port, user="bob")
            await bob_c.subscribe(room)
            cat = await pubsub_client.connect(c.port, user="cat")
            await cat.subscribe(room)
            anon = await pubsub_client.connect(c.port)
            await anon.subscribe(room)
            await wait_presence([wa, wb], [("join", "bob"), ("join", "cat")], "bob and cat")
            await asyncio.sleep(0.5)  # anything repeated would be here by now
            for w in (wa, wb):
                got = presence_events(w)
                expect(got.count(("join", "bob")) == 1 and got.count(("join", "cat")) == 1
                       and not [e for e in got if e[0] == "leave"],
                       f"{w.user}: one join per user, whatever the nodes: {got}")
            members = [{"userId": "bob", "connections": 2}, {"userId": "cat", "connections": 1},
                       {"userId": "wa", "connections": 1}, {"userId": "wb", "connections": 1}]
            want = {"channel": room, "users": 4, "connections": 6, "anonymous": 1,
                    "members": members}
            reply = await wa.ok("presence", channel=room)
            got = {k: v for k, v in reply.items() if k not in ("op", "ok", "id")}
            expect(got == want, f"presence command on A: {reply}, expected {want}")
            body = support.api_client(b.port).ok("GET", f"/api/presence/{room}")
            expect(body == want, f"GET /api/presence on B: {body}, expected {want}")

            # bob leaves B but is still on C: no leave anywhere.
            await bob_b.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = support.api_client(a.port).ok("GET", f"/api/presence/{room}")
                if body["connections"] == 5:
                    break
                await asyncio.sleep(0.05)
            expect(body["users"] == 4 and body["members"][0] == {"userId": "bob",
                                                                  "connections": 1},
                   f"after bob's connection on B closed, A says {body}")
            await asyncio.sleep(0.3)
            expect(("leave", "bob") not in presence_events(wa),
                   f"bob left B only, yet A announced a leave: {presence_events(wa)}")

            # kill -9 of C: its members stop counting, and bob's and cat's leaves reach
            # A and B once C's liveness has expired.
            c.kill()
            killed = time.monotonic()
            await wait_presence([wa, wb], [("leave", "bob"), ("leave", "cat")],
                                "leaves after C was killed", timeout=30)
            waited = time.monotonic() - killed
            body = support.api_client(a.port).ok("GET", f"/api/presence/{room}")
            expect(body == {"channel": room, "users": 2, "connections": 2, "anonymous": 0,
                            "members": [{"userId": "wa", "connections": 1},
                                        {"userId": "wb", "connections": 1}]},
                   f"after C was killed, A says {body}")
            fields = redis.cli("HKEYS", f"ringcast:{{{room}}}:presence").split()
            expect(len(fields) == 2, f"C's entries swept from Redis: {fields}")
            totals = [support.api_client(s.port).stats()["total"] for s in (a, b)]
            expect(sum(t["engine_dead_shards"] for t in totals) >= 2 and
                   sum(t["engine_presence_sweeps"] for t in totals) >= 1 and
                   all(t["engine_presence_writes"] >= 1 for t in totals),
                   f"engine presence figures: {[{k: v for k, v in t.items() if 'presence' in k or 'dead' in k} for t in totals]}")
            for w in (wa, wb):
                got = presence_events(w)
                expect(got.count(("leave", "bob")) == 1 and got.count(("leave", "cat")) == 1,
                       f"{w.user}: one leave each: {got}")
            print(f"# bob's and cat's leaves reached A and B {waited:.1f} s after C was "
                  f"killed (liveness 6 s, refreshed every 2 s, swept on the next tick)")
            for cl in (wa, wb, bob_c, cat, anon):
                await cl.close()
        finally:
            for srv in (a, b, c):
                srv.kill()


async def history_api_across_nodes(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis), node(binary, redis)
        try:
            wait_ready(a)
            wait_ready(b)
            api_a, api_b = support.api_client(a.port), support.api_client(b.port)
            offsets_sent = [api_a.publish("chat:h", {"n": n}) for n in range(1, 26)]
            expect(offsets_sent == list(range(1, 26)), f"offsets {offsets_sent}")
            # B never carried the channel: its page is the stream in Redis.
            page = api_b.ok("GET", "/api/history/chat:h?since=0&limit=10")
            got = [(m["offset"], m["data"]["n"], m["channel"]) for m in page["messages"]]
            expect(got == [(n, n, "chat:h") for n in range(1, 11)] and page["offset"] == 25
                   and page["first"] == 1 and page["missed"] == 0 and page["more"] is True,
                   f"B's first page: {({k: v for k, v in page.items() if k != 'messages'}, got)}")
            tail = api_b.ok("GET", "/api/history/chat:h?since=20")
            expect([m["offset"] for m in tail["messages"]] == [21, 22, 23, 24, 25]
                   and tail["more"] is False, f"B's page after 20: {tail}")
            # The same messages, ids and all, as A's own page.
            page_a = api_a.ok("GET", "/api/history/chat:h?since=0&limit=10")
            expect(page_a == page, f"A's page differs from B's:\n{page_a}\n{page}")
            # A channel Redis has never seen, and a namespace that keeps nothing: 404.
            for path, words in (("/api/history/chat:never", "no such channel"),
                                ("/api/history/plain:x", "keeps no history")):
                r = api_b.request("GET", path)
                expect(r.status == 404 and words in r.body.decode(), f"GET {path}: {r}")
            api_a.close()
            api_b.close()
        finally:
            a.kill()
            b.kill()


async def broadcast_across_nodes(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis), node(binary, redis)
        try:
            wait_ready(a)
            wait_all_links(b)
            on_a = [await pubsub_client.connect(a.port) for _ in range(2)]
            on_b = [await pubsub_client.connect(b.port) for _ in range(3)]
            api = support.api_client(a.port)
            r = await asyncio.to_thread(api.ok, "POST", "/api/broadcast",
                                        {"event": "notice", "data": {"text": "maintenance"}})
            expect(r.get("connections") == 2, f"the answer counts A's connections: {r}")
            deadline = time.monotonic() + 10
            while any(not c.messages for c in on_a + on_b) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # a second copy would be here by now
            got = [[c.parsed(i) for i in range(len(c.messages))] for c in on_a + on_b]
            expect(all(len(g) == 1 for g in got), f"one copy on every connection: {got}")
            first = got[0][0]
            expect(first["event"] == "notice" and first["data"] == {"text": "maintenance"}
                   and all(g[0] == first for g in got),
                   f"the same envelope, id and all, on both nodes: {got}")
            stats = support.api_client(b.port).stats()["total"]
            sent = support.api_client(a.port).stats()["total"]["engine_broadcasts_sent"]
            expect(sent == 1 and stats["engine_broadcasts_received"] == 2,  # B's two shards
                   f"sent {sent}, received on B {stats['engine_broadcasts_received']}")
            for c in on_a + on_b:
                await c.close()
            api.close()
        finally:
            a.kill()
            b.kill()


async def frozen_redis(binary):
    with brokers.redis_server() as redis:
        a = node(binary, redis)
        sub = None
        try:
            wait_all_links(a)
            sub = await pubsub_client.connect(a.port)
            # A channel only subscribed to keeps its order in Redis for an hour, not a week.
            await sub.subscribe("chat:fresh")
            ttl = int(redis.cli("TTL", "ringcast:{chat:fresh}:meta").strip() or -3)
            expect(0 < ttl <= 3600, f"TTL of a watched, never published channel: {ttl}")
            # Redis frozen (SIGSTOP): a subscribe waiting for its point is answered once the
            # node gives up on Redis (the 5 s reply timeout), not when Redis comes back.
            os.kill(redis.proc.pid, signal.SIGSTOP)
            try:
                frozen = time.monotonic()
                reply = await sub.command("subscribe", channel="chat:frozen", timeout=60)
                waited = time.monotonic() - frozen
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            expect(reply.get("ok") is True, f"subscribe while Redis was frozen: {reply}")
            print(f"# a subscribe was answered {waited:.1f} s into a Redis freeze "
                  f"(reply timeout 5 s)")
            # Back: the channel is watched again and publishes reach the subscriber.
            wait_all_links(a)
            api = support.api_client(a.port)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(
                    sub.parsed(i).get("channel") == "chat:frozen"
                    for i in range(len(sub.messages))):
                status = api.request("POST", "/api/publish",
                                     {"channel": "chat:frozen", "data": 1}).status
                expect(status in (200, 503), f"publish after the freeze: {status}")
                await asyncio.sleep(0.2)
            expect(any(sub.parsed(i).get("channel") == "chat:frozen"
                       for i in range(len(sub.messages))),
                   "nothing published after the freeze reached the subscriber")
            api.close()
        finally:
            if sub is not None:
                await sub.close()
            a.kill()


async def subscriber_gap_filled(binary):
    with brokers.redis_server() as redis:
        a, b = node(binary, redis, shards=1), node(binary, redis, shards=1)
        try:
            wait_all_links(a)
            wait_all_links(b)
            sub = await pubsub_client.connect(a.port)
            await sub.subscribe("chat:gap")
            pub = publisher(b.port, "chat:gap", "b", 300, pause=0.005)
            await asyncio.sleep(0.3)
            # Every subscriber connection Redis has (A's and B's) killed mid-stream: what
            # is published until A has subscribed again is not delivered live to A.
            killed = redis.cli("CLIENT", "KILL", "TYPE", "pubsub").strip()
            await asyncio.to_thread(pub.join)
            deadline = time.monotonic() + 20
            while len(sub.messages) < 300 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # anything repeated would be here by now
            got = offsets(sub)
            expect(got == list(range(1, 301)),
                   f"offsets on A after its subscriber connection was killed ({killed}): "
                   f"{len(got)} messages, first gaps "
                   f"{[(x, y) for x, y in zip(got, got[1:]) if y != x + 1][:5]}")
            expect([sub.parsed(i)["data"]["n"] for i in range(300)] == list(range(1, 301)),
                   "B's messages in the order B sent them")
            t = support.api_client(a.port).stats()["total"]
            expect(t["engine_disconnects"] >= 1 and t["engine_gap_filled"] >= 1,
                   f"A: disconnects {t['engine_disconnects']}, gap filled "
                   f"{t['engine_gap_filled']} (was the connection killed mid-stream?)")
            print(f"# {t['engine_gap_filled']} messages published while A's subscriber "
                  f"connection was down were read from the stream and delivered in order")
            await sub.close()
        finally:
            a.kill()
            b.kill()


async def bad_settings_refused(binary):
    for args, words in ((["--engine", "cluster"], "not an engine"),
                        (["--engine", "redis", "--redis-url", "http://x"], "redis://"),
                        (["--engine", "redis", "--redis-url", "redis://:1/"], "no host"),
                        (["--engine", "redis", "--redis-url", "redis://127.0.0.1:99999"],
                         "port"),
                        (["--redis-prefix", "a b"], "prefix")):
        p = subprocess.run([binary, "--listen", "127.0.0.1:0", *args], capture_output=True,
                           text=True, timeout=10)
        expect(p.returncode != 0 and words in p.stderr,
               f"{args}: exit {p.returncode}, stderr {p.stderr[-300:]!r}")


def main():
    binary = support.binary_from_argv()
    cases = [
        ("three nodes: concurrent publishes through every node reach every subscriber on "
         "every node once, in one order, with the same ids", three_nodes_one_order),
        ("recovery across nodes: on a node that never carried the channel, on a restarted "
         "node, by time; a foreign epoch is not recovered", recovery_across_nodes),
        ("kill -9 of a node: its clients recover every message on another node",
         killed_node_clients_recover_elsewhere),
        ("Redis restarted under load: 503 with a reason, /readyz 503, /healthz 200, no crash, "
         "resubscribed after", redis_restart_under_load),
        ("--max-connections-per-user over three nodes: refused on every node at the limit, "
         "a close frees a slot elsewhere, a killed node's connections stop counting",
         user_limit_across_nodes),
        ("presence over three nodes: one join / leave per user whatever its nodes, the "
         "command and the API count every node, a killed node's members leave",
         presence_across_nodes),
        ("GET /api/history on a node that never carried the channel: Redis's stream, the "
         "same page as the publishing node's", history_api_across_nodes),
        ("POST /api/broadcast to every connection reaches every node once",
         broadcast_across_nodes),
        ("Redis frozen: a subscribe waiting for its point is answered after the reply "
         "timeout; a channel only watched keeps its order an hour", frozen_redis),
        ("the subscriber connection killed mid-stream: the node reads what it missed from "
         "the stream and delivers every message once, in order", subscriber_gap_filled),
        ("bad --engine, --redis-url and --redis-prefix are refused at start",
         bad_settings_refused),
    ]
    return support.run_cases([(name, functools.partial(f, binary)) for name, f in cases])


if __name__ == "__main__":
    sys.exit(main())
