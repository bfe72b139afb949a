#!/usr/bin/python3
"""Per-channel order with publishers and subscribers spread over shards, seen by Python
`websockets`.

Usage: pubsub_order.py PATH/TO/ringcastd
For --shards 2 and --shards 4 (more shards than a 2-CPU host has): 40 subscribers (which
SO_REUSEPORT spreads over the shards), 8 more that subscribe while publishing is under
way, 6 WebSocket publishers (pipelined `publish` commands on `chat:` channels) and 2
backend publishers (POST /api/publish, single and batch) at the same time. Checks, per
channel: every subscriber sees the same messages at the same offsets (byte-identical
frames), offsets go up by one with no gap from its subscribe reply's offset to the
channel's last, every publish reply's offset carries that publish, and each publisher's
messages appear in the order it sent them. Fails when python3-websockets is missing.
"""

import asyncio
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, pubsub_client  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

CHANNELS = [f"chat:order-{i}" for i in range(6)]
SUBSCRIBERS = 40
LATE_SUBSCRIBERS = 8
WS_PUBLISHERS = 6
API_PUBLISHERS = 2
PER_PUBLISHER = 150        # publish commands per publisher (API batches count 5 each)
WINDOW = 16                # pipelined, unanswered publish commands per WebSocket publisher


async def ws_publisher(port, p, log):
    """Publishes PER_PUBLISHER messages, up to WINDOW unanswered; records (channel, seq,
    offset) from the replies."""
    c = await pubsub_client.connect(port, user=f"p{p}")
    inflight = []
    for seq in range(PER_PUBLISHER):
        ch = CHANNELS[(seq * 5 + p) % len(CHANNELS)]
        cid, fut, sending = c.send_command("publish", channel=ch, event="o",
                                           data={"p": f"p{p}", "seq": seq})
        await sending
        inflight.append((ch, seq, fut))
        if len(inflight) >= WINDOW:
            await _settle(inflight.pop(0), log, f"p{p}")
    for item in inflight:
        await _settle(item, log, f"p{p}")
    await c.close()


async def _settle(item, log, who):
    ch, seq, fut = item
    try:
        raw, reply = await asyncio.wait_for(fut, 20)
    except asyncio.TimeoutError:
        fail(f"publisher {who}: no reply to publish seq {seq} on {ch} within 20 s")
    expect(reply.get("ok") is True and support.is_int(reply.get("offset")),
           f"publisher {who}: publish seq {seq} on {ch} answered {reply}")
    log.append((who, ch, seq, reply["offset"]))


def api_publisher(port, a, log):
    api = support.api_client(port)
    who = f"api{a}"
    seq = 0
    for k in range(PER_PUBLISHER):
        if k % 2 == 0:
            ch = CHANNELS[(seq * 5 + a) % len(CHANNELS)]
            off = api.publish(ch, {"p": who, "seq": seq}, event="o")
            log.append((who, ch, seq, off))
            seq += 1
        else:
            msgs = []
            for _ in range(5):
                ch = CHANNELS[(seq * 5 + a) % len(CHANNELS)]
                msgs.append({"channel": ch, "event": "o", "data": {"p": who, "seq": seq}})
                seq += 1
            r = api.ok("POST", "/api/publish", {"messages": msgs})
            results = r.get("results")
            expect(r.get("ok") is True and isinstance(results, list) and len(results) == 5
                   and all(support.is_int(x.get("offset")) for x in results),
                   f"{who}: batch publish of 5 answered {r}")
            for m, x in zip(msgs, results):
                log.append((who, m["channel"], m["data"]["seq"], x["offset"]))
    api.close()


async def run_order(port, shards):
    subs = await asyncio.gather(*(pubsub_client.connect(port, user=f"s{i}")
                                  for i in range(SUBSCRIBERS)))
    # Channel c is held by subscribers i with c in {i, i+2, i+4} mod 6: 20 each.
    held = {}   # (subscriber index, channel) -> subscribe reply offset
    for i, c in enumerate(subs):
        for ch in (CHANNELS[i % 6], CHANNELS[(i + 2) % 6], CHANNELS[(i + 4) % 6]):
            held[(i, ch)] = (await c.subscribe(ch))["offset"]
    api = support.api_client(port)
    stats = api.stats()
    per_shard = [s.get("connections") for s in stats.get("shards", [])]
    support.tap_comment(f"--shards {shards}: connections per shard {per_shard}")

    log = []
    late = []
    late_held = {}

    async def late_subscriber(j):
        await asyncio.sleep(random.uniform(0.02, 0.4))
        c = await pubsub_client.connect(port, user=f"late{j}")
        late.append(c)
        k = len(late) - 1
        order = CHANNELS[:]
        random.shuffle(order)
        for ch in order:
            late_held[(k, ch)] = (await c.subscribe(ch))["offset"]

    started = time.monotonic()
    await asyncio.gather(
        *(ws_publisher(port, p, log) for p in range(WS_PUBLISHERS)),
        *(asyncio.to_thread(api_publisher, port, a, log) for a in range(API_PUBLISHERS)),
        *(late_subscriber(j) for j in range(LATE_SUBSCRIBERS)))
    publish_s = time.monotonic() - started

    final = {ch: 0 for ch in CHANNELS}
    for who, ch, seq, off in log:
        final[ch] = max(final[ch], off)
    everyone = [(c, i, ch, off) for (i, ch), off in held.items() for c in [subs[i]]] + \
               [(c, k, ch, off) for (k, ch), off in late_held.items() for c in [late[k]]]
    want_count = {}
    for c, _, ch, off in everyone:
        want_count[id(c)] = want_count.get(id(c), 0) + final[ch] - off
    deadline = time.monotonic() + 60
    for c in subs + late:
        await c.wait_messages(want_count[id(c)], max(1.0, deadline - time.monotonic()),
                              "messages (their channels' offsets after the subscribe replies)")
    await support.quiet_for(subs + late, 0.3)

    # One view per channel: offset -> raw frame, the same for everyone who has it.
    canon = {ch: {} for ch in CHANNELS}
    for c in subs + late:
        seen = {}
        for k in range(len(c.messages)):
            raw = c.messages[k][0]
            m = c.parsed(k)
            expect(m.get("channel") in canon, f"{c.user}: message on an unexpected channel "
                   f"{raw[:200]}")
            seen.setdefault(m["channel"], []).append(m["offset"])
            prev = canon[m["channel"]].setdefault(m["offset"], raw)
            expect(prev == raw, f"channel {m['channel']} offset {m['offset']}: subscribers "
                   f"saw different messages:\n  {prev[:300]}\n  {raw[:300]} ({c.user})")
        for cc, i, ch, off in everyone:
            if cc is not c:
                continue
            got = seen.get(ch, [])
            want = list(range(off + 1, final[ch] + 1))
            if got != want:
                bad = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b),
                           min(len(got), len(want)))
                fail(f"{c.user} on {ch} (subscribe reply offset {off}, last offset "
                     f"{final[ch]}): {len(got)} messages, expected {len(want)}; offsets "
                     f"differ at index {bad}: got {got[max(0, bad - 2):bad + 3]}, expected "
                     f"{want[max(0, bad - 2):bad + 3]}")
    # Every publish is at the offset its reply named; each publisher's order holds.
    for who, ch, seq, off in log:
        raw = canon[ch].get(off)
        expect(raw is not None, f"{who} seq {seq} on {ch}: offset {off} from its reply was "
               f"delivered to nobody")
        m = json.loads(raw)
        expect(m["data"] == {"p": who, "seq": seq},
               f"{who} seq {seq} on {ch}: the reply said offset {off}, but the message at "
               f"offset {off} is {raw[:300]}")
        want_user = None if who.startswith("api") else who
        expect(m["userId"] == want_user, f"{who}: userId {m['userId']!r} at {ch}/{off}, "
               f"expected {want_user!r}")
    for ch in CHANNELS:
        expect(sorted(canon[ch]) == list(range(1, final[ch] + 1)),
               f"{ch}: delivered offsets are not exactly 1..{final[ch]}")
        last = {}
        for off in sorted(canon[ch]):
            d = json.loads(canon[ch][off])["data"]
            expect(d["seq"] > last.get(d["p"], -1), f"{ch}: {d['p']} seq {d['seq']} at "
                   f"offset {off} after seq {last.get(d['p'])}: publisher order broken")
            last[d["p"]] = d["seq"]
        info = api.ok("GET", f"/api/channels/{ch}")
        expect(info.get("offset") == final[ch] and info.get("subscribers") ==
               SUBSCRIBERS // 2 + LATE_SUBSCRIBERS,
               f"GET /api/channels/{ch}: {info}, expected offset {final[ch]} and "
               f"{SUBSCRIBERS // 2 + LATE_SUBSCRIBERS} subscribers")
    total = sum(len(c.messages) for c in subs + late)
    support.tap_comment(f"{len(log)} messages published in {publish_s:.2f}s, {total} deliveries, "
          f"last offsets {[final[ch] for ch in CHANNELS]}")
    api.close()
    await asyncio.gather(*(c.close() for c in subs + late))


def main():
    binary = support.binary_from_argv()

    def order_case(shards):
        async def case():
            with support.server(binary, ["--insecure", "--client-publish", "chat",
                                         "--shards", str(shards)], echo_path=None) as srv:
                await run_order(srv.port, shards)
                srv.stop_and_expect_clean_exit()
        return (f"--shards {shards}: {SUBSCRIBERS}+{LATE_SUBSCRIBERS} subscribers, "
                f"{WS_PUBLISHERS} WebSocket + {API_PUBLISHERS} API publishers: one order "
                f"per channel, clean exit", case)

    return support.run_cases([order_case(2), order_case(4)],
                             f"pub/sub order (websockets {websockets.__version__})",
                             case_timeout=120)


if __name__ == "__main__":
    sys.exit(main())
