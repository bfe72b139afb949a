#!/usr/bin/python3
"""A connection's commands take effect in the order sent, whatever shard owns the channel
(docs/protocol.md "Command order"), seen by Python `websockets`.

Usage: pubsub_pipelined.py PATH/TO/ringcastd
For --shards 2 and --shards 4: 40 connections each send 25 rounds back to back, never
waiting for a reply:

    subscribe A, unsubscribe A, subscribe B, publish B, unsubscribe B, ping

where A and B are fresh names every round, so most subscribes need a round trip to a
channel's home on another shard. Checks, per connection, from what the client received:
every command was answered ok (no 404 "not subscribed" for an unsubscribe sent right
behind its subscribe), replies came back in the order the commands were sent, and the
connection got its own publish on B (it was subscribed when it published) before the
reply to that publish. On the code before command ordering, the unsubscribes raced their
subscribes and were answered 404. Fails when python3-websockets is missing.
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

CONNECTIONS = 40
ROUNDS = 25
STEPS = ["subscribe-a", "unsubscribe-a", "subscribe-b", "publish-b", "unsubscribe-b", "ping"]


def commands_for(conn, rnd):
    """The round's commands as (id, text); ids encode (round, step) so order is checkable."""
    a = f"pipe-{conn}-{rnd}-a"
    b = f"chat:pipe-{conn}-{rnd}-b"
    base = rnd * len(STEPS)
    bodies = [
        {"op": "subscribe", "channel": a},
        {"op": "unsubscribe", "channel": a},
        {"op": "subscribe", "channel": b},
        {"op": "publish", "channel": b, "event": "own", "data": {"c": conn, "r": rnd}},
        {"op": "unsubscribe", "channel": b},
        {"op": "ping"},
    ]
    return [(base + k + 1, json.dumps({**body, "id": base + k + 1}, separators=(",", ":")))
            for k, body in enumerate(bodies)]


async def one_connection(port, conn, shards):
    ws = await websockets.connect(support.ws_url(port, None), open_timeout=10,
                                  ping_interval=None, max_size=None, compression=None)
    texts = [t for rnd in range(ROUNDS) for t in commands_for(conn, rnd)]
    for _, text in texts:
        await ws.send(text)  # all of them, without waiting for any reply
    frames = []
    want_replies = len(texts)
    replies = 0
    try:
        while replies < want_replies:
            raw = await asyncio.wait_for(ws.recv(), 20)
            obj = json.loads(raw)
            frames.append(obj)
            if obj.get("op") == "reply":
                replies += 1
    except asyncio.TimeoutError:
        fail(f"--shards {shards}: connection {conn}: {replies} of {want_replies} replies "
             f"within 20 s of the last")
    finally:
        await ws.close()
    ids = [f.get("id") for f in frames if f.get("op") == "reply"]
    expect(None not in ids, f"--shards {shards}: connection {conn}: a reply without id: "
           f"{[f for f in frames if f.get('op') == 'reply' and f.get('id') is None][:2]}")
    expect(ids == [i for i, _ in texts],
           f"--shards {shards}: connection {conn}: replies out of command order: "
           f"{ids[:12]}...")
    for f in frames:
        if f.get("op") == "reply":
            step = STEPS[(f["id"] - 1) % len(STEPS)]
            expect(f.get("ok") is True, f"--shards {shards}: connection {conn}: {step} "
                   f"(id {f['id']}) answered {f}")
    # Its own publish arrives before the publish's reply (the home sends the delivery first).
    seen = set()
    for f in frames:
        if f.get("op") == "reply":
            if STEPS[(f["id"] - 1) % len(STEPS)] == "publish-b":
                rnd = (f["id"] - 1) // len(STEPS)
                expect(rnd in seen, f"--shards {shards}: connection {conn}: round {rnd}: the "
                       f"reply to its publish came before (or without) the message itself")
        elif f.get("event") == "own":
            d = f.get("data") or {}
            expect(d.get("c") == conn, f"connection {conn} got another's message {f}")
            seen.add(d.get("r"))
    expect(len(seen) == ROUNDS, f"--shards {shards}: connection {conn}: got {len(seen)} of "
           f"its {ROUNDS} own publishes")
    return len(frames)


def run_for(binary, shards):
    async def case():
        with support.server(binary, ["--shards", str(shards), "--insecure",
                                     "--client-publish", "chat", "--command-burst", "1000",
                                     "--max-channels", "10"]) as srv:
            counts = await asyncio.gather(*(one_connection(srv.port, k, shards)
                                            for k in range(CONNECTIONS)))
            stats = support.api_client(srv.port).stats()["total"]
            support.tap_comment(f"--shards {shards}: {sum(counts)} frames to {CONNECTIONS} connections; "
                  f"commands held for order {stats['commands_waited']}")
            expect(stats["commands_waited"] > 0, "no command ever waited for an earlier one: "
                   "the test did not exercise pipelining across shards")
            expect(stats["local_channels"] == 0 and stats["subscriptions"] == 0,
                   f"channels left behind after every unsubscribe: {stats}")
    return case


def main():
    binary = support.binary_from_argv()
    cases = [(f"--shards {n}: {CONNECTIONS} connections x {ROUNDS} pipelined rounds of "
              f"subscribe/unsubscribe/publish in order", run_for(binary, n)) for n in (2, 4)]
    return support.run_cases(cases, title=f"pipelined commands (websockets "
                                          f"{websockets.version.version})", case_timeout=90)


if __name__ == "__main__":
    sys.exit(main())
