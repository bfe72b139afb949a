#!/usr/bin/python3
"""The log (docs/operations.md "Logs") with the real server.

* `--log-format json`: every stderr line is one JSON object with ts, level, event and msg
  (and shard on a shard's lines); the start-up line is still the text one on stdout.
* `--log-format logfmt`: every stderr line parses as key=value pairs with the same keys;
  with `--log-level debug` a bad request is logged (`http_refused`).
* `--access-log` (with `--jwt-secret-file`): one line for an upgrade (101, the token's user)
  and one per refused handshake (401 without a token, with a bad one in the query, with
  a bad bearer; 404 for an upgrade to a path nobody serves), each naming the peer, the path
  without its query, the status and a duration; no token text in any line the server
  printed, stdout or stderr.
* A flood: 2,000 upgrades to a path nobody serves, with the access log on, write at most
  2 % as many lines; the rest are counted in `log_suppressed` (/api/stats, and the metric
  on /metrics), lines written plus suppressed equal the requests; after the site's 10 s
  interval the next refusal is preceded by a "log_suppressed" summary.
* `--log-level warn` hides info lines (the access log, the shutdown lines) and keeps the
  stdout start-up lines.
* A reload (SIGHUP after changing the `--config` file) changes the level live, both ways.

Usage: logs.py PATH/TO/ringcastd (needs no client library).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

SECRET = "logs-test-hmac-secret-0123456789abcdef-xyz"
FLOOD = 2000
# A token and a fake one, each with text that must never reach a log line.
BAD_TOKEN = "not-a-token-BADTOKENTEXT"
BEARER_TOKEN = "bearer-BEARERTOKENTEXT"
REQUIRED = ("ts", "level", "event", "msg")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(sub):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + 300}).encode())
    signing = f"{head}.{body}".encode()
    sig = b64url(hmac.new(SECRET.encode(), signing, hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def err_lines(srv):
    return [l[len("[err] "):] for l in srv.lines() if l.startswith("[err] ")]


def upgrade(port, path, headers=()):
    return support.http_exchange(port, support.upgrade_request(path, headers)).status


def parse_logfmt(line):
    """{key: value} of one logfmt line; fails on anything that is not key=value pairs."""
    pairs = {}
    pos = 0
    pattern = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "=]+)(?: |$)')
    while pos < len(line):
        m = pattern.match(line, pos)
        expect(m is not None, f"not logfmt at {pos}: {line!r}")
        value = m.group(2)
        pairs[m.group(1)] = json.loads(value) if value.startswith('"') else value
        pos = m.end()
    return pairs


def stop(srv):
    srv.stop_and_expect_clean_exit()


def stats(port):
    return support.api_client(port).stats()["total"]


def main():
    binary = support.binary_from_argv()
    tmp = tempfile.mkdtemp(prefix="ringcast-logs-")
    secret_file = os.path.join(tmp, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    good_token = hs256_token("alice")

    def json_lines_and_access_log():
        srv = support.server(binary, ["--shards", "2", "--log-format", "json", "--access-log",
                                      "--jwt-secret-file", secret_file], echo_path=None)
        try:
            expect(upgrade(srv.port, f"/ws?token={good_token}") == 101, "upgrade with a token")
            expect(upgrade(srv.port, "/ws") == 401, "no token")
            expect(upgrade(srv.port, f"/ws?token={BAD_TOKEN}") == 401, "bad token")
            expect(upgrade(srv.port, "/ws", [f"Authorization: Bearer {BEARER_TOKEN}"]) == 401,
                   "bad bearer")
            expect(upgrade(srv.port, f"/nowhere?token={BAD_TOKEN}") == 404, "bad path")
            deadline = time.monotonic() + 5
            while len([l for l in err_lines(srv) if '"access"' in l]) < 5:
                expect(time.monotonic() < deadline, f"five access lines\n{srv.output()}")
                time.sleep(0.05)
        finally:
            stop(srv)
        lines = err_lines(srv)
        expect(any("listening on 127.0.0.1:" in l for l in srv.lines() if l.startswith("[out]")),
               "the text start-up line on stdout")
        records = []
        for l in lines:
            try:
                r = json.loads(l)
            except ValueError:
                support.fail(f"a stderr line is not JSON: {l!r}")
            expect(isinstance(r, dict) and all(k in r for k in REQUIRED), f"keys of {l!r}")
            expect(TS.match(r["ts"]), f"ts {r['ts']!r}")
            expect(r["level"] in ("error", "warn", "info", "debug"), f"level of {l!r}")
            records.append(r)
        expect(any(r["event"] == "listening" and isinstance(r.get("port"), int)
                   for r in records), "a listening event with its port")
        expect(any(r["event"] == "shard_totals" for r in records), "shard totals at exit")
        access = [r for r in records if r["event"] == "access"]
        expect(all(isinstance(r.get("shard"), int) for r in access), f"shard: {access}")
        by_status = sorted((r["status"], r["path"], r["user"]) for r in access)
        expect(by_status == [(101, "/ws", "alice"), (401, "/ws", ""), (401, "/ws", ""),
                             (401, "/ws", ""), (404, "/nowhere", "")],
               f"access lines: {by_status}")
        for r in access:
            expect(r["peer"] == "127.0.0.1" and isinstance(r["duration_ms"], int)
                   and r["duration_ms"] >= 0, f"access line {r}")
        everything = "\n".join(srv.lines())
        for secret in (good_token, good_token.split(".")[2], BAD_TOKEN, BEARER_TOKEN, SECRET):
            expect(secret not in everything, f"{secret[:20]}... in the server's output")

    def logfmt_lines():
        srv = support.server(binary, ["--shards", "1", "--log-format", "logfmt",
                                      "--access-log", "--log-level", "debug"])
        try:
            expect(upgrade(srv.port, "/echo") == 101, "echo upgrade")
            expect(upgrade(srv.port, "/ws?user=x y") in (400, 404), "a bad request")
            deadline = time.monotonic() + 5
            expect(support.http_exchange(srv.port, b"NOT HTTP\r\n\r\n").status == 400,
                   "a bad request")
            while not (any("event=access" in l for l in err_lines(srv)) and
                       any("event=http_refused" in l for l in err_lines(srv))):
                expect(time.monotonic() < deadline, f"an access line\n{srv.output()}")
                time.sleep(0.05)
        finally:
            stop(srv)
        records = [parse_logfmt(l) for l in err_lines(srv)]
        expect(records and all(all(k in r for k in REQUIRED) for r in records),
               f"required keys: {records}")
        access = [r for r in records if r["event"] == "access" and r["status"] == "101"]
        expect(access and access[0]["path"] == "/echo" and access[0]["shard"] == "0",
               f"logfmt access line: {access}")
        refused = [r for r in records if r["event"] == "http_refused"]
        expect(refused and refused[0]["level"] == "debug" and refused[0]["status"] == "400",
               f"debug line of the bad request: {refused}")

    def a_flood_writes_few_lines():
        srv = support.server(binary, ["--shards", "2", "--log-format", "json", "--access-log",
                                      "--connect-rate-per-ip", "0"], echo_path=None)
        try:
            before = len(err_lines(srv))
            for _ in range(FLOOD):
                status = upgrade(srv.port, "/nowhere?token=FLOODTOKEN")
                expect(status == 404, f"flood request: {status}")
            time.sleep(0.3)
            written = [json.loads(l) for l in err_lines(srv)[before:]]
            access = [r for r in written if r["event"] == "access"]
            total = stats(srv.port)
            suppressed = total["log_suppressed"]
            support.tap_comment(f"{FLOOD} refused upgrades: {len(written)} lines written, "
                                f"{suppressed} suppressed")
            expect(len(written) <= FLOOD * 0.02, f"{len(written)} lines for {FLOOD} requests")
            expect(len(access) + suppressed == FLOOD,
                   f"{len(access)} written + {suppressed} suppressed != {FLOOD}")
            metrics = support.http_exchange(srv.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                            b"Connection: close\r\n\r\n").body.decode()
            per_shard = re.findall(r'^ringcast_log_suppressed_total\{shard="\d+"\} (\d+)$',
                                   metrics, re.M)
            expect(len(per_shard) == 2 and sum(map(int, per_shard)) == suppressed,
                   f"ringcast_log_suppressed_total: {per_shard}, /api/stats {suppressed}")
            # A new interval: the next refusal on each shard comes after a summary.
            time.sleep(10.5)
            for _ in range(20):  # enough to reach both shards
                upgrade(srv.port, "/nowhere")
            deadline = time.monotonic() + 5
            while True:
                summaries = [json.loads(l) for l in err_lines(srv)
                             if '"log_suppressed"' in l]
                if summaries:
                    break
                expect(time.monotonic() < deadline, f"no summary line\n{srv.output()}")
                time.sleep(0.05)
            expect(all(s["site"] == "access" and 0 < s["suppressed"] <= suppressed
                       for s in summaries), f"summaries: {summaries}")
            expect("FLOODTOKEN" not in "\n".join(srv.lines()), "a query reached the log")
        finally:
            stop(srv)

    def warn_hides_info():
        srv = support.server(binary, ["--shards", "1", "--log-level", "warn", "--access-log"])
        try:
            expect(upgrade(srv.port, "/echo") == 101, "echo upgrade")
            time.sleep(0.3)
        finally:
            stop(srv)
        expect(any("listening on" in l for l in srv.lines()), "the stdout line stays")
        errs = err_lines(srv)
        expect(not any("access:" in l or "closing connections" in l or "accepted" in l
                       for l in errs), f"info lines at warn: {errs}")

    def reload_changes_the_level():
        path = os.path.join(tmp, "ringcast.toml")
        with open(path, "w") as f:
            f.write('log-level = "warn"\naccess-log = true\n')
        srv = support.server(binary, ["--shards", "2", "--config", path])

        def access_lines():
            return [l for l in err_lines(srv) if "access:" in l]

        def reload_with(text, wait_for=None):
            with open(path, "w") as f:
                f.write(text)
            mark = len(srv.lines())
            srv.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            if wait_for is None:
                time.sleep(1.0)  # a reload at warn says nothing: give it time to apply
                return
            while not any(wait_for in l for l in srv.lines()[mark:]):
                expect(time.monotonic() < deadline, f"no {wait_for!r}\n{srv.output()}")
                time.sleep(0.05)

        try:
            expect(upgrade(srv.port, "/echo") == 101, "upgrade at warn")
            time.sleep(0.3)
            expect(access_lines() == [], f"access lines at warn: {access_lines()}")
            reload_with('log-level = "info"\naccess-log = true\n', "reloaded:")
            expect(upgrade(srv.port, "/echo") == 101, "upgrade at info")
            deadline = time.monotonic() + 5
            while len(access_lines()) != 1:
                expect(time.monotonic() < deadline, f"one access line\n{srv.output()}")
                time.sleep(0.05)
            expect(re.search(r"^ringcastd: access: 127\.0\.0\.1 /echo 101 \d+ ms$",
                             access_lines()[0]), f"text access line {access_lines()[0]!r}")
            reload_with('log-level = "warn"\naccess-log = true\n')
            expect(upgrade(srv.port, "/echo") == 101, "upgrade at warn again")
            time.sleep(0.3)
            expect(len(access_lines()) == 1, f"access lines after warn: {access_lines()}")
        finally:
            stop(srv)

    try:
        status = support.run_cases([
            ("json: every stderr line an object with ts, level, event, msg; access lines "
             "without tokens", json_lines_and_access_log),
            ("logfmt: every stderr line key=value pairs", logfmt_lines),
            ("a flood of refused upgrades: at most 2% as many lines, the rest counted, "
             "then a summary", a_flood_writes_few_lines),
            ("--log-level warn hides info lines", warn_hides_info),
            ("a reload changes the level live", reload_changes_the_level),
        ], title="logs", case_timeout=120)
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
