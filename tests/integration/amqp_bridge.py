#!/usr/bin/python3
"""The RabbitMQ bridge (--amqp-bridge, docs/bridges.md): a real rabbitmq-server started
here (one for the whole file: it takes seconds to start), a real AMQP publisher (Debian's
python3-pika), ringcastd consuming the queue it declares, and Python `websockets` clients
receiving what the rules map. Each case uses a --amqp-queue-prefix of its own, so the
queues one leaves on the shared broker do not reach the next.

* end to end: rules `quota:quota.*:user:{userId}` (a body field) and
  `quota:quota.#:quota-{routingKey}` (the routing key); 10 messages for two users
  (`--insecure` clients with ?user=, subscribed to user:<id> at once) reach their user's
  channel and the routing key's channel, with exchange, routingKey, redelivered and id
  (the message-id when the publisher set one, else a sha256: digest) around the JSON
  body; /api/stats "bridges" says up, received, published, acked, nothing in flight;
  /metrics has the ringcast_bridge_* rows of kind "amqp"; the queue is empty afterwards;
* dead letters: messages no channel can be made of (no userId, a body that is not JSON,
  a userId no channel may hold, a body over 1 MiB) are rejected to PREFIX.dlx and land in
  PREFIX.dead, counted unmapped and dead_lettered; a valid message after them arrives;
* broker restart: rabbitmq-server stopped and started again (same data): the row says
  up 0 and one disconnect, then up with a second connect, and a message published
  afterwards arrives;
* a declaration the broker refuses (an exchange of that name with another type): the
  bridge stays down, retries with a growing backoff (at most 6 connections in 3 s), and
  comes up once the exchange is deleted;
* no loss across kill -9: ringcastd (--engine redis, the channel's history in Redis) is
  killed with -9 while 300 messages are published, and restarted; a client that recovers
  from the last (epoch, offset) it saw gets every message's id: none lost (repeats of
  messages published but not yet acknowledged when it died are counted and reported);
* start-up refuses bad --amqp-bridge, --amqp-url, --amqp-prefetch, --amqp-queue-prefix,
  naming the flag; rules survive --print-config.

Usage: amqp_bridge.py PATH/TO/ringcastd. Skips (a TAP skip; a failure under CI) when
rabbitmq-server is not installed; fails without python3-websockets, python3-pika or
redis-server.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
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
if not brokers.rabbitmq_server.installed():
    support.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
try:
    import pika
except ImportError:
    support.missing("python3 module 'pika' (apt-get install python3-pika)")

BROKER = None  # the one rabbitmq-server of this file


def publish(exchange, items):
    """Publishes (routing_key, body, message_id or None) persistently through one pika
    connection; waits for the broker's confirms, so every message is in the queue after."""
    conn = pika.BlockingConnection(BROKER.parameters())
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for key, body, message_id in items:
            props = pika.BasicProperties(delivery_mode=2, message_id=message_id,
                                         content_type="application/json")
            ch.basic_publish(exchange, key, body if isinstance(body, bytes) else body.encode(),
                             properties=props)
    finally:
        conn.close()


def queue_depth(name):
    conn = pika.BlockingConnection(BROKER.parameters())
    try:
        return conn.channel().queue_declare(queue=name, passive=True).method.message_count
    finally:
        conn.close()


def bridge_row(srv):
    return support.bridge_row(srv.port, "amqp")


def wait_row(srv, check, what, timeout=30.0):
    return support.wait_bridge(srv.port, "amqp", check, what, timeout)


def start(binary, prefix, rules, extra=()):
    args = ["--shards", "2", "--amqp-url", BROKER.url, "--amqp-queue-prefix", prefix, *extra]
    for rule in rules:
        args += ["--amqp-bridge", rule]
    srv = support.server(binary, args, echo_path=None)
    wait_row(srv, lambda r: r["up"] == 1, "came up")
    return srv


collect = support.collect


def end_to_end(binary):
    with start(binary, "e2e", ["quota:quota.*:user:{userId}", "quota:quota.#:quota-{routingKey}"],
               ["--insecure"]) as srv:
        async def run():
            u1 = await pubsub_client.connect(srv.port, user="u-1")
            u2 = await pubsub_client.connect(srv.port, user="u-2")
            watcher = await pubsub_client.connect(srv.port)
            await watcher.ok("subscribe", channel="quota-quota.exceeded")
            items = [("quota.exceeded", json.dumps({"userId": f"u-{1 + n % 2}", "n": n}),
                      f"q-{n}" if n % 2 == 0 else None) for n in range(10)]
            await asyncio.to_thread(publish, "quota", items)
            await collect([u1, u2, watcher], 20)
            got = {name: [c.parsed(i) for i in range(len(c.messages))]
                   for name, c in (("u-1", u1), ("u-2", u2), ("watcher", watcher))}
            for c in (u1, u2, watcher):
                await c.ws.close()
            return got
        got = asyncio.run(run())
        for user in ("u-1", "u-2"):
            msgs = got[user]
            expect(len(msgs) == 5, f"{user} got {len(msgs)} messages, expected 5: {msgs[:2]}")
            for m in msgs:
                d = m["data"]
                expect(m["channel"] == f"user:{user}" and m["event"] == "quota.exceeded"
                       and d["exchange"] == "quota" and d["routingKey"] == "quota.exceeded"
                       and d["redelivered"] is False and d["body"]["userId"] == user,
                       f"{user}: {m}")
                n = d["body"]["n"]
                expect(d["id"] == (f"q-{n}" if n % 2 == 0 else d["id"])
                       and (n % 2 == 0 or d["id"].startswith("sha256:")), f"id of {n}: {d}")
        expect(len(got["watcher"]) == 10 and
               sorted(m["data"]["body"]["n"] for m in got["watcher"]) == list(range(10)),
               f"quota-quota.exceeded got {got['watcher']}")
        row = wait_row(srv, lambda r: r["acked"] == 10 and r["in_flight"] == 0,
                       "acknowledged every message")
        expect(row["name"] == "e2e.bridge" and row["received"] == 10 and row["published"] == 20
               and row["unmapped"] == 0 and row["dead_lettered"] == 0
               and row["publish_failed"] == 0 and row["connects"] == 1 and row["lag_ms"] == 0,
               f"bridge row: {row}")
        expect(queue_depth("e2e.bridge") == 0, "messages left in e2e.bridge")
        api = support.api_client(srv.port)
        metrics = api.request("GET", "/metrics").body.decode()
        api.close()
        for line in ['ringcast_bridge_up{kind="amqp",bridge="e2e.bridge",shard="0"} 1',
                     'ringcast_bridge_published_total{kind="amqp",bridge="e2e.bridge",'
                     'shard="0"} 20',
                     'ringcast_bridge_dead_lettered_total{kind="amqp",bridge="e2e.bridge",'
                     'shard="0"} 0']:
            expect(line in metrics.splitlines(), f"/metrics lacks {line!r}")


def dead_letters(binary):
    with start(binary, "dl", ["quota:quota.*:user:{userId}"], ["--insecure"]) as srv:
        async def run():
            ok = await pubsub_client.connect(srv.port, user="ok-user")
            bad = [("quota.exceeded", json.dumps({"used": 1}), "no-user"),
                   ("quota.exceeded", "not json at all", "not-json"),
                   ("quota.exceeded", json.dumps({"userId": "a b"}), "bad-user"),
                   ("quota.exceeded", json.dumps({"userId": "big", "pad": "x" * (1 << 20)}),
                    "too-big")]
            await asyncio.to_thread(publish, "quota", bad + [
                ("quota.exceeded", json.dumps({"userId": "ok-user"}), "fine")])
            await collect([ok], 1)
            got = [ok.parsed(i) for i in range(len(ok.messages))]
            await ok.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 1 and got[0]["data"]["id"] == "fine", f"the valid message: {got}")
        row = wait_row(srv, lambda r: r["dead_lettered"] == 4 and r["acked"] == 1,
                       "dead-lettered 4")
        expect(row["unmapped"] == 4 and row["received"] == 5 and row["published"] == 1,
               f"bridge row: {row}")
        deadline = time.monotonic() + 10
        while queue_depth("dl.dead") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(queue_depth("dl.dead") == 4 and queue_depth("dl.bridge") == 0,
               f"dl.dead holds {queue_depth('dl.dead')}, dl.bridge {queue_depth('dl.bridge')}")
        expect(srv.alive(), "ringcastd died on an unmappable message")


def broker_restarted(binary):
    with start(binary, "rs", ["quota:quota.*:user:{userId}"], ["--insecure"]) as srv:
        BROKER.stop()
        wait_row(srv, lambda r: r["up"] == 0 and r["disconnects"] == 1, "went down")
        BROKER.start()
        row = wait_row(srv, lambda r: r["up"] == 1 and r["connects"] == 2, "came back")

        async def run():
            c = await pubsub_client.connect(srv.port, user="after")
            await asyncio.to_thread(publish, "quota", [
                ("quota.exceeded", json.dumps({"userId": "after"}), "after-restart")])
            await collect([c], 1)
            got = [c.parsed(i) for i in range(len(c.messages))]
            await c.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 1 and got[0]["data"]["id"] == "after-restart",
               f"after the restart: {got}; row {row}")
        expect(srv.alive(), "ringcastd died")


def refused_declaration(binary):
    """An exchange a backend declared with another type: the broker closes the channel
    (406); the bridge stays down, retrying with a growing backoff rather than in a loop, and
    comes up once the clash is gone."""
    conn = pika.BlockingConnection(BROKER.parameters())
    conn.channel().exchange_declare("clash", "fanout", durable=True)
    conn.close()
    args = ["--shards", "1", "--amqp-url", BROKER.url, "--amqp-queue-prefix", "clash",
            "--amqp-bridge", "clash:k.*:x-{routingKey}"]
    with support.server(binary, args, echo_path=None) as srv:
        time.sleep(3)
        row = bridge_row(srv)
        expect(row["up"] == 0 and row["disconnects"] >= 1 and row["connects"] <= 6,
               f"3 s against a clashing exchange: {row}")
        conn = pika.BlockingConnection(BROKER.parameters())
        conn.channel().exchange_delete("clash")
        conn.close()
        wait_row(srv, lambda r: r["up"] == 1, "came up once the clash was gone", timeout=20)

        async def run():
            c = await pubsub_client.connect(srv.port)
            await c.ok("subscribe", channel="x-k.1")
            await asyncio.to_thread(publish, "clash", [("k.1", "{}", "after-clash")])
            await collect([c], 1)
            got = [c.parsed(i) for i in range(len(c.messages))]
            await c.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 1 and got[0]["data"]["id"] == "after-clash", f"after: {got}")


def no_loss_across_kill(binary):
    total = 300
    with brokers.redis_server() as redis:
        extra = ["--engine", "redis", "--redis-url", redis.url,
                 "--namespace", "stream:history=10000"]
        rules = ["load:load.#:stream:all"]
        seen = {}
        repeats = 0
        state = {"epoch": None, "offset": 0}

        async def read_until(srv, stop_at, recover, subscribed=None):
            nonlocal repeats
            c = await pubsub_client.connect(srv.port)
            fields = {"channel": "stream:all"}
            if recover:
                fields["recover"] = {"epoch": state["epoch"], "offset": state["offset"]}
            reply = await c.ok("subscribe", **fields)
            if recover:
                expect(reply.get("recovered") is True, f"recovery refused: {reply}")
            state["epoch"] = reply.get("epoch", state["epoch"])
            if subscribed is not None:
                subscribed()  # publishing starts only now: the first message is not missed
            deadline = time.monotonic() + 60
            i = 0
            while len(seen) < stop_at and time.monotonic() < deadline:
                while i < len(c.messages):
                    m = c.parsed(i)
                    i += 1
                    state["offset"] = m["offset"]
                    mid = m["data"]["id"]
                    repeats += mid in seen
                    seen[mid] = m["data"]["body"]["n"]
                await asyncio.sleep(0.01)
            await c.ws.close()

        first = start(binary, "kill", rules, extra)
        failure = []

        def produce():
            try:
                conn = pika.BlockingConnection(BROKER.parameters())
                ch = conn.channel()
                ch.confirm_delivery()
                for n in range(total):
                    ch.basic_publish("load", f"load.item.{n % 7}", json.dumps({"n": n}),
                                     properties=pika.BasicProperties(delivery_mode=2,
                                                                     message_id=f"m-{n}"))
                    time.sleep(0.004)
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                failure.append(repr(e))
        producer = threading.Thread(target=produce, daemon=True)
        try:
            asyncio.run(read_until(first, total // 3, recover=False, subscribed=producer.start))
            expect(len(seen) >= total // 3, f"only {len(seen)} before the kill")
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            before = len(seen)
            time.sleep(0.3)  # the publisher goes on meanwhile
            second = start(binary, "kill", rules, extra)
            with second:
                asyncio.run(read_until(second, total, recover=True))
                producer.join(60)
                expect(not failure, f"publisher: {failure}")
                missing = sorted(set(f"m-{n}" for n in range(total)) - set(seen))
                expect(not missing, f"{len(missing)} messages lost across kill -9: "
                       f"{missing[:10]}")
                row = wait_row(second, lambda r: r["in_flight"] == 0, "idle")
                support.tap_comment(f"kill -9 after {before} of {total} messages: all {total} "
                                    f"delivered, {repeats} repeated (published, not yet "
                                    f"acknowledged at the kill); second run: {row}")
        finally:
            first.kill()


def bad_settings(binary):
    for args, flag in [(["--amqp-bridge", "quota:quota.*"], "--amqp-bridge"),
                       (["--amqp-bridge", "quota:k:sys:{userId}"], "--amqp-bridge"),
                       (["--amqp-bridge", "quota:k:user:{user id}"], "--amqp-bridge"),
                       (["--amqp-url", "amqps://127.0.0.1"], "--amqp-url"),
                       (["--amqp-prefetch", "0"], "--amqp-prefetch"),
                       (["--amqp-prefetch", "65536"], "--amqp-prefetch"),
                       (["--amqp-queue-prefix", "a b"], "--amqp-queue-prefix")]:
        r = subprocess.run([binary, "--listen", f"{support.LOOPBACK}:0", *args,
                            "--check-config"], capture_output=True, text=True, timeout=20)
        expect(r.returncode == 2 and flag in r.stderr,
               f"{args}: exit {r.returncode}, {r.stderr.strip()!r}")
    rules = ["quota:quota.*:user:{userId}", "devices:device.#:d-{routingKey}"]
    r = subprocess.run([binary, "--amqp-bridge", rules[0], "--amqp-bridge", rules[1],
                        "--amqp-prefetch", "64", "--print-config"],
                       capture_output=True, text=True, timeout=20)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("amqp-bridge =")), "")
    expect(r.returncode == 0 and line.startswith(f'amqp-bridge = ["{rules[0]}", "{rules[1]}"]'),
           f"--print-config: {line!r}")
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(r.stdout)
        f.flush()
        c = subprocess.run([binary, "--config", f.name, "--check-config"],
                           capture_output=True, text=True, timeout=20)
        expect(c.returncode == 0, f"its output as --config: {c.stderr.strip()!r}")


if __name__ == "__main__":
    binary = support.binary_from_argv()
    BROKER = brokers.rabbitmq_server()
    try:
        status = support.run_cases([
            ("messages reach user:{userId} and {routingKey} channels by rule; stats, metrics",
             lambda: end_to_end(binary)),
            ("unmappable messages are dead-lettered to PREFIX.dead and counted",
             lambda: dead_letters(binary)),
            ("rabbitmq-server restarted: the bridge goes down, reconnects, and messages flow",
             lambda: broker_restarted(binary)),
            ("an exchange declared with another type: down, backing off, up once it is gone",
             lambda: refused_declaration(binary)),
            ("kill -9 mid-stream and restart: no message lost (at least once)",
             lambda: no_loss_across_kill(binary)),
            ("bad --amqp-* settings refused naming the flag; rules survive --print-config",
             lambda: bad_settings(binary)),
        ], f"RabbitMQ bridge (pika {pika.__version__})", case_timeout=180)
    finally:
        BROKER.close()
    sys.exit(status)
