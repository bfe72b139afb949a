#!/usr/bin/python3
"""Admission at accept: per-address limits, and health and API answers while the
connection table is full.

* One address opening more connections than --max-connections-per-ip (default 1024) is
  refused with 429 while a second loopback address (127.0.0.2) still connects and /healthz
  and /api/stats answer; the refusals are counted in /api/stats.
* A slot counted for an address frees when its connection closes.
* --connect-rate-per-ip / --connect-burst-per-ip: connects beyond the burst get 429 until a
  token refills.
* --max-connections reached: /healthz and /api/stats on the main listener still answer 200
  (restricted mode), an upgrade gets 503, and a freed slot is usable again.
* --api-listen: the API listener has its own slots, so /api/stats and /healthz answer there
  even when the main listener's cap and every spare slot are taken; a connection with no
  slot left is closed unanswered and counted.

Every client is a raw socket bound to a chosen loopback source address (127.0.0.1,
127.0.0.2: Linux routes all of 127.0.0.0/8 to lo). Usage: edge_admission.py PATH/TO/ringcastd
"""

import base64
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

FLOODER = "127.0.0.1"
OTHER = "127.0.0.2"
# core::refusal_slots: connections beyond the cap served in restricted mode at once.
REFUSAL_SLOTS = 64
# The default of --max-connections-per-ip (docs/decisions.md); with one shard the shard's
# share is all of it.
DEFAULT_PER_ADDRESS = 1024
API_PATTERN = re.compile(r"api on [0-9.]+:(\d+)")


def connect_from(source, port, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((support.LOOPBACK, port))
    return s


def upgrade_request(path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def read_head(sock, timeout=5.0):
    """The response head (status, fields, bytes after the head); status None on EOF or a
    reset before any byte."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(f"no response head within {timeout}s; got {support.short(data)}")
        sock.settimeout(remaining)
        try:
            more = sock.recv(65536)
        except ConnectionResetError:
            more = b""
        except socket.timeout:
            continue
        if not more:
            if not data:
                return None, {}, b""
            fail(f"connection closed inside a response head: {support.short(data)}")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, _, fields = head.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), support.parse_header_fields(fields), rest


def upgrade_status(source, port):
    """Opens a connection from `source`, asks for /ws and returns (status, socket)."""
    s = connect_from(source, port)
    s.sendall(upgrade_request())
    status, _, _ = read_head(s)
    return status, s


def http_get(source, port, path, timeout=5.0):
    """GET `path` from `source`; returns (status, fields, body) read to Content-Length."""
    with connect_from(source, port, timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, fields, body = read_head(s, timeout)
        expect(status is not None, f"GET {path} from {source}: closed without an answer")
        length = int(fields.get("content-length", "0"))
        deadline = time.monotonic() + timeout
        while len(body) < length and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            more = s.recv(65536)
            if not more:
                break
            body += more
        return status, fields, body[:length]


def stats(source, port):
    status, _, body = http_get(source, port, "/api/stats")
    expect(status == 200, f"/api/stats from {source}: HTTP {status} {body[:200]!r}")
    return json.loads(body)["total"]


def api_port(srv):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in srv.lines():
            m = API_PATTERN.search(line)
            if m:
                return int(m.group(1))
        time.sleep(0.05)
    fail(f"no 'api on HOST:PORT' line\n{srv.output()}")


def wait_for(what, attempt, timeout):
    """Calls attempt() until it returns true, every 50 ms, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not attempt():
        expect(time.monotonic() < deadline, f"{what}: not within {timeout}s")
        time.sleep(0.05)


def cases(binary):
    def one_address_is_capped_others_are_not():
        # The shape at a smaller scale, with default per-address limits: the table
        # (--max-connections 1100) is larger than one address may hold (1024), and one
        # address asks for more than the table.
        cap = DEFAULT_PER_ADDRESS + 76
        flood = cap + 50
        with support.server(binary, ["--shards", "1", "--max-connections", str(cap)],
                            echo_path=None) as srv:
            held, statuses, reasons = [], {}, set()
            try:
                for _ in range(flood):
                    s = connect_from(FLOODER, srv.port)
                    s.sendall(upgrade_request())
                    held.append(s)
                for s in held:
                    status, _, rest = read_head(s)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != 101:
                        reasons.add(rest[:120])
                support.tap_comment(f"{flood} upgrades from {FLOODER}: {statuses}")
                status, other = upgrade_status(OTHER, srv.port)
                other.close()
                expect(status == 101, f"an upgrade from {OTHER} during the flood: HTTP {status}")
                status, _, body = http_get(OTHER, srv.port, "/healthz")
                expect(status == 200, f"/healthz from {OTHER} during the flood: HTTP {status}")
                expect(statuses.get(101, 0) == DEFAULT_PER_ADDRESS,
                       f"{statuses.get(101, 0)} of {flood} upgrades from one address accepted; "
                       f"expected the per-address default {DEFAULT_PER_ADDRESS}: {statuses}")
                # A refusal is answered from a spare slot while one is free; the flooder
                # holds its refused sockets open, so the rest are closed unanswered.
                answered, unanswered = statuses.get(429, 0), statuses.get(None, 0)
                expect(answered + unanswered == flood - DEFAULT_PER_ADDRESS and
                       1 <= answered <= REFUSAL_SLOTS,
                       f"expected {flood - DEFAULT_PER_ADDRESS} refusals, 1 to {REFUSAL_SLOTS} "
                       f"of them answered 429, the rest closed: {statuses}")
                expect(any(b"your address" in r for r in reasons),
                       f"the refusal does not say why: {reasons}")
                total = stats(OTHER, srv.port)
                expect(total["refused_per_ip_cap"] == flood - DEFAULT_PER_ADDRESS and
                       total["refused_unanswered"] == unanswered,
                       f"refused_per_ip_cap {total['refused_per_ip_cap']} (expected "
                       f"{flood - DEFAULT_PER_ADDRESS}), refused_unanswered "
                       f"{total['refused_unanswered']} (expected {unanswered}): {total}")
            finally:
                for s in held:
                    s.close()
            srv.stop_and_expect_clean_exit()

    def address_slot_frees_on_close():
        with support.server(binary, ["--shards", "1", "--max-connections-per-ip", "3"],
                            echo_path=None) as srv:
            held = []
            try:
                for i in range(3):
                    status, s = upgrade_status(FLOODER, srv.port)
                    held.append(s)
                    expect(status == 101, f"connection {i + 1} of 3: HTTP {status}")
                with connect_from(FLOODER, srv.port) as s:
                    s.sendall(upgrade_request())
                    status, fields, rest = read_head(s)
                expect(status == 429 and fields.get("retry-after") == "10",
                       f"a 4th connection with --max-connections-per-ip 3: HTTP {status} "
                       f"{fields}, expected 429 with Retry-After: 10")
                held.pop().close()

                def reconnects():
                    status, s = upgrade_status(FLOODER, srv.port)
                    if status == 101:
                        held.append(s)
                        return True
                    s.close()
                    return False
                # The close timeout bounds how long the server may take to release a slot.
                wait_for("a slot freed by a close", reconnects, timeout=5.0)
                total = stats(OTHER, srv.port)
                expect(total["refused_per_ip_cap"] >= 1, f"refused_per_ip_cap: {total}")
            finally:
                for s in held:
                    s.close()
            srv.stop_and_expect_clean_exit()

    def connect_rate_refuses_beyond_the_burst():
        with support.server(binary, ["--shards", "1", "--max-connections-per-ip", "0",
                                     "--connect-rate-per-ip", "1", "--connect-burst-per-ip",
                                     "3"], echo_path=None) as srv:
            for i in range(3):
                status, s = upgrade_status(FLOODER, srv.port)
                s.close()
                expect(status == 101, f"connect {i + 1} within the burst of 3: HTTP {status}")
            with connect_from(FLOODER, srv.port) as s:
                s.sendall(upgrade_request())
                status, fields, rest = read_head(s)
            expect(status == 429 and b"new connections" in rest
                   and fields.get("retry-after") == "1",
                   f"a 4th connect at once with a burst of 3: HTTP {status} {fields} "
                   f"{rest[:120]!r}, expected 429 with Retry-After: 1")
            status, s = upgrade_status(OTHER, srv.port)
            s.close()
            expect(status == 101, f"another address is not limited: HTTP {status}")

            def refilled():
                status, s = upgrade_status(FLOODER, srv.port)
                s.close()
                return status == 101
            # One token per second (--connect-rate-per-ip 1); five times that is generous.
            wait_for("a connect after the bucket refilled", refilled, timeout=5.0)
            total = stats(OTHER, srv.port)
            expect(total["refused_per_ip_rate"] >= 1, f"refused_per_ip_rate: {total}")
            srv.stop_and_expect_clean_exit()

    def full_table_still_answers_health_and_api():
        with support.server(binary, ["--shards", "1", "--max-connections", "3"],
                            echo_path=None) as srv:
            held = []
            try:
                for i in range(3):
                    status, s = upgrade_status(FLOODER, srv.port)
                    held.append(s)
                    expect(status == 101, f"connection {i + 1} of 3: HTTP {status}")
                status, fields, body = http_get(FLOODER, srv.port, "/healthz")
                expect(status == 200 and b'"ok"' in body,
                       f"/healthz with the table full: HTTP {status} {body!r}")
                expect(fields.get("connection", "").lower() == "close",
                       f"a restricted answer must close its spare slot: {fields}")
                total = stats(FLOODER, srv.port)
                expect(total["refused"] >= 2, f"refused (restricted) counter: {total}")
                status, s = upgrade_status(FLOODER, srv.port)
                s.close()
                expect(status == 503, f"an upgrade with the table full: HTTP {status}, "
                       f"expected 503")
                status, fields, _ = http_get(FLOODER, srv.port, "/")
                expect(status == 503 and fields.get("retry-after") == "5",
                       f"GET / with the table full: HTTP {status} {fields}, expected 503 "
                       f"with Retry-After: 5")
                held.pop().close()

                def upgrades():
                    status, s = upgrade_status(FLOODER, srv.port)
                    if status == 101:
                        held.append(s)
                        return True
                    s.close()
                    return False
                wait_for("an upgrade after a slot freed", upgrades, timeout=5.0)
            finally:
                for s in held:
                    s.close()
            srv.stop_and_expect_clean_exit()

    def api_listener_answers_when_main_and_spare_are_full():
        with support.server(binary, ["--shards", "1", "--max-connections", "3",
                                     "--api-listen", "127.0.0.1:0"], echo_path=None) as srv:
            api = api_port(srv)
            held = []
            try:
                for i in range(3):
                    status, s = upgrade_status(FLOODER, srv.port)
                    held.append(s)
                    expect(status == 101, f"connection {i + 1} of 3: HTTP {status}")
                # Silent connections take every spare slot until the handshake timeout.
                for _ in range(REFUSAL_SLOTS):
                    held.append(connect_from(FLOODER, srv.port))
                status, fields, body = http_get(OTHER, api, "/api/stats")
                expect(status == 200, f"/api/stats on --api-listen with the main cap and "
                       f"every spare slot taken: HTTP {status} {body[:200]!r}")
                with connect_from(OTHER, srv.port) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    status, _, _ = read_head(s)
                expect(status is None, f"a main-listener connection with no spare slot left "
                       f"was answered (HTTP {status}) instead of closed")
                status, _, _ = http_get(OTHER, api, "/healthz")
                expect(status == 200, f"/healthz on --api-listen: HTTP {status}")

                def counted():
                    return stats(OTHER, api)["refused_unanswered"] >= 1
                wait_for("refused_unanswered counted", counted, timeout=5.0)
            finally:
                for s in held:
                    s.close()
            srv.stop_and_expect_clean_exit()

    return [
        ("one address over the per-address cap gets 429; 127.0.0.2, /healthz and "
         "/api/stats still answer", one_address_is_capped_others_are_not),
        ("a per-address slot frees when its connection closes", address_slot_frees_on_close),
        ("--connect-rate-per-ip: 429 beyond the burst, admitted again after a refill",
         connect_rate_refuses_beyond_the_burst),
        ("--max-connections reached: /healthz and /api/stats 200, upgrades 503",
         full_table_still_answers_health_and_api),
        ("--api-listen answers with the main cap and every spare slot taken",
         api_listener_answers_when_main_and_spare_are_full),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    sys.exit(support.run_cases(cases(binary), "admission: per-address limits, health and "
                               "API while full", case_timeout=90))
