#!/usr/bin/python3
"""JWT authentication on /ws end to end (docs/protocol.md "Identity", docs/security.md).

Two servers: A with an HMAC secret (`--jwt-secret-file`) and an ES256 public key
(`--jwt-public-key`), `--jwt-issuer`, `--jwt-audience`, `--jwt-leeway-s 0`, namespaces
`chat:public,publish`, `tests:private`, `admin:role=admin` and an API key; B with a JWKS
only (`--jwks-file`, one ES256 key with kid `k1`). Tokens are made with PyJWT (HS256,
ES256; keys from python3-cryptography).

* every refusal is HTTP 401 with `{"error":{"code":401,"message":REASON}}` before any
  WebSocket: no token, expired, not yet valid, bad signature, alg none, wrong issuer, wrong
  audience, missing sub, a sub that is no user id, an unknown kid (B); counted per class in
  /api/stats;
* a token by `?token=` and by `Authorization: Bearer` opens a session as its `sub`
  (/api/online lists it, /api/send reaches it, nobody else may subscribe to its user:
  channel);
* private namespace only through the `channels` claim (prefix `tests:test-progress-*`),
  `role=admin` through `roles`, publish only where the rule says `publish`;
* refresh before expiry keeps the connection and unsubscribes, with a notice, a channel the
  new claims drop; without a refresh the connection is closed 4001 "token expired";
  a refresh for another sub (403) or a bad one (401) changes nothing;
* a backend session (API key with the publish scope as Bearer) still works;
* start-up refuses --insecure or --client-publish with JWT keys, --namespace without, and
  names an unreadable key file.

Usage: auth_jwt.py PATH/TO/ringcastd. Exits 77 without python3-websockets, fails without
python3-jwt (the client this test needs).
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets
except ImportError:
    support.skip("python3 module 'websockets' is missing (apt-get install python3-websockets)")
try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:
    support.missing("python3 modules 'jwt' and 'cryptography' (apt-get install python3-jwt "
                    "python3-cryptography)")

SECRET = "integration-hmac-secret-0123456789abcdef"
API_KEY = "auth-jwt-backend-key-0123456789"
ISSUER = "https://issuer.test"
AUDIENCE = "ringcast-test"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_OTHER = ec.generate_private_key(ec.SECP256R1())
TMP = tempfile.mkdtemp(prefix="ringcast-auth-jwt-")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


SECRET_FILE = write("secret", SECRET + "\n")
PEM_FILE = write("ec.pem", EC_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
JWK = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
JWK.update({"kid": "k1", "use": "sig", "alg": "ES256"})
JWKS_FILE = write("jwks.json", json.dumps({"keys": [JWK]}))
KEY_FILE = write("api-keys", f"feed:publish,admin:{API_KEY}\n")

SERVER_A = ["--shards", "2", "--jwt-secret-file", SECRET_FILE, "--jwt-public-key", PEM_FILE,
            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE, "--jwt-leeway-s", "0",
            "--namespace", "chat:public,publish", "--namespace", "tests:private",
            "--namespace", "admin:role=admin", "--api-key-file", KEY_FILE]
SERVER_B = ["--shards", "1", "--jwks-file", JWKS_FILE, "--jwt-leeway-s", "0"]


def token(sub="alice", ttl=60, alg="HS256", key=None, headers=None, drop=(), **claims):
    now = int(time.time())
    body = {"sub": sub, "exp": now + ttl, "iat": now, "iss": ISSUER, "aud": AUDIENCE}
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    if alg == "none":
        return jwt.encode(body, None, algorithm="none")
    if key is None:
        key = SECRET if alg == "HS256" else EC_KEY
    return jwt.encode(body, key, algorithm=alg, headers=headers)


upgrade_request = support.upgrade_request


def expect_refused(port, reason, tok=None, header=False):
    path = "/ws" if tok is None or header else f"/ws?token={tok}"
    headers = [f"Authorization: Bearer {tok}"] if header and tok is not None else []
    r = support.http_exchange(port, upgrade_request(path, headers))
    want = {"error": {"code": 401, "message": reason}}
    body = json.loads(r.body) if r.body else None
    expect(r.status == 401 and body == want,
           f"expected 401 {want}, got {r.status} {r.body!r}")


async def connect(port, tok, header=False, user=None):
    opts = dict(open_timeout=10, close_timeout=3, ping_interval=None, max_size=None,
                compression=None)
    url = f"ws://{support.LOOPBACK}:{port}/ws"
    if header:
        opts["extra_headers"] = {"Authorization": f"Bearer {tok}"}
    else:
        url += f"?token={tok}"
    return pubsub_client(await websockets.connect(url, **opts), user)


async def refused_reply(client, op, code, message, **fields):
    r = await client.command(op, **fields)
    expect(r.get("ok") is False and r.get("error") == {"code": code, "message": message},
           f"{op} {fields}: {r}, expected {code} {message!r}")


def stats(port):
    return support.api_client(port, api_key=API_KEY).stats()["total"]


def cases(binary):
    a = support.server(binary, SERVER_A, echo_path=None)
    b = support.server(binary, SERVER_B, echo_path=None)

    def every_refusal_is_a_401_with_its_reason():
        before = stats(a.port)
        now = int(time.time())
        refusals = [
            ("token required", None),
            ("token expired", token(exp=now - 10)),
            ("token not yet valid", token(nbf=now + 600)),
            ("bad signature", token(key="another-secret-0123456789abcdef0123")),
            ("bad signature", token(alg="ES256", key=EC_OTHER)),
            ("algorithm not allowed", token(alg="none")),
            ("wrong issuer", token(iss="https://elsewhere.test")),
            ("wrong audience", token(aud="another-service")),
            ("missing sub", token(drop=("sub",))),
            ("sub is not a valid user id", token(sub="a b")),
            ("malformed token", "not-a-token"),
        ]
        for reason, tok in refusals:
            expect_refused(a.port, reason, tok)
        expect_refused(a.port, "token expired", token(exp=now - 10), header=True)
        after = stats(a.port)
        grew = {k: after[k] - before[k] for k in
                ("refused_token_missing", "refused_token_expired", "refused_token_invalid",
                 "refused_token_claims")}
        want = {"refused_token_missing": 1, "refused_token_expired": 3,
                "refused_token_invalid": 4, "refused_token_claims": 4}
        expect(grew == want, f"refusal counters grew {grew}, expected {want}")

    def jwks_selects_by_kid():
        expect_refused(b.port, "unknown key",
                       token(alg="ES256", headers={"kid": "nope"}, drop=("iss", "aud")))
        expect_refused(b.port, "bad signature",
                       token(alg="ES256", key=EC_OTHER, headers={"kid": "k1"},
                             drop=("iss", "aud")))

        async def opens():
            c = await connect(b.port, token(alg="ES256", headers={"kid": "k1"},
                                            drop=("iss", "aud")))
            await c.ok("ping")
            await c.ws.close()
        asyncio.run(opens())

    async def token_by_query_and_by_header_names_the_user():
        api = support.api_client(a.port, api_key=API_KEY)
        q = await connect(a.port, token(sub="alice"), user="alice")
        h = await connect(a.port, token(sub="bob", alg="ES256"), header=True, user="bob")
        await asyncio.gather(q.ok("ping"), h.ok("ping"))
        online = await asyncio.to_thread(api.ok, "GET", "/api/online")
        users = {u["userId"]: u["connections"] for u in online["users"]}
        expect(users.get("alice") == 1 and users.get("bob") == 1, f"/api/online: {online}")
        await refused_reply(q, "subscribe", 403, "channel belongs to another user",
                            channel="user:bob")
        await refused_reply(q, "unsubscribe", 403, "cannot leave your own user channel",
                            channel="user:alice")
        r = await asyncio.to_thread(api.ok, "POST", "/api/send",
                                    {"userId": "alice", "event": "hi", "data": {"n": 1}})
        expect(r.get("ok") is True, f"/api/send: {r}")
        await q.wait_messages(1)
        m = q.parsed(0)
        expect(m["channel"] == "user:alice" and m["data"] == {"n": 1}, f"alice got {m}")
        await support.quiet_for([h])
        expect(not h.messages, f"bob got alice's message: {h.messages[:1]}")
        await asyncio.gather(q.ws.close(), h.ws.close())

    async def namespace_rules_decide_subscribe_and_publish():
        plain = await connect(a.port, token(channels=["tests:test-progress-*"]))
        admin = await connect(a.port, token(sub="root", roles=["admin"]))
        await plain.subscribe("tests:test-progress-42")
        await refused_reply(plain, "subscribe", 403, "channel not granted by token",
                            channel="tests:other")
        await refused_reply(plain, "subscribe", 403, "role required", channel="admin:ops")
        await refused_reply(plain, "subscribe", 403, "namespace not configured",
                            channel="nowhere:x")
        await plain.subscribe("lobby")
        await admin.subscribe("admin:ops")
        await refused_reply(admin, "subscribe", 403, "channel not granted by token",
                            channel="tests:test-progress-42")
        await plain.subscribe("chat:room")
        r = await admin.ok("publish", channel="chat:room", data={"by": "root"})
        expect(support.is_int(r.get("offset")), f"publish chat:room: {r}")
        await plain.wait_messages(1)
        expect(plain.parsed(0)["userId"] == "root", f"envelope {plain.parsed(0)}")
        for ch in ("tests:test-progress-42", "lobby", "user:alice"):
            await refused_reply(plain, "publish", 403, "publish not allowed", channel=ch,
                                data=1)
        await asyncio.gather(plain.ws.close(), admin.ws.close())

    async def refresh_keeps_the_connection_and_revokes_dropped_channels():
        c = await connect(a.port, token(ttl=2, channels=["tests:a", "tests:b"]))
        await c.subscribe("tests:a")
        await c.subscribe("tests:b")
        fresh = token(ttl=60, channels=["tests:a"])
        r = await c.command("refresh", token=fresh)
        expect(r.get("ok") is True and r.get("expiresAt") == jwt.decode(
            fresh, options={"verify_signature": False})["exp"], f"refresh: {r}")
        notices = [c.parsed(i) for i in range(len(c.messages))]
        want = [{"op": "notice", "type": "unsubscribed", "channel": "tests:b",
                 "reason": "channel not granted by token"}]
        expect(notices == want, f"notices {notices}, expected {want}")
        await asyncio.sleep(3.5)  # past the first token's exp (leeway 0)
        expect(not c.closed.is_set(), f"closed {c.close_code} {c.close_reason!r} after refresh")
        await c.ok("ping")
        await refused_reply(c, "unsubscribe", 404, "not subscribed", channel="tests:b")
        await c.ws.close()

    async def without_refresh_the_connection_closes_4001():
        before = stats(a.port)["token_expiry_closes"]
        c = await connect(a.port, token(ttl=2))
        await c.ok("ping")
        await refused_reply(c, "refresh", 403, "token for another user",
                            token=token(sub="mallory", ttl=60))
        await refused_reply(c, "refresh", 401, "bad signature",
                            token=token(ttl=60, key="another-secret-0123456789abcdef0123"))
        await c.wait_closed(15)
        expect((c.close_code, c.close_reason) == (4001, "token expired"),
               f"closed with {c.close_code} {c.close_reason!r}, expected 4001 token expired")
        grew = stats(a.port)["token_expiry_closes"] - before
        expect(grew == 1, f"token_expiry_closes grew by {grew}")

    async def backend_session_by_api_key_still_works():
        alice = await connect(a.port, token(sub="alice"))
        feed = await connect(a.port, API_KEY, header=True, user="feed")
        r = await feed.ok("publish", channel="user:alice", data={"from": "feed"})
        expect(support.is_int(r.get("offset")), f"backend publish: {r}")
        await alice.wait_messages(1)
        expect(alice.parsed(0)["data"] == {"from": "feed"}, f"alice got {alice.parsed(0)}")
        await refused_reply(feed, "refresh", 400, "a backend session has no token to refresh",
                            token=token())
        await asyncio.gather(alice.ws.close(), feed.ws.close())

    def start_up_refuses_bad_combinations():
        runs = [
            (["--jwt-secret-file", SECRET_FILE, "--insecure"], "--insecure"),
            (["--jwt-secret-file", SECRET_FILE, "--client-publish", "chat"],
             "--namespace chat:public,publish"),
            (["--namespace", "chat:public"], "--namespace needs JWT keys"),
            (["--jwt-public-key", os.path.join(TMP, "missing.pem")], "missing.pem"),
            (["--jwks-file", SECRET_FILE], "--jwks-file"),
            (["--jwt-audience", AUDIENCE], "--jwt-audience"),
        ]
        for args, needle in runs:
            p = subprocess.run([binary, "--listen", "127.0.0.1:0", *args], capture_output=True,
                               text=True, timeout=20)
            expect(p.returncode == 2 and needle in p.stderr and "listening" not in p.stdout,
                   f"{args}: exit {p.returncode}, stderr {p.stderr.strip()!r}")

    try:
        a.__enter__()
        b.__enter__()
        return support.run_cases([
            ("every refusal is an HTTP 401 with its reason, counted by class",
             every_refusal_is_a_401_with_its_reason),
            ("a JWKS key is chosen by kid", jwks_selects_by_kid),
            ("a token by ?token= and by Authorization names the user",
             token_by_query_and_by_header_names_the_user),
            ("namespace rules decide subscribe and publish",
             namespace_rules_decide_subscribe_and_publish),
            ("refresh keeps the connection and revokes dropped channels with a notice",
             refresh_keeps_the_connection_and_revokes_dropped_channels),
            ("without a refresh the connection closes 4001; bad refreshes change nothing",
             without_refresh_the_connection_closes_4001),
            ("a backend session by API key still works with JWT on",
             backend_session_by_api_key_still_works),
            ("start-up refuses bad combinations and names the file",
             start_up_refuses_bad_combinations),
        ], title="JWT authentication on /ws")
    finally:
        a.__exit__(None, None, None)
        b.__exit__(None, None, None)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(cases(support.binary_from_argv()))
