#!/usr/bin/python3
"""Recovery on subscribe (docs/protocol.md "Recovery"): a client that comes back with
`{"op":"subscribe","channel":C,"recover":{"epoch":E,"offset":O}}` gets every message after O
in order, exactly once, then the live stream with no gap and no duplicate at the seam, and
`"recovered":true`; or `"recovered":false` with the point after which it gets everything.
Python `websockets` clients; the killed one is a separate process.

Servers: `--shards 2` and `--shards 4`, `--namespace chat:history=1000`,
`--namespace short:history=5`, no JWT keys.

* a subscriber process is SIGKILLed mid-stream while the backend keeps publishing; a new
  connection recovers from the last offset the dead one printed and, while publishing goes
  on, receives every later offset exactly once and in order, on channels homed on every
  shard (2 and 4 shards), and /api/stats counts the recoveries;
* a server restart changes the epoch (also within the same second): recovered:false with
  the new epoch, nothing replayed, live from the subscription point;
* an offset whose successors left the ring (history=5): recovered:false, live from the
  subscription point (the client reloads from its backend);
* a namespace without history, and an epoch that never existed: recovered:false;
* recovering at the channel's last offset: recovered:true with nothing to replay.

Usage: recovery.py PATH/TO/ringcastd. Fails without python3-websockets.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

ARGS = ["--namespace", "chat:history=1000", "--namespace", "short:history=5"]

# The subscriber that gets killed: prints the epoch, then each message's offset, flushed.
VICTIM = r"""
import asyncio, json, sys, websockets
async def main(port, channel):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None,
                                  compression=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": channel, "id": 1}))
        while True:
            m = json.loads(await ws.recv())
            if m.get("op") == "reply":
                print("epoch", m["epoch"], m["offset"], flush=True)
            else:
                print("offset", m["offset"], flush=True)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


def channel_homed(shard, shards, prefix="chat:r"):
    return support.homed_on(shard, shards, lambda i: f"{prefix}{i}")


class publisher:
    """Publishes {"n": k} to `channel` from a thread until stopped; bounded by `most`."""

    def __init__(self, port, channel, most=3000, pause=0.0005):
        self.port, self.channel, self.most, self.pause = port, channel, most, pause
        self.last = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        api = support.api_client(self.port)
        try:
            for n in range(1, self.most + 1):
                if self.stop.is_set():
                    break
                self.last = api.publish(self.channel, {"n": n})
                time.sleep(self.pause)
        finally:
            api.close()

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        expect(not self.thread.is_alive(), "the publisher did not stop")
        return self.last


async def recover(port, channel, epoch, offset):
    c = await pubsub_client.connect(port)
    reply = await c.command("subscribe", channel=channel, recover={"epoch": epoch, "offset": offset})
    expect(reply.get("ok") is True, f"subscribe with recover: {reply}")
    return c, reply


def received_offsets(c):
    return [json.loads(raw)["offset"] for raw, _, _ in c.messages]


async def kill_and_recover(port, channel):
    """The whole story on one channel; returns the reply of the recovery."""
    pub = publisher(port, channel)
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, str(port), channel],
                              stdout=subprocess.PIPE, text=True)
    epoch, seen = None, []
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 50:
            line = await asyncio.to_thread(victim.stdout.readline)
            expect(line and time.monotonic() < deadline,
                   f"the subscriber process stopped after {len(seen)} messages")
            words = line.split()
            if words[0] == "epoch":
                epoch = words[1]
            else:
                seen.append(int(words[1]))
        victim.send_signal(signal.SIGKILL)  # no close frame, no FIN handshake of its own
    finally:
        victim.kill()
        victim.wait(10)
    expect(seen == list(range(seen[0], seen[0] + len(seen))), f"the victim saw gaps: {seen[:5]}")
    last_seen = seen[-1]
    await asyncio.sleep(0.2)  # more is published while nobody listens
    c, reply = await recover(port, channel, epoch, last_seen)
    expect(reply.get("recovered") is True and reply.get("epoch") == epoch
           and reply.get("offset") == last_seen,
           f"{channel}: reply {reply}, expected recovered from {last_seen} in {epoch}")
    # More recoveries from older offsets while the stream runs: each seam is another chance
    # for a duplicate or a gap.
    others = []
    for k in range(8):
        await asyncio.sleep(0.03)
        since = seen[k * 5]
        o, r = await recover(port, channel, epoch, since)
        expect(r.get("recovered") is True and r.get("offset") == since, f"recovery {k}: {r}")
        others.append((since, o))
    await asyncio.sleep(0.2)  # and while the recovered streams run live
    last = await asyncio.to_thread(pub.finish)
    for since, client in [(last_seen, c)] + others:
        await client.wait_messages(last - since, timeout=20)
    await asyncio.sleep(0.1)
    for since, client in [(last_seen, c)] + others:
        got = received_offsets(client)
        expect(got == list(range(since + 1, last + 1)),
               f"{channel}: after {since} got {len(got)} messages, expected "
               f"{last - since}: first {got[:5]}, last {got[-5:]}, "
               f"duplicates {len(got) - len(set(got))}")
        await client.ws.close()
    return reply


def main():
    binary = support.binary_from_argv()
    servers = []

    def start(shards):
        s = support.server(binary, ["--shards", str(shards), *ARGS], echo_path=None)
        servers.append(s)
        return s

    def cases_for(shards):
        async def killed_client_recovers_on_every_home():
            srv = start(shards)
            api = support.api_client(srv.port)
            before = api.stats()["total"]
            for shard in range(shards):
                await kill_and_recover(srv.port, channel_homed(shard, shards))
            after = api.stats()["total"]
            expect(after["recovered"] - before["recovered"] == 9 * shards,
                   f"recovered counter {before['recovered']} -> {after['recovered']}")
            expect(after["recovered_messages"] > before["recovered_messages"],
                   "recovered_messages counted")
            api.close()
            srv.stop()
        return [(f"--shards {shards}: a SIGKILLed subscriber's successor gets every later "
                 "message once, in order, on channels homed on every shard",
                 killed_client_recovers_on_every_home)]

    async def restart_changes_the_epoch():
        srv = start(2)
        api = support.api_client(srv.port)
        c = await pubsub_client.connect(srv.port)
        first = await c.subscribe("chat:restart")
        for n in range(3):
            api.publish("chat:restart", {"n": n})
        await c.wait_messages(3)
        await c.ws.close()
        api.close()
        srv.stop()
        srv2 = start(2)
        api = support.api_client(srv2.port)
        api.publish("chat:restart", {"n": "after"})
        c, reply = await recover(srv2.port, "chat:restart", first["epoch"], 3)
        expect(reply.get("recovered") is False and reply.get("epoch") != first["epoch"]
               and reply.get("offset") == 1,
               f"after a restart: {reply} (old epoch {first['epoch']})")
        api.publish("chat:restart", {"n": "live"})
        await c.wait_messages(1)
        expect(received_offsets(c) == [2], f"nothing replayed, then live: {received_offsets(c)}")
        expect(api.stats()["total"]["recover_failed"] >= 1, "recover_failed counted")
        await c.ws.close()
        api.close()

    async def evicted_offsets_say_so():
        srv = servers[-1]
        api = support.api_client(srv.port)
        sub = await pubsub_client.connect(srv.port)
        point = await sub.subscribe("short:x")
        await sub.ws.close()
        for n in range(1, 21):
            api.publish("short:x", {"n": n})
        c, reply = await recover(srv.port, "short:x", point["epoch"], 2)
        expect(reply.get("recovered") is False and reply.get("offset") == 20,
               f"offsets 3-15 are gone: {reply}")
        api.publish("short:x", {"n": 21})
        await c.wait_messages(1)
        expect(received_offsets(c) == [21], f"nothing replayed, then live: {received_offsets(c)}")
        await c.ws.close()
        # At the last offset: nothing to replay, recovered.
        c, reply = await recover(srv.port, "short:x", point["epoch"], 20)
        expect(reply.get("recovered") is True and reply.get("offset") == 20, f"{reply}")
        api.publish("short:x", {"n": 21})
        await c.wait_messages(1)
        expect(received_offsets(c) == [21], f"live after: {received_offsets(c)}")
        await c.ws.close()
        api.close()

    async def no_history_or_unknown_epoch():
        srv = servers[-1]
        api = support.api_client(srv.port)
        api.publish("plain:x", {"n": 1})
        c, reply = await recover(srv.port, "plain:x", "e1", 0)
        expect(reply.get("recovered") is False and c.messages == [],
               f"a namespace without history: {reply} {c.messages}")
        api.publish("plain:x", {"n": 2})
        await c.wait_messages(1)
        await c.ws.close()
        c, reply = await recover(srv.port, "chat:restart", "nosuchepoch", 0)
        expect(reply.get("recovered") is False, f"an epoch that never was: {reply}")
        await c.ws.close()
        api.close()

    try:
        status = support.run_cases(
            cases_for(2) + cases_for(4) + [
                ("a restart changes the epoch: recovered false, live from the new point",
                 restart_changes_the_epoch),
                ("offsets gone from the ring: recovered false, live from the point",
                 evicted_offsets_say_so),
                ("no history, or an unknown epoch: recovered false; at the last offset: true",
                 no_history_or_unknown_epoch),
            ], title="recovery on subscribe", case_timeout=120)
        for s in servers[-1:]:
            expect(s.alive(), f"server died: {s.output()}")
    finally:
        for s in servers:
            s.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
