#!/usr/bin/python3
"""The HTTP side of ringcastd: /healthz, and the error statuses of the upgrade path.

Usage: http_endpoints.py PATH/TO/ringcastd
/healthz is fetched with the stdlib's urllib (a client nobody here wrote); the error cases
need bytes no well-behaved client sends, so they use raw sockets (support.http_exchange).
"""

import base64
import http.client
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

HEAD_LIMIT = 16 * 1024
HANG_S = 30  # only against a hang: reads that end on an event wait at most this long


def upgrade_request(path="/echo", method="GET", version="13", key=True, extra=()):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade"]
    if key:
        lines.append("Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode())
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def expect_status(response, status, what):
    expect(response.status == status,
           f"{what}: expected HTTP {status}, got {response.status} {response.reason!r}\n"
           f"response: {support.short(response.raw, 300)}")


def cases(port):
    def healthz_urllib():
        # No proxies: the environment's http_proxy must not capture a loopback request.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            body = r.read()
            expect(r.status == 200, f"/healthz status {r.status}")
        try:
            doc = json.loads(body)
        except ValueError:
            support.fail(f"/healthz body is not JSON: {support.short(body, 200)}")
        expect(isinstance(doc, dict) and doc.get("status") == "ok",
               f"/healthz JSON lacks \"status\":\"ok\": {body[:200]!r}")

    def healthz_raw():
        r = support.http_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        expect_status(r, 200, "GET /healthz")
        expect(b'"status"' in r.body and b'"ok"' in r.body,
               f"/healthz body {support.short(r.body, 200)}")
        expect("content-length" in r.headers or "transfer-encoding" in r.headers
               or "close" in r.headers.get("connection", "").lower(),
               f"/healthz response has no framing (Content-Length/chunked/close): {r.headers}")

    def healthz_keep_alive():
        # http.client reuses the connection: each response must be framed exactly.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            for i in range(3):
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                body = r.read()
                expect(r.status == 200 and b'"ok"' in body,
                       f"keep-alive request {i + 1}: {r.status} {body[:100]!r}")
        finally:
            conn.close()

    def head_healthz_has_no_body():
        # RFC 9110 §9.3.2: a HEAD response has no content. HAProxy's `option httpchk HEAD`
        # and every keep-alive client read the next response right after the head, so a
        # body would be taken for the next status line. (http.client happens to hide this
        # by discarding its read-ahead buffer, so the check reads the raw stream.)
        # HEAD then GET on one connection: exactly two responses, the first without body.
        with support.raw_ws(port, handshake=False) as c:
            c.send(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                   b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            # The GET says Connection: close: the server's EOF ends the read.
            data = c.read_until_eof(HANG_S)
        expect(data.startswith(b"HTTP/1.1 "), f"no response to HEAD: {data[:200]!r}")
        head_end = data.find(b"\r\n\r\n") + 4
        status = data.split(b" ", 2)[1]
        expect(status in (b"200", b"405", b"501"), f"HEAD /healthz → {status!r}")
        rest = data[head_end:]
        expect(rest.startswith(b"HTTP/1.1 200"),
               f"after the HEAD response's header block the next bytes must be the GET's "
               f"status line, got {rest[:60]!r} (a body was sent for HEAD)\n"
               f"raw: {data[:400]!r}")

    def healthz_one_byte_writes():
        r = support.http_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                                  chunk=1)
        expect_status(r, 200, "GET /healthz sent one byte per write")

    def unknown_path_404():
        r = support.http_exchange(port, b"GET /no-such-path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        expect_status(r, 404, "GET /no-such-path")

    def unknown_path_upgrade_404():
        r = support.http_exchange(port, upgrade_request(path="/not-echo"))
        expect_status(r, 404, "WebSocket upgrade to /not-echo")

    def post_on_ws_path_405():
        r = support.http_exchange(
            port, b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        expect_status(r, 405, "POST /echo")

    def put_upgrade_on_ws_path_405():
        r = support.http_exchange(port, upgrade_request(method="PUT"))
        expect_status(r, 405, "PUT /echo with upgrade headers")

    def missing_version_426():
        r = support.http_exchange(port, upgrade_request(version=None))
        expect_status(r, 426, "upgrade without Sec-WebSocket-Version")
        expect(r.headers.get("sec-websocket-version") == "13",
               f"426 must carry 'Sec-WebSocket-Version: 13', headers were {r.headers}")

    def wrong_version_426():
        r = support.http_exchange(port, upgrade_request(version="8"))
        expect_status(r, 426, "upgrade with Sec-WebSocket-Version: 8")
        expect(r.headers.get("sec-websocket-version") == "13",
               f"426 must carry 'Sec-WebSocket-Version: 13', headers were {r.headers}")

    def garbage_400():
        r = support.http_exchange(port, b"THIS IS NOT HTTP\r\n\r\n")
        expect_status(r, 400, "request line 'THIS IS NOT HTTP'")

    def bad_header_line_400():
        r = support.http_exchange(
            port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n")
        expect_status(r, 400, "header line without a colon")

    def missing_key_400():
        r = support.http_exchange(port, upgrade_request(key=False))
        expect_status(r, 400, "upgrade without Sec-WebSocket-Key (RFC 6455 §4.2.1)")

    def headers_too_large_431():
        filler = [f"X-Filler-{i}: " + "a" * 1000 for i in range(HEAD_LIMIT // 1000 + 2)]
        request = upgrade_request(extra=filler)
        expect(len(request) > HEAD_LIMIT, "test bug: request head is not over the limit")
        r = support.http_exchange(port, request)
        expect_status(r, 431, f"{len(request)}-byte request head")

    def one_huge_header_431():
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + \
            b"b" * (HEAD_LIMIT + 512) + b"\r\n\r\n"
        r = support.http_exchange(port, request)
        expect_status(r, 431, f"one {HEAD_LIMIT + 512}-byte header value")

    def head_just_under_limit_accepted():
        # A head a little under 16 KiB must still be served.
        filler = [f"X-Filler-{i}: " + "a" * 1000 for i in range(14)]
        request = upgrade_request(extra=filler)
        expect(len(request) < HEAD_LIMIT - 256, "test bug: request head is too large")
        r = support.http_exchange(port, request)
        expect_status(r, 101, f"{len(request)}-byte upgrade request head")

    def handshake_one_byte_writes():
        with support.raw_ws(port, handshake_chunk=1) as ws:
            ws.send_frame(support.OP_TEXT, b"split handshake")
            op, payload, _ = ws.recv_message()
            expect(op == support.OP_TEXT and payload == b"split handshake",
                   f"echo after a 1-byte-write handshake: op {op} {support.short(payload)}")

    def frame_in_same_write_as_upgrade():
        # A client may send its first frame right behind the request, in the same segment;
        # those bytes belong to the WebSocket, not to the HTTP parser.
        # The read ends once the head and a frame's worth of bytes are in (not after a fixed
        # time), so a slow server is not mistaken for one that dropped the frame.
        # A second frame sent after that must be echoed next: anything the server sent in
        # between (the first one twice, say) would show up before it.
        frame = support.encode_frame(support.OP_TEXT, b"early bird", mask=False)
        marker = support.encode_frame(support.OP_TEXT, b"marker", mask=False)
        data = bytearray()
        with support.raw_ws(port, handshake=False, timeout=HANG_S) as c:
            c.send(upgrade_request() + support.encode_frame(support.OP_TEXT, b"early bird"))
            deadline = time.monotonic() + HANG_S
            sent_marker = False
            while not (sent_marker and data.endswith(marker)):
                if not sent_marker and b"\r\n\r\n" in data and \
                        len(data) >= data.index(b"\r\n\r\n") + 4 + len(frame):
                    c.send(support.encode_frame(support.OP_TEXT, b"marker"))
                    sent_marker = True
                remaining = deadline - time.monotonic()
                expect(remaining > 0, f"no 101 and both echoes within {HANG_S}s; got "
                       f"{bytes(data[-60:])!r}")
                c.sock.settimeout(remaining)
                try:
                    more = c.sock.recv(65536)
                except TimeoutError:
                    continue
                expect(more, f"the server closed the connection; got {bytes(data[-60:])!r}")
                data += more
        expect(data.startswith(b"HTTP/1.1 101"), f"upgrade answered {bytes(data[:60])!r}")
        expect(data.endswith(b"\r\n\r\n" + frame + marker),
               f"the frame sent with the upgrade request was not echoed right after the "
               f"101 (and nothing else before the next echo): got {bytes(data[-50:])!r}")

    def server_still_serves():
        with support.raw_ws(port) as ws:
            ws.send_frame(support.OP_TEXT, b"after the bad requests")
            op, payload, _ = ws.recv_message()
            expect(op == support.OP_TEXT and payload == b"after the bad requests",
                   f"echo after bad requests: op {op} payload {support.short(payload)}")

    return [
        ("GET /healthz via urllib → 200 with JSON status ok", healthz_urllib),
        ("GET /healthz raw → 200, framed body", healthz_raw),
        ("GET /healthz in 1-byte writes → 200", healthz_one_byte_writes),
        ("3 GET /healthz on one keep-alive connection (http.client) → 200 each",
         healthz_keep_alive),
        ("HEAD /healthz has no body (HEAD then GET on one connection)",
         head_healthz_has_no_body),
        ("GET unknown path → 404", unknown_path_404),
        ("WebSocket upgrade on unknown path → 404", unknown_path_upgrade_404),
        ("POST on the WebSocket path → 405", post_on_ws_path_405),
        ("PUT with upgrade headers on the WebSocket path → 405", put_upgrade_on_ws_path_405),
        ("upgrade without Sec-WebSocket-Version → 426 + Sec-WebSocket-Version: 13",
         missing_version_426),
        ("upgrade with Sec-WebSocket-Version 8 → 426 + Sec-WebSocket-Version: 13",
         wrong_version_426),
        ("garbage request line → 400", garbage_400),
        ("header line without colon → 400", bad_header_line_400),
        ("upgrade without Sec-WebSocket-Key → 400", missing_key_400),
        ("request head over 16 KiB (many headers) → 431", headers_too_large_431),
        ("request head over 16 KiB (one header) → 431", one_huge_header_431),
        ("upgrade with a 14 KiB head → 101", head_just_under_limit_accepted),
        ("upgrade request in 1-byte writes → 101", handshake_one_byte_writes),
        ("upgrade request and first frame in one write → 101 then the echo",
         frame_in_same_write_as_upgrade),
        ("the server still echoes after all the bad requests", server_still_serves),
    ]


def main():
    binary = support.binary_from_argv()
    with support.server(binary) as srv:
        all_cases = cases(srv.port)
        all_cases.append(("server exits 0 on SIGTERM", srv.stop_and_expect_clean_exit))
        return support.run_cases(all_cases, "HTTP endpoints of ringcastd")


if __name__ == "__main__":
    sys.exit(main())
