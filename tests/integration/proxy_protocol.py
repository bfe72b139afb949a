#!/usr/bin/python3
"""PROXY protocol (--proxy-protocol-from, docs/proxy-protocol.md) against the real server.

The server trusts 127.0.0.1/32; clients bound to 127.0.0.1 play the proxy, clients bound to
127.0.0.2 are an address that is not trusted (Linux routes all of 127.0.0.0/8 to lo).

* v1 TCP4, TCP6 and UNKNOWN, v2 PROXY over IPv4 and IPv6 with TLVs, v2 LOCAL: the address
  the header carries is the connection's. Seen from outside through the API's loopback
  check (no API key): a carried 203.0.113.7 or 2001:db8::7 gets 403 although the TCP peer
  is 127.0.0.1, a carried 127.0.0.9 or ::1 gets 200, and UNKNOWN / LOCAL keep the proxy's
  own 127.0.0.1 (200). A Python `websockets` client runs its handshake and echo on a
  socket that sent a header first (v1 and v2).
* A header arriving in pieces (one byte per send for its first 18 bytes, then pieces, then
  its last bytes with the upgrade behind them in the same send) is read whole and the request after it is not lost.
* Truncated header then silence: closed unanswered once --handshake-timeout-ms passes
  (judged by the close happening and the counter, with a hang guard only); garbage, an
  invalid v1 port and a plain HTTP request from the trusted address: closed unanswered.
* From 127.0.0.2 (not trusted) a header of either version is refused 400 naming the
  reason; plain HTTP from there still works.
* --max-connections-per-ip 2: three connections through the proxy carrying three client
  addresses are all upgraded, three carrying one address get 101, 101, 429, and the 429's
  log line names the carried address, never the proxy's (which holds 5 connections).
* The counters in /api/stats (proxy_headers, proxy_header_invalid, _timeouts, _untrusted)
  equal what the test sent.

Usage: proxy_protocol.py PATH/TO/ringcastd
"""

import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

PROXY = "127.0.0.1"      # trusted: --proxy-protocol-from 127.0.0.1/32
UNTRUSTED = "127.0.0.2"  # loopback, so the API answers it without a key
HANDSHAKE_TIMEOUT_MS = 1000
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(protocol, src=None, dst=None, sport=None, dport=None):
    if protocol == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return f"PROXY {protocol} {src} {dst} {sport} {dport}\r\n".encode()


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


# ALPN, authority, unique id, the SSL TLV with version and CN sub-TLVs, NOOP: what HAProxy's
# send-proxy-v2-ssl-cn with unique-id sends, and a padding TLV.
TLVS = (tlv(0x01, b"http/1.1") + tlv(0x02, b"push.example.com") + tlv(0x05, b"u" * 64) +
        tlv(0x20, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client")) +
        tlv(0x04, b"") + tlv(0xEE, b"p" * 200))


def v2(command, src=None, dst=None, sport=0, dport=0, tlvs=b""):
    """A v2 header: command "PROXY" or "LOCAL"; the family follows the addresses given."""
    if command == "LOCAL":
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    block = (socket.inet_pton(family, src) + socket.inet_pton(family, dst) +
             struct.pack("!HH", sport, dport))
    body = block + tlvs
    fam = 0x21 if family == socket.AF_INET6 else 0x11
    return V2_SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def connect_from(source, port, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((support.LOOPBACK, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def upgrade_request(path="/echo"):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


STATS_REQUEST = b"GET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def read_response(sock, timeout=5.0):
    """(status, body) of one response read to Content-Length, or (None, bytes) when the
    server closed (EOF or reset) before a complete response; `bytes` is what came first."""
    data, ended = support.read_http_response(sock, time.monotonic() + timeout)
    if ended == "timeout":
        fail(f"no complete response within {timeout}s; got {support.short(data)}")
    if ended == "closed":
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if status == 101:
        return status, body
    fields = support.parse_header_fields(head.partition(b"\r\n")[2])
    return status, body[:int(fields.get("content-length", "0"))]


def exchange(source, port, data, timeout=5.0):
    with connect_from(source, port, timeout) as s:
        s.sendall(data)
        return read_response(s, timeout)


def closed_unanswered(sock, timeout):
    """Waits for the server to close `sock`; fails if it answers anything first. Returns the
    seconds it took (informational)."""
    started = time.monotonic()
    status, data = read_response(sock, timeout)
    expect(status is None and data == b"",
           f"expected a close without an answer, got HTTP {status} {support.short(data)}")
    return time.monotonic() - started


def stats(port):
    status, body = exchange(UNTRUSTED, port, STATS_REQUEST)
    expect(status == 200, f"/api/stats from {UNTRUSTED}: HTTP {status} {support.short(body)}")
    return json.loads(body)["total"]


def api_status_through_proxy(port, header):
    status, body = exchange(PROXY, port, header + STATS_REQUEST)
    expect(status is not None, f"header {header!r} + GET /api/stats: closed unanswered")
    return status


async def websockets_echo(port, header, text):
    """A `websockets` client whose socket sent `header` first: handshake, one echo."""
    import websockets
    sock = connect_from(PROXY, port)
    sock.sendall(header)
    sock.setblocking(False)
    async with websockets.connect(f"ws://{support.LOOPBACK}:{port}/echo", sock=sock,
                                  open_timeout=10, close_timeout=3, ping_interval=None,
                                  compression=None) as ws:
        await ws.send(text)
        got = await asyncio.wait_for(ws.recv(), 10)
        expect(got == text, f"echo after {header!r}: sent {text!r}, got {got!r}")


SERVERS = []


def started(srv):
    """Keeps `srv` for the kill at exit, whatever the cases did."""
    SERVERS.append(srv)
    return srv


def cases(binary):
    srv_box = {}

    def srv():
        return srv_box["srv"]

    def start():
        srv_box["srv"] = started(support.server(
            binary, ["--shards", "1", "--proxy-protocol-from", "127.0.0.1/32",
                     "--handshake-timeout-ms", str(HANDSHAKE_TIMEOUT_MS)]))
        srv_box["sent"] = {"headers": 0, "invalid": 0, "timeouts": 0, "untrusted": 0}

    def sent():
        return srv_box["sent"]

    def v1_headers_carry_the_client():
        start()
        port = srv().port
        for header, want in [
                (v1("TCP4", "203.0.113.7", "192.0.2.1", 56324, 443), 403),
                (v1("TCP4", "127.0.0.9", "192.0.2.1", 1, 443), 200),
                (v1("TCP6", "2001:db8::7", "2001:db8::1", 40000, 443), 403),
                (v1("TCP6", "::1", "::1", 0, 65535), 200),
                (v1("TCP6", "::ffff:198.51.100.3", "::1", 5, 6), 403),
                (v1("UNKNOWN"), 200)]:
            status = api_status_through_proxy(port, header)
            sent()["headers"] += 1
            expect(status == want, f"{header!r} + GET /api/stats (no API key): HTTP "
                   f"{status}, expected {want} (the carried address decides)")

    async def websockets_client_after_v1_and_v2():
        port = srv().port
        await websockets_echo(port, v1("TCP4", "198.51.100.20", "192.0.2.1", 1000, 443),
                              "after v1")
        await websockets_echo(port, v2("PROXY", "2001:db8::20", "2001:db8::1", 1000, 443,
                                       TLVS), "after v2 with TLVs")
        sent()["headers"] += 2

    def v2_headers_carry_the_client():
        port = srv().port
        for header, want in [
                (v2("PROXY", "203.0.113.7", "192.0.2.1", 56324, 443), 403),
                (v2("PROXY", "203.0.113.7", "192.0.2.1", 56324, 443, TLVS), 403),
                (v2("PROXY", "127.0.0.9", "192.0.2.1", 1, 443, TLVS), 200),
                (v2("PROXY", "2001:db8::7", "2001:db8::1", 40000, 443, TLVS), 403),
                (v2("PROXY", "::1", "::1", 1, 2, TLVS), 200),
                (v2("LOCAL"), 200)]:
            status = api_status_through_proxy(port, header)
            sent()["headers"] += 1
            expect(status == want, f"{header!r} + GET /api/stats (no API key): HTTP "
                   f"{status}, expected {want}")

    def header_in_pieces_then_request_in_the_same_send():
        port = srv().port
        for header in (v1("TCP4", "198.51.100.7", "192.0.2.1", 4000, 443),
                       v2("PROXY", "2001:db8::9", "2001:db8::1", 4000, 443, TLVS)):
            with connect_from(PROXY, port) as s:
                # One byte per send through v1's preamble and v2's fixed part, then pieces
                # of 37 (all of it well within --handshake-timeout-ms), and the last 3
                # bytes with the upgrade request.
                cut = len(header) - 3
                pieces = [header[i:i + 1] for i in range(18)] + \
                    [header[i:min(i + 37, cut)] for i in range(18, cut, 37)]
                for piece in pieces:
                    s.sendall(piece)
                    time.sleep(0.002)
                s.sendall(header[cut:] + upgrade_request())
                status, rest = read_response(s)
                expect(status == 101, f"split {header[:12]!r}...: HTTP {status}")
                s.sendall(support.encode_frame(support.OP_TEXT, b"split"))
                got = rest
                deadline = time.monotonic() + 5
                while len(got) < 7 and time.monotonic() < deadline:
                    more = s.recv(65536)
                    if not more:
                        break
                    got += more
                expect(got[:7] == b"\x81\x05split", f"echo after a split header: {got!r}")
            sent()["headers"] += 1

    def truncated_header_is_closed_at_the_handshake_timeout():
        port = srv().port
        # Both versions cut short, then silence; a plain request from the proxy's address
        # meanwhile is not answered either (no header), while a complete header works.
        opened = time.monotonic()
        cut_v1 = connect_from(PROXY, port, timeout=30)
        cut_v1.sendall(v1("TCP4", "198.51.100.8", "192.0.2.1", 1, 2)[:20])
        cut_v2 = connect_from(PROXY, port, timeout=30)
        cut_v2.sendall(v2("PROXY", "198.51.100.8", "192.0.2.1", 1, 2, TLVS)[:40])
        status = api_status_through_proxy(port, v1("UNKNOWN"))
        sent()["headers"] += 1
        expect(status == 200, f"a whole header while others hang: HTTP {status}")
        # Hang guard only: the close must come from the handshake timeout, however slow
        # the machine.
        guard = 10 * HANDSHAKE_TIMEOUT_MS / 1000 + 10
        took = [closed_unanswered(s, guard) for s in (cut_v1, cut_v2)]
        since_open = time.monotonic() - opened
        # The floor: not before the timeout (accept came after `opened`; 5% for clocks).
        expect(since_open >= 0.95 * HANDSHAKE_TIMEOUT_MS / 1000,
               f"closed {since_open:.3f}s after connecting, before --handshake-timeout-ms "
               f"{HANDSHAKE_TIMEOUT_MS}")
        cut_v1.close()
        cut_v2.close()
        sent()["timeouts"] += 2
        support.tap_comment(f"truncated headers closed after {took[0]:.2f}s and "
                            f"{took[1]:.2f}s (--handshake-timeout-ms {HANDSHAKE_TIMEOUT_MS})")

    def garbage_and_missing_headers_from_the_proxy_are_closed_unanswered():
        port = srv().port
        for data in (b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n",
                     upgrade_request(),
                     b"\x00\x01\x02garbage\xff" * 4,
                     v1("TCP4", "1.2.3.4", "5.6.7.8", "080", 2),
                     v1("TCP4", "::1", "::1", 1, 2),
                     b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
                     b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",
                     V2_SIGNATURE + bytes([0x21, 0x12]) + struct.pack("!H", 12) + b"\0" * 12,
                     V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 4000),
                     V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 15) + b"\0" * 12
                     + b"\x01\x00\x09"):
            with connect_from(PROXY, port) as s:
                s.sendall(data)
                closed_unanswered(s, 10)
            sent()["invalid"] += 1

    def untrusted_address_sending_a_header_is_refused():
        port = srv().port
        for header in (v1("TCP4", "127.0.0.9", "192.0.2.1", 1, 2),
                       v2("PROXY", "127.0.0.9", "192.0.2.1", 1, 2)):
            status, body = exchange(UNTRUSTED, port, header + STATS_REQUEST)
            sent()["untrusted"] += 1
            expect(status == 400 and b"PROXY protocol header" in body,
                   f"header from {UNTRUSTED} (not trusted): HTTP {status} {body!r}, expected "
                   f"400 naming the PROXY header")
        # Plain HTTP from there is unaffected.
        status, _ = exchange(UNTRUSTED, port, STATS_REQUEST)
        expect(status == 200, f"plain /api/stats from {UNTRUSTED}: HTTP {status}")

    def counters_match_what_was_sent():
        port = srv().port
        want = sent()
        total = stats(port)
        got = {"headers": total["proxy_headers"], "invalid": total["proxy_header_invalid"],
               "timeouts": total["proxy_header_timeouts"],
               "untrusted": total["proxy_header_untrusted"]}
        expect(got == want, f"/api/stats proxy counters {got}, the test sent {want}")
        srv().stop_and_expect_clean_exit()

    def per_address_limits_apply_to_the_carried_address():
        with support.server(binary, ["--shards", "1", "--proxy-protocol-from", "127.0.0.1/32",
                                     "--max-connections-per-ip", "2"]) as limited:
            port = limited.port
            held = []
            try:
                # Three clients behind the proxy: the proxy's address holds 3 connections,
                # over the limit of 2, and each client has one.
                for client in ("198.51.100.1", "198.51.100.2", "2001:db8:1::1"):
                    s = connect_from(PROXY, port)
                    family = "TCP6" if ":" in client else "TCP4"
                    dst = "::1" if ":" in client else "127.0.0.1"
                    s.sendall(v1(family, client, dst, 5000, port) + upgrade_request())
                    status, _ = read_response(s)
                    expect(status == 101, f"client {client} via the proxy: HTTP {status}")
                    held.append(s)
                # One client, three connections: the third is refused on its address.
                statuses = []
                for _ in range(3):
                    s = connect_from(PROXY, port)
                    s.sendall(v2("PROXY", "203.0.113.50", "127.0.0.1", 5000, port, TLVS) +
                              upgrade_request())
                    status, _ = read_response(s)
                    statuses.append(status)
                    held.append(s)
                expect(statuses == [101, 101, 429],
                       f"three connections carrying 203.0.113.50: {statuses}, expected "
                       f"[101, 101, 429]")
                # The proxy's own address is not limited, nor is anyone else.
                status, _ = exchange(UNTRUSTED, port, STATS_REQUEST)
                expect(status == 200, f"/api/stats from {UNTRUSTED}: HTTP {status}")
                total = json.loads(exchange(UNTRUSTED, port, STATS_REQUEST)[1])["total"]
                expect(total["refused_per_ip_cap"] == 1 and total["proxy_headers"] == 6,
                       f"refused_per_ip_cap {total['refused_per_ip_cap']} (expected 1), "
                       f"proxy_headers {total['proxy_headers']} (expected 6)")
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    lines = [line for line in limited.lines() if "refusing connections" in line]
                    if lines:
                        break
                    time.sleep(0.05)
                expect(lines and "203.0.113.50" in lines[0] and PROXY not in lines[0],
                       f"the refusal's log line should name the carried address: {lines}")
                # A slot freed on the client's address is usable again.
                held.pop(-2).close()
                deadline = time.monotonic() + 5
                while True:
                    s = connect_from(PROXY, port)
                    s.sendall(v1("TCP4", "203.0.113.50", "127.0.0.1", 5001, port) +
                              upgrade_request())
                    status, _ = read_response(s)
                    held.append(s)
                    if status == 101 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                expect(status == 101, f"after one of 203.0.113.50's connections closed: "
                       f"HTTP {status}")
            finally:
                for s in held:
                    s.close()
            limited.stop_and_expect_clean_exit()

    return [
        ("v1 TCP4, TCP6 and UNKNOWN: the carried address decides the API's loopback check",
         v1_headers_carry_the_client),
        ("a websockets client after a v1 and a v2 header: handshake and echo",
         websockets_client_after_v1_and_v2),
        ("v2 PROXY over IPv4 and IPv6 with TLVs, and LOCAL", v2_headers_carry_the_client),
        ("a header sent one byte at a time, the upgrade behind it in the last send",
         header_in_pieces_then_request_in_the_same_send),
        ("a truncated header then silence is closed unanswered at the handshake timeout",
         truncated_header_is_closed_at_the_handshake_timeout),
        ("garbage, an invalid header or none at all from the proxy: closed unanswered",
         garbage_and_missing_headers_from_the_proxy_are_closed_unanswered),
        ("a header from an address not trusted is refused 400",
         untrusted_address_sending_a_header_is_refused),
        ("/api/stats proxy counters equal what was sent", counters_match_what_was_sent),
        ("--max-connections-per-ip 2 counts the carried client, not the proxy",
         per_address_limits_apply_to_the_carried_address),
    ]


if __name__ == "__main__":
    support.require_websockets()
    binary = support.binary_from_argv()
    try:
        sys.exit(support.run_cases(cases(binary), "PROXY protocol v1 and v2",
                                   case_timeout=120))
    finally:
        for srv in SERVERS:
            srv.kill()
