#!/usr/bin/python3
"""What five flags of `ringcastd --help` do: `--linger-us`, `--close-timeout-ms`,
`--check-config`, `--version`, `--help`.

* `--linger-us N` ("hold output up to N µs so more messages share one send"): a client
  publishes 40 messages 5 ms apart to a subscriber on two servers at once, one with
  `--linger-us 0` and one with `--linger-us 100000`; both deliver all 40 in order, and the
  lingering server makes at most 3 × (t / 100 ms + 2) sends over the run (a send
  leaves at most every 100 ms per connection with output, three connections; t measured
  here) and at most half as many as the other one (`sends` in /api/stats, between two
  reads). 0 and 100000 are accepted; abc, -1, 100001 refused naming the flag.
* `--close-timeout-ms T` ("wait for a closing peer at most this long"), T = 1000 and 3000:
  `/api/disconnect` closes three connections of one user; a `websockets` client answers
  the close and is gone at once; a raw client that reads the close frame (and the
  server's FIN) and never answers is dropped by the server no earlier than T after the
  request was sent and within 3·T + 3 s (seen in the connection count of /api/stats,
  polled); a second such client that writes one stray byte every 50 ms sees the reset of
  a closed socket in the same window (the outside view of the drop).
* `--check-config`: with a port this script holds open, `--listen 127.0.0.1:PORT
  --check-config` exits 0 printing "configuration OK (N shards on 127.0.0.1:PORT)" (N the
  CPUs of the affinity mask, or --shards) and does not listen, while the same line without
  `--check-config` fails to bind (exit 1); a bad value, an unknown option, a missing value,
  `--handshake-timeout-ms 0`, `--pong-timeout-ms 0` with pings on: exit 2 with a sentence
  naming the flag; `--pong-timeout-ms 0 --ping-interval-ms 0` is fine.
* `--version`: exit 0, "ringcastd VERSION" with the version of the top-level meson.build.
* `--help` (and -h): exit 0, usage on stdout, nothing on stderr; every option it lists is
  accepted (with --check-config and a value taken from its default); every `--flag`
  docs/protocol.md and docs/close-codes.md mention is listed.

Usage: flags_behaviour.py PATH/TO/ringcastd. Exits 77 without python3-websockets.
"""

import asyncio
import os
import re
import signal
import socket
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINGER_US = 100000
MESSAGES = 40
SPACING = 0.005


def run(binary, args, timeout=20, env=None):
    """Runs ringcastd to completion (bounded); returns the CompletedProcess."""
    try:
        return subprocess.run([binary, *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired:
        support.fail(f"ringcastd {' '.join(args)} still running after {timeout}s")


def refused(binary, args, flag):
    r = run(binary, [*args, "--check-config"])
    expect(r.returncode == 2 and flag in r.stderr,
           f"ringcastd {' '.join(args)}: exit {r.returncode}, stderr {r.stderr.strip()!r}; "
           f"expected 2 and a sentence naming {flag}")


def accepted(binary, args):
    r = run(binary, [*args, "--check-config"])
    expect(r.returncode == 0 and "configuration OK" in r.stdout,
           f"ringcastd {' '.join(args)} --check-config: exit {r.returncode}, stdout "
           f"{r.stdout.strip()!r}, stderr {r.stderr.strip()!r}")
    return r


def help_flags(text):
    flags = set(re.findall(r"(?m)^\s+(--[a-z][a-z-]*)", text))
    flags |= set(re.findall(r"(--[a-z][a-z-]*)", "\n".join(
        line for line in text.splitlines() if line.strip().startswith("--version"))))
    return flags


# --- --linger-us -------------------------------------------------------------------------

async def linger_workload(port):
    """MESSAGES publishes SPACING apart; returns (sends during the run, seconds, texts)."""
    api = support.api_client(port)
    sub = await pubsub_client.connect(port)
    await sub.subscribe("chat:linger")
    pub = await pubsub_client.connect(port)
    await pub.ok("ping")
    t0 = time.monotonic()
    before = (await asyncio.to_thread(api.stats))["total"]["sends"]
    futs = []
    for i in range(MESSAGES):
        _, fut, sending = pub.send_command("publish", channel="chat:linger", data={"i": i})
        await sending
        futs.append(fut)
        await asyncio.sleep(SPACING)
    replies = await asyncio.wait_for(asyncio.gather(*futs), 30)
    await sub.wait_messages(MESSAGES, 30, "linger publishes")
    after = (await asyncio.to_thread(api.stats))["total"]["sends"]
    elapsed = time.monotonic() - t0
    expect(all(r.get("ok") is True for _, r in replies), "a publish was refused")
    data = [sub.parsed(i)["data"]["i"] for i in range(len(sub.messages))]
    await sub.close()
    await pub.close()
    api.close()
    return after - before, elapsed, data


def cases(binary):
    async def linger_batches_sends():
        common = ["--shards", "1", "--client-publish", "chat"]
        with support.server(binary, common + ["--linger-us", "0"], echo_path=None) as plain, \
                support.server(binary, common + ["--linger-us", str(LINGER_US)],
                               echo_path=None) as held:
            (s0, e0, d0), (s1, e1, d1) = await asyncio.gather(linger_workload(plain.port),
                                                               linger_workload(held.port))
            print(f"     sends: --linger-us 0: {s0} in {e0:.2f}s; --linger-us {LINGER_US}: "
                  f"{s1} in {e1:.2f}s", flush=True)
            expect(d0 == list(range(MESSAGES)) and d1 == list(range(MESSAGES)),
                   f"deliveries not all in order: {d0[:5]}… / {d1[:5]}…")
            bound = 3 * (e1 / (LINGER_US / 1e6) + 2)
            expect(s1 <= bound, f"--linger-us {LINGER_US}: {s1} sends in {e1:.2f}s, at most "
                   f"{bound:.0f} if output waits {LINGER_US} µs")
            expect(s1 * 2 <= s0, f"--linger-us {LINGER_US}: {s1} sends, --linger-us 0: {s0}; "
                   f"lingering must at least halve them")
            plain.stop_and_expect_clean_exit()
            held.stop_and_expect_clean_exit()
        accepted(binary, ["--linger-us", "0"])
        accepted(binary, ["--linger-us", str(LINGER_US)])
        for bad in ("abc", "-1", str(LINGER_US + 1), "1.5", ""):
            refused(binary, ["--linger-us", bad], "--linger-us")

    # --- --close-timeout-ms ----------------------------------------------------------

    def connection_count(api):
        return api.stats()["total"]["connections"]

    def close_timeout_case(timeout_ms):
        t = timeout_ms / 1000
        with support.server(binary, ["--shards", "1", "--insecure", "--ping-interval-ms", "0",
                                     "--close-timeout-ms", str(timeout_ms)],
                            echo_path=None) as srv:
            api = support.api_client(srv.port)
            silent = support.raw_ws(srv.port, path="/ws?user=u", timeout=10)
            prober = support.raw_ws(srv.port, path="/ws?user=u", timeout=10)

            async def polite():
                ws = await websockets.connect(support.ws_url(srv.port, "u"), open_timeout=10,
                                              close_timeout=10, ping_interval=None)
                return ws
            loop = asyncio.new_event_loop()
            try:
                ws = loop.run_until_complete(polite())
                # Every session is open once a ping round-trips on it.
                loop.run_until_complete(ws.send('{"op":"ping","id":1}'))
                loop.run_until_complete(asyncio.wait_for(ws.recv(), 10))
                for c in (silent, prober):
                    c.send_frame(support.OP_TEXT, b'{"op":"ping","id":1}')
                    op, payload, _ = c.recv_message()
                    expect(b'"ok":true' in payload, f"ping: {payload!r}")
                expect(connection_count(api) == 4, "expected 3 sessions + the API connection")
                t0 = time.monotonic()
                r = api.ok("POST", "/api/disconnect", {"userId": "u", "code": 4000,
                                                       "reason": "bye"})
                expect(r.get("connections") == 3, f"/api/disconnect: {r}")
                # The polite client answers and is gone quickly.
                try:
                    loop.run_until_complete(asyncio.wait_for(ws.wait_closed(), 3 * t + 3))
                except asyncio.TimeoutError:
                    support.fail("the websockets client was not closed")
                expect(ws.close_code == 4000, f"websockets client closed {ws.close_code}")
            finally:
                loop.close()
            for c in (silent, prober):
                op, payload, _ = c.recv_message(timeout=10)
                expect(op == support.OP_CLOSE and payload[:2] == b"\x0f\xa0",
                       f"expected close 4000, got {op} {payload!r}")
                try:
                    c.wait_eof(timeout=10)  # the server's FIN: it waits for ours now
                except support.timed_out:
                    support.fail("no FIN from the server after its close frame")
            # Now: the silent one never writes; the prober writes a stray byte every 50 ms
            # until the kernel answers with a reset (the server closed the socket).
            counts, reset_at, dropped_at = [], None, None
            limit = t0 + 3 * t + 3
            polite_gone_at = None
            while time.monotonic() < limit and (reset_at is None or dropped_at is None):
                if reset_at is None:
                    try:
                        prober.sock.send(b"x")
                    except (BrokenPipeError, ConnectionResetError):
                        reset_at = time.monotonic()
                n = connection_count(api)
                counts.append((round(time.monotonic() - t0, 3), n))
                if n <= 3 and polite_gone_at is None:
                    polite_gone_at = time.monotonic()
                if n == 1 and dropped_at is None:
                    dropped_at = time.monotonic()
                time.sleep(0.05)
            print(f"     --close-timeout-ms {timeout_ms}: polite gone at "
                  f"{(polite_gone_at or 0) - t0:.3f}s, silent ones dropped at "
                  f"{(dropped_at or 0) - t0:.3f}s, reset seen at {(reset_at or 0) - t0:.3f}s",
                  flush=True)
            expect(dropped_at is not None, f"the silent clients were still held {3 * t + 3:.1f}"
                   f"s after the close (connection counts {counts[-3:]})")
            expect(reset_at is not None, "the prober never saw a reset")
            early = t - 0.02   # the server's 10 ms timer ticks, ms clock
            expect(dropped_at - t0 >= early, f"dropped {dropped_at - t0:.3f}s after the "
                   f"close, before --close-timeout-ms {timeout_ms}")
            expect(reset_at - t0 >= early, f"reset {reset_at - t0:.3f}s after the close, "
                   f"before --close-timeout-ms {timeout_ms}")
            expect(polite_gone_at is not None and polite_gone_at < dropped_at,
                   f"the answering client was not gone before the silent ones: {counts[:5]}")
            silent.close()
            prober.close()
            api.close()
            srv.stop_and_expect_clean_exit()

    def close_timeout_1000():
        close_timeout_case(1000)

    def close_timeout_3000():
        close_timeout_case(3000)

    # --- --check-config --------------------------------------------------------------

    def check_config():
        holder = socket.socket()
        holder.bind((support.LOOPBACK, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        try:
            cpus = len(os.sched_getaffinity(0))
            r = accepted(binary, ["--listen", f"{support.LOOPBACK}:{port}"])
            want = f"configuration OK ({cpus} shard{'s' if cpus != 1 else ''} on " \
                   f"{support.LOOPBACK}:{port})"
            expect(want in r.stdout and "listening" not in r.stdout,
                   f"--check-config printed {r.stdout!r}, expected {want!r}")
            r = accepted(binary, ["--listen", f"{support.LOOPBACK}:{port}", "--shards", "3"])
            expect(f"(3 shards on {support.LOOPBACK}:{port})" in r.stdout, r.stdout)
            # The control: without --check-config the same line tries the port and fails.
            p = subprocess.Popen([binary, "--listen", f"{support.LOOPBACK}:{port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.communicate()
                support.fail(f"ringcastd started on a port this script holds ({port})")
            expect(p.returncode == 1 and "listening" not in out,
                   f"without --check-config on a held port: exit {p.returncode}, "
                   f"stdout {out!r}, stderr {err!r}")
        finally:
            holder.close()
        refused(binary, ["--shards", "0"], "--shards")
        refused(binary, ["--max-channels", "many"], "--max-channels")
        r = run(binary, ["--no-such-flag", "--check-config"])
        expect(r.returncode == 2 and "--no-such-flag" in r.stderr and "--help" in r.stderr,
               f"unknown option: exit {r.returncode}, {r.stderr!r}")
        r = run(binary, ["--check-config", "--shards"])
        expect(r.returncode == 2 and "--shards" in r.stderr and "value" in r.stderr,
               f"--shards without a value: exit {r.returncode}, {r.stderr!r}")
        refused(binary, ["--handshake-timeout-ms", "0"], "--handshake-timeout-ms")
        refused(binary, ["--ping-interval-ms", "1000", "--pong-timeout-ms", "0"],
                "--pong-timeout-ms")
        accepted(binary, ["--ping-interval-ms", "0", "--pong-timeout-ms", "0"])
        accepted(binary, ["--shards=2", "--listen=127.0.0.1:0"])

    def version():
        r = run(binary, ["--version"])
        with open(os.path.join(REPO, "meson.build")) as f:
            m = re.search(r"project\(\s*'ringcast'\s*,\s*'cpp'\s*,\s*version\s*:\s*'([^']+)'",
                          f.read())
        expect(m, "no project version in meson.build")
        expect(r.returncode == 0 and r.stdout == f"ringcastd {m.group(1)}\n" and not r.stderr,
               f"--version: exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}; "
               f"expected 'ringcastd {m.group(1)}'")

    def help_lists_every_option():
        r = run(binary, ["--help"])
        expect(r.returncode == 0 and r.stdout.startswith("usage: ringcastd") and
               not r.stderr, f"--help: exit {r.returncode}, stderr {r.stderr!r}")
        h = run(binary, ["-h"])
        expect(h.returncode == 0 and h.stdout == r.stdout, "-h differs from --help")
        flags = help_flags(r.stdout)
        expect({"--help", "--version", "--check-config", "--listen"} <= flags,
               f"flags parsed from --help: {sorted(flags)}")
        # Every listed option is one the server takes.
        lines = r.stdout.splitlines()
        with tempfile.TemporaryDirectory() as d:
            keyfile = os.path.join(d, "key")
            with open(keyfile, "w") as f:
                f.write("help-test-key-0123456789\n")
            jwt_secret, jwt_pem, jwt_jwks = (os.path.join(d, n) for n in
                                             ("jwt-secret", "jwt.pem", "jwks.json"))
            with open(jwt_secret, "w") as f:
                f.write("help-test-jwt-secret-0123456789abcdef\n")
            config_file = os.path.join(d, "ringcast.toml")
            with open(config_file, "w") as f:
                f.write("max-channels = 20\n")
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519
            with open(jwt_pem, "wb") as f:
                f.write(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            with open(jwt_jwks, "w") as f:
                f.write('{"keys":[{"kty":"oct","kid":"h","k":"'
                        'aGVscC10ZXN0LWp3dC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"}]}')
            env = {k: v for k, v in os.environ.items() if k != "RINGCAST_API_KEY"}
            for flag in sorted(flags - {"--help", "--version", "--check-config"}):
                line = next((i for i, ln in enumerate(lines)
                             if re.match(rf"\s+{re.escape(flag)}(\s|$)", ln)), None)
                expect(line is not None, f"{flag}: no line of its own in --help")
                head = lines[line].split()
                takes = len(head) > 1 and re.fullmatch(r"[A-Z][A-Z:\[\],]*", head[1])
                args = [flag]
                if takes:
                    # The option's entry: its line and the lines indented under it, the
                    # default last ("(default N)"), not a default of the next option.
                    end = line + 1
                    while end < len(lines) and lines[end].startswith(" ") \
                            and not re.match(r"\s{1,4}--", lines[end]):
                        end += 1
                    text = " ".join(lines[line:end])
                    m = re.search(r"\(default (\d+)\)", text)
                    value = {"HOST:PORT": f"{support.LOOPBACK}:0", "PATH": keyfile,
                             "NS[,NS]": "chat", "TEXT": "ringcast-test",
                             "CIDR[,CIDR]": "10.0.0.0/8,::1",
                             "NAME:RULE[,RULE]": "chat:public,publish",
                             "LEVEL": "warn", "FORMAT": "json", "ENGINE": "redis",
                             "URL": f"redis://{support.LOOPBACK}:6379/0",
                             "PREFIX": "ringcast-test",
                             "QUEUE:EVENT:CHANNEL": "reports:progress:job:{jobId}",
                             "EXCHANGE:KEY:CHANNEL": "quota:quota.*:user:{userId}"}.get(
                                 head[1], m.group(1) if m else "1")
                    value = {"--echo": "/echo", "--allowed-origins": "https://chat.test",
                             "--jwt-secret-file": jwt_secret, "--jwt-public-key": jwt_pem,
                             "--jwks-file": jwt_jwks, "--config": config_file,
                             "--amqp-url": f"amqp://{support.LOOPBACK}:5672/%2f"}.get(flag, value)
                    args.append(value)
                    if flag in ("--jwt-issuer", "--jwt-audience", "--namespace"):
                        args += ["--jwt-secret-file", jwt_secret]  # they need JWT keys
                rr = run(binary, [*args, "--check-config"], env=env)
                expect(rr.returncode == 0, f"{' '.join(args)} (listed in --help) --check-config:"
                       f" exit {rr.returncode}, {rr.stderr.strip()!r}")
        # Every flag the docs mention is listed.
        documented = set()
        for name in ("protocol.md", "close-codes.md"):
            with open(os.path.join(REPO, "docs", name)) as f:
                documented |= set(re.findall(r"`(--[a-z][a-z-]*)", f.read()))
        documented.discard("--api-key")  # documented as refused
        missing = sorted(documented - flags)
        expect(not missing, f"flags the docs mention but --help does not list: {missing}")

    return [
        (f"--linger-us {LINGER_US}: all delivered, sends bounded by the linger and halved",
         linger_batches_sends),
        ("--close-timeout-ms 1000: a client that never answers the close is dropped after it",
         close_timeout_1000),
        ("--close-timeout-ms 3000: the same, not before 3 s", close_timeout_3000),
        ("--check-config: exit 0 without listening; bad flags exit 2 naming the flag",
         check_config),
        ("--version: ringcastd + the meson.build version", version),
        ("--help / -h: every listed option accepted, every documented flag listed",
         help_lists_every_option),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), f"flags (websockets {websockets.__version__})",
                               case_timeout=120))
