#!/usr/bin/python3
"""Peers that are not on this host: the API without a key answers loopback only, and
per-address limits tell addresses (IPv6: /64 prefixes) apart.

A peer outside 127.0.0.0/8 and ::1 needs an address that is not loopback. The script
re-runs itself in a private network namespace (`unshare -n`, or `unshare -rn` as a user),
where it brings lo up and gives it 10.77.0.1, 2001:db8::1, 2001:db8::2 and
2001:db8:0:1::1: connections from those are as remote, to ringcastd, as any on a real
interface, and nothing outside the namespace sees them. Skips (a failure under CI)
when no namespace can be made (no unshare or ip, user namespaces off).

* No API key, --listen 0.0.0.0: /api/ from 10.77.0.1 → 403 with the reason (counted);
  from 127.0.0.1 → 200; /healthz and /ws still serve 10.77.0.1.
* A dual-stack listener ([::]): 127.0.0.1 (seen as ::ffff:127.0.0.1) and ::1 are loopback,
  2001:db8::1 and 10.77.0.1 are not.
* With RINGCAST_API_KEY: a remote peer with the bearer gets 200, without it 401.
* --max-connections-per-ip 2: 2001:db8::1 and 2001:db8::2 share one /64 and its cap,
  2001:db8:0:1::1 has its own; 10.77.0.1 and 127.0.0.1 are apart.

Usage: edge_remote_peers.py PATH/TO/ringcastd
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

MARK = "RINGCAST_TEST_PRIVATE_NETNS"
REMOTE4 = "10.77.0.1"
REMOTE6 = "2001:db8::1"
SAME_64 = "2001:db8::2"
OTHER_64 = "2001:db8:0:1::1"
KEY = "remote-peer-test-key-0123456789"
# A dual-stack listener prints "listening on :::PORT"; support's pattern wants IPv4.
support.READY_PATTERN = re.compile(rb"listening on \S*?:(\d+) ")


def enter_private_namespace():
    """Re-runs this script in a new network namespace; returns only inside it."""
    if os.environ.get(MARK) == "1":
        return
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        support.skip("needs unshare (util-linux) and ip (iproute2) for a private network "
                     "namespace")
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    probe = subprocess.run([*unshare, "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        support.skip(f"cannot make a network namespace ({' '.join(unshare)}): "
                     f"{probe.stderr.strip()}")
    env = dict(os.environ, **{MARK: "1"})
    r = subprocess.run([*unshare, sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
                       env=env, timeout=170)
    sys.exit(r.returncode)


def set_up_addresses():
    steps = [["ip", "link", "set", "lo", "up"],
             ["ip", "addr", "add", f"{REMOTE4}/32", "dev", "lo"]]
    for a in (REMOTE6, SAME_64, OTHER_64):
        steps.append(["ip", "-6", "addr", "add", f"{a}/128", "dev", "lo", "nodad"])
    for step in steps:
        r = subprocess.run(step, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            support.skip(f"{' '.join(step)} failed in the private namespace: "
                         f"{r.stderr.strip()}")


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def connect(source, destination, port, timeout=5.0):
    """A TCP connection from `source` to `destination`:`port`."""
    s = socket.socket(family_of(source), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((destination, port))
    return s


def exchange(source, destination, port, request, timeout=5.0):
    """Sends `request`, reads one response head and its Content-Length body."""
    with connect(source, destination, port, timeout) as s:
        s.sendall(request)
        deadline = time.monotonic() + timeout
        data = b""
        while True:
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                status_line, _, fields = head.partition(b"\r\n")
                fields = support.parse_header_fields(fields)
                status = int(status_line.split(b" ")[1])
                if status == 101 or len(body) >= int(fields.get("content-length", "0")):
                    return status, body
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                fail(f"no complete response from {destination} to {source} within "
                     f"{timeout}s: {support.short(data)}")
            s.settimeout(remaining)
            more = s.recv(65536)
            if not more:
                fail(f"closed before a complete response: {support.short(data)}")
            data += more


def get(source, destination, port, path, key=None):
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return exchange(source, destination, port,
                    f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())


def upgrade_request():
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def upgrade_from(source, destination, port, held):
    """Upgrades a connection from `source`; keeps it open in `held` if it got 101."""
    s = connect(source, destination, port)
    s.sendall(upgrade_request())
    deadline = time.monotonic() + 5
    data = b""
    while b"\r\n\r\n" not in data:
        expect(time.monotonic() < deadline, f"no upgrade answer for {source}")
        s.settimeout(max(0.01, deadline - time.monotonic()))
        more = s.recv(65536)
        if not more:
            break
        data += more
    status = int(data.split(b" ")[1]) if data else None
    if status == 101:
        held.append(s)
    else:
        s.close()
    return status


def cases(binary):
    def no_key_loopback_only():
        with support.server(binary, ["--listen", "0.0.0.0:0", "--shards", "2"],
                            echo_path=None) as srv:
            status, body = get(REMOTE4, REMOTE4, srv.port, "/api/stats")
            expect(status == 403 and b"loopback" in body,
                   f"GET /api/stats from {REMOTE4} without a key configured: HTTP {status} "
                   f"{body[:200]!r}, expected 403 with the reason")
            send = b'{"userId":"victim","event":"e","data":1}'
            status, body = exchange(
                REMOTE4, REMOTE4, srv.port,
                b"POST /api/send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" %
                (len(send), send))
            expect(status == 403, f"POST /api/send from {REMOTE4}: HTTP {status}")
            status, _ = get(REMOTE4, REMOTE4, srv.port, "/healthz")
            expect(status == 200, f"/healthz from {REMOTE4}: HTTP {status}")
            held = []
            expect(upgrade_from(REMOTE4, REMOTE4, srv.port, held) == 101,
                   f"clients from {REMOTE4} must still connect to /ws")
            for s in held:
                s.close()
            status, body = get("127.0.0.1", "127.0.0.1", srv.port, "/api/stats")
            expect(status == 200, f"GET /api/stats from 127.0.0.1: HTTP {status}")
            total = json.loads(body)["total"]
            expect(total["api_not_loopback"] == 2, f"api_not_loopback counter: {total}")
            expect(any("loopback peers only" in line for line in srv.lines()),
                   f"no start-up line saying the API is loopback-only\n{srv.output()}")
            srv.stop_and_expect_clean_exit()

    def dual_stack_listener():
        with support.server(binary, ["--listen", "[::]:0", "--shards", "1"],
                            echo_path=None) as srv:
            for source, destination, want in (("127.0.0.1", "127.0.0.1", 200),
                                              ("::1", "::1", 200),
                                              (REMOTE6, REMOTE6, 403),
                                              (REMOTE4, REMOTE4, 403)):
                status, body = get(source, destination, srv.port, "/api/stats")
                expect(status == want, f"GET /api/stats from {source} on a [::] listener: "
                       f"HTTP {status} {body[:120]!r}, expected {want}")
            srv.stop_and_expect_clean_exit()

    def key_opens_the_api_to_remote_peers():
        os.environ["RINGCAST_API_KEY"] = KEY
        try:
            srv = support.server(binary, ["--listen", "0.0.0.0:0", "--shards", "2"],
                                 echo_path=None)
        finally:
            del os.environ["RINGCAST_API_KEY"]
        with srv:
            status, _ = get(REMOTE4, REMOTE4, srv.port, "/api/stats")
            expect(status == 401, f"GET /api/stats from {REMOTE4} without the key: {status}")
            status, _ = get(REMOTE4, REMOTE4, srv.port, "/api/stats", key=KEY)
            expect(status == 200, f"GET /api/stats from {REMOTE4} with the key: {status}")
            status, _ = get("127.0.0.1", "127.0.0.1", srv.port, "/api/stats")
            expect(status == 401, f"with a key, loopback needs it too: HTTP {status}")
            srv.stop_and_expect_clean_exit()

    def per_address_groups():
        with support.server(binary, ["--listen", "[::]:0", "--shards", "1",
                                     "--max-connections-per-ip", "2"], echo_path=None) as srv:
            held = []
            try:
                expect(upgrade_from(REMOTE6, REMOTE6, srv.port, held) == 101, REMOTE6)
                expect(upgrade_from(SAME_64, SAME_64, srv.port, held) == 101, SAME_64)
                status = upgrade_from(SAME_64, SAME_64, srv.port, held)
                expect(status == 429, f"a third connection from the /64 of {REMOTE6} and "
                       f"{SAME_64} with --max-connections-per-ip 2: HTTP {status}")
                expect(upgrade_from(OTHER_64, OTHER_64, srv.port, held) == 101,
                       f"{OTHER_64} is another /64 and must connect")
                for _ in range(2):
                    expect(upgrade_from(REMOTE4, REMOTE4, srv.port, held) == 101, REMOTE4)
                expect(upgrade_from(REMOTE4, REMOTE4, srv.port, held) == 429,
                       f"a third connection from {REMOTE4}")
                expect(upgrade_from("127.0.0.1", "127.0.0.1", srv.port, held) == 101,
                       "127.0.0.1 is another address than 10.77.0.1")
            finally:
                for s in held:
                    s.close()
            srv.stop_and_expect_clean_exit()

    return [
        ("no API key: /api/ 403 to 10.77.0.1, 200 to 127.0.0.1; clients unaffected",
         no_key_loopback_only),
        ("dual-stack listener: 127.0.0.1 and ::1 are loopback, 2001:db8::1 and 10.77.0.1 "
         "are not", dual_stack_listener),
        ("with RINGCAST_API_KEY a remote peer needs the bearer, and it is enough",
         key_opens_the_api_to_remote_peers),
        ("per-address limits: one IPv6 /64 shares a cap, other addresses do not",
         per_address_groups),
    ]


if __name__ == "__main__":
    binary = support.binary_from_argv()
    enter_private_namespace()
    set_up_addresses()
    sys.exit(support.run_cases(cases(binary), "peers off loopback (private network "
                               "namespace)", case_timeout=60))
