"""Case model, strict verdicts and the table report for the conformance suite.

A case is an id ("5.19"), a sentence, and a function that drives one fresh connection
through a `session`. The session sends exact bytes and checks exact answers:

* valid traffic must come back as the exact echo (same opcode, same bytes), with nothing
  unsolicited in between;
* a protocol violation must be answered by a close frame with exactly the expected code,
  nothing after the violation may be echoed, and the server must then close TCP (after
  our close reply or on its own);
* every valid case ends with a client close that the server must echo (same code) before
  closing TCP.

Like Autobahn, a case may return NON_STRICT: behaviour that is allowed but not the best one
(for example a UTF-8 error inside a single frame found only when the frame is complete).
It counts as passed and is listed separately.

Every wait is bounded by the case's deadline; a case never hangs the run.
"""

import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import support  # noqa: E402  (tests/integration/support.py: frames, raw socket client)
from support import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402,F401
                     check_failed, close_payload, encode_frame, expect, fail)

OK, NON_STRICT, FAILED = "OK", "NON-STRICT", "FAILED"
DEFAULT_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 3.0  # contract: the server drops TCP ~2 s after its close at the latest


class case:
    def __init__(self, id, description, fn, timeout=DEFAULT_TIMEOUT_S):
        self.id, self.description, self.fn, self.timeout = id, description, fn, timeout


def hexdump(data, limit=48):
    data = bytes(data)
    text = data[:limit].hex(" ")
    return text + (f" ... ({len(data)} bytes)" if len(data) > limit else f" ({len(data)} bytes)")


def describe_wire(data, limit=6):
    """Our own client bytes as readable frames (unmasked payloads), for failure logs; a
    partial frame at the end is shown as hex."""
    data = bytes(data)
    out, pos = [], 0
    while pos < len(data) and len(out) < limit:
        if len(data) - pos < 2:
            break
        b0, b1 = data[pos], data[pos + 1]
        n, at = b1 & 0x7F, pos + 2
        if n == 126:
            n, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif n == 127:
            n, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        key = data[at:at + 4] if b1 & 0x80 else None
        at += 4 if key else 0
        if at + n > len(data):
            break
        body = data[at:at + n]
        if key:
            body = support.xor_mask(body, key)
        out.append(repr(support.frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, body,
                                      bool(key))))
        pos = at + n
    if pos < len(data):
        rest = len(data) - pos
        out.append(f"+{rest} more bytes" if len(out) >= limit else
                   f"partial frame {hexdump(data[pos:], 24)}")
    return ", ".join(out)


class session:
    """One connection in one case. Keeps a log of what was sent and received so a failure
    can be reproduced byte for byte."""

    def __init__(self, ws, timeout):
        self.ws = ws
        self.deadline = time.monotonic() + timeout
        self.log = []
        self._sender = None
        self._sender_error = None

    # -- time -------------------------------------------------------------------------

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise support.timed_out()
        return left

    # -- sending ----------------------------------------------------------------------

    def send(self, data, note=""):
        self.log.append(f"sent {note + ': ' if note else ''}{describe_wire(data)}"
                        f"\n    wire: {hexdump(data, 32)}")
        self.ws.sock.settimeout(self.remaining())
        return self.ws.send(data)

    def send_frame(self, opcode, payload=b"", **kw):
        return self.send(encode_frame(opcode, payload, **kw))

    def send_chopped(self, data, chunk=1, pause=0.0):
        """Sends `data` in `chunk`-byte writes with `pause` seconds between them."""
        self.log.append(f"sent in {chunk}-byte writes (pause {pause}s): {describe_wire(data)}")
        for i in range(0, len(data), chunk):
            self.ws.sock.settimeout(self.remaining())
            if not self.ws.send(data[i:i + chunk]):
                return False
            if pause:
                time.sleep(pause)
        return True

    def send_in_background(self, data, note=""):
        """Sends `data` from a thread so we can read echoes while a large or pipelined
        send is still in progress (neither side's socket buffers can deadlock us)."""
        self.log.append(f"sent (background) {note + ': ' if note else ''}"
                        f"{describe_wire(data)}")

        def run():
            try:
                self.ws.sock.sendall(data)
            except OSError as e:
                self._sender_error = e

        self.ws.sock.settimeout(self.remaining())
        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def join_sender(self):
        if self._sender is not None:
            self._sender.join(timeout=self.remaining())
            expect(not self._sender.is_alive(), "background send did not finish in time")
            expect(self._sender_error is None, f"background send failed: {self._sender_error}")
            self._sender = None

    def pause(self, seconds):
        time.sleep(min(seconds, self.remaining()))

    # -- receiving --------------------------------------------------------------------

    def next_frame(self, waiting_for, timeout=None):
        limit = self.remaining() if timeout is None else min(timeout, self.remaining())
        try:
            f = self.ws.recv_frame(limit)
        except support.timed_out:
            fail(f"waited {limit:.1f}s for {waiting_for}; nothing came")
        except support.connection_closed as e:
            fail(f"waiting for {waiting_for}: {e}")
        self.log.append(f"recv {f}")
        if f.masked:
            fail(f"server frame is masked (RFC 6455 §5.1 forbids it): {f}")
        return f

    def expect_message(self, opcode, payload, what="the echo"):
        """The next frames must form exactly this data message (the server may fragment
        it); any control frame or other data in between fails the case."""
        payload = bytes(payload)
        first = self.next_frame(f"{what} ({'text' if opcode == OP_TEXT else 'binary'}, "
                                f"{len(payload)} bytes)")
        if first.opcode != opcode:
            fail(f"expected {what}: opcode {opcode:#x} with {len(payload)} bytes, got {first}")
        expect(first.rsv == 0, f"server set RSV bits without an extension: {first}")
        parts, got_len = [first.payload], len(first.payload)
        f = first
        while not f.fin:
            f = self.next_frame(f"the continuation of {what}")
            expect(f.opcode == OP_CONT,
                   f"inside a fragmented echo the server sent {f}, expected a continuation")
            parts.append(f.payload)
            got_len += len(f.payload)
            expect(got_len <= len(payload), f"echo longer than the {len(payload)} bytes sent")
        got = b"".join(parts)
        if got != payload:
            at = next((i for i in range(min(len(got), len(payload))) if got[i] != payload[i]),
                      min(len(got), len(payload)))
            fail(f"{what} differs: sent {len(payload)} bytes, got {len(got)}; first difference "
                 f"at offset {at}: sent {hexdump(payload[at:at + 16])}, got "
                 f"{hexdump(got[at:at + 16])}")

    def expect_pong(self, payload):
        f = self.next_frame(f"a pong with {len(payload)} bytes")
        if f.opcode != OP_PONG:
            fail(f"expected a pong with payload {hexdump(payload)}, got {f}")
        expect(f.fin and f.rsv == 0, f"malformed pong: {f}")
        expect(f.payload == bytes(payload),
               f"pong payload {hexdump(f.payload)} != ping payload {hexdump(payload)}")

    def expect_nothing(self, seconds=0.3):
        """Nothing may arrive (and the connection must stay open) for `seconds`."""
        try:
            f = self.ws.recv_frame(min(seconds, self.remaining()))
        except support.timed_out:
            return
        except support.connection_closed as e:
            fail(f"expected nothing back, but {e}")
        self.log.append(f"recv {f}")
        fail(f"expected nothing back, got {f}")

    def expect_tcp_close(self, after):
        try:
            frames = self.ws.wait_eof(min(CLOSE_WAIT_S, self.remaining()))
        except support.timed_out:
            fail(f"server kept TCP open {CLOSE_WAIT_S}s after {after}")
        for f in frames:
            self.log.append(f"recv {f}")
        expect(not frames, f"server sent frames after {after}: {frames}")

    def poll_frame(self, seconds):
        """The next frame if one arrives within `seconds`, else None."""
        try:
            f = self.ws.recv_frame(min(seconds, self.remaining()))
        except support.timed_out:
            return None
        except support.connection_closed as e:
            fail(f"connection ended without a close frame: {e}")
        self.log.append(f"recv {f}")
        return f

    def expect_failure(self, code, also=(), received=None, reply=True):
        """A protocol violation was sent: the very next frame (`received` if the caller
        already read it) must be a close with `code` (or one of `also` where the RFC leaves
        a choice), then TCP must close: after our close reply, or with `reply=False` on
        the server's own close timeout (~2 s)."""
        codes = (code, *also)
        want = " or ".join(str(c) for c in codes)
        f = received or self.next_frame(f"a close frame with code {want}")
        if f.opcode != OP_CLOSE:
            fail(f"expected close {want} after the violation, got {f} (the server kept "
                 f"processing)")
        got = f.close_code()
        expect(got in codes, f"expected close {want}, got close "
               f"{got if got is not None else '(no code)'} reason {f.close_reason()!r}")
        try:
            f.close_reason().decode("utf-8")
        except UnicodeDecodeError:
            fail(f"server close reason is not UTF-8: {f.close_reason()!r}")
        if not reply:
            try:
                frames = self.ws.wait_eof(min(CLOSE_WAIT_S + 2.0, self.remaining()))
            except support.timed_out:
                fail(f"server kept TCP open {CLOSE_WAIT_S + 2.0}s after its close {got} that "
                     f"we never answered")
            expect(not frames, f"server sent frames after its close: {frames}")
            return
        self.send_frame(OP_CLOSE, close_payload(got))
        self.expect_tcp_close(f"its close {got} and our reply")

    def close_normally(self, code=1000, reason=b""):
        """Ends a valid case: our close must be echoed with the same code, then EOF."""
        self.send_frame(OP_CLOSE, close_payload(code, reason))
        f = self.next_frame(f"the close reply to our close {code}")
        if f.opcode != OP_CLOSE:
            fail(f"expected the close reply {code}, got {f}")
        if code is None:
            expect(f.close_code() in (None, 1000),
                   f"empty close answered with code {f.close_code()}, expected empty or 1000")
        else:
            expect(f.close_code() == code,
                   f"close {code} answered with {f.close_code()} {f.close_reason()!r}")
        self.expect_tcp_close("the close handshake")


# --------------------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------------------

class runner:
    """Runs cases one connection each against `srv` (restarting it if it dies, so one
    crash does not hide the rest), prints TAP (plan first, one `ok`/`not ok` line per case
    carrying its verdict, time and description, details behind `# `) and returns an exit
    status. OK and NON-STRICT verdicts are `ok`; FAILED is `not ok`."""

    def __init__(self, srv_factory, budget_s):
        self.srv_factory = srv_factory
        self.srv = srv_factory()
        self.deadline = time.monotonic() + budget_s
        self.results = []

    def run(self, cases):
        print(f"1..{len(cases)}", flush=True)
        for c in cases:
            self._run_one(c)
        return self._summary()

    def _run_one(self, c):
        if time.monotonic() + c.timeout > self.deadline:
            self._report(c, FAILED, 0.0, "not run: the suite's time budget is used up")
            return
        started = time.monotonic()
        verdict, detail, s = OK, "", None
        try:
            ws = support.raw_ws(self.srv.port, timeout=min(c.timeout, 5.0))
        except Exception as e:
            verdict, detail = FAILED, f"could not connect/handshake: {e}"
        else:
            with ws:
                s = session(ws, c.timeout)
                try:
                    verdict = c.fn(s) or OK
                except check_failed as e:
                    verdict, detail = FAILED, str(e)
                except support.timed_out:
                    verdict, detail = FAILED, f"case timed out after {c.timeout}s"
                except OSError as e:
                    verdict, detail = FAILED, f"socket error: {e!r}"
                except Exception:
                    verdict, detail = FAILED, traceback.format_exc().rstrip()
        elapsed = time.monotonic() - started
        if not self.srv.alive():
            verdict = FAILED
            detail += (f"\nringcastd DIED (status {self.srv.proc.returncode}) during this case\n"
                       f"{self.srv.output()}\nrestarting it for the remaining cases")
            self.srv = self.srv_factory()
        if verdict == FAILED and s is not None and s.log:
            shown = s.log[:40] + ([f"... {len(s.log) - 40} more"] if len(s.log) > 40 else [])
            detail += "\nexchange:\n  " + "\n  ".join(shown)
        self._report(c, verdict, elapsed, detail)

    def _report(self, c, verdict, elapsed, detail):
        self.results.append((c.id, verdict))
        status = "not ok" if verdict == FAILED else "ok"
        print(f"{status} {len(self.results)} - {c.id} {verdict} {elapsed * 1000:.1f} ms: "
              f"{c.description}", flush=True)
        if detail and verdict != OK:
            support.tap_comment(detail)

    def _summary(self):
        counts = {OK: 0, NON_STRICT: 0, FAILED: 0}
        for _, v in self.results:
            counts[v] += 1
        failed = [i for i, v in self.results if v == FAILED]
        if failed:
            support.tap_comment("failed cases: " + " ".join(failed))
        support.tap_comment(f"{counts[OK] + counts[NON_STRICT]} passed, {counts[FAILED]} failed "
                            f"({counts[OK]} OK, {counts[NON_STRICT]} NON-STRICT, "
                            f"{counts[FAILED]} FAILED, {len(self.results)} cases)")
        return 1 if failed else 0

    def stop(self):
        if self.srv.alive():
            code = self.srv.stop()
            if code != 0:
                support.tap_comment(f"ringcastd exited with status {code} after SIGTERM\n"
                                    f"{self.srv.output()}")
                return 1
        return 0
