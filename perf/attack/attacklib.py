"""perf/attack/attacklib.py — what every perf/attack script shares.

* `add_common_args` / `start`   the ringcastd under attack: started with
      --listen 127.0.0.1:0 --shards N --insecure, the script's own flags and every
      `--server-arg`; its port is read from "listening on 127.0.0.1:PORT"; stopped with
      SIGTERM at the end (SIGKILL if it has not exited 10 s later).
* `monitor`   a child process (this file run as `attacklib.py monitor`), so that the
      attacking client's CPU use cannot delay it: it samples VmRSS, VmHWM and utime+stime
      of the server every --sample-ms, sends GET /healthz from --probe-source on a fresh
      connection every --probe-ms with a --probe-timeout-ms deadline, and kills the
      server (SIGKILL) when VmRSS passes --watchdog-mb. It writes one JSON line per sample,
      probe and watchdog event; the parent keeps them and cuts them into phases by
      CLOCK_MONOTONIC time stamps, which both processes share.
* `ws_conn`   a raw asyncio WebSocket client (masked frames built here, any fragmenting,
      any socket option set before connect(), bound to a chosen 127.0.0.x source).
* `http_request` / `http_conn`   plain HTTP/1.1 on a socket (one-shot or keep-alive).
* `report`    prints the summary and one JSON line, applies the --max-... bounds.

Exit codes of every script: 0 the run completed within the bounds given, 1 a bound was
exceeded (the summary names it), 2 the run could not be made (bad arguments, the server
did not start).
"""

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

IP_BIND_ADDRESS_NO_PORT = 24  # <linux/in.h>: pick the port at connect(), not at bind()
READY = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
MB = 1024 * 1024


def die(name, message):
    print(f"perf/attack/{name}: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def now():
    return time.monotonic()


# --------------------------------------------------------------------------------------
# Arguments shared by every script
# --------------------------------------------------------------------------------------

def add_common_args(p, shards=2):
    p.add_argument("ringcastd", help="path to the ringcastd binary under attack")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra flag for ringcastd (repeatable; use --server-arg=--flag "
                        "for values that start with '-')")
    p.add_argument("--shards", type=int, default=shards, help=f"default {shards}")
    p.add_argument("--sample-ms", type=int, default=100,
                   help="RSS/CPU sampling period (default 100)")
    p.add_argument("--probe-ms", type=int, default=500,
                   help="GET /healthz every this many ms (default 500)")
    p.add_argument("--probe-timeout-ms", type=int, default=2000,
                   help="a /healthz without an answer by then counts as failed (default 2000)")
    p.add_argument("--probe-source", default="127.0.0.254",
                   help="source address of the monitoring requests (default 127.0.0.254, "
                        "kept apart from the attack's 127.0.0.x)")
    p.add_argument("--watchdog-mb", type=int, default=6000,
                   help="SIGKILL the server when its RSS passes this (default 6000)")
    p.add_argument("--settle-s", type=float, default=3.0,
                   help="after the clients left, wait this long before the 'after' RSS "
                        "(default 3)")
    p.add_argument("--max-healthz-failed", type=int, default=None, metavar="N",
                   help="exit 1 when more than N /healthz probes failed during the attack")
    p.add_argument("--max-healthz-ms", type=float, default=None, metavar="MS",
                   help="exit 1 when the worst answered /healthz took longer")


def sources(n):
    """127.0.0.1 .. 127.0.0.n (n capped at 250 so the probe's .254 stays apart)."""
    n = max(1, min(250, n))
    return [f"127.0.0.{i}" for i in range(1, n + 1)]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --------------------------------------------------------------------------------------
# The server and its monitor
# --------------------------------------------------------------------------------------

class target:
    """ringcastd under attack plus its monitor process."""

    def __init__(self, name, args, extra=(), insecure=True):
        self.name = name
        self.args = args
        # insecure=False for a server with JWT keys (ringcastd refuses both together).
        self.cmd = [args.ringcastd, "--listen", "127.0.0.1:0", "--shards", str(args.shards),
                    *(["--insecure"] if insecure else []), *extra, *args.server_arg]
        self.lines = []
        try:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            die(name, f"cannot start {args.ringcastd}: {e}")
        self.pid = self.proc.pid
        ready = threading.Event()
        self.port = None

        def drain(stream, tag):
            for line in iter(stream.readline, b""):
                if len(self.lines) < 500:
                    self.lines.append(f"[{tag}] " + line.decode("utf-8", "replace").rstrip())
                if self.port is None:
                    m = READY.search(line)
                    if m:
                        self.port = int(m.group(1))
                        ready.set()
            ready.set()

        for stream, tag in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            threading.Thread(target=drain, args=(stream, tag), daemon=True).start()
        ready.wait(15)
        if self.port is None:
            self.proc.kill()
            die(name, f"ringcastd did not say 'listening on': {' '.join(self.cmd)}\n  "
                + "\n  ".join(self.lines[-10:]))
        self.samples = []   # (t, rss_kb, hwm_kb, cpu_ticks)
        self.probes = []    # (t_start, ok, latency_ms, what)
        self.watchdog = None
        self.marks = {}
        self.mon = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "monitor", "--pid", str(self.pid),
             "--port", str(self.port), "--sample-ms", str(args.sample_ms),
             "--probe-ms", str(args.probe_ms), "--probe-timeout-ms",
             str(args.probe_timeout_ms), "--probe-source", args.probe_source,
             "--watchdog-mb", str(args.watchdog_mb)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        threading.Thread(target=self._read_monitor, daemon=True).start()
        deadline = now() + 5
        while not self.samples and now() < deadline:
            time.sleep(0.02)
        self.mark("start")

    def _read_monitor(self):
        for line in iter(self.mon.stdout.readline, b""):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if "rss" in d:
                self.samples.append((d["t"], d["rss"], d["hwm"], d["cpu"]))
            elif "probe" in d:
                self.probes.append((d["t"], d["ok"], d["ms"], d["probe"]))
            elif "watchdog" in d:
                self.watchdog = d["watchdog"]

    # Phase marks: time stamps on the monitor's clock.
    def mark(self, what):
        self.marks[what] = now()
        return self.marks[what]

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self):
        return read_status(self.pid).get("VmRSS", 0)

    def cpu_ticks(self):
        return read_cpu(self.pid)

    def reset_peak(self):
        """Resets VmHWM (clear_refs 5) so the next peak is this phase's own."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def hwm_kb(self):
        return read_status(self.pid).get("VmHWM", 0)

    def rss_between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def peak_kb(self, t0, t1, hwm_kb=0):
        vals = [s[1] for s in self.rss_between(t0, t1)]
        return max(vals + [hwm_kb]) if vals or hwm_kb else 0

    def probes_between(self, t0, t1):
        return [p for p in self.probes if t0 <= p[0] <= t1]

    def http(self, method, path, body=b"", timeout=5.0, source=None):
        return http_request(self.port, method, path, body, timeout,
                            source or self.args.probe_source)

    def stats(self, timeout=5.0):
        try:
            status, body = self.http("GET", "/api/stats", timeout=timeout)
            return json.loads(body) if status == 200 else None
        except (OSError, ValueError):
            return None

    def wait_connections(self, at_most, timeout):
        """Waits (bounded) until the server counts at most `at_most` connections; returns
        the last count seen (None when /api/stats did not answer)."""
        deadline = now() + timeout
        n = None
        while now() < deadline and self.alive():
            s = self.stats(timeout=min(5.0, max(0.5, deadline - now())))
            if s is not None:
                n = s["total"]["connections"] - 1  # minus the stats request itself
                if n <= at_most:
                    return n
            time.sleep(0.2)
        return n

    def after_rss(self, at_most=0, timeout=20.0):
        """RSS once the clients left: waits for the connection count, then --settle-s."""
        left = self.wait_connections(at_most, timeout)
        time.sleep(self.args.settle_s)
        t = self.mark("after")
        time.sleep(2 * self.args.sample_ms / 1000)
        if not self.alive():
            return None, left
        last = [s[1] for s in self.samples if s[0] >= t]
        return (last[-1] if last else self.rss_kb()), left

    def stop(self):
        code = None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        else:
            code = self.proc.returncode
        if self.mon.poll() is None:
            self.mon.terminate()
            try:
                self.mon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.mon.kill()
                self.mon.wait()
        return code


def read_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def read_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


TICK = os.sysconf("SC_CLK_TCK")


def monitor_main(argv):
    p = argparse.ArgumentParser()
    for flag in ("--pid", "--port", "--sample-ms", "--probe-ms", "--probe-timeout-ms",
                 "--watchdog-mb"):
        p.add_argument(flag, type=int, required=True)
    p.add_argument("--probe-source", required=True)
    a = p.parse_args(argv)
    lock = threading.Lock()

    def emit(d):
        with lock:
            sys.stdout.write(json.dumps(d) + "\n")
            sys.stdout.flush()

    def prober():
        while True:
            t = now()
            try:
                status, body = http_request(a.port, "GET", "/healthz", b"",
                                            a.probe_timeout_ms / 1000, a.probe_source)
                ok = status == 200
                what = f"{status}"
            except socket.timeout:
                ok, what = False, "timeout"
            except OSError as e:
                ok, what = False, type(e).__name__
            ms = (now() - t) * 1000
            emit({"probe": what, "t": t, "ok": ok, "ms": round(ms, 1)})
            time.sleep(max(0.0, a.probe_ms / 1000 - (now() - t)))

    threading.Thread(target=prober, daemon=True).start()
    while True:
        st = read_status(a.pid)
        cpu = read_cpu(a.pid)
        if not st or cpu is None:
            emit({"gone": True, "t": now()})
            time.sleep(a.sample_ms / 1000)
            continue
        rss = st.get("VmRSS", 0)
        emit({"t": now(), "rss": rss, "hwm": st.get("VmHWM", 0), "cpu": cpu})
        if rss > a.watchdog_mb * 1024:
            try:
                os.kill(a.pid, signal.SIGKILL)
            except OSError:
                pass
            emit({"watchdog": rss, "t": now()})
        time.sleep(a.sample_ms / 1000)


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------

def bound_socket(source, port_reuse=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    except OSError:
        pass
    s.bind((source, 0))
    return s


def read_http_response(recv, timeout_at):
    """Reads one response via recv(n) -> bytes; returns (status, body, leftover)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        more = recv()
        if not more:
            raise ConnectionError("closed before the response head")
        buf += more
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        more = recv()
        if not more:
            raise ConnectionError("closed inside the response body")
        rest += more
    return status, rest[:n], rest[n:]


def http_request(port, method, path, body=b"", timeout=5.0, source="127.0.0.1"):
    """One request on a fresh connection (Connection: close); returns (status, body).
    Raises socket.timeout / OSError."""
    deadline = now() + timeout
    s = bound_socket(source)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        if isinstance(body, str):
            body = body.encode()
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)

        def recv():
            left = deadline - now()
            if left <= 0:
                raise socket.timeout("deadline")
            s.settimeout(left)
            return s.recv(65536)

        status, data, _ = read_http_response(recv, deadline)
        return status, data
    finally:
        s.close()


def ws_probe(port, source, timeout):
    """A legitimate client, blocking: upgrade on /ws, subscribe, read the reply. Returns
    (ok, ms, what) where what is 'ok', the HTTP status line, 'timeout' or the error."""
    t0 = now()
    s = bound_socket(source)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                  f"Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"\r\n".encode())
        buf = b""

        def more():
            left = t0 + timeout - now()
            if left <= 0:
                raise socket.timeout()
            s.settimeout(left)
            b = s.recv(65536)
            if not b:
                raise ConnectionResetError("EOF")
            return b

        while b"\r\n\r\n" not in buf:
            buf += more()
        head, _, buf = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            return False, (now() - t0) * 1000, head.split(b"\r\n")[0].decode("latin-1")
        s.sendall(command("subscribe", 7, channel="legit"))
        while b'"op":"reply"' not in buf:
            buf += more()
        ok = b'"ok":true' in buf
        s.sendall(frame(OP_CLOSE, b"\x03\xe8"))
        return ok, (now() - t0) * 1000, "ok" if ok else "refused"
    except socket.timeout:
        return False, (now() - t0) * 1000, "timeout"
    except OSError as e:
        return False, (now() - t0) * 1000, type(e).__name__
    finally:
        s.close()


def peek_state(sock):
    """What became of a connection we never read: 'open', 'close CODE' (a close frame is
    the first thing waiting, or follows other frames in the first 64 KiB), 'eof', or the
    error name. Does not consume anything."""
    try:
        data = sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "open"
    except OSError as e:
        return type(e).__name__
    if not data:
        return "eof"
    i = 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n, j = struct.unpack("!H", data[j:j + 2])[0], j + 2
        elif n == 127:
            n, j = struct.unpack("!Q", data[j:j + 8])[0], j + 8
        if op == OP_CLOSE:
            return f"close {struct.unpack('!H', data[j:j + 2])[0]}" if n >= 2 else "close"
        i = j + n
    return "open (frames waiting)"


class http_conn:
    """A keep-alive HTTP/1.1 connection in asyncio, requests pipelined up to a window."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.buf = b""

    @classmethod
    async def open(cls, port, source="127.0.0.1", timeout=10.0):
        s = bound_socket(source)
        s.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
        except BaseException:
            s.close()
            raise
        r, w = await asyncio.open_connection(sock=s, limit=1 << 22)
        return cls(r, w)

    @staticmethod
    def request_bytes(method, path, body=b""):
        return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def response(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        body = await self.reader.readexactly(int(m.group(1))) if m else b""
        return status, body

    def close(self):
        try:
            self.writer.transport.abort()
        except Exception:
            pass


# --------------------------------------------------------------------------------------
# WebSocket (client side, raw)
# --------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def mask(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True):
    """One client frame: masked with a fresh random key, as RFC 6455 §5.3 requires."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + mask(payload, key)


def command(op, cid, **fields):
    return frame(OP_TEXT, json.dumps({"op": op, **fields, "id": cid}, separators=(",", ":")))


class ws_closed(Exception):
    pass


class ws_conn:
    """One raw client connection. `frames()` yields (opcode, payload) of whole messages
    (server frames are never fragmented by ringcastd, but continuation is handled);
    a close frame ends it with `close_code` set; EOF/reset leaves close_code None and sets
    `ended` to 'eof' or the exception's name."""

    def __init__(self, reader, writer, sock):
        self.reader, self.writer, self.sock = reader, writer, sock
        self.close_code = None
        self.ended = None
        self.pongs = 0

    @classmethod
    async def open(cls, port, source="127.0.0.1", path="/ws", user=None, rcvbuf=None,
                   timeout=10.0, extra_headers=""):
        s = bound_socket(source)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
            r, w = await asyncio.open_connection(sock=s, limit=1 << 16)
        except BaseException:
            s.close()
            raise
        c = cls(r, w, s)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            q = f"?user={user}" if user is not None else ""
            w.write(f"GET {path}{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n{extra_headers}\r\n".encode())
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        except BaseException:
            c.abort()
            raise
        if not head.startswith(b"HTTP/1.1 101"):
            c.abort()
            raise ConnectionRefusedError(head.split(b"\r\n", 1)[0].decode("latin-1"))
        c.head = head  # the 101's head (Sec-WebSocket-Extensions, ...)
        return c

    def send(self, data):
        self.writer.write(data)

    async def drain(self):
        await self.writer.drain()

    async def read_frame(self):
        h = await self.reader.readexactly(2)
        fin, op, n = h[0] & 0x80, h[0] & 0x0F, h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        if h[1] & 0x80:
            key = await self.reader.readexactly(4)
            return fin, op, mask(await self.reader.readexactly(n), key)
        return fin, op, await self.reader.readexactly(n)

    async def messages(self, answer_pings=True):
        """Async generator of (opcode, payload); ends on close/EOF (see close_code/ended)."""
        parts, first = [], None
        try:
            while True:
                fin, op, data = await self.read_frame()
                if op == OP_CLOSE:
                    self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 \
                        else 1005
                    self.ended = "close"
                    return
                if op == OP_PING:
                    if answer_pings:
                        self.send(frame(OP_PONG, data))
                    continue
                if op == OP_PONG:
                    self.pongs += 1
                    continue
                if op != OP_CONT:
                    first, parts = op, []
                parts.append(data)
                if fin:
                    yield first, b"".join(parts)
                    parts = []
        except asyncio.IncompleteReadError:
            self.ended = "eof"
        except (ConnectionError, OSError) as e:
            self.ended = type(e).__name__

    def set_linger0(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def abort(self):
        try:
            self.writer.transport.abort()
        except Exception:
            pass

    def closed_as(self):
        """'close CODE', 'eof', 'ConnectionResetError', ... or 'open'."""
        if self.close_code is not None:
            return f"close {self.close_code}"
        return self.ended or "open"


async def open_raw(port, source="127.0.0.1", path="/ws", rcvbuf=None, timeout=10.0,
                   linger0=False, extra_headers=""):
    """A WebSocket upgrade on a bare non-blocking socket, for clients that must not read
    anything after it (no StreamReader reading ahead): returns the socket once 101 came."""
    s = bound_socket(source)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if linger0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async def handshake():
            await loop.sock_connect(s, ("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            await loop.sock_sendall(s, (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra_headers}\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                more = await loop.sock_recv(s, 1)  # byte by byte: not one byte past the head
                if not more:
                    raise ConnectionResetError("closed during the handshake")
                head += more
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionRefusedError(head.split(b"\r\n", 1)[0].decode("latin-1"))

        await asyncio.wait_for(handshake(), timeout)
    except BaseException:
        s.close()
        raise
    return s


async def open_many(n, opener, concurrency=256, deadline=None):
    """Opens n connections via `opener(i)` with at most `concurrency` in flight; returns
    (list of connections or None, {failure: count})."""
    sem = asyncio.Semaphore(concurrency)
    out = [None] * n
    fails = {}

    async def one(i):
        async with sem:
            if deadline is not None and now() > deadline:
                fails["not tried (time)"] = fails.get("not tried (time)", 0) + 1
                return
            try:
                out[i] = await opener(i)
            except asyncio.TimeoutError:
                fails["timeout"] = fails.get("timeout", 0) + 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                k = str(e) if isinstance(e, ConnectionRefusedError) and str(e).startswith(
                    "HTTP") else type(e).__name__
                fails[k] = fails.get(k, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return out, fails


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------

def healthz_figures(t, t0, t1):
    probes = t.probes_between(t0, t1)
    ok = [p for p in probes if p[1]]
    bad = [p for p in probes if not p[1]]
    kinds = {}
    for p in bad:
        kinds[p[3]] = kinds.get(p[3], 0) + 1
    return {"healthz_answered": len(ok), "healthz_failed": len(bad),
            "healthz_failed_by": kinds,
            "healthz_worst_ms": round(max((p[2] for p in ok), default=0.0), 1),
            "healthz_p50_ms": round(sorted(p[2] for p in ok)[len(ok) // 2], 1) if ok else None}


def mb(kb):
    return round(kb / 1024, 1) if kb is not None else None


class report:
    """Collects figures and bound checks; `finish()` prints and exits."""

    def __init__(self, name, t):
        self.name, self.t = name, t
        self.fig = {"attack": name, "server": " ".join(t.cmd[:1]),
                    "server_args": t.cmd[1:], "host_load_1m": round(os.getloadavg()[0], 1)}
        self.lines = []
        self.exceeded = []

    def line(self, text):
        self.lines.append(text)

    def add(self, **kw):
        self.fig.update(kw)

    def bound(self, flag, value, limit, unit=""):
        """Records a --max-... check (skipped when the flag was not given)."""
        if limit is None:
            return
        if value is None or value > limit:
            self.exceeded.append(f"{flag} {limit}{unit}: measured {value}{unit}")

    def standard(self, t0, t1, after_kb=None):
        """The figures every script prints: RSS at start, peak (t0..t1), after, and /healthz
        (t0 until the clients left)."""
        t = self.t
        start = [s[1] for s in t.samples if s[0] <= t.marks["start"]]
        start_kb = start[-1] if start else (t.samples[0][1] if t.samples else 0)
        peak_kb = t.peak_kb(t0, t1)
        if t.watchdog:
            peak_kb = max(peak_kb, t.watchdog)
        self.add(rss_start_mb=mb(start_kb), rss_peak_mb=mb(peak_kb),
                 rss_peak_growth_mb=mb(peak_kb - start_kb))
        if t.alive() or after_kb is not None:
            self.add(rss_after_mb=mb(after_kb),
                     rss_after_growth_mb=mb(after_kb - start_kb) if after_kb is not None
                     else None)
        hz = healthz_figures(t, t0, t.marks.get("left", t1))
        self.add(**hz)
        self.add(watchdog_killed=bool(t.watchdog), server_alive=t.alive())
        self.line(f"RSS start {mb(start_kb)} MB, peak {mb(peak_kb)} MB "
                  f"(+{mb(peak_kb - start_kb)} MB)"
                  + (f", after the clients left {mb(after_kb)} MB "
                     f"({mb(after_kb - start_kb):+} MB)" if after_kb is not None else ""))
        if t.watchdog:
            self.line(f"WATCHDOG: RSS passed {t.args.watchdog_mb} MB "
                      f"({mb(t.watchdog)} MB); the server was killed")
            self.exceeded.append(f"--watchdog-mb {t.args.watchdog_mb} MB: measured "
                                 f"{mb(t.watchdog)} MB, server killed")
        elif not t.alive():
            self.line(f"the server DIED (exit status {t.proc.returncode})")
            self.exceeded.append(f"server alive: it exited with {t.proc.returncode}")
        self.line(f"/healthz during the attack: {hz['healthz_answered']} answered, "
                  f"{hz['healthz_failed']} failed {hz['healthz_failed_by'] or ''}, "
                  f"worst answered {hz['healthz_worst_ms']} ms, p50 {hz['healthz_p50_ms']} ms")
        self.bound("--max-healthz-failed", hz["healthz_failed"], t.args.max_healthz_failed)
        self.bound("--max-healthz-ms", hz["healthz_worst_ms"], t.args.max_healthz_ms, " ms")
        return start_kb, peak_kb

    def finish(self):
        code = self.t.stop()
        self.add(server_exit=code, exceeded=self.exceeded)
        print(f"perf/attack/{self.name}: {' '.join(self.t.cmd)}")
        for l in self.lines:
            print("  " + l)
        for e in self.exceeded:
            print(f"  EXCEEDED {e}")
        print(json.dumps(self.fig, separators=(",", ":")), flush=True)
        sys.exit(1 if self.exceeded else 0)


def run(coro):
    """asyncio.run with the fd limit raised first."""
    raise_nofile()
    return asyncio.run(coro)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "monitor":
    monitor_main(sys.argv[2:])
