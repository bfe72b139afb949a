#!/usr/bin/python3
"""The Bull queue bridge (--queue-bridge, docs/bridges.md): a real BullMQ producer and
worker (npm `bullmq`, pinned in package-lock.json; bull_producer.js) on a real
redis-server started here, ringcastd reading the queue's events stream, and Python
`websockets` clients receiving what the rules map.

* end to end: 20 jobs on queue `q` (key prefix `rct`, --queue-bridge-prefix); rules
  `q:progress:job:{jobId}` and `q:completed:test-completed-{jobId}`: each job's channel gets
  its progress (data.data = {"pct":50,"n":N}, the job's own progress object) and each
  test-completed-<id> channel its completed event (data.returnvalue = {"done":N}), with
  queue, jobId and the stream id; /api/stats "bridges" says up, 40 published, every event
  read acknowledged, the others (added, waiting, active) unmatched; /metrics has the
  ringcast_bridge_* rows;
* untrusted events: entries written with redis-cli that no rule can map (a job id no
  channel may hold, no jobId, one too long, bytes that are not UTF-8) are counted unmapped
  and acknowledged, data that is no JSON goes as a string, and the bridge goes on: a
  valid event after them arrives;
* no loss across kill -9: ringcastd (--engine redis, the channel's history in Redis)
  is killed with -9 while 300 jobs run, and restarted; a client that recovers from the
  last (epoch, offset) it saw gets every job's progress: none lost (repeats of events
  published but not yet acknowledged when it died are counted and reported);
* events this host's consumer was given and never acknowledged (a crash between read and
  acknowledgement, made with redis-cli) are read again from the group's pending list and
  published at start, then acknowledged;
* Redis restarted (empty): the row says up 0 and one disconnect, then up again with a
  second connect; the group is made again and an event written afterwards arrives;
* start-up refuses a bad --queue-bridge or --queue-bridge-prefix, naming the flag.

Usage: redis_bridge.py PATH/TO/ringcastd. Fails without python3-websockets, redis-server
or node with tests/integration/node_modules (npm ci).
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brokers  # noqa: E402
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

HERE = os.path.dirname(os.path.abspath(__file__))
PRODUCER = os.path.join(HERE, "bull_producer.js")
if shutil.which("node") is None or not os.path.isdir(os.path.join(HERE, "node_modules",
                                                                  "bullmq")):
    support.missing("node and bullmq (npm ci --prefix tests/integration)")

PREFIX = "rct"


def produce(redis, queue, jobs, pace_ms=0, background=False):
    args = ["node", PRODUCER, str(redis.port), PREFIX, queue, str(jobs), str(pace_ms)]
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    expect(r.returncode == 0 and f"done {jobs}" in r.stdout,
           f"bull_producer.js: exit {r.returncode}, {r.stdout[-300:]!r} {r.stderr[-500:]!r}")


def wait_bridge(srv, check, what, timeout=20.0):
    return support.wait_bridge(srv.port, "bull", check, what, timeout)


def start(binary, redis, rules, extra=()):
    args = ["--shards", "2", "--redis-url", redis.url, "--queue-bridge-prefix", PREFIX, *extra]
    for rule in rules:
        args += ["--queue-bridge", rule]
    srv = support.server(binary, args, echo_path=None)
    wait_bridge(srv, lambda r: r["up"] == 1, "came up")
    return srv


async def collect(client, want, timeout=60.0):
    await support.collect([client], want, timeout)


def end_to_end(binary):
    jobs = 20
    with brokers.redis_server() as redis, \
            start(binary, redis, ["q:progress:job:{jobId}",
                                  "q:completed:test-completed-{jobId}"]) as srv:
        async def run():
            c = await pubsub_client.connect(srv.port)
            for n in range(jobs):
                await c.ok("subscribe", channel=f"job:j{n}")
                await c.ok("subscribe", channel=f"test-completed-j{n}")
            await asyncio.get_running_loop().run_in_executor(None, produce, redis, "q", jobs)
            await collect(c, 2 * jobs)
            got = [c.parsed(i) for i in range(len(c.messages))]
            await c.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 2 * jobs, f"{len(got)} messages, expected {2 * jobs}: {got[:3]}")
        progress = {m["channel"]: m for m in got if m["event"] == "progress"}
        completed = {m["channel"]: m for m in got if m["event"] == "completed"}
        for n in range(jobs):
            p = progress.get(f"job:j{n}")
            expect(p is not None and p["data"]["data"] == {"pct": 50, "n": n}
                   and p["data"]["jobId"] == f"j{n}" and p["data"]["queue"] == "q"
                   and "-" in p["data"]["id"], f"job:j{n}: {p}")
            d = completed.get(f"test-completed-j{n}")
            expect(d is not None and d["data"]["returnvalue"] == {"done": n}
                   and d["data"]["jobId"] == f"j{n}", f"test-completed-j{n}: {d}")
        row = wait_bridge(srv, lambda r: r["acked"] == r["received"] and r["in_flight"] == 0,
                          "acknowledged every event")
        expect(row["kind"] == "bull" and row["name"] == "q" and row["published"] == 2 * jobs
               and row["unmatched"] == row["received"] - 2 * jobs and row["unmatched"] >= jobs
               and row["unmapped"] == 0 and row["publish_failed"] == 0
               and row["connects"] == 1 and row["lag_ms"] == 0, f"bridge row: {row}")
        pending = redis.cli("XPENDING", f"{PREFIX}:q:events", "ringcast").split()
        expect(pending and pending[0] == "0", f"pending in the group: {pending}")
        api = support.api_client(srv.port)
        metrics = api.request("GET", "/metrics").body.decode()
        api.close()
        for line in ['ringcast_bridge_up{kind="bull",bridge="q",shard="0"} 1',
                     f'ringcast_bridge_published_total{{kind="bull",bridge="q",shard="0"}} '
                     f'{2 * jobs}',
                     'ringcast_bridge_lag_seconds{kind="bull",bridge="q",shard="0"} 0']:
            expect(line in metrics.splitlines(), f"/metrics lacks {line!r}")


def untrusted_events(binary):
    with brokers.redis_server() as redis, \
            start(binary, redis, ["u:progress:job:{jobId}"]) as srv:
        key = f"{PREFIX}:u:events"

        async def run():
            c = await pubsub_client.connect(srv.port)
            await c.ok("subscribe", channel="job:ok")
            redis.cli("XADD", key, "*", "event", "progress", "jobId", "a b", "data", "1")
            redis.cli("XADD", key, "*", "event", "progress", "data", "1")
            redis.cli("XADD", key, "*", "event", "progress", "jobId", "sys", "data", "{")
            redis.cli("XADD", key, "*", "event", "progress", "jobId", "x" * 300)
            # Not UTF-8: redis-cli reads "\xff" inside double quotes as that byte.
            subprocess.run([redis.cli_exe, "-h", support.LOOPBACK, "-p", str(redis.port)],
                           input=f'XADD {key} * event progress jobId bin2 data "\\xff\\xfe"\n',
                           capture_output=True, text=True, timeout=10)
            redis.cli("XADD", key, "*", "event", "progress", "jobId", "ok", "data",
                      '{"fine":true}')
            await collect(c, 1, timeout=20)
            got = [c.parsed(i) for i in range(len(c.messages))]
            await c.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 1 and got[0]["data"]["data"] == {"fine": True},
               f"the valid event after the bad ones: {got}")
        row = wait_bridge(srv, lambda r: r["acked"] == r["received"] == 6, "acked all 6")
        # Unmapped: "a b", no jobId, 300 bytes of id, bytes that are not UTF-8. Published:
        # job:sys (a "{" that is no JSON goes as a string) and job:ok.
        expect(row["unmapped"] == 4 and row["published"] == 2, f"bridge row: {row}")
        expect(srv.alive(), "ringcastd died on a malformed event")


def no_loss_across_kill(binary):
    jobs = 300
    with brokers.redis_server() as redis:
        extra = ["--engine", "redis", "--namespace", "jobs:history=10000"]
        rules = ["k:progress:jobs:{queue}"]
        seen = {}
        repeats = 0
        state = {"epoch": None, "offset": 0}

        async def read_until(srv, stop_at, recover):
            nonlocal repeats
            c = await pubsub_client.connect(srv.port)
            fields = {"channel": "jobs:k"}
            if recover:
                fields["recover"] = {"epoch": state["epoch"], "offset": state["offset"]}
            reply = await c.ok("subscribe", **fields)
            if recover:
                expect(reply.get("recovered") is True, f"recovery refused: {reply}")
            state["epoch"] = reply.get("epoch", state["epoch"])
            deadline = time.monotonic() + 90
            i = 0
            while len(seen) < stop_at and time.monotonic() < deadline:
                while i < len(c.messages):
                    m = c.parsed(i)
                    i += 1
                    state["offset"] = m["offset"]
                    job = m["data"]["jobId"]
                    if job in seen:
                        repeats += 1
                    seen[job] = m["data"]["id"]
                await asyncio.sleep(0.01)
            await c.ws.close()

        first = start(binary, redis, rules, extra)
        producer = produce(redis, "k", jobs, pace_ms=5, background=True)
        try:
            asyncio.run(read_until(first, jobs // 3, recover=False))
            expect(len(seen) >= jobs // 3, f"only {len(seen)} before the kill")
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            before = len(seen)
            time.sleep(0.5)  # the queue goes on meanwhile
            second = start(binary, redis, rules, extra)
            with second:
                asyncio.run(read_until(second, jobs, recover=True))
                out, err = producer.communicate(timeout=120)
                expect(producer.returncode == 0, f"producer: {out[-200:]} {err[-400:]}")
                missing = sorted(set(f"j{n}" for n in range(jobs)) - set(seen))
                expect(not missing, f"{len(missing)} jobs' progress lost across kill -9: "
                       f"{missing[:10]}")
                row = wait_bridge(second, lambda r: r["in_flight"] == 0, "idle")
                support.tap_comment(f"kill -9 after {before} of {jobs} jobs: all {jobs} "
                                    f"delivered, {repeats} repeated (published, not yet "
                                    f"acknowledged at the kill); second run: {row}")
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.communicate()
            first.kill()


def pending_read_again(binary):
    """Events a consumer of this host's name was given and never acknowledged (a crash
    between read and acknowledgement, made here with redis-cli) are published at start."""
    import socket
    with brokers.redis_server() as redis:
        key = f"{PREFIX}:p:events"
        redis.cli("XGROUP", "CREATE", key, "ringcast", "$", "MKSTREAM")
        for n in range(5):
            redis.cli("XADD", key, "*", "event", "progress", "jobId", f"p{n}", "data", str(n))
        taken = redis.cli("XREADGROUP", "GROUP", "ringcast", socket.gethostname(), "STREAMS",
                          key, ">")
        expect(taken.count("progress") == 5, f"redis-cli read: {taken!r}")
        with start(binary, redis, ["p:progress:jobs:{queue}"],
                   ["--namespace", "jobs:history=100"]) as srv:
            row = wait_bridge(srv, lambda r: r["acked"] == 5, "acknowledged the 5 pending")
            api = support.api_client(srv.port)
            r = api.request("GET", "/api/history/jobs:p?since=0")
            api.close()
            expect(r.status == 200, f"history: {r.status} {r.body[:200]!r}")
            body = r.body.decode()
            expect(all(f'"jobId":"p{n}"' in body for n in range(5)) and row["published"] == 5,
                   f"history of jobs:p: {body[:600]}; row {row}")
        pending = redis.cli("XPENDING", key, "ringcast").split()
        expect(pending and pending[0] == "0", f"still pending: {pending}")


def redis_restarted(binary):
    """Redis goes away and comes back (empty: no persistence): the bridge reports down,
    reconnects, makes its group again, and events written afterwards flow."""
    with brokers.redis_server() as redis, \
            start(binary, redis, ["r:progress:job:{jobId}"]) as srv:
        key = f"{PREFIX}:r:events"
        redis.stop()
        wait_bridge(srv, lambda r: r["up"] == 0 and r["disconnects"] == 1, "went down")
        redis.start()
        row = wait_bridge(srv, lambda r: r["up"] == 1 and r["connects"] == 2, "came back")
        groups = redis.cli("XINFO", "GROUPS", key)
        expect("ringcast" in groups, f"group not made again: {groups!r}")

        async def run():
            c = await pubsub_client.connect(srv.port)
            await c.ok("subscribe", channel="job:after")
            redis.cli("XADD", key, "*", "event", "progress", "jobId", "after", "data", "7")
            await collect(c, 1, timeout=20)
            got = [c.parsed(i) for i in range(len(c.messages))]
            await c.ws.close()
            return got
        got = asyncio.run(run())
        expect(len(got) == 1 and got[0]["data"]["data"] == 7, f"after the restart: {got}")
        expect(srv.alive(), f"ringcastd died; row {row}")


def bad_settings(binary):
    for args, flag in [(["--queue-bridge", "q:progress"], "--queue-bridge"),
                       (["--queue-bridge", "q:progress:sys:{jobId}"], "--queue-bridge"),
                       (["--queue-bridge", "q:progress:job:{job}"], "--queue-bridge"),
                       (["--queue-bridge-prefix", "a:b"], "--queue-bridge-prefix")]:
        r = subprocess.run([binary, "--listen", f"{support.LOOPBACK}:0", *args,
                            "--check-config"], capture_output=True, text=True, timeout=20)
        expect(r.returncode == 2 and flag in r.stderr,
               f"{args}: exit {r.returncode}, {r.stderr.strip()!r}")
    # Two rules survive --print-config as a config file, each an entry of its own.
    rules = ["a:progress:job:{jobId}", "a:*:q-{queue}"]
    r = subprocess.run([binary, "--queue-bridge", rules[0], "--queue-bridge", rules[1],
                        "--print-config"], capture_output=True, text=True, timeout=20)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("queue-bridge =")), "")
    expect(r.returncode == 0 and line.startswith(f'queue-bridge = ["{rules[0]}", "{rules[1]}"]'),
           f"--print-config: {line!r}")
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(r.stdout)
        f.flush()
        c = subprocess.run([binary, "--config", f.name, "--check-config"],
                           capture_output=True, text=True, timeout=20)
        expect(c.returncode == 0, f"its output as --config: {c.stderr.strip()!r}")


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases([
        ("BullMQ progress and completed events reach their channels by rule; stats, metrics",
         lambda: end_to_end(binary)),
        ("events no rule can map are counted and acknowledged; the bridge goes on",
         lambda: untrusted_events(binary)),
        ("kill -9 mid-stream and restart: no event lost (at least once)",
         lambda: no_loss_across_kill(binary)),
        ("events given to this host and never acknowledged are published at start",
         lambda: pending_read_again(binary)),
        ("Redis restarted: the bridge goes down, reconnects, and events flow again",
         lambda: redis_restarted(binary)),
        ("bad --queue-bridge / --queue-bridge-prefix refused naming the flag; rules survive "
         "--print-config",
         lambda: bad_settings(binary)),
    ], "queue bridge (BullMQ)", case_timeout=300))
