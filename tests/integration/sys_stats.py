#!/usr/bin/python3
"""The sys:stats channel and the /dashboard page's HTTP side (docs/protocol.md "The sys
namespace", docs/security.md "The dashboard and sys:stats").

Usage: sys_stats.py PATH/TO/ringcastd
Servers: an open one (`--shards 2`, no JWT keys, no API key: loopback clients may watch);
one with RINGCAST_API_KEY holding a monitor key (admin scope) and a feed key (publish
only); one with JWT keys (`--jwt-secret-file`) and the same key file. Fails without
python3-websockets or python3-jwt.

Checks:
* who may subscribe: on the open server a loopback client; with API keys, a session with
  an admin-scope key (the monitor), not an anonymous client nor a publish-only feed (403
  with the reason, counted as permission_refused); with JWT keys, a token whose roles hold
  "admin", not a token without it (403 "admin role required"), and the monitor key;
  nobody publishes to sys: (a client, a backend session, POST /api/publish: 403);
* a snapshot a second: five in a row are 0.5-3 s apart, on average 0.8-1.6 s (a busy
  2-core machine delays a loop pass, never a whole second on average); each is the
  envelope of event "stats" on sys:stats, with the fields of GET /api/stats (total and
  one object per shard), a timestamp, interval_ms 1000 and at most 10 channels, the
  busiest first (a channel with 3 subscribers leads);
* its counters match GET /api/stats: after 40 publishes, the snapshot that follows holds
  them, and GET /api/stats read at once differs only by what the snapshots themselves
  added (at most two more published: messages_in, messages_out, sys_stats_published);
  connections and sessions equal;
* nothing is published while nobody subscribes: a fresh server's sys_stats_published
  stays 0 for 2.5 s; after the last subscriber leaves, it stops growing (two reads 2.5 s
  apart agree) and so does messages_in;
* GET /dashboard: 200 text/html with a Content-Security-Policy whose script and style
  hashes are those of the page's inline script and style, default-src 'none', no
  external URL in the page; with --allowed-origins set, an Origin naming the request's own
  Host is refused like any other not listed (no same-origin exception: DNS rebinding).
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")
try:
    import jwt
except ImportError:
    support.missing("python3 module 'jwt' (apt-get install python3-jwt)")

MONITOR_KEY = "sys-stats-monitor-key-0123456789"
FEED_KEY = "sys-stats-feed-key-0123456789ab"
SECRET = "sys-stats-jwt-secret-0123456789abcdef"
TMP = tempfile.mkdtemp(prefix="ringcast-sys-stats-")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


KEY_FILE = write("keys", f"monitor:admin:{MONITOR_KEY}\nfeed:publish:{FEED_KEY}\n")
SECRET_FILE = write("secret", SECRET + "\n")
OPEN = ["--shards", "2"]
KEYED = ["--shards", "2", "--api-key-file", KEY_FILE]
JWT = ["--shards", "2", "--jwt-secret-file", SECRET_FILE, "--api-key-file", KEY_FILE]


def token(sub, roles=()):
    now = int(time.time())
    return jwt.encode({"sub": sub, "exp": now + 300, "iat": now, "roles": list(roles)}, SECRET,
                      algorithm="HS256")


async def connect(port, key=None, tok=None, user=None):
    opts = dict(open_timeout=10, close_timeout=3, ping_interval=None, max_size=None,
                compression=None)
    url = support.ws_url(port, user)
    if tok is not None:
        url += ("&" if "?" in url else "?") + f"token={tok}"
    if key is not None:
        opts["extra_headers"] = {"Authorization": f"Bearer {key}"}
    return pubsub_client(await websockets.connect(url, **opts), user)


async def refused(client, channel="sys:stats", op="subscribe", message=None, **fields):
    r = await client.command(op, channel=channel, **fields)
    expect(r.get("ok") is False and r["error"]["code"] == 403,
           f"{op} {channel}: expected 403, got {r}")
    if message is not None:
        expect(r["error"]["message"] == message,
               f"{op} {channel}: reason {r['error']['message']!r}, expected {message!r}")
    return r


def snapshots(client):
    """The sys:stats messages `client` received, parsed, in order."""
    out = []
    for i in range(len(client.messages)):
        m = client.parsed(i)
        if m.get("channel") == "sys:stats":
            out.append(m)
    return out


async def next_snapshot(client, timeout=10.0):
    have = len(snapshots(client))
    deadline = time.monotonic() + timeout
    while len(snapshots(client)) <= have:
        expect(time.monotonic() < deadline, f"no sys:stats snapshot within {timeout}s")
        await client.wait_messages(len(client.messages) + 1, timeout)
    return snapshots(client)[-1]


def stats(port, key=None):
    return support.api_client(port, key).stats()


def cases(binary):
    async def who_may_watch_an_open_server():
        with support.server(binary, OPEN, echo_path=None) as srv:
            c = await connect(srv.port)
            await c.subscribe("sys:stats")
            snap = await next_snapshot(c)
            expect(snap["event"] == "stats", f"event {snap['event']!r}")
            await refused(c, op="publish", data={"x": 1},
                          message="sys channels are written by the server only")
            api = support.api_client(srv.port)
            r = api.request("POST", "/api/publish", {"channel": "sys:stats", "data": 1})
            expect(r.status == 403, f"POST /api/publish to sys:stats: {r}")
            await c.close()

    async def who_may_watch_with_api_keys():
        with support.server(binary, KEYED, echo_path=None) as srv:
            before = stats(srv.port, MONITOR_KEY)["total"]["permission_refused"]
            anonymous = await connect(srv.port)
            feed = await connect(srv.port, key=FEED_KEY)
            monitor = await connect(srv.port, key=MONITOR_KEY)
            for c in (anonymous, feed):
                await refused(c)
            await refused(feed, op="publish", data={"x": 1},
                          message="sys channels are written by the server only")
            await monitor.subscribe("sys:stats")
            await next_snapshot(monitor)
            after = stats(srv.port, MONITOR_KEY)["total"]["permission_refused"]
            expect(after - before == 2, f"permission_refused grew by {after - before}, not 2")
            r = support.api_client(srv.port, FEED_KEY).request(
                "POST", "/api/publish", {"channel": "sys:stats", "data": 1})
            expect(r.status == 403, f"POST /api/publish to sys:stats with the feed key: {r}")
            for c in (anonymous, feed, monitor):
                await c.close()

    async def who_may_watch_with_jwt():
        with support.server(binary, JWT, echo_path=None) as srv:
            plain = await connect(srv.port, tok=token("bob", ["ops"]))
            await refused(plain, message="admin role required")
            admin = await connect(srv.port, tok=token("alice", ["ops", "admin"]))
            await admin.subscribe("sys:stats")
            await refused(admin, op="publish", data={"x": 1},
                          message="sys channels are written by the server only")
            monitor = await connect(srv.port, key=MONITOR_KEY)
            await monitor.subscribe("sys:stats")
            await next_snapshot(admin)
            await next_snapshot(monitor)
            for c in (plain, admin, monitor):
                await c.close()

    async def a_snapshot_a_second_shaped_like_api_stats():
        with support.server(binary, OPEN, echo_path=None) as srv:
            watchers = [await connect(srv.port) for _ in range(3)]
            for w in watchers:
                await w.subscribe("news")
            await watchers[0].subscribe("sys:stats")
            got = [await next_snapshot(watchers[0], 15) for _ in range(5)]
            gaps = [(b["data"]["timestamp"] - a["data"]["timestamp"]) / 1000
                    for a, b in zip(got, got[1:])]
            support.tap_comment(f"snapshot gaps (s): {gaps}")
            expect(all(0.5 <= g <= 3.0 for g in gaps), f"gaps {gaps} outside 0.5-3 s")
            mean = sum(gaps) / len(gaps)
            expect(0.8 <= mean <= 1.6, f"mean gap {mean:.2f} s, expected about 1")
            api_stats = stats(srv.port)
            for m in got:
                expect(m["event"] == "stats" and m["channel"] == "sys:stats", f"envelope {m}")
                d = m["data"]
                expect(d["interval_ms"] == 1000, f"interval_ms {d['interval_ms']}")
                expect(set(d["total"]) == set(api_stats["total"]),
                       "total's fields differ from GET /api/stats's: "
                       f"{set(d['total']) ^ set(api_stats['total'])}")
                expect(len(d["shards"]) == 2, f"{len(d['shards'])} shard objects, not 2")
                expect(len(d["channels"]) <= 10, f"{len(d['channels'])} channels")
            channels = got[-1]["data"]["channels"]
            expect(channels[0] == {"channel": "news", "subscribers": 3},
                   f"channels {channels}: news with 3 subscribers should lead")
            expect({"channel": "sys:stats", "subscribers": 1} in channels, f"{channels}")
            for w in watchers:
                await w.close()

    async def counters_match_api_stats():
        with support.server(binary, OPEN, echo_path=None) as srv:
            api = support.api_client(srv.port)
            api.stats()  # the API connection is open before the snapshots count it
            watcher = await connect(srv.port)
            reader = await connect(srv.port)
            await reader.subscribe("news")
            await watcher.subscribe("sys:stats")
            await next_snapshot(watcher)
            for i in range(40):
                api.publish("news", {"n": i})
            await reader.wait_messages(40)
            snap = (await next_snapshot(watcher))["data"]
            now = api.stats()
            t, n = snap["total"], now["total"]
            expect(t["messages_in"] >= 40, f"snapshot messages_in {t['messages_in']} < 40")
            # The histograms and closes are there as in /api/stats, filled (the dashboard's
            # latency comes from them).
            expect(t["publish_to_send_us"]["count"] >= 40,
                   f"snapshot latency count {t['publish_to_send_us']['count']} < 40")
            expect(t["queue_depth_bytes"]["count"] >= 2,
                   f"snapshot queue depth count {t['queue_depth_bytes']['count']}")
            expect("closes_sent" in t and "closes_received" in t, f"{sorted(t)}")
            for key in ("messages_in", "messages_out", "sys_stats_published"):
                grew = n[key] - t[key]
                low = 1 if key == "sys_stats_published" else 0
                expect(low <= grew <= 3, f"{key}: snapshot {t[key]}, /api/stats {n[key]}: "
                       f"differs by {grew}, more than the snapshots published in between")
            for key in ("connections", "sessions", "subscriptions"):
                expect(t[key] == n[key], f"{key}: snapshot {t[key]}, /api/stats {n[key]}")
            for i in range(2):
                for key in ("messages_in", "accepted"):
                    s, a = snap["shards"][i][key], now["shards"][i][key]
                    expect(0 <= a - s <= 3, f"shard {i} {key}: snapshot {s}, /api/stats {a}")
            api.close()
            for c in (watcher, reader):
                await c.close()

    async def nothing_published_without_subscribers():
        with support.server(binary, OPEN, echo_path=None) as srv:
            api = support.api_client(srv.port)
            await asyncio.sleep(2.5)
            first = api.stats()["total"]
            expect(first["sys_stats_published"] == 0,
                   f"{first['sys_stats_published']} snapshots published with no subscriber")
            watcher = await connect(srv.port)
            await watcher.subscribe("sys:stats")
            await next_snapshot(watcher)
            await next_snapshot(watcher)
            await watcher.ok("unsubscribe", channel="sys:stats")
            await asyncio.sleep(1.5)
            a = api.stats()["total"]
            await asyncio.sleep(2.5)
            b = api.stats()["total"]
            expect(a["sys_stats_published"] >= 2, f"published {a['sys_stats_published']}")
            for key in ("sys_stats_published", "messages_in"):
                expect(a[key] == b[key], f"{key} grew from {a[key]} to {b[key]} with nobody "
                       "subscribed")
            # And a new subscriber starts them again.
            await watcher.subscribe("sys:stats")
            await next_snapshot(watcher)
            await watcher.close()
            api.close()

    def the_page_and_its_policy():
        with support.server(binary, ["--shards", "1", "--allowed-origins",
                                     "https://app.example.com"], echo_path=None) as srv:
            r = support.http_exchange(
                srv.port, b"GET /dashboard HTTP/1.1\r\nHost: ringcast.test\r\n\r\n")
            expect(r.status == 200, f"GET /dashboard: {r.status}")
            headers = r.headers  # names in lower case
            expect(headers.get("content-type") == "text/html; charset=utf-8",
                   f"content-type {headers.get('content-type')!r}")
            csp = headers.get("content-security-policy", "")
            page = r.body.decode("utf-8")
            script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
            style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)

            def h(text):
                return "'sha256-" + base64.b64encode(
                    hashlib.sha256(text.encode()).digest()).decode() + "'"
            for want in ("default-src 'none'", f"script-src {h(script)}",
                         f"style-src {h(style)}", "connect-src 'self'",
                         "frame-ancestors 'none'"):
                expect(want in csp, f"CSP {csp!r} lacks {want!r}")
            expect(page.count("<script") == 1 and "src=" not in page,
                   "the page loads something from elsewhere")
            expect(not re.search(r"https?://", page), "the page names an external URL")
            expect(headers.get("x-content-type-options") == "nosniff", f"{headers}")

            # No exception for an Origin that names the Host: both are the client's to write
            # (DNS rebinding); the operator lists the server's own origin.
            own = support.http_exchange(srv.port, support.upgrade_request(
                "/ws", ["Origin: http://ringcast.test"]))
            expect(own.status == 403, f"an Origin naming the Host, not listed: {own.status}")
            other = support.http_exchange(srv.port, support.upgrade_request(
                "/ws", ["Origin: http://elsewhere.test"]))
            expect(other.status == 403, f"upgrade from another origin: {other.status}")

    return [
        ("an open server: a loopback client watches; nobody publishes to sys:",
         who_may_watch_an_open_server),
        ("API keys: the admin-scope key watches; anonymous and publish-only get 403",
         who_may_watch_with_api_keys),
        ("JWT: the admin role watches, other roles get 403; the admin-scope key too",
         who_may_watch_with_jwt),
        ("a snapshot a second, shaped like GET /api/stats, busiest channels first",
         a_snapshot_a_second_shaped_like_api_stats),
        ("a snapshot's counters match GET /api/stats within the snapshots in between",
         counters_match_api_stats),
        ("no subscriber, no snapshot: nothing published before or after",
         nothing_published_without_subscribers),
        ("GET /dashboard: the page, its CSP hashes; an Origin naming the Host gets no "
         "exception from --allowed-origins", the_page_and_its_policy),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), "sys:stats and /dashboard", case_timeout=90))
