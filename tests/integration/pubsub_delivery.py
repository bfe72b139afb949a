#!/usr/bin/python3
"""Delivery: exactly once, the envelope and replies exactly as docs/protocol.md, unsubscribe,
and every error path of the client protocol, seen by Python `websockets`.

Usage: pubsub_delivery.py PATH/TO/ringcastd
Servers: `--shards 4 --insecure --client-publish chat,room` for delivery and envelopes;
`--max-channels 3` for the channel limit; `--command-rate 5 --command-burst 5` for 429.
Fails when python3-websockets is missing.
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, is_int, now_ms, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets  # noqa: F401
    from websockets.exceptions import ConnectionClosed  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

SUBSCRIBERS = 200
MESSAGES = 500
CHANNELS = [f"deliver-{i}" for i in range(4)]
RATE_PER_S, RATE_BURST = 5, 5  # the rate-limited server's --command-rate / --command-burst
MAX_RATE_PINGS = 1000  # bound on the pings sent before the first 429
REFILL_TRIES = 50  # one token's time apart: ten seconds of refill, fifty times what one needs
HANG_S = 30  # only against a hang

# A data value with everything a re-serializer would change: spaces, tabs and newlines
# between tokens, escapes that have a shorter form, \u escapes (also a surrogate pair),
# raw multi-byte UTF-8, number spellings (2.50E+3, -0, 1.0), empty containers.
ODD_DATA = ('{ "k\\u00e9y" :\t[1 ,2.50E+3, -0, 1.0, "tab\\there\\n", "\\ud83d\\ude00",'
            ' "ünï😀 κόσμε", "\\"q\\" \\\\ \\/", null, true ,false, {}, [ ] ] ,\n'
            '  "nested" : { "a" : { "b" : [ { } ] } } , "empty":"" }')
ODD_SCALARS = ['"  spaced string\\u0000  "', '0.10', '-1.5e-7', 'null', '[]', 'true',
               '"\\u2028\\u2029"']


def cmd_text(op, channel, data_text, cid, **extra):
    """A command with `data` spliced in as raw text (json.dumps would normalize it)."""
    head = json.dumps({"op": op, "channel": channel, **extra}, separators=(",", ":"))
    return head[:-1] + f',"data":{data_text},"id":{cid}}}'


def error_code(reply):
    err = reply.get("error")
    return err.get("code") if isinstance(err, dict) else None


def expect_error(reply, code, what):
    expect(reply.get("op") == "reply" and reply.get("ok") is False and error_code(reply) == code
           and isinstance(reply["error"].get("message"), str),
           f"{what}: expected {{\"op\":\"reply\",\"ok\":false,\"error\":{{\"code\":{code},"
           f"\"message\":\"…\"}}}}, got {reply}")


def cases(port, limit_port, rate_port):
    async def exactly_once():
        # Each subscriber takes two neighbouring channels of four; messages go round the
        # channels, most from the API (batches), some from WebSocket publishers.
        subs = await asyncio.gather(*(pubsub_client.connect(port, user=f"s{i}")
                                      for i in range(SUBSCRIBERS)))
        mine = {}
        for i, c in enumerate(subs):
            mine[i] = [CHANNELS[i % 4], CHANNELS[(i + 1) % 4]]
        await asyncio.gather(*(c.subscribe(ch) for i, c in enumerate(subs) for ch in mine[i]))
        pub = await pubsub_client.connect(port, user="pub")
        # WebSocket publish is allowed only in --client-publish namespaces, so the WS part
        # goes to chat: channels that half the subscribers also hold.
        await asyncio.gather(*(c.subscribe("chat:deliver") for c in subs[::2]))
        api = support.api_client(port)
        sent = {ch: [] for ch in CHANNELS + ["chat:deliver"]}
        batch = []
        for n in range(MESSAGES):
            ch = CHANNELS[n % 4]
            batch.append({"channel": ch, "event": "n", "data": {"n": n, "pad": "x" * (n % 50)}})
            sent[ch].append(n)
            if len(batch) == 50:
                r = await asyncio.to_thread(api.ok, "POST", "/api/publish", {"messages": batch})
                expect(len(r.get("results", [])) == len(batch), f"batch publish: {r}")
                batch = []
        ws_sent = []
        for n in range(MESSAGES, MESSAGES + 100):
            await pub.ok("publish", channel="chat:deliver", event="n", data={"n": n})
            ws_sent.append(n)
        sent["chat:deliver"] = ws_sent
        deadline = time.monotonic() + 60
        for i, c in enumerate(subs):
            want = sum(len(sent[ch]) for ch in mine[i]) + (len(ws_sent) if i % 2 == 0 else 0)
            await c.wait_messages(want, max(1.0, deadline - time.monotonic()))
        await quiet_for(subs, 0.3)
        for i, c in enumerate(subs):
            got = {}
            ids = set()
            for k in range(len(c.messages)):
                m = c.parsed(k)
                expect(m["id"] not in ids, f"subscriber {i}: message id {m['id']} twice")
                ids.add(m["id"])
                got.setdefault(m["channel"], []).append(m["data"]["n"])
            channels = mine[i] + (["chat:deliver"] if i % 2 == 0 else [])
            expect(set(got) == set(channels), f"subscriber {i}: got channels {sorted(got)}, "
                   f"subscribed to {channels}")
            for ch in channels:
                expect(got[ch] == sent[ch], f"subscriber {i} channel {ch}: {len(got[ch])} "
                       f"messages, expected {len(sent[ch])} exactly once in order; first "
                       f"difference at "
                       f"{next((k for k, (a, b) in enumerate(zip(got[ch], sent[ch])) if a != b), min(len(got[ch]), len(sent[ch])))}")
        total = sum(len(c.messages) for c in subs)
        print(f"# {SUBSCRIBERS} subscribers, {MESSAGES + 100} messages, {total} deliveries",
              flush=True)
        api.close()
        await asyncio.gather(*(c.close() for c in subs + [pub]))

    async def envelope_from_client_publish():
        pub = await pubsub_client.connect(port, user="7")
        sub = await pubsub_client.connect(port, user="9")
        anon = await pubsub_client.connect(port)
        await sub.subscribe("chat:env")
        await anon.subscribe("chat:env")
        texts = [ODD_DATA] + ODD_SCALARS
        before = now_ms()
        offsets = []
        for k, text in enumerate(texts):
            reply = await pub.command_raw(
                cmd_text("publish", "chat:env", text, 100 + k, event="text", priority=2),
                100 + k)
            expect(reply.get("ok") is True and is_int(reply.get("offset"))
                   and set(reply) == {"op", "id", "ok", "offset"},
                   f"publish reply: expected {{\"op\":\"reply\",\"id\":{100 + k},\"ok\":true,"
                   f"\"offset\":N}}, got {reply}")
            offsets.append(reply["offset"])
        expect(offsets == list(range(offsets[0], offsets[0] + len(texts))),
               f"publish reply offsets {offsets} do not increase by one")
        for c in (sub, anon):
            await c.wait_messages(len(texts))
            for k, text in enumerate(texts):
                raw = c.messages[k][0]
                m = support.check_envelope(
                    raw, channel="chat:env", event="text", priority=2, user_id="7",
                    data_text=text, after_ms=before, before_ms=now_ms(),
                    what=f"message {k} to {c.user or 'anonymous'}")
                expect(m["offset"] == offsets[k], f"message {k}: offset {m['offset']}, "
                       f"the publish reply said {offsets[k]}")
                expect(m["id"].startswith("m-"),
                       f"message id {m['id']!r} does not have the documented m-… form")
        ids = [sub.parsed(k)["id"] for k in range(len(texts))]
        expect(len(set(ids)) == len(ids), f"message ids not unique: {ids}")
        anon_ids = [anon.parsed(k)["id"] for k in range(len(texts))]
        expect(ids == anon_ids, f"two subscribers saw different ids: {ids} vs {anon_ids}")
        # Defaults: event "message", priority 3. An anonymous publisher has userId null.
        anon_pub = await pubsub_client.connect(port)
        await anon_pub.ok("publish", channel="chat:env", data={"d": 1})
        await sub.wait_messages(len(texts) + 1)
        support.check_envelope(sub.messages[-1][0], event="message", priority=3,
                               user_id=None, data={"d": 1}, what="publish with defaults")
        await asyncio.gather(*(c.close() for c in (pub, sub, anon, anon_pub)))

    async def envelope_from_api_publish():
        sub = await pubsub_client.connect(port, user="9")
        await sub.subscribe("api-env")
        api = support.api_client(port)
        before = now_ms()
        body = ('{"channel":"api-env","event":"evt:1","data":' + ODD_DATA +
                ',"priority":4,"userId":"42"}')
        r = await asyncio.to_thread(api.request, "POST", "/api/publish", body)
        expect(r.status == 200 and r.json and r.json.get("ok") is True,
               f"POST /api/publish with odd data: {r}")
        r2 = await asyncio.to_thread(api.request, "POST", "/api/publish",
                                     '{"channel":"api-env","data": "x" }')
        expect(r2.status == 200, f"POST /api/publish without event/priority/userId: {r2}")
        await sub.wait_messages(2)
        support.check_envelope(sub.messages[0][0], channel="api-env", event="evt:1",
                               priority=4, user_id="42", data_text=ODD_DATA, after_ms=before,
                               before_ms=now_ms(), what="API publish with userId")
        m = support.check_envelope(sub.messages[1][0], channel="api-env", event="message",
                                   priority=3, user_id=None, data_text='"x"',
                                   what="API publish without userId")
        expect(m["offset"] == r.json["offset"] + 1, f"offsets: {r.json} then {m}")
        api.close()
        await sub.close()

    async def subscribe_and_unsubscribe_replies():
        c = await pubsub_client.connect(port, user="11")
        api = support.api_client(port)
        for _ in range(3):
            await asyncio.to_thread(api.publish, "replies", {"before": True})
        reply = await c.command("subscribe", channel="replies", id=41)
        expect(set(reply) == {"op", "id", "ok", "channel", "epoch", "offset"}
               and reply["op"] == "reply"
               and reply["id"] == 41 and reply["ok"] is True and reply["channel"] == "replies"
               and isinstance(reply["epoch"], str) and reply["epoch"]
               and reply["offset"] == 3,
               f"subscribe reply: expected {{\"op\":\"reply\",\"id\":41,\"ok\":true,\"channel\":"
               f"\"replies\",\"epoch\":\"…\",\"offset\":3}} (3 messages published before), got "
               f"{reply}")
        again = await c.command("subscribe", channel="replies", id=42)
        expect(again.get("ok") is True and again.get("epoch") == reply["epoch"],
               f"subscribing twice must not be an error (same epoch): {again}")
        off = await asyncio.to_thread(api.publish, "replies", {"after": 1})
        expect(off == 4, f"publish after 3: offset {off}, expected 4")
        await c.wait_messages(1)
        await quiet_for([c], 0.3)
        expect(len(c.messages) == 1, f"subscribed twice: got {len(c.messages)} copies of one "
               f"message, expected 1")
        un = await c.command("unsubscribe", channel="replies", id=43)
        expect(un == {"op": "reply", "id": 43, "ok": True},
               f"unsubscribe reply: expected {{\"op\":\"reply\",\"id\":43,\"ok\":true}}, got {un}")
        pong = await c.command("ping", id=44)
        expect(pong == {"op": "reply", "id": 44, "ok": True}, f"ping reply {pong}")
        noid = await c.command_raw('{"op":"ping"}', None)
        expect(noid.get("id", "missing") is None and noid.get("ok") is True,
               f"ping without id: expected a reply with \"id\":null, got {noid}")
        api.close()
        await c.close()

    async def unsubscribe_stops_delivery():
        a = await pubsub_client.connect(port, user="21")
        others = [await pubsub_client.connect(port, user=f"2{k}") for k in range(2, 6)]
        for c in [a] + others:
            await c.subscribe("unsub-test")
        api = support.api_client(port)
        await asyncio.to_thread(api.publish, "unsub-test", {"n": 1})
        for c in [a] + others:
            await c.wait_messages(1)
        await a.ok("unsubscribe", channel="unsub-test")
        for n in range(2, 12):
            await asyncio.to_thread(api.publish, "unsub-test", {"n": n})
        for c in others:  # on other shards too: once they have everything, a's is past
            await c.wait_messages(11)
        await quiet_for([a], 0.5)
        expect(len(a.messages) == 1, f"after unsubscribe: got {len(a.messages) - 1} more "
               f"messages: {[r for r, _, _ in a.messages[1:3]]}")
        again = await a.command("unsubscribe", channel="unsub-test")
        expect_error(again, 404, "unsubscribe twice")
        api.close()
        await asyncio.gather(*(c.close() for c in [a] + others))

    async def errors_400():
        c = await pubsub_client.connect(port, user="31")
        for text, what in (('{"op":"subscribe","channel":"x","id":1', "truncated JSON"),
                           ('not json at all', "not JSON"),
                           ('[{"op":"ping","id":2}]', "an array, not an object"),
                           ('"ping"', "a string, not an object")):
            before = len(c.null_replies)
            await c.ws.send(text)
            deadline = time.monotonic() + HANG_S
            while len(c.null_replies) == before and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            expect(len(c.null_replies) > before, f"{what} {text!r}: no reply with \"id\":null "
                   f"within {HANG_S} s (stray replies: {c.stray_replies[-2:]}; closed: "
                   f"{c.close_code})")
            expect_error(c.null_replies[-1][1], 400, f"{what} {text!r}")
        checks = [
            ('{"op":"dance","channel":"x","id":10}', 10, "unknown op"),
            ('{"channel":"x","id":11}', 11, "missing op"),
            ('{"op":"subscribe","id":12}', 12, "subscribe without channel"),
            ('{"op":"subscribe","channel":"bad channel!","id":13}', 13, "channel with space"),
            ('{"op":"subscribe","channel":"","id":14}', 14, "empty channel"),
            ('{"op":"subscribe","channel":"' + "a" * 256 + '","id":15}', 15,
             "256-byte channel"),
            ('{"op":"subscribe","channel":"caf\u00e9","id":16}', 16, "non-ASCII channel"),
            ('{"op":"subscribe","channel":"a\\u0062c","id":17}', 17,
             "escaped channel (names are never unescaped)"),
            ('{"op":"subscribe","channel":7,"id":18}', 18, "channel is a number"),
            ('{"op":"publish","channel":"chat:x","event":"a\\"b","data":1,"id":19}', 19,
             "event with a quote"),
            ('{"op":"publish","channel":"chat:x","event":"","data":1,"id":20}', 20,
             "empty event"),
            ('{"op":"unsubscribe","channel":"no space","id":21}', 21, "unsubscribe bad name"),
        ]
        for text, cid, what in checks:
            reply = await c.command_raw(text, cid)
            expect(reply.get("id") == cid, f"{what}: reply id {reply.get('id')}, sent {cid}")
            expect_error(reply, 400, f"{what} {text[:80]!r}")
        ok255 = await c.command("subscribe", channel="b" * 255)
        expect(ok255.get("ok") is True, f"255-byte channel name refused: {ok255}")
        await c.ok("ping")  # still usable after all that
        await c.close()

    async def errors_403_404():
        u7 = await pubsub_client.connect(port, user="7")
        expect_error(await u7.command("publish", channel="news:x", data=1),
                     403, "publish outside --client-publish (news:)")
        expect_error(await u7.command("publish", channel="plain", data=1),
                     403, "publish to a channel without namespace")
        ok = await u7.command("publish", channel="room:1", data=1)
        expect(ok.get("ok") is True, f"publish in the second --client-publish namespace: {ok}")
        expect_error(await u7.command("subscribe", channel="user:8"), 403,
                     "subscribe to another user's channel")
        expect_error(await u7.command("unsubscribe", channel="user:7"), 403,
                     "unsubscribe own user: channel")
        own = await u7.command("subscribe", channel="user:7")
        expect(own.get("ok") is True, f"subscribing to one's own user: channel again: {own}")
        expect_error(await u7.command("unsubscribe", channel="never-subscribed"), 404,
                     "unsubscribe a channel never subscribed")
        anon = await pubsub_client.connect(port)
        expect_error(await anon.command("subscribe", channel="user:7"), 403,
                     "anonymous subscribe to user:7")
        await u7.close()
        await anon.close()

    async def channel_limit():
        c = await pubsub_client.connect(limit_port)  # anonymous: no user: channel counted
        api = support.api_client(limit_port)
        before = api.stats()["total"]["channel_limit_refused"]
        for k in range(3):
            await c.subscribe(f"lim-{k}")
        expect_error(await c.command("subscribe", channel="lim-3"), 403,
                     "4th channel with --max-channels 3")
        refused = api.stats()["total"]["channel_limit_refused"] - before
        api.close()
        expect(refused == 1, f"channel_limit_refused +{refused}, expected +1")
        again = await c.command("subscribe", channel="lim-1")
        expect(again.get("ok") is True, f"re-subscribing to a held channel at the limit: {again}")
        await c.ok("unsubscribe", channel="lim-0")
        await c.subscribe("lim-3")
        await c.close()

    async def rate_limit():
        # Over the rate, commands are dropped unread (no reply of their own) and the client
        # is told once a second with a 429 carrying "id":null. Nothing here depends on how
        # fast this machine sends: pings go out back to back until the first 429 arrives
        # (a bounded count: the bucket holds RATE_BURST and refills at RATE_PER_S, slower
        # than any sender), and "every ping has been dealt with" is a state, not a pause:
        # each one is either answered or counted in /api/stats rate_limited.
        c = await pubsub_client.connect(rate_port)
        api = support.api_client(rate_port)

        def rate_limited():
            return api.stats()["total"]["rate_limited"]

        async def settled(futs, base, what):
            # Waits until answered + dropped (server's count) covers every ping sent.
            deadline = time.monotonic() + HANG_S
            while True:
                answered = sum(1 for f in futs if f.done())
                dropped = await asyncio.to_thread(rate_limited) - base
                if answered + dropped >= len(futs):
                    expect(answered + dropped == len(futs),
                           f"{what}: {answered} answered + {dropped} counted rate_limited > "
                           f"{len(futs)} sent")
                    return answered, dropped
                expect(time.monotonic() < deadline,
                       f"{what}: after {HANG_S}s only {answered} of {len(futs)} pings answered "
                       f"and {dropped} counted rate_limited")
                await asyncio.sleep(0.05)

        def told():
            return [r for _, r in c.null_replies if error_code(r) == 429]

        base = await asyncio.to_thread(rate_limited)
        started = time.monotonic()
        futs = []
        while not told():
            expect(len(futs) < MAX_RATE_PINGS, f"{MAX_RATE_PINGS} pings sent back to back with "
                   f"--command-rate {RATE_PER_S} --command-burst {RATE_BURST} and no 429")
            cid, fut, sending = c.send_command("ping", id=1000 + len(futs))
            await sending
            futs.append(fut)
            await asyncio.sleep(0)  # lets the reader take what has arrived
        answered, dropped = await settled(futs, base, "the back-to-back pings")
        elapsed = time.monotonic() - started
        replies = [f.result()[1] for f in futs if f.done()]
        expect(all(r.get("ok") is True for r in replies),
               f"a ping with its own id was answered with an error: "
               f"{[r for r in replies if r.get('ok') is not True][:3]}")
        expect(all(f.done() for f in futs[:RATE_BURST]),
               f"the first {RATE_BURST} pings (the burst) must be answered; answered: "
               f"{[k for k, f in enumerate(futs) if f.done()][:20]}")
        expect(dropped >= 1, f"a 429 came but none of {len(futs)} pings was counted dropped")
        expect(answered <= RATE_BURST + RATE_PER_S * elapsed + 1,
               f"{answered} of {len(futs)} pings passed in {elapsed:.2f}s with rate "
               f"{RATE_PER_S}/s burst {RATE_BURST}")
        # The bucket refills: a later ping passes again. Each try is either answered or
        # counted dropped, so no clock decides; the pause between tries is one token's time.
        passed = False
        for attempt in range(REFILL_TRIES):
            cid, fut, sending = c.send_command("ping")
            await sending
            futs.append(fut)
            await settled(futs, base, f"refill try {attempt + 1}")
            if fut.done():
                passed = True
                break
            await asyncio.sleep(1 / RATE_PER_S)
        expect(passed, f"no ping passed in {REFILL_TRIES} tries {1 / RATE_PER_S:.1f} s apart "
               f"after the burst: the bucket never refilled")
        elapsed = time.monotonic() - started
        limited = told()
        expect(len(limited) <= 1 + elapsed, f"{len(limited)} × 429 in {elapsed:.1f}s: the "
               f"refusals themselves must be rate-limited (one a second)")
        for r in limited:
            expect_error(r, 429, "ping over the rate")
        answered, dropped = await settled(futs, base, "all pings")
        print(f"# {len(futs)} pings: {answered} ok, {dropped} dropped (= /api/stats "
              f"rate_limited), {len(limited)} × 429 in {elapsed * 1000:.0f} ms", flush=True)
        for f in futs:
            f.cancel()  # the dropped pings' futures never resolve: that is the point
        api.close()
        await c.close()

    async def binary_frame_closes_1003():
        c = await pubsub_client.connect(port, user="41")
        await c.ok("ping")
        await c.ws.send(b'{"op":"ping","id":5}')
        code, reason = await c.wait_closed(HANG_S)
        expect(code == 1003, f"binary frame: closed with {code} {reason!r}, expected 1003")

    return [
        (f"{SUBSCRIBERS} subscribers x {MESSAGES + 100} messages on 5 channels: each exactly "
         f"once, in order", exactly_once),
        ("envelope of a client publish: field order, types, userId, data byte-identical",
         envelope_from_client_publish),
        ("envelope of an API publish: userId given / null, defaults, data byte-identical",
         envelope_from_api_publish),
        ("subscribe / unsubscribe / ping replies: fields, subscribe twice", subscribe_and_unsubscribe_replies),
        ("unsubscribe stops delivery; unsubscribe again → 404", unsubscribe_stops_delivery),
        ("400: bad JSON, not an object, unknown op, missing field, bad names",
         errors_400),
        ("403: publish outside --client-publish, user: channels; 404: not subscribed",
         errors_403_404),
        ("403: channel limit with --max-channels 3", channel_limit),
        (f"429: pings back to back with --command-rate {RATE_PER_S} --command-burst "
         f"{RATE_BURST} until refused; then one passes again", rate_limit),
        ("binary frame → close 1003", binary_frame_closes_1003),
    ]


def main():
    binary = support.binary_from_argv()
    common = ["--insecure", "--client-publish", "chat,room", "--shards", "4"]
    with support.server(binary, common, echo_path=None) as srv, \
            support.server(binary, ["--insecure", "--shards", "2", "--max-channels", "3"],
                           echo_path=None) as lim, \
            support.server(binary, ["--insecure", "--shards", "2", "--command-rate",
                                    str(RATE_PER_S), "--command-burst", str(RATE_BURST)],
                           echo_path=None) as rate:
        status = support.run_cases(cases(srv.port, lim.port, rate.port),
                                   "pub/sub delivery, envelope, errors (websockets "
                                   f"{websockets.__version__})", case_timeout=90)
        for s in (srv, lim, rate):
            try:
                s.stop_and_expect_clean_exit()
            except support.check_failed as e:
                support.tap_comment(f"FAIL clean exit\n{e}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
