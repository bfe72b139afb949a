#!/usr/bin/python3
"""The demo page on `GET /` (README "Set up": open http://HOST:8080/ in two tabs, type in
one, every tab subscribed to `chat:lobby` shows it; the page shows a `curl` line that
publishes from a "backend"), served by the command line README gives:
`--insecure --client-publish chat --echo /echo`.

Checks:
* `GET /`: 200, `Content-Type: text/html; charset=utf-8`, Content-Length equal to the
  body, an HTML document in UTF-8 that names `chat:lobby`, opens `/ws?user=` and shows a
  curl line to `/api/publish`; `HEAD /`: the same headers and no body; `POST /`: 405;
* the page's own protocol, taken out of its script text (not retyped here) and replayed
  by two "tabs" (Python `websockets`): the user id it makes up (`demo-` + 5 base-36
  characters) is accepted; its subscribe command is answered with the `channel` and
  `offset` its reply handler prints; its publish command and its "Publish 100" burst (100
  publishes sent at once) are all answered ok and reach the other tab, in order, with the
  fields its message handler reads (`data.text`, `userId` = the publishing tab, `offset`
  one more each time); the curl line's body, POSTed to the path it names, reaches both
  tabs with `userId` null (shown as "backend");
* without `--client-publish chat` the page's publish gets the 403 error reply whose
  `error.code` / `error.message` its handler prints (the page says it needs that flag);
* `--help` says `--echo` serves "the demo page on /; off unless given": without `--echo`
  `GET /` must not serve the page (404).

Usage: demo_page.py PATH/TO/ringcastd. Exits 77 without python3-websockets.
"""

import asyncio
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail, pubsub_client, quiet_for  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")

README_ARGS = ["--insecure", "--client-publish", "chat"]


def get(port, method="GET", path="/"):
    req = (f"{method} {path} HTTP/1.1\r\nHost: {support.LOOPBACK}:{port}\r\n"
           f"Connection: close\r\n\r\n").encode()
    return support.http_exchange(port, req, timeout=10)


def js_object_to_json(text):
    """{op: 'subscribe', channel: 'chat:lobby'} → a dict (the page's literals are flat
    enough: bare keys, single-quoted strings, one nested object)."""
    text = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text)
    return json.loads(text.replace("'", '"'))


class page_script:
    """What the page's script does, read from its text."""

    def __init__(self, html):
        m = re.search(r"<script>(.*)</script>", html, re.S)
        expect(m, "no <script> in the page")
        js = m.group(1)
        self.js = js
        m = re.search(r"new WebSocket\(base \+ '([^'?]+)\?user=' \+ user\)", js)
        expect(m, "the script does not open base + '<path>?user=' + user")
        self.ws_path = m.group(1)
        m = re.search(r"const user = '([^']*)' \+ Math\.random\(\)\.toString\(36\)\.slice\("
                      r"(\d+), (\d+)\)", js)
        expect(m, "the script's user id is not 'prefix' + Math.random().toString(36).slice(a, b)")
        self.user_prefix, self.user_random = m.group(1), int(m.group(3)) - int(m.group(2))
        m = re.search(r"send\((\{op: 'subscribe'[^)]*\})\)", js)
        expect(m, "no subscribe command in the script")
        self.subscribe = js_object_to_json(m.group(1))
        pubs = re.findall(r"send\((\{op: 'publish', channel: '[^']+', event: '[^']+', "
                          r"data: \{text: )([^}]+)(\}\})\)", js)
        expect(len(pubs) == 2, f"expected the publish and the burst publish, found {pubs}")
        self.publish = js_object_to_json(pubs[0][0] + "'X'" + pubs[0][2])
        m = re.search(r"for \(let i = 1; i <= (\d+); i\+\+\) send", js)
        expect(m, "no burst loop in the script")
        self.burst = int(m.group(1))
        m = re.search(r"curl -s -d '(\{.*?\})' \" \+\s*location\.origin \+ \"([^\"]+)\"", js)
        expect(m, "no curl line in the script")
        self.curl_body = json.loads(m.group(1).replace('\\"', '"'))
        self.curl_path = m.group(2)
        # The reply handler prints m.channel / m.offset, errors m.error.code / message;
        # the message handler m.data.text, m.userId, m.offset.
        for used in ("m.channel", "m.offset", "m.error.code", "m.error.message",
                     "m.data.text", "m.userId"):
            expect(used in js, f"the script no longer reads {used}: update this test")

    def user(self):
        import random
        return self.user_prefix + "".join(random.choice("0123456789abcdefghijklmnopqrstuvwxyz")
                                          for _ in range(self.user_random))


def cases(binary):
    state = {}

    def served():
        with support.server(binary, README_ARGS) as srv:
            r = get(srv.port)
            expect(r.status == 200, f"GET /: {r}")
            expect(r.headers.get("content-type") == "text/html; charset=utf-8",
                   f"GET /: Content-Type {r.headers.get('content-type')!r}")
            expect(int(r.headers.get("content-length", -1)) == len(r.body),
                   f"GET /: Content-Length {r.headers.get('content-length')} for "
                   f"{len(r.body)} bytes")
            html = r.body.decode("utf-8")
            expect(html.lstrip().lower().startswith("<!doctype html>") and
                   html.rstrip().endswith("</html>"), "GET /: not an HTML document")
            for needle in ("chat:lobby", "/ws?user=", "/api/publish"):
                expect(needle in html, f"the page does not mention {needle}")
            state["html"] = html
            h = get(srv.port, "HEAD")
            expect(h.status == 200 and h.body == b"" and
                   h.headers.get("content-length") == r.headers.get("content-length") and
                   h.headers.get("content-type") == r.headers.get("content-type"),
                   f"HEAD /: {h}")
            p = get(srv.port, "POST")
            expect(p.status == 405, f"POST /: {p}")
            srv.stop_and_expect_clean_exit()

    async def the_page_protocol_works():
        page = page_script(state.get("html") or fail("GET / failed before"))
        expect(page.ws_path == "/ws", f"the page opens {page.ws_path}, not /ws")
        channel = page.subscribe.get("channel")
        expect(page.publish.get("channel") == channel == page.curl_body.get("channel"),
               f"subscribe {page.subscribe}, publish {page.publish}, curl "
               f"{page.curl_body}: not one channel")
        with support.server(binary, ["--shards", "2"] + README_ARGS) as srv:
            users = [page.user(), page.user()]
            while users[1] == users[0]:
                users[1] = page.user()
            tabs = [await pubsub_client.connect(srv.port, user=u) for u in users]
            for tab in tabs:
                r = await tab.command_raw(json.dumps({**page.subscribe, "id": 1}), 1)
                expect(r.get("ok") is True and r.get("channel") == channel and
                       support.is_int(r.get("offset")),
                       f"the page's subscribe {page.subscribe}: reply {r} lacks the channel "
                       f"and offset it prints")
            base = r["offset"]
            # Tab 0 publishes once, then the burst, every command sent without waiting.
            cmds = [{**page.publish, "data": {"text": "hello"}}]
            cmds += [{**page.publish, "data": {"text": f"burst {i}"}}
                     for i in range(1, page.burst + 1)]
            futs = []
            for i, cmd in enumerate(cmds, start=2):
                fut = asyncio.get_running_loop().create_future()
                tabs[0]._pending[i] = fut
                await tabs[0].ws.send(json.dumps({**cmd, "id": i}))
                futs.append(fut)
            replies = [rep for _, rep in await asyncio.wait_for(asyncio.gather(*futs), 30)]
            bad = [rep for rep in replies if rep.get("ok") is not True]
            expect(not bad, f"{len(bad)} of {len(cmds)} page publishes refused: {bad[:2]}")
            api = support.api_client(srv.port)
            r = await asyncio.to_thread(api.ok, "POST", page.curl_path, page.curl_body)
            expect(r.get("ok") is True, f"the page's curl line: {r}")
            n = len(cmds) + 1
            for k, tab in enumerate(tabs):
                await tab.wait_messages(n, 20, f"tab {k}: page publishes")
            await quiet_for(tabs)
            for k, tab in enumerate(tabs):
                got = [tab.parsed(i) for i in range(len(tab.messages))]
                expect(len(got) == n, f"tab {k}: {len(got)} messages, expected {n}")
                texts = [m["data"]["text"] for m in got]
                want = [c["data"]["text"] for c in cmds] + [page.curl_body["data"]["text"]]
                expect(texts == want, f"tab {k}: texts {texts[:3]}…, expected {want[:3]}…")
                expect([m["userId"] for m in got] == [users[0]] * len(cmds) + [None],
                       f"tab {k}: userIds {[m['userId'] for m in got][:3]}…")
                expect([m["offset"] for m in got] == list(range(base + 1, base + n + 1)),
                       f"tab {k}: offsets not one more each time from {base}")
                expect(all(m["channel"] == channel and m["event"] == page.publish["event"]
                           for m in got[:-1]), f"tab {k}: channel/event of the publishes")
            for tab in tabs:
                await tab.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    async def without_client_publish():
        page = page_script(state.get("html") or fail("GET / failed before"))
        with support.server(binary, ["--insecure"]) as srv:
            tab = await pubsub_client.connect(srv.port, user=page.user())
            r = await tab.command_raw(json.dumps({**page.publish, "id": 7}), 7)
            err = r.get("error") or {}
            expect(r.get("ok") is False and err.get("code") == 403 and
                   isinstance(err.get("message"), str) and err["message"],
                   f"the page's publish without --client-publish chat: {r}, expected the "
                   f"403 error with a message")
            await tab.close()
            srv.stop_and_expect_clean_exit()

    def served_without_echo_as_help_says():
        # The page is the live demo of pub/sub, not of the echo endpoint: served with or
        # without --echo, and --help says so.
        with support.server(binary, README_ARGS, echo_path=None) as srv:
            r = get(srv.port)
            srv.stop_and_expect_clean_exit()
        expect(r.status == 200 and b"chat:lobby" in r.body,
               f"GET / without --echo: {r.status}, expected the page")
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
        text = " ".join(out.stdout.split())
        expect("the demo page on / is always served" in text,
               f"--help does not say that the demo page is always served: {out.stdout[:600]}")

    return [
        ("GET / serves the page (text/html; charset=utf-8, Content-Length), HEAD, 405",
         served),
        ("the page's subscribe, publish, burst of 100 and curl line work between two tabs",
         the_page_protocol_works),
        ("without --client-publish chat the page's publish gets a 403 it can print",
         without_client_publish),
        ("without --echo GET / still serves the page, as --help says",
         served_without_echo_as_help_says),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"demo page (websockets "
                               f"{websockets.__version__})", case_timeout=60))
