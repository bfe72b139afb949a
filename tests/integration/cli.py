#!/usr/bin/python3
"""The command-line client `ringcast` (docs/cli.md) against the real ringcastd.

* `ringcast sub` receives, in order and byte for byte, what `ringcast pub`, a urllib POST
  /api/publish and a Python `websockets` client publish on one channel; each publisher's
  reply offset is the envelope's; `send` reaches a user; `--count` ends it with exit 0;
* `stats`, `online`, `presence` (indented and `--raw`) parse to what the API itself answers;
* an API key file in the server's format (named keys with scopes; also RINGCAST_API_KEY):
  refused without (401, the server's reason), the key with the scope picked, `--key` of a
  key without it 403; JWT by `--token-file`, `--token` and RINGCAST_TOKEN: refused without
  or expired (401 and the reason), works with, another user's channel 403;
* exits: connection refused 3, bad JSON 2 with nothing sent, the server's 400 reasons 1, a
  server shutting down 1 with "1001", SIGINT 0 after a close 1000, `--timeout` 4 before
  `--count`, pings of `--ping-interval-ms` answered (not closed);
* against a scripted server on a raw socket: masked client frames, a message in three
  fragments with a ping between them (answered with the same payload), a close with code
  and reason printed, and a message over `--max-bytes` refused with close 1009.

Usage: cli.py PATH/TO/ringcastd PATH/TO/ringcast. Fails without python3-websockets or
python3-jwt (.ci/install installs them).
"""

import asyncio
import base64
import hashlib
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

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

RINGCASTD = support.binary_from_argv()
if len(sys.argv) < 3 or not os.access(sys.argv[2], os.X_OK):
    support.missing("usage: cli.py PATH/TO/ringcastd PATH/TO/ringcast")
RINGCAST = os.path.abspath(sys.argv[2])

TMP = tempfile.mkdtemp(prefix="ringcast-cli-")
SECRET = "cli-test-hmac-secret-0123456789abcdef"
PUBLISH_KEY = "feed-secret-0123456789abcdef"
ADMIN_KEY = "ops-secret-0123456789abcdef0"
HANG_S = 20  # only against a hang: every wait that ends on an event is bounded by this


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


SECRET_FILE = write("jwt-secret", SECRET + "\n")
KEY_FILE = write("api-keys", f"# two keys, as the server reads them\nfeed:publish:{PUBLISH_KEY}\n"
                             f"ops:admin:{ADMIN_KEY}\n")

OPEN_SERVER = ["--shards", "2", "--insecure", "--client-publish", "chat",
               "--namespace", "room:presence", "--ping-interval-ms", "200",
               "--pong-timeout-ms", "1000"]
SECURE_SERVER = ["--shards", "2", "--jwt-secret-file", SECRET_FILE, "--api-key-file", KEY_FILE,
                 "--namespace", "chat:public,publish", "--namespace", "room:public,presence"]


def token(sub="7", ttl=300, **claims):
    now = int(time.time())
    return jwt.encode({"sub": sub, "exp": now + ttl, "iat": now, **claims}, SECRET,
                      algorithm="HS256")


def clean_env(extra=None):
    """The environment without any RINGCAST_ variable of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGCAST_")}
    env.update(extra or {})
    return env


def url_of(port):
    return f"ws://{support.LOOPBACK}:{port}"


def run(port, *args, env=None, stdin=None, timeout=HANG_S):
    """Runs `ringcast --url ws://127.0.0.1:PORT ARGS...` to its end; returns the
    CompletedProcess (text)."""
    cmd = [RINGCAST, *(["--url", url_of(port)] if port else []), *args]
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              env=clean_env(env), timeout=timeout)
    except subprocess.TimeoutExpired:
        support.fail(f"{' '.join(cmd)} still running after {timeout}s")


def expect_exit(p, status, *in_stderr, what=""):
    expect(p.returncode == status,
           f"{what or ' '.join(p.args[1:])}: exit {p.returncode}, expected {status}\n"
           f"stdout: {p.stdout[:500]!r}\nstderr: {p.stderr[:500]!r}")
    for words in in_stderr:
        expect(words in p.stderr, f"{what or ' '.join(p.args[1:])}: stderr lacks {words!r}: "
               f"{p.stderr[:500]!r}")


class subscriber:
    """A `ringcast sub` in the background: stdout lines and stderr lines collected by
    threads; `wait_subscribed` waits for the "subscribed to" line of each channel."""

    def __init__(self, port, *args, env=None):
        self.args = [RINGCAST, "--url", url_of(port), "sub", *args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=clean_env(env))
        self.lines, self.errors = [], []
        self.err_queue = queue.Queue()
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, False),
                                          daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, True),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def _drain(self, stream, is_err):
        for line in iter(stream.readline, ""):
            (self.errors if is_err else self.lines).append(line.rstrip("\n"))
            if is_err:
                self.err_queue.put(line)
        if is_err:
            self.err_queue.put(None)

    def wait_subscribed(self, channels):
        want = {f"ringcast: subscribed to {c} " for c in channels}
        deadline = time.monotonic() + HANG_S
        while want:
            try:
                line = self.err_queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                support.fail(f"sub: no 'subscribed to' line for {want} in {HANG_S}s; "
                             f"stderr {self.errors}")
            if line is None:
                support.fail(f"sub ended before subscribing: exit {self.proc.wait()}, "
                             f"stderr {self.errors}")
            want = {w for w in want if not line.startswith(w)}

    def wait(self, timeout=HANG_S):
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            support.fail(f"{' '.join(self.args[1:])}: still running after {timeout}s; "
                         f"{len(self.lines)} lines out, stderr {self.errors}")
        for t in self._threads:
            t.join(timeout=5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def urllib_json(port, method, path, body=None, key=None):
    """The API's own answer, through urllib (curl's role): (status, parsed body)."""
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    req = urllib.request.Request(f"http://{support.LOOPBACK}:{port}{path}", data=data,
                                 method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=HANG_S) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def closed_port():
    s = socket.socket()
    s.bind((support.LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cases(open_srv, secure_srv):
    port, sport = open_srv.port, secure_srv.port

    async def sub_gets_every_publisher_in_order():
        channel, rounds = "chat:cli-order", 8
        sub = subscriber(port, "--user", "sub1", channel, "other", "--count", str(3 * rounds + 1))
        try:
            await asyncio.to_thread(sub.wait_subscribed, [channel, "other"])
            ws = await pubsub_client.connect(port, user="w1")
            sent = []  # (offset, data text, userId, event)
            for i in range(rounds):
                text = f'{{"n": {3 * i} ,\n "via":"ringcast", "s":"é\\u00e9"}}'
                p = await asyncio.to_thread(run, port, "pub", channel, text, "--event", "cli")
                expect_exit(p, 0)
                reply = json.loads(p.stdout)
                expect(reply.get("ok") is True and support.is_int(reply.get("offset")),
                       f"ringcast pub printed {p.stdout!r}")
                sent.append((reply["offset"], text, None, "cli"))
                status, r = await asyncio.to_thread(
                    urllib_json, port, "POST", "/api/publish",
                    {"channel": channel, "event": "urllib", "data": {"n": 3 * i + 1}})
                expect(status == 200, f"urllib publish: {status} {r}")
                sent.append((r["offset"], '{"n":%d}' % (3 * i + 1), None, "urllib"))
                r = await ws.ok("publish", channel=channel, event="ws", data={"n": 3 * i + 2})
                sent.append((r["offset"], '{"n":%d}' % (3 * i + 2), "w1", "ws"))
            p = await asyncio.to_thread(run, port, "send", "sub1", "-", "--priority", "2",
                                        stdin='{"to":"you"}\n')
            expect_exit(p, 0)
            code = await asyncio.to_thread(sub.wait)
            expect(code == 0, f"sub --count: exit {code}, stderr {sub.errors}")
            expect(len(sub.lines) == 3 * rounds + 1,
                   f"sub printed {len(sub.lines)} lines, expected {3 * rounds + 1}: {sub.lines}")
            offsets = [o for o, *_ in sent]
            expect(offsets == list(range(offsets[0], offsets[0] + len(sent))),
                   f"publish offsets {offsets} are not consecutive")
            for line, (offset, text, user, event) in zip(sub.lines, sent):
                env = support.check_envelope(line, channel=channel, event=event, user_id=user,
                                             data=json.loads(text))
                expect(env["offset"] == offset, f"line {line!r}: offset, expected {offset}")
                if "\n" not in text:
                    expect(support.envelope_data_text(line) == text,
                           f"data not byte for byte: sent {text!r}, line {line!r}")
            last = support.check_envelope(sub.lines[-1], channel="user:sub1", priority=2,
                                          data={"to": "you"})
            expect(last["event"] == "message", f"send: {last}")
            await ws.close()
        finally:
            sub.kill()

    async def stats_online_presence_match_the_api():
        a = await pubsub_client.connect(port, user="pa")
        b = await pubsub_client.connect(port, user="pb")
        await a.subscribe("room:cli")
        await b.subscribe("room:cli")
        try:
            for cmd, path in (("online", "/api/online"), ("presence", "/api/presence/room:cli")):
                extra = ["room:cli"] if cmd == "presence" else []
                pretty = await asyncio.to_thread(run, port, cmd, *extra)
                raw = await asyncio.to_thread(run, port, cmd, *extra, "--raw")
                status, api = await asyncio.to_thread(urllib_json, port, "GET", path)
                expect_exit(pretty, 0)
                expect_exit(raw, 0)
                expect(status == 200, f"{path}: {status}")
                expect(json.loads(pretty.stdout) == api and json.loads(raw.stdout) == api,
                       f"ringcast {cmd}: {pretty.stdout!r} / {raw.stdout!r}, API: {api}")
                expect(pretty.stdout.count("\n") > 3 and raw.stdout.count("\n") == 1,
                       f"ringcast {cmd}: indented {pretty.stdout!r}, --raw {raw.stdout!r}")
            status, api = await asyncio.to_thread(urllib_json, port, "GET", "/api/presence/room:cli")
            expect({m["userId"] for m in api["members"]} >= {"pa", "pb"}, f"presence: {api}")
            p = await asyncio.to_thread(run, port, "stats")
            expect_exit(p, 0)
            mine = json.loads(p.stdout)
            status, api = await asyncio.to_thread(urllib_json, port, "GET", "/api/stats")
            expect(set(mine) == set(api) == {"total", "shards", "bridges"}
                   and set(mine["total"]) == set(api["total"])
                   and len(mine["shards"]) == len(api["shards"]) == 2,
                   f"ringcast stats: keys {sorted(mine)} / {sorted(mine.get('total', {}))[:5]}…"
                   f", API {sorted(api)}")
            for name in ("subscriptions", "sessions", "messages_in"):
                expect(mine["total"][name] == api["total"][name],
                       f"stats {name}: ringcast {mine['total'][name]}, API {api['total'][name]}")
        finally:
            await a.close()
            await b.close()

    def api_key_file_refused_without_works_with():
        p = run(sport, "stats")
        expect_exit(p, 1, "401 missing or wrong API key", what="stats without a key")
        p = run(sport, "pub", "news", '{"a":1}')
        expect_exit(p, 1, "401", what="pub without a key")
        p = run(sport, "stats", "--api-key-file", KEY_FILE)
        expect_exit(p, 0, what="stats with the key file (picks ops, the admin key)")
        expect(set(json.loads(p.stdout)) == {"total", "shards", "bridges"},
               f"stats: {p.stdout[:200]!r}")
        p = run(sport, "pub", "news", '{"a":1}', "--api-key-file", KEY_FILE)
        expect_exit(p, 0, what="pub with the key file (picks feed, the publish key)")
        expect(json.loads(p.stdout).get("ok") is True, f"pub: {p.stdout!r}")
        p = run(sport, "stats", "--api-key-file", KEY_FILE, "--key", "feed")
        expect_exit(p, 1, "403 API key 'feed' lacks the scope 'admin'", what="--key feed")
        p = run(sport, "stats", "--api-key-file", KEY_FILE, "--key", "nosuch")
        expect_exit(p, 2, "no key named nosuch", "feed, ops", what="--key nosuch")
        with open(KEY_FILE) as f:
            keys = f.read()
        p = run(sport, "online", env={"RINGCAST_API_KEY": keys})
        expect_exit(p, 0, what="online with RINGCAST_API_KEY")
        p = run(sport, "online", env={"RINGCAST_API_KEY": "x" * 8})
        expect_exit(p, 2, "RINGCAST_API_KEY", what="a malformed RINGCAST_API_KEY")
        expect(ADMIN_KEY not in p.stderr and PUBLISH_KEY not in p.stderr,
               f"an error printed a secret: {p.stderr!r}")

    async def jwt_refused_without_works_with():
        p = await asyncio.to_thread(run, sport, "sub", "chat:j")
        expect_exit(p, 1, "401 token required", what="sub without a token")
        p = await asyncio.to_thread(run, sport, "sub", "chat:j", "--token", token(ttl=-60))
        expect_exit(p, 1, "401 token expired", what="sub with an expired token")
        p = await asyncio.to_thread(run, sport, "sub", "user:8", "--token", token(sub="7"))
        expect_exit(p, 1, "subscribe user:8 refused: 403", what="another user's channel")
        token_file = write("token", token(sub="7") + "\n")
        ways = [(["--token-file", token_file], None), (["--token", token(sub="7")], None),
                ([], {"RINGCAST_TOKEN": token(sub="7")})]
        for n, (args, env) in enumerate(ways):
            channel = f"room:j{n}"
            sub = subscriber(sport, channel, "--count", "1", *args, env=env)
            try:
                await asyncio.to_thread(sub.wait_subscribed, [channel])
                p = await asyncio.to_thread(run, sport, "presence", channel, "--raw",
                                            "--api-key-file", KEY_FILE)
                expect_exit(p, 0)
                members = json.loads(p.stdout)["members"]
                expect(members == [{"userId": "7", "connections": 1}],
                       f"presence of {channel} with a token by {args or env}: {members}")
                p = await asyncio.to_thread(run, sport, "pub", channel, "[1,2]",
                                            "--api-key-file", KEY_FILE)
                expect_exit(p, 0)
                expect(await asyncio.to_thread(sub.wait) == 0, f"sub: {sub.errors}")
                got = [json.loads(x) for x in sub.lines]
                envelopes = [g for g in got if "op" not in g]
                expect(len(envelopes) == 1 and envelopes[0]["data"] == [1, 2],
                       f"sub with the token by {args or env}: {sub.lines}")
            finally:
                sub.kill()

    def errors_exit_non_zero_with_the_reason():
        p = run(closed_port(), "stats")
        expect_exit(p, 3, "cannot connect", "Connection refused", what="a closed port")
        p = run(closed_port(), "sub", "x")
        expect_exit(p, 3, "Connection refused", what="sub to a closed port")
        before = urllib_json(port, "GET", "/api/stats")[1]["total"]["messages_in"]
        p = run(port, "pub", "chat:x", "{not json")
        expect_exit(p, 2, "not valid JSON", "nothing was sent", what="bad JSON")
        after = urllib_json(port, "GET", "/api/stats")[1]["total"]["messages_in"]
        expect(after == before, f"bad JSON: messages_in moved {before} -> {after}")
        p = run(port, "pub", "bad name", "1")
        expect_exit(p, 1, "POST /api/publish: 400", what="a bad channel name")
        p = run(port, "presence", "chat:x")
        expect_exit(p, 1, "400 presence is off", what="presence outside a presence namespace")
        p = run(port, "pub", "chat:x")
        expect_exit(p, 2, "pub takes CHANNEL JSON", what="a missing argument")
        p = run(None, "stats", env={"RINGCAST_URL": "wss://example.test"})
        expect_exit(p, 2, "RINGCAST_URL", "no TLS", what="wss://")
        p = run(port, "sub", "quiet", "--count", "1", "--timeout", "0.5")
        expect_exit(p, 4, "--timeout passed after 0 of 1", what="--timeout before --count")
        for cmd in ("", "sub", "pub", "send", "stats", "online", "presence"):
            p = run(None, *([cmd] if cmd else []), "--help")
            expect_exit(p, 0, what=f"{cmd} --help")
            expect(p.stdout.startswith("usage: ringcast"), f"{cmd} --help: {p.stdout[:80]!r}")

    def pings_answered_and_ctrl_c_closes():
        # The open server pings every 200 ms and closes after 1 s without a pong.
        p = run(port, "sub", "pinged", "--timeout", "2.5")
        expect_exit(p, 0, what="sub for 2.5 s on a pinging server")
        expect("closed by the server" not in p.stderr, f"closed: {p.stderr!r}")
        before = urllib_json(port, "GET", "/api/stats")[1]["total"]["closed"]
        sub = subscriber(port, "ctrl-c")
        try:
            sub.wait_subscribed(["ctrl-c"])
            sub.proc.send_signal(signal.SIGINT)
            code = sub.wait(timeout=5)
            expect(code == 0, f"SIGINT: exit {code}, stderr {sub.errors}")
        finally:
            sub.kill()
        deadline = time.monotonic() + 5
        while urllib_json(port, "GET", "/api/stats")[1]["total"]["closed"] <= before:
            expect(time.monotonic() < deadline, "the server never counted the close")
            time.sleep(0.05)

    def a_server_going_away_is_reported():
        with support.server(RINGCASTD, ["--insecure"], echo_path=None) as srv:
            sub = subscriber(srv.port, "leaving")
            try:
                sub.wait_subscribed(["leaving"])
                srv.stop_and_expect_clean_exit()
                code = sub.wait(timeout=10)
                expect(code == 1 and any("closed by the server: 1001" in e for e in sub.errors),
                       f"server shutdown: exit {code}, stderr {sub.errors}")
            finally:
                sub.kill()

    def frames_from_a_scripted_server():
        scripted_server_checks()

    return [
        ("sub gets ringcast pub, urllib and websockets publishes in order, byte for byte",
         sub_gets_every_publisher_in_order),
        ("stats, online and presence print what the API answers", stats_online_presence_match_the_api),
        ("API key file: refused without, scope picked, --key, RINGCAST_API_KEY",
         api_key_file_refused_without_works_with),
        ("JWT: refused without or expired, works by --token-file, --token, RINGCAST_TOKEN",
         jwt_refused_without_works_with),
        ("errors exit non-zero with the server's reason", errors_exit_non_zero_with_the_reason),
        ("pings are answered; SIGINT closes and exits 0", pings_answered_and_ctrl_c_closes),
        ("a server shutting down: close 1001 reported, exit 1", a_server_going_away_is_reported),
        ("fragments, ping, close reason and --max-bytes against a scripted server",
         frames_from_a_scripted_server),
    ]


# --------------------------------------------------------------------------------------
# A scripted server on a raw socket: frames ringcastd never sends (fragments, a ping in
# the middle of a message, an oversized message).
# --------------------------------------------------------------------------------------

def scripted_server(script):
    """Listens on 127.0.0.1:0; for one connection, answers the upgrade and runs
    script(conn) in a thread. Returns (port, thread, errors)."""
    listener = socket.socket()
    listener.bind((support.LOOPBACK, 0))
    listener.listen(1)
    listener.settimeout(HANG_S)
    errors = []

    def serve():
        try:
            sock, _ = listener.accept()
            sock.settimeout(HANG_S)
            conn = support.raw_ws.__new__(support.raw_ws)
            conn.sock, conn.buf, conn.eof, conn.timeout = sock, bytearray(), False, HANG_S
            head = b""
            while b"\r\n\r\n" not in head:
                more = sock.recv(4096)
                if not more:
                    raise AssertionError("client left during the handshake")
                head += more
            fields = support.parse_header_fields(head.split(b"\r\n\r\n")[0])
            accept = base64.b64encode(hashlib.sha1(
                fields["sec-websocket-key"].encode() + support.WS_GUID).digest()).decode()
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                          "\r\n\r\n").encode())
            script(conn)
        except Exception as e:  # reported by the case
            errors.append(repr(e))
        finally:
            listener.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return listener.getsockname()[1], t, errors


def server_frame(opcode, payload, fin=True):
    return support.encode_frame(opcode, payload, fin=fin, mask=False)


def read_subscribe(conn):
    f = conn.recv_frame(HANG_S)
    expect(f.masked, f"client frame not masked (RFC 6455 §5.3): {f}")
    cmd = json.loads(f.payload)
    expect(cmd.get("op") == "subscribe", f"first command {cmd}")
    conn.send(server_frame(support.OP_TEXT, json.dumps(
        {"op": "reply", "id": cmd["id"], "ok": True, "channel": cmd["channel"], "epoch": "e1",
         "offset": 0}).encode()))
    return cmd


def scripted_server_checks():
    message = json.dumps({"id": "m-1", "event": "e", "channel": "c", "data": "x" * 300,
                          "priority": 3, "timestamp": 1, "userId": None, "offset": 1}).encode()
    seen = {}

    def fragments_ping_close(conn):
        read_subscribe(conn)
        conn.send(server_frame(support.OP_TEXT, message[:100], fin=False))
        conn.send(server_frame(support.OP_PING, b"are-you-there"))
        conn.send(server_frame(support.OP_CONT, message[100:200], fin=False))
        conn.send(server_frame(support.OP_CONT, message[200:], fin=True))
        pong = conn.recv_frame(HANG_S)
        seen["pong"] = pong
        conn.send(server_frame(support.OP_CLOSE, struct.pack("!H", 4000) + b"bye now"))
        seen["close"] = conn.recv_frame(HANG_S)

    port, thread, errors = scripted_server(fragments_ping_close)
    p = run(port, "sub", "c")
    thread.join(HANG_S)
    expect(not errors, f"scripted server: {errors}")
    expect_exit(p, 1, "closed by the server: 4000 bye now", what="scripted close")
    expect(p.stdout == message.decode() + "\n", f"the fragmented message printed as "
           f"{p.stdout[:120]!r}…, expected it whole")
    pong = seen.get("pong")
    expect(pong is not None and pong.opcode == support.OP_PONG and pong.payload ==
           b"are-you-there" and pong.masked, f"answer to the ping: {pong}")
    close = seen.get("close")
    expect(close is not None and close.opcode == support.OP_CLOSE and
           close.close_code() == 4000, f"answer to the close: {close}")

    def too_big(conn):
        read_subscribe(conn)
        conn.send(server_frame(support.OP_TEXT, b'"' + b"y" * 4000 + b'"'))
        seen["refusal"] = conn.recv_frame(HANG_S)

    port, thread, errors = scripted_server(too_big)
    p = run(port, "sub", "c", "--max-bytes", "1024")
    thread.join(HANG_S)
    expect(not errors, f"scripted server: {errors}")
    expect_exit(p, 1, "larger than --max-bytes", what="a message over --max-bytes")
    expect(p.stdout == "", f"printed part of an oversized message: {p.stdout[:100]!r}")
    refusal = seen.get("refusal")
    expect(refusal is not None and refusal.opcode == support.OP_CLOSE and
           refusal.close_code() == 1009, f"close for an oversized message: {refusal}")


def main():
    with support.server(RINGCASTD, OPEN_SERVER, echo_path=None) as open_srv, \
            support.server(RINGCASTD, SECURE_SERVER, echo_path=None) as secure_srv:
        status = support.run_cases(cases(open_srv, secure_srv),
                                   title="ringcast, the command-line client")
        for srv in (open_srv, secure_srv):
            srv.stop_and_expect_clean_exit()
    return status


if __name__ == "__main__":
    sys.exit(main())
