#!/usr/bin/python3
"""The backend API's key, the backend WebSocket session, the publish reply shape, and
?user= without --insecure.

* --api-key on the command line is refused (the key would be readable in ps); the key comes
  from --api-key-file PATH or RINGCAST_API_KEY, never both; a bad key file is refused with
  a sentence naming it.
* With a key: no Authorization or a wrong one → 401, "Bearer KEY" → 200, on the HTTP API;
  on /ws the bearer header opens a backend session and ?api_key= no longer does.
* Named keys with scopes (NAME:SCOPE[,SCOPE]:SECRET lines): a key without the endpoint's
  scope gets 403 naming the key and the scope; only the publish scope opens a backend session.
* A backend session bursting 1,000 publishes gets every one accepted (its own command rate),
  while a client session is still held to the client rate.
* POST /api/publish answers by the body's parsed shape: a single request whose event or
  data holds the word "messages" gets {"ok":true,"offset":N}.
* Without --insecure, ?user= is ignored: the connection is anonymous and gets nothing sent
  to that user.

Every request comes from 127.0.0.1, which the API trusts without a key (tests for other
peers are in edge_remote_peers.py). Usage: edge_api.py PATH/TO/ringcastd
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

KEY = "edge-test-key-0123456789abcdef"
ENV = "RINGCAST_API_KEY"
BURST = 1000


@contextlib.contextmanager
def key_in_environment(value=KEY):
    """RINGCAST_API_KEY set for servers started inside the block (support.server copies
    os.environ when it starts the process)."""
    old = os.environ.get(ENV)
    os.environ[ENV] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = old


@contextlib.contextmanager
def key_file(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "api-key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield path


def refused_config(binary, args, env_key=None):
    """Runs ringcastd with `args` and --check-config; returns its stderr, failing unless it
    exited with status 2 (a configuration error)."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if env_key is not None:
        env[ENV] = env_key
    r = subprocess.run([binary, *args, "--check-config"], env=env, capture_output=True,
                       text=True, timeout=10)
    expect(r.returncode == 2, f"ringcastd {' '.join(args)}: exit {r.returncode}, expected 2 "
           f"(a configuration error)\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r.stderr


def check_key_required(port):
    r = support.api_client(port).request("GET", "/api/stats")
    expect(r.status == 401, f"GET /api/stats without Authorization: {r}")
    r = support.api_client(port, KEY + "x").request("GET", "/api/stats")
    expect(r.status == 401, f"GET /api/stats with a wrong key: {r}")
    r = support.api_client(port, KEY[:-1]).request("GET", "/api/stats")
    expect(r.status == 401, f"GET /api/stats with the key minus its last character: {r}")
    r = support.api_client(port).request("GET", "/api/stats",
                                          headers={"Authorization": f"Basic {KEY}"})
    expect(r.status == 401, f"GET /api/stats with 'Basic KEY': {r}")
    r = support.api_client(port, KEY).request("GET", "/api/stats")
    expect(r.status == 200, f"GET /api/stats with the key: {r}")
    total = r.json["total"]
    expect(total["api_unauthorized"] >= 4, f"api_unauthorized counter: {total}")


def cases(binary):
    def api_key_on_the_command_line_is_refused():
        err = refused_config(binary, ["--api-key", KEY])
        expect("--api-key-file" in err and ENV in err,
               f"the refusal must name --api-key-file and {ENV}: {err!r}")
        expect(KEY not in err, f"the refusal repeats the key: {err!r}")

    def key_from_the_environment():
        with key_in_environment(), support.server(binary, ["--shards", "2"],
                                                  echo_path=None) as srv:
            check_key_required(srv.port)
            expect(any(f"API key from {ENV}" in line for line in srv.lines()),
                   f"no start-up line naming the key's source\n{srv.output()}")
            srv.stop_and_expect_clean_exit()

    def key_from_a_file():
        with key_file(KEY + "\n") as path, \
                support.server(binary, ["--shards", "2", "--api-key-file", path],
                               echo_path=None) as srv:
            check_key_required(srv.port)
            expect(any(f"API key from {path}" in line for line in srv.lines()),
                   f"no start-up line naming the key file\n{srv.output()}")
            srv.stop_and_expect_clean_exit()

    def bad_key_sources_are_refused():
        with key_file(KEY) as path:
            err = refused_config(binary, ["--api-key-file", path], env_key=KEY)
            expect("--api-key-file" in err and ENV in err and "one way" in err,
                   f"file and environment both set: {err!r}")
        with key_file("short\n") as path:
            err = refused_config(binary, ["--api-key-file", path])
            expect(path in err and "16 or more" in err, f"a 5-character key file: {err!r}")
        with key_file("has a space in it 0123456789\n") as path:
            err = refused_config(binary, ["--api-key-file", path])
            expect("visible" in err, f"a key with spaces: {err!r}")
        missing = "/nonexistent/ringcast-api-key"
        err = refused_config(binary, ["--api-key-file", missing])
        expect(missing in err and "cannot be read" in err, f"a missing key file: {err!r}")
        err = refused_config(binary, [], env_key="short")
        expect(ENV in err and "16 or more" in err, f"a short {ENV}: {err!r}")

    async def backend_session_by_bearer_only():
        with key_in_environment(), support.server(binary, ["--shards", "2"],
                                                  echo_path=None) as srv:
            # ?api_key= used to open a backend session (URLs end up in logs): no more.
            url = f"ws://{support.LOOPBACK}:{srv.port}/ws?api_key={KEY}"
            ws = await websockets.connect(url, open_timeout=10, ping_interval=None)
            query = support.pubsub_client(ws)
            r = await query.command("publish", channel="user:victim", data=1)
            expect(r.get("ok") is False and r["error"]["code"] == 403,
                   f"?api_key= must not make a backend session: publish to user:victim "
                   f"answered {r}")
            await query.close()
            backend = await support.pubsub_client.connect(
                srv.port, extra_headers={"Authorization": f"Bearer {KEY}"})
            r = await backend.command("publish", channel="user:victim", data=1)
            expect(r.get("ok") is True, f"a bearer backend session publishing to "
                   f"user:victim: {r}")
            await backend.close()
            srv.stop_and_expect_clean_exit()

    async def backend_session_bursts_1000_publishes():
        with key_in_environment(), support.server(binary, ["--shards", "2"],
                                                  echo_path=None) as srv:
            backend = await support.pubsub_client.connect(
                srv.port, extra_headers={"Authorization": f"Bearer {KEY}"})
            pending = []
            for i in range(BURST):
                _, fut, sending = backend.send_command("publish", channel="feed",
                                                       event="tick", data={"i": i})
                await sending
                pending.append(fut)
            replies = await asyncio.wait_for(asyncio.gather(*pending), 30)
            ok = sum(1 for _, r in replies if r.get("ok") is True)
            codes = sorted({r["error"]["code"] for _, r in replies if r.get("ok") is not True})
            support.tap_comment(f"backend session: {ok} of {BURST} burst publishes accepted")
            expect(ok == BURST, f"{ok} of {BURST} publishes from a backend session accepted "
                   f"(refusals: {codes})")
            # A client session keeps the client rate (default 100/s, burst 200): pings over
            # it are dropped unanswered, with a 429 ("id":null) to say so. Replies keep
            # command order, so once a later ping is answered every reply has come.
            client = await support.pubsub_client.connect(srv.port)
            pending = []
            for _ in range(BURST):
                _, fut, sending = client.send_command("ping")
                await sending
                pending.append(fut)
            await asyncio.sleep(1.1)
            await client.ok("ping")
            answered = sum(1 for f in pending if f.done())
            for f in pending:
                f.cancel()
            support.tap_comment(f"client session: {answered} of {BURST} burst pings accepted")
            expect(answered < BURST, "a client session bursting 1,000 pings was never rate "
                   "limited")
            expect(any(r.get("error", {}).get("code") == 429 for _, r in client.null_replies),
                   f"no 429 told the client: {client.null_replies[:2]}")
            await backend.close()
            await client.close()
            srv.stop_and_expect_clean_exit()

    async def keys_with_scopes():
        pub, ops = "scoped-publish-0123456789abcdef", "scoped-admin-0123456789abcdef"
        text = f"# two keys\nfeed:publish:{pub}\nops:admin:{ops}\n"
        with key_file(text) as path, \
                support.server(binary, ["--shards", "2", "--api-key-file", path],
                               echo_path=None) as srv:
            lines = srv.lines()
            for name, scope in (("feed", "publish"), ("ops", "admin")):
                expect(any(f"API key '{name}': {scope}" in line for line in lines),
                       f"no start-up line naming key {name} and its scope\n{srv.output()}")
            expect(not any(pub in line or ops in line for line in lines),
                   f"a secret was printed\n{srv.output()}")
            feed, admin = support.api_client(srv.port, pub), support.api_client(srv.port, ops)
            r = feed.request("POST", "/api/publish", {"channel": "c", "data": 1})
            expect(r.status == 200, f"publish with the publish key: {r}")
            r = admin.request("POST", "/api/publish", {"channel": "c", "data": 1})
            expect(r.status == 403 and "'ops'" in r.body.decode() and "publish" in r.body.decode(),
                   f"publish with the admin key: {r}")
            for method, target, body in (("GET", "/api/stats", None),
                                         ("GET", "/api/online", None),
                                         ("GET", "/api/channels/c", None),
                                         ("POST", "/api/disconnect", {"userId": "u"})):
                r = feed.request(method, target, body)
                expect(r.status == 403 and "'feed'" in r.body.decode() and "admin" in r.body.decode(),
                       f"{method} {target} with the publish key: {r}")
                r = admin.request(method, target, body)
                expect(r.status == 200, f"{method} {target} with the admin key: {r}")
            # Without a valid key nothing about paths is told: 401 before 404 and 405.
            anon = support.api_client(srv.port)
            for method, target in (("GET", "/api/nothing-here"), ("DELETE", "/api/stats")):
                r = anon.request(method, target)
                expect(r.status == 401, f"{method} {target} without a key: {r}")
            r = feed.request("GET", "/api/nothing-here")
            expect(r.status == 404, f"an unknown path with a key: {r}")
            total = admin.ok("GET", "/api/stats")["total"]
            expect(total["api_forbidden_scope"] == 5 and total["api_unauthorized"] == 2,
                   f"refusal counters: forbidden_scope {total.get('api_forbidden_scope')} "
                   f"(5 sent), unauthorized {total.get('api_unauthorized')} (2 sent)")
            # On /ws only a key with the publish scope makes a backend session.
            for key, backend in ((pub, True), (ops, False)):
                c = await support.pubsub_client.connect(
                    srv.port, extra_headers={"Authorization": f"Bearer {key}"})
                r = await c.command("publish", channel="user:victim", data=1)
                if backend:
                    expect(r.get("ok") is True, f"backend session (publish key): {r}")
                else:
                    expect(r.get("ok") is False and r["error"]["code"] == 403,
                           f"the admin key must not make a backend session: {r}")
                await c.close()
            for c in (feed, admin, anon):
                c.close()
            srv.stop_and_expect_clean_exit()
        with key_file(f"feed:publish:{pub}\nfeed:admin:{ops}\n") as path:
            err = refused_config(binary, ["--api-key-file", path])
            expect("line 2" in err and "twice" in err and pub not in err and ops not in err,
                   f"a name used twice: {err!r}")
        with key_file(f"feed:root:{pub}\n") as path:
            err = refused_config(binary, ["--api-key-file", path])
            expect("publish, admin" in err and pub not in err, f"an unknown scope: {err!r}")

    async def allowed_origins():
        args = ["--shards", "2", "--allowed-origins", "https://app.example.com,*.trusted.test"]
        with support.server(binary, args, echo_path=None) as srv:
            url = f"ws://{support.LOOPBACK}:{srv.port}/ws"
            passed = ["https://app.example.com", "http://a.trusted.test:3000", None]
            refused = ["https://evil.example", "http://app.example.com",
                       "https://trusted.test", "https://app.example.com.evil.io", "null"]
            for origin in passed:
                ws = await websockets.connect(url, origin=origin, open_timeout=10,
                                              ping_interval=None)
                await ws.close()
            for origin in refused:
                try:
                    ws = await websockets.connect(url, origin=origin, open_timeout=10,
                                                  ping_interval=None)
                except websockets.exceptions.InvalidStatusCode as e:
                    expect(e.status_code == 403, f"Origin {origin}: status {e.status_code}")
                else:
                    await ws.close()
                    support.fail(f"an upgrade from Origin {origin} was let through")
            stats = support.api_client(srv.port).ok("GET", "/api/stats")["total"]
            expect(stats["refused_origin"] == len(refused),
                   f"refused_origin {stats.get('refused_origin')}, {len(refused)} refused")
            srv.stop_and_expect_clean_exit()
        err = refused_config(binary, ["--allowed-origins", "https://app.example.com/"])
        expect("not an origin pattern" in err, f"a pattern with a path: {err!r}")

    def publish_reply_shape_follows_the_parsed_body():
        with support.server(binary, ["--shards", "2"], echo_path=None) as srv:
            api = support.api_client(srv.port)
            for body in ({"channel": "c", "event": "messages", "data": {"messages": [1, 2]}},
                         {"channel": "c", "data": "\"messages\""},
                         {"channel": "c", "data": 1, "note": {"messages": []}}):
                r = api.request("POST", "/api/publish", body)
                expect(r.status == 200 and set(r.json or {}) == {"ok", "offset"},
                       f"single publish {body}: expected {{\"ok\":true,\"offset\":N}}, "
                       f"got {r}")
            r = api.request("POST", "/api/publish", {"messages": [{"channel": "c", "data": 1}]})
            expect(r.status == 200 and isinstance((r.json or {}).get("results"), list) and
                   len(r.json["results"]) == 1, f"a batch of one: expected results[1]: {r}")
            api.close()
            srv.stop_and_expect_clean_exit()

    async def user_query_is_ignored_without_insecure():
        with support.server(binary, ["--shards", "2"], echo_path=None) as srv:
            c = await support.pubsub_client.connect(srv.port, user="victim")
            api = support.api_client(srv.port)
            r = await asyncio.to_thread(api.ok, "POST", "/api/send",
                                        {"userId": "victim", "event": "e", "data": 1})
            expect(r.get("ok") is True, f"/api/send: {r}")
            await support.quiet_for([c])
            expect(not c.messages, f"a connection with ?user=victim and no --insecure got "
                   f"victim's message: {c.messages[:1]}")
            online = await asyncio.to_thread(api.ok, "GET", "/api/online")
            expect(online.get("count") == 0, f"/api/online lists a user: {online}")
            r = await c.command("subscribe", channel="user:victim")
            expect(r.get("ok") is False and r["error"]["code"] == 403,
                   f"subscribing to user:victim without being victim: {r}")
            expect(not any("--insecure" in line for line in srv.lines()),
                   f"a warning about --insecure without it\n{srv.output()}")
            api.close()
            await c.close()
            srv.stop_and_expect_clean_exit()
        with support.server(binary, ["--shards", "1", "--insecure"], echo_path=None) as srv:
            # Printed on stderr before the listening line; stopping the server collects
            # every line it wrote.
            srv.stop_and_expect_clean_exit()
            expect(any("WARNING: --insecure" in line for line in srv.lines()),
                   f"no start-up warning with --insecure\n{srv.output()}")

    return [
        ("--api-key on the command line is refused, naming the file and the variable",
         api_key_on_the_command_line_is_refused),
        (f"key from {ENV}: 401 without / with a wrong key, 200 with it",
         key_from_the_environment),
        ("key from --api-key-file: 401 without / with a wrong key, 200 with it",
         key_from_a_file),
        ("both sources, a short key, spaces, a missing file: refused with a sentence",
         bad_key_sources_are_refused),
        ("/ws backend session by Authorization: Bearer only, not ?api_key=",
         backend_session_by_bearer_only),
        (f"a backend session bursting {BURST} publishes gets all accepted",
         backend_session_bursts_1000_publishes),
        ("keys with scopes: 403 naming the key and scope, 401 before 404/405, counted; "
         "only a publish key makes a backend session; bad key files refused",
         keys_with_scopes),
        ("--allowed-origins: listed origins and wildcards pass, others 403 and counted, "
         "no Origin passes, a bad pattern refused", allowed_origins),
        ("a single publish mentioning \"messages\" gets the single-shaped reply",
         publish_reply_shape_follows_the_parsed_body),
        ("?user= is ignored without --insecure; --insecure warns at start",
         user_query_is_ignored_without_insecure),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"API key, backend session, publish shape "
                               f"(websockets {websockets.__version__})", case_timeout=60))
