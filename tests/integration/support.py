"""Shared helpers for the ringcastd integration and conformance scripts.

What lives here:

* `server`      starts the real ringcastd on an ephemeral loopback port, waits (bounded)
                for its "listening on 127.0.0.1:PORT" line, keeps its output for failure
                messages, and stops it with a signal, checking the exit status.
* `raw_ws`      a byte-level WebSocket client over a plain socket: it can send any frame,
                including ones a real client never would (unmasked, reserved bits, bad
                opcodes, oversized control frames), and parses what the server sends back.
* `http_exchange`  sends raw bytes to the HTTP side and parses the response.
* `run_cases`   runs named checks, prints one line per check, exits non-zero on failure.

Every blocking call here takes a timeout; nothing waits forever. Only 127.0.0.1 is used.

Reporting is TAP (meson runs these scripts with `protocol: 'tap'`): `run_cases` prints the
plan `1..N` before the first case, one `ok K - name` / `not ok K - name` per case and
everything else behind `# `, so a script that dies midway is short of its plan and fails.
Two ways out that are not a pass:

* `missing(what)`: something `.ci/install` installs is absent (python3-websockets, the
  ringcastd binary). Always a failure (exit 1): a suite that quietly shrinks on a machine
  without its clients proves nothing.
* `skip(reason)`: this machine cannot run the test at all (no network namespaces, a
  descriptor limit below what the test needs). Prints the TAP skip plan `1..0 # SKIP` and
  exits 0 on a developer's machine; under CI (`$CI` set) it is a failure (exit 1), since
  the CI machine is defined by `.ci/install` and must run everything.
"""

import base64
import hashlib
import inspect
import asyncio
import os
import json
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

LOOPBACK = "127.0.0.1"
READY_PATTERN = re.compile(rb"listening on [0-9.]+:(\d+)")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 6455 §5.2 opcodes.
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class check_failed(AssertionError):
    """A check did not hold; the message says what was expected and what came back."""


def fail(message):
    raise check_failed(message)


def expect(condition, message):
    if not condition:
        raise check_failed(message)


def under_ci():
    """True when `$CI` is set (`.ci/run` sets it): skips become failures."""
    return bool(os.environ.get("CI"))


def missing(what):
    """A dependency `.ci/install` provides is absent: fail, never skip."""
    print(f"Bail out! missing dependency: {what} (run: bash .ci/install)", flush=True)
    sys.exit(1)


def skip(reason):
    """This machine cannot run the test (see the module docstring): a TAP skip outside CI,
    a failure under CI."""
    if under_ci():
        print(f"Bail out! cannot run here, and CI must run every test: {reason}", flush=True)
        sys.exit(1)
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


def require_websockets():
    """Imports Debian's python3-websockets or fails the script (it is always installed)."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        missing("python3 module 'websockets' (apt-get install python3-websockets)")


def binary_from_argv(argv=None):
    """Returns the ringcastd path: argv[1] (how meson calls us) or $RINGCASTD.

    Fails (never skips) when no path is given or the file is not an executable: a test
    that cannot find the server under test has not shown anything.
    """
    argv = sys.argv if argv is None else argv
    path = argv[1] if len(argv) > 1 else os.environ.get("RINGCASTD", "")
    if not path:
        missing("usage: <script> PATH/TO/ringcastd (or set RINGCASTD)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        missing(f"ringcastd binary not found or not executable: {path}")
    return os.path.abspath(path)


def short(data, limit=64):
    """A bounded, printable rendering of bytes for failure messages."""
    if data is None:
        return "None"
    if len(data) <= limit:
        return repr(bytes(data))
    return f"{bytes(data[:limit])!r}... ({len(data)} bytes)"


# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------

class server:
    """One ringcastd process on 127.0.0.1:0 with `--echo /echo` plus `extra_args`
    (`echo_path=None`: no `--echo`).

    Usable as a context manager; leaving the block kills the process if it is still
    running (a check that wants to verify the shutdown path calls `stop()` itself).
    stdout and stderr are drained by threads so the server can never block on a full
    pipe, and the last lines are kept for failure messages.
    """

    def __init__(self, binary, extra_args=(), ready_timeout=10.0, echo_path="/echo"):
        self.binary = binary
        echo = ["--echo", echo_path] if echo_path else []
        self.args = [binary, "--listen", f"{LOOPBACK}:0", *echo, *extra_args]
        self.port = None
        self._lines = []
        self._ready = queue.Queue()
        # In an AddressSanitizer build the quarantine of freed memory (256 MB by default)
        # would swamp RSS checks; a small one keeps them meaningful. No effect otherwise.
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "quarantine_size_mb=8")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, "out", True),
                             daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, "err", False),
                             daemon=True),
        ]
        for t in self._threads:
            t.start()
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def _drain(self, stream, tag, look_for_ready):
        for line in iter(stream.readline, b""):
            if len(self._lines) < 2000:
                self._lines.append(f"[{tag}] " + line.decode("utf-8", "replace").rstrip())
            if look_for_ready and self.port is None:
                m = READY_PATTERN.search(line)
                if m:
                    self._ready.put(int(m.group(1)))
        if look_for_ready:
            self._ready.put(None)

    def _wait_ready(self, timeout):
        try:
            port = self._ready.get(timeout=timeout)
        except queue.Empty:
            fail(f"ringcastd did not print 'listening on ...' within {timeout}s\n"
                 f"command: {' '.join(self.args)}\n{self.output()}")
        if port is None:
            code = self.proc.wait(timeout=5)
            fail(f"ringcastd exited with status {code} before it was ready\n"
                 f"command: {' '.join(self.args)}\n{self.output()}")
        self.port = port

    def lines(self):
        """Every line the server printed so far (up to 2000), tagged [out] / [err]."""
        return list(self._lines)

    def output(self, last=40):
        lines = self._lines[-last:]
        return "server output (last lines):\n  " + "\n  ".join(lines) if lines else \
            "server output: (none)"

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends `sig` and returns the exit status; fails if it has not exited in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"ringcastd did not exit within {timeout}s of {signal.Signals(sig).name}\n"
                 f"{self.output()}")
        for t in self._threads:
            t.join(timeout=2)
        return code

    def stop_and_expect_clean_exit(self, timeout=5.0):
        if not self.alive():
            fail(f"ringcastd died during the run with status {self.proc.returncode}\n"
                 f"{self.output()}")
        code = self.stop(signal.SIGTERM, timeout)
        expect(code == 0, f"ringcastd exited with status {code} after SIGTERM, expected 0\n"
               f"{self.output()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------

def xor_mask(data, key):
    """RFC 6455 §5.3 masking; linear time even for 16 MiB (one big-integer XOR)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """Builds one frame. `rsv` is the 3-bit RSV1..RSV3 value (4 = RSV1, 2 = RSV2, 1 = RSV3).

    Anything may be produced on purpose: unmasked frames, reserved opcodes, control frames
    longer than 125 bytes.
    """
    payload = bytes(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4) if key is None else key
    return head + key + xor_mask(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    return struct.pack("!H", code) + (reason.encode() if isinstance(reason, str) else reason)


class frame:
    __slots__ = ("fin", "rsv", "opcode", "payload", "masked")

    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin, self.rsv, self.opcode, self.payload, self.masked = \
            fin, rsv, opcode, payload, masked

    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def close_reason(self):
        return bytes(self.payload[2:])

    def __repr__(self):
        names = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
        name = names.get(self.opcode, f"op{self.opcode:#x}")
        extra = f" code={self.close_code()}" if self.opcode == OP_CLOSE else ""
        return (f"<{name} fin={int(self.fin)} rsv={self.rsv} masked={int(self.masked)}"
                f"{extra} payload={short(self.payload)}>")


class connection_closed(Exception):
    """The server closed (EOF) or reset the TCP connection while we waited for bytes."""


class timed_out(Exception):
    pass


# --------------------------------------------------------------------------------------
# Raw WebSocket client
# --------------------------------------------------------------------------------------

class raw_ws:
    """A WebSocket client at the byte level. `handshake=False` gives a bare TCP connection
    (for HTTP and handshake-timeout checks)."""

    def __init__(self, port, path="/echo", timeout=5.0, handshake=True, headers=(),
                 handshake_chunk=None):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.response_head = None
        if handshake:
            self.handshake(path, headers, handshake_chunk)

    # -- plumbing ---------------------------------------------------------------------

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        """Sends bytes; a peer that already closed is not an error here (the caller
        finds out when it reads)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_chopped(self, data, chunk=1, pause=0.0):
        """Sends `data` in `chunk`-byte writes (TCP_NODELAY is on, so each write is its own
        segment in practice); `pause` seconds between writes."""
        for i in range(0, len(data), chunk):
            if not self.send(data[i:i + chunk]):
                return False
            if pause:
                time.sleep(pause)
        return True

    def send_frame(self, opcode, payload=b"", **kw):
        return self.send(encode_frame(opcode, payload, **kw))

    def _fill(self, deadline):
        """Reads more bytes into self.buf. Raises timed_out or connection_closed."""
        if self.eof:
            raise connection_closed("connection already closed by the server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise timed_out()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise timed_out()
        except ConnectionResetError:
            self.eof = True
            raise connection_closed("connection reset by the server")
        if not data:
            self.eof = True
            raise connection_closed("server closed the TCP connection")
        self.buf += data

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)

    def recv_frame(self, timeout=None):
        """Returns the next frame from the server. Raises timed_out / connection_closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack_from("!H", self.buf, 2)[0]
            pos = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            pos = 10
        masked = bool(b1 & 0x80)
        key = None
        if masked:
            self._need(pos + 4, deadline)
            key = bytes(self.buf[pos:pos + 4])
            pos += 4
        self._need(pos + n, deadline)
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        if masked:
            payload = xor_mask(payload, key)
        return frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, masked)

    def recv_message(self, timeout=None):
        """Reads data frames up to a complete message; returns (opcode, payload, controls)
        where `controls` lists the control frames that arrived in between. A close frame
        ends the read early and is returned as the opcode (with its payload)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        controls = []
        opcode, parts = None, []
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                return OP_CLOSE, f.payload, controls
            if f.opcode >= 8:
                controls.append(f)
                continue
            if opcode is None:
                if f.opcode == OP_CONT:
                    fail(f"server sent a continuation frame without a message start: {f}")
                opcode = f.opcode
            elif f.opcode != OP_CONT:
                fail(f"server started a new message inside a fragmented one: {f}")
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts), controls

    def read_until_eof(self, timeout=3.0):
        """Raw bytes (after any already buffered) until the server closes or `timeout`
        passes; for HTTP checks that look at the exact byte stream."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except (timed_out, connection_closed):
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def wait_eof(self, timeout=3.0):
        """Waits until the server closes TCP. Returns the frames that arrived before the
        EOF. Raises timed_out if the connection is still open after `timeout`."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except connection_closed:
                return frames

    def handshake(self, path="/echo", headers=(), chunk=None):
        """Sends an upgrade request (in `chunk`-byte writes if given) and checks the 101."""
        key = base64.b64encode(os.urandom(16))
        lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{self.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
                 "Sec-WebSocket-Version: 13", *headers]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if chunk:
            self.send_chopped(request, chunk)
        else:
            self.send(request)
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            try:
                self._fill(deadline)
            except timed_out:
                fail(f"no complete handshake response within {self.timeout}s; got "
                     f"{short(self.buf, 200)}")
            except connection_closed as e:
                fail(f"handshake: {e}; got {short(self.buf, 200)}")
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        self.response_head = head
        status_line, _, rest = head.partition(b"\r\n")
        expect(status_line.startswith(b"HTTP/1.1 101"),
               f"handshake: expected 'HTTP/1.1 101', got {status_line!r}")
        fields = parse_header_fields(rest)
        want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        got = fields.get("sec-websocket-accept")
        expect(got == want, f"handshake: Sec-WebSocket-Accept {got!r}, expected {want!r}")
        expect("websocket" in fields.get("upgrade", "").lower(),
               f"handshake: Upgrade header {fields.get('upgrade')!r}")
        expect("upgrade" in fields.get("connection", "").lower(),
               f"handshake: Connection header {fields.get('connection')!r}")


def parse_header_fields(block):
    fields = {}
    for line in block.split(b"\r\n"):
        if b":" in line:
            name, _, value = line.partition(b":")
            fields[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return fields


# --------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------

class http_response:
    def __init__(self, status, reason, headers, body, raw):
        self.status, self.reason, self.headers, self.body, self.raw = \
            status, reason, headers, body, raw

    def __repr__(self):
        return (f"<HTTP {self.status} {self.reason!r} headers={self.headers} "
                f"body={short(self.body)}>")


def read_http_response(sock, deadline):
    """Reads one HTTP response from `sock` until its head and, by Content-Length, its body
    have arrived (a 101 ends at its head: what follows belongs to the new protocol and is
    returned with it), the server closes or resets, or time.monotonic() passes `deadline`.

    Returns (data, ended): the bytes read, and "complete", "closed" or "timeout".
    """
    data = bytearray()
    head_end = -1
    while True:
        if head_end < 0 and b"\r\n\r\n" in data:
            head_end = data.index(b"\r\n\r\n") + 4
        if head_end >= 0:
            if data.startswith(b"HTTP/1.1 101"):
                return bytes(data), "complete"  # switched protocols: no HTTP body follows
            fields = parse_header_fields(bytes(data[:head_end]))
            length = fields.get("content-length")
            if length is not None and len(data) - head_end >= int(length):
                return bytes(data), "complete"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), "timeout"
        sock.settimeout(remaining)
        try:
            more = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(data), "closed"
        if not more:
            return bytes(data), "closed"
        data += more


def http_exchange(port, request, timeout=5.0, chunk=None):
    """Sends raw request bytes and reads one response (to Content-Length or EOF).

    A reset after the server answered is tolerated: a server that rejects a request may
    close with our bytes unread. Fails if no complete status line arrives in time.
    """
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    try:
        try:
            if chunk:
                for i in range(0, len(request), chunk):
                    sock.sendall(request[i:i + chunk])
            else:
                sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the response (if any) is still in our receive queue
        data, ended = read_http_response(sock, deadline)
        if ended == "timeout" and b"\r\n\r\n" not in data:
            fail(f"no HTTP response within {timeout}s; got {short(data, 200)}")
    finally:
        sock.close()
    if b"\r\n\r\n" not in data:
        fail(f"incomplete HTTP response: {short(data, 200)}")
    head_end = data.index(b"\r\n\r\n") + 4
    status_line, _, rest = bytes(data[:head_end - 4]).partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    expect(len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit(),
           f"malformed status line {status_line!r}")
    fields = parse_header_fields(rest)
    body = bytes(data[head_end:])
    if "content-length" in fields:
        body = body[:int(fields["content-length"])]
    return http_response(int(parts[1]), parts[2].decode("latin-1") if len(parts) > 2 else "",
                         fields, body, bytes(data))


# --------------------------------------------------------------------------------------
# Running checks
# --------------------------------------------------------------------------------------

def tap_comment(text):
    """Prints text as TAP diagnostics: every line behind `# `."""
    for line in str(text).splitlines() or [""]:
        print(f"# {line}", flush=True)


def run_cases(cases, title=None, case_timeout=60.0):
    """Runs (name, fn) pairs in order; fn may be a coroutine function (run with
    asyncio and bounded by `case_timeout`). Prints TAP: the plan `1..N` first, then
    `ok K - name` / `not ok K - name` per case with the failure behind `# `, and returns
    the process exit status (0 all passed, 1 otherwise).

    Besides its own checks, a case fails when a `pubsub_client` it opened received a frame
    the protocol never sends (binary, or text that broke the reader): those are kept in
    `non_text` and would otherwise go unnoticed."""
    cases = list(cases)
    print(f"1..{len(cases)}", flush=True)
    if title:
        tap_comment(title)
    failed = []
    for number, (name, fn) in enumerate(cases, 1):
        started = time.monotonic()
        first_client = len(pubsub_client.opened)
        try:
            if inspect.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), case_timeout))
            else:
                fn()
            strays = [(c.user, c.non_text[:3]) for c in pubsub_client.opened[first_client:]
                      if c.non_text]
            expect(not strays, "pub/sub clients received frames the protocol never sends "
                               f"(user, first frames): {strays}")
            print(f"ok {number} - {name} ({time.monotonic() - started:.2f}s)", flush=True)
        except Exception as e:  # a failed check or any unexpected error fails the case
            failed.append(name)
            if isinstance(e, check_failed):
                detail = str(e)
            elif isinstance(e, asyncio.TimeoutError):
                detail = f"timed out after {case_timeout}s"
            else:
                detail = "".join(traceback.format_exception(e)).rstrip()
            print(f"not ok {number} - {name} ({time.monotonic() - started:.2f}s)", flush=True)
            tap_comment(detail)
        finally:
            del pubsub_client.opened[first_client:]
    tap_comment(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    for name in failed:
        tap_comment(f"  failed: {name}")
    return 0 if not failed else 1


# --------------------------------------------------------------------------------------
# Pub/sub helpers (docs/protocol.md): backend API client, envelope checks, a websockets
# client that routes replies by id. `websockets` is imported lazily so the conformance
# scripts, which use only the raw helpers above, do not need it.
# --------------------------------------------------------------------------------------

ENVELOPE_KEYS = ["id", "event", "channel", "data", "priority", "timestamp", "userId", "offset"]


_asan_builds = {}


def asan_build(binary):
    """True when `binary` was built with AddressSanitizer (.ci/run's asan stage). RSS bounds
    do not hold there: the quarantine keeps up to 256 MB of freed memory resident."""
    if binary not in _asan_builds:
        with open(binary, "rb") as f:
            _asan_builds[binary] = b"__asan_init" in f.read()
    return _asan_builds[binary]


def read_rss_kb(pid):
    """VmRSS of a process in KiB (from /proc/PID/status), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class api_response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        try:
            import json
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<API {self.status} body={short(self.body, 300)}>"


class api_client:
    """The backend API over one keep-alive HTTP/1.1 connection (stdlib http.client).

    `request` takes a JSON-able object, or str/bytes sent as they are (for bad bodies),
    and returns an api_response. `reconnects` counts how often the socket was reopened,
    so a keep-alive check can require it to stay 0.
    """

    def __init__(self, port, api_key=None, timeout=10.0):
        import http.client
        self.port, self.api_key, self.timeout = port, api_key, timeout
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        self.sock_ids = set()
        self.reconnects = -1

    def request(self, method, path, body=None, headers=None, api_key=...):
        import json
        key = self.api_key if api_key is ... else api_key
        hdrs = {}
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            elif not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = "application/json"
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        hdrs.update(headers or {})
        import http.client
        for attempt in (1, 2):
            reused = self.conn.sock is not None
            if self.conn.sock is None:
                self.conn.connect()
            if id(self.conn.sock) not in self.sock_ids:
                self.sock_ids.add(id(self.conn.sock))
                self.reconnects += 1
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection (its keep-alive timeout)
                # before our request reached it: retry once on a new one, as browsers do.
                self.conn.close()
                if attempt == 2 or not reused:
                    raise
            except Exception:
                self.conn.close()
                raise
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.conn.close()
        return api_response(resp.status, headers, data)

    def ok(self, method, path, body=None, what=None):
        """A request that must answer 200 with a JSON body; returns the parsed body."""
        r = self.request(method, path, body)
        expect(r.status == 200 and isinstance(r.json, dict),
               f"{what or method + ' ' + path}: expected 200 + JSON object, got {r} "
               f"(sent {short(body if isinstance(body, bytes) else str(body).encode(), 200)})")
        return r.json

    def publish(self, channel, data, **fields):
        body = {"channel": channel, "data": data, **fields}
        r = self.ok("POST", "/api/publish", body)
        expect(r.get("ok") is True and is_int(r.get("offset")),
               f"POST /api/publish {short(str(body).encode(), 120)}: expected "
               f"{{\"ok\":true,\"offset\":N}}, got {r}")
        return r["offset"]

    def stats(self):
        return self.ok("GET", "/api/stats")

    def close(self):
        self.conn.close()


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def ordered_json(text):
    """Parses JSON keeping object key order (objects become lists of pairs at top level
    only); returns (dict, keys)."""
    import json
    pairs = json.loads(text, object_pairs_hook=lambda p: p)
    if not isinstance(pairs, list) or (pairs and not isinstance(pairs[0], tuple)):
        return None, None
    keys = [k for k, _ in pairs]
    return json.loads(text), keys


_DATA_TAIL = re.compile(r'\s*,\s*"priority"\s*:\s*\d+\s*,\s*"timestamp"\s*:\s*\d+\s*,\s*'
                        r'"userId"\s*:\s*(?:null|"[A-Za-z0-9_.@-]*")\s*,\s*"offset"\s*:\s*\d+'
                        r'\s*\}\s*$')
_DATA_HEAD = re.compile(r'"data"\s*:\s*')


def envelope_data_text(raw):
    """The raw text of `data` inside an envelope frame (fields in contract order: the value
    sits between `"data":` and the fixed-shape priority/timestamp/userId/offset tail)."""
    tail = _DATA_TAIL.search(raw)
    if not tail:
        return None
    # `"data":` is the first occurrence after the channel field; channel and event names
    # cannot contain a quote, so the first "data" key after `"channel":"…",` is the field.
    m = re.match(r'\s*\{\s*"id"\s*:\s*"[^"]*"\s*,\s*"event"\s*:\s*"[^"\\]*"\s*,\s*'
                 r'"channel"\s*:\s*"[^"\\]*"\s*,\s*', raw)
    if not m:
        return None
    head = _DATA_HEAD.match(raw, m.end())
    if not head:
        return None
    return raw[head.end():tail.start()]


def check_envelope(raw, *, channel=None, event=None, priority=None, user_id=...,
                   data_text=None, data=..., after_ms=None, before_ms=None, what="envelope"):
    """Checks one server → client message against the contract and returns it parsed:
    exactly the 8 fields in order, their types, and any expected values given."""
    obj, keys = ordered_json(raw)
    expect(obj is not None, f"{what}: not a JSON object: {short(raw.encode(), 200)}")
    expect(keys == ENVELOPE_KEYS, f"{what}: fields {keys}, expected exactly {ENVELOPE_KEYS} "
           f"in that order; frame {short(raw.encode(), 300)}")
    expect(isinstance(obj["id"], str) and obj["id"], f"{what}: id {obj['id']!r} is not a "
           f"non-empty string")
    expect(isinstance(obj["event"], str), f"{what}: event {obj['event']!r} not a string")
    expect(isinstance(obj["channel"], str), f"{what}: channel {obj['channel']!r}")
    expect(is_int(obj["priority"]) and 1 <= obj["priority"] <= 4,
           f"{what}: priority {obj['priority']!r} is not an integer 1-4")
    expect(is_int(obj["timestamp"]), f"{what}: timestamp {obj['timestamp']!r} not an integer")
    expect(obj["userId"] is None or isinstance(obj["userId"], str),
           f"{what}: userId {obj['userId']!r} is neither null nor a string")
    expect(is_int(obj["offset"]) and obj["offset"] >= 0,
           f"{what}: offset {obj['offset']!r} is not a non-negative integer")
    for name, want in (("channel", channel), ("event", event), ("priority", priority)):
        if want is not None:
            expect(obj[name] == want, f"{what}: {name} {obj[name]!r}, expected {want!r}; "
                   f"frame {short(raw.encode(), 300)}")
    if user_id is not ...:
        expect(obj["userId"] == user_id, f"{what}: userId {obj['userId']!r}, expected "
               f"{user_id!r}; frame {short(raw.encode(), 300)}")
    if data is not ...:
        expect(obj["data"] == data, f"{what}: data {obj['data']!r}, expected {data!r}")
    if data_text is not None:
        got = envelope_data_text(raw)
        expect(got == data_text, f"{what}: data is not byte-identical:\n  sent "
               f"{data_text!r}\n  got  {got!r}\n  frame {raw!r}")
    if after_ms is not None:
        expect(obj["timestamp"] >= after_ms - 2000, f"{what}: timestamp {obj['timestamp']} "
               f"is more than 2 s before the publish ({after_ms})")
    if before_ms is not None:
        expect(obj["timestamp"] <= before_ms + 2000, f"{what}: timestamp {obj['timestamp']} "
               f"is more than 2 s after it was received ({before_ms})")
    return obj


def now_ms():
    return int(time.time() * 1000)


def home_shard(name, shards):
    """The server's pubsub::home_shard: FNV-1a 64 of the name's bytes, modulo the shard
    count (channels, and users for their connection count)."""
    h = 14695981039346656037
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) % (1 << 64)
    return h % shards


def homed_on(shard, shards, make, key=lambda name: name):
    """The first make(i), i = 0, 1, …, whose key hashes to `shard` of `shards`."""
    return next(make(i) for i in range(10000) if home_shard(key(make(i)), shards) == shard)


def upgrade_request(path, headers=()):
    """The bytes of a WebSocket upgrade request for `path` (a fixed key)."""
    lines = [f"GET {path} HTTP/1.1", "Host: ringcast.test", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_url(port, user=None, path="/ws"):
    return f"ws://{LOOPBACK}:{port}{path}" + (f"?user={user}" if user is not None else "")


class pubsub_client:
    """A Python `websockets` client speaking the ringcast client protocol.

    A reader task takes every frame: replies (`"op":"reply"`) go to the future of the
    command with that id (replies with `"id":null` to `null_replies`); everything else is
    a message, kept as (raw text, parsed object, receive time) in `messages`, or handed to
    `on_message(raw)` if given. `closed` is set with (code, reason) when the connection
    ends. Binary frames and frames that break the reader go to `non_text`; `run_cases`
    fails the case that opened a client with anything there (every client is listed in
    `opened` for that). Every wait is bounded.
    """

    opened = []  # every client since the current run_cases case started

    def __init__(self, ws, user=None, on_message=None):
        self.ws, self.user, self.on_message = ws, user, on_message
        self.messages = []
        self.null_replies = []
        self.stray_replies = []
        self._pending = {}
        self._next_id = 1
        self._arrived = asyncio.Event()
        self.close_code = None
        self.close_reason = None
        self.closed = asyncio.Event()
        self.non_text = []
        pubsub_client.opened.append(self)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port, user=None, on_message=None, timeout=10.0, **kw):
        import websockets
        opts = dict(open_timeout=timeout, close_timeout=3, ping_interval=None,
                    max_size=None, max_queue=None, compression=None)
        opts.update(kw)
        ws = await websockets.connect(ws_url(port, user), **opts)
        return cls(ws, user, on_message)

    async def _read(self):
        import json
        from websockets.exceptions import ConnectionClosed
        try:
            async for raw in self.ws:
                if not isinstance(raw, str):
                    self.non_text.append(raw)
                    continue
                if raw.startswith('{"op":"reply"') or '"op":"reply"' in raw[:40]:
                    obj = json.loads(raw)
                    if obj.get("op") == "reply":
                        fut = self._pending.pop(obj.get("id"), None)
                        if fut is not None and not fut.done():
                            fut.set_result((raw, obj))
                        elif obj.get("id") is None:
                            self.null_replies.append((raw, obj))
                        else:
                            self.stray_replies.append((raw, obj))
                        self._arrived.set()
                        continue
                if self.on_message is not None:
                    self.on_message(raw)
                else:
                    self.messages.append((raw, None, time.time()))
                self._arrived.set()
        except ConnectionClosed:
            pass
        except Exception as e:  # a broken frame or JSON: keep it for the failure message
            self.non_text.append(repr(e))
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            sent = getattr(self.ws, "close_sent", None)
            if sent is not None and self.close_code == 1006:
                # We failed the connection ourselves (e.g. invalid UTF-8 from the server):
                # say why instead of a bare 1006.
                self.close_reason = f"client closed it with {sent.code} {sent.reason!r}"
            self.closed.set()
            self._arrived.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(check_failed(
                        f"connection closed ({self.close_code} {self.close_reason!r}) "
                        f"before the reply"))

    def parsed(self, i):
        import json
        raw, obj, t = self.messages[i]
        if obj is None:
            obj = json.loads(raw)
            self.messages[i] = (raw, obj, t)
        return obj

    def send_command(self, op, **fields):
        """Sends a command without waiting; returns (id, future of (raw, reply))."""
        import json
        cid = fields.pop("id", None)
        if cid is None:
            cid = self._next_id
            self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        text = json.dumps({"op": op, **fields, "id": cid}, separators=(",", ":"),
                          ensure_ascii=False)
        return cid, fut, self.ws.send(text)

    async def command(self, op, timeout=10.0, **fields):
        """Sends a command and returns its reply object (any ok value)."""
        cid, fut, sending = self.send_command(op, **fields)
        await sending
        try:
            raw, reply = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            fail(f"user {self.user}: no reply to {op} {fields} (id {cid}) within {timeout}s")
        return reply

    async def command_raw(self, text, cid, timeout=10.0):
        """Sends `text` as it is; waits for the reply with id `cid`."""
        fut = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        await self.ws.send(text)
        try:
            raw, reply = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            fail(f"user {self.user}: no reply to {text!r} within {timeout}s")
        return reply

    async def ok(self, op, timeout=10.0, **fields):
        reply = await self.command(op, timeout, **fields)
        expect(reply.get("ok") is True, f"user {self.user}: {op} {fields} answered {reply}, "
               f"expected ok")
        return reply

    async def subscribe(self, channel, timeout=10.0):
        reply = await self.ok("subscribe", timeout, channel=channel)
        expect(is_int(reply.get("offset")) and isinstance(reply.get("epoch"), str),
               f"subscribe {channel}: reply {reply} lacks integer offset / string epoch")
        return reply

    async def wait_messages(self, n, timeout=10.0, what="messages"):
        """Waits until at least n messages arrived (on_message-less mode)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                fail(f"user {self.user}: {len(self.messages)} of {n} {what} within "
                     f"{timeout}s" + (f"; closed {self.close_code}" if self.closed.is_set()
                                      else ""))
            if self.closed.is_set():
                fail(f"user {self.user}: connection closed ({self.close_code} "
                     f"{self.close_reason!r}) after {len(self.messages)} of {n} {what}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass

    async def wait_closed(self, timeout=5.0):
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            fail(f"user {self.user}: connection still open after {timeout}s")
        return self.close_code, self.close_reason

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            pass
        self._reader.cancel()


async def quiet_for(clients, seconds=0.3):
    """Lets `seconds` pass and then round-trips a ping on each client, so anything the
    server had queued for them before has arrived (a ping reply follows it)."""
    await asyncio.sleep(seconds)
    await asyncio.gather(*(c.ok("ping") for c in clients if not c.closed.is_set()))


# ---- bridges (redis_bridge.py, amqp_bridge.py) ----------------------------------------------

def bridge_row(port, kind):
    """The first row of kind `kind` ("bull", "amqp") in GET /api/stats's "bridges", or None."""
    api = api_client(port)
    try:
        r = api.request("GET", "/api/stats")
        expect(r.status == 200, f"/api/stats: {r.status}")
        rows = [b for b in json.loads(r.body)["bridges"] if b["kind"] == kind]
        return rows[0] if rows else None
    finally:
        api.close()


def wait_bridge(port, kind, check, what, timeout=30.0):
    """Polls bridge_row until `check(row)` holds and returns the row; fails saying the
    bridge never did `what` within `timeout` (a hang guard)."""
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        row = bridge_row(port, kind)
        if row is not None and check(row):
            return row
        time.sleep(0.05)
    fail(f"bridge never {what}: {row}")


async def collect(clients, want, timeout=30.0):
    """Waits until `clients` (pubsub_client connections) hold `want` messages between them,
    or `timeout` passes; the caller checks what arrived."""
    deadline = time.monotonic() + timeout
    while sum(len(c.messages) for c in clients) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
