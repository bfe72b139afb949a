"""Section 7, close handling (RFC 6455 §5.5.1, §7.4): the server echoes a valid close code,
rejects invalid codes and malformed close payloads, processes nothing after a close, and
closes TCP after the close handshake.

Where the server must end TCP on its own (7.3.8, 7.3.9) the bound is derived from its close
timeout (--close-timeout-ms, run.py leaves the default): CLOSE_FACTOR times it plus a floor,
not a fixed number of seconds; the case's own deadline is only against a hang."""

import time

from harness import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, case, close_payload, \
    encode_frame, expect, fail, support

CLOSE_TIMEOUT_S = 2.0  # ringcastd's default --close-timeout-ms (run.py does not set it)
CLOSE_FACTOR = 3
CLOSE_FLOOR_S = 1.5
CLOSE_BOUND_S = CLOSE_FACTOR * CLOSE_TIMEOUT_S + CLOSE_FLOOR_S
HANG_S = 15  # the deadline of the cases that wait for the server's own TCP close

VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999)
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def expect_close_reply(s, code):
    f = s.next_frame(f"the close reply ({code})")
    if f.opcode != OP_CLOSE:
        fail(f"expected the close reply, got {f} (data after the close was processed?)")
    if code is None:
        expect(f.close_code() in (None, 1000), f"empty close answered with {f.close_code()}")
    else:
        expect(f.close_code() == code, f"close {code} answered with {f.close_code()}")


def text_then_close(s):
    s.send(encode_frame(OP_TEXT, b"Hello World!"))
    s.expect_message(OP_TEXT, b"Hello World!")
    s.close_normally(1000)


def close_then(extra):
    # Anything after our close must be ignored: one close reply, then EOF.
    def run(s):
        s.send(encode_frame(OP_CLOSE, close_payload(1000)) + extra)
        expect_close_reply(s, 1000)
        s.expect_tcp_close("the close handshake (data sent after our close must be dropped)")
    return run


def fragment_close_fragment(s):
    s.send(encode_frame(OP_TEXT, b"fragment1", fin=False)
           + encode_frame(OP_CLOSE, close_payload(1000))
           + encode_frame(OP_CONT, b"fragment2"))
    expect_close_reply(s, 1000)
    s.expect_tcp_close("the close handshake")


def big_text_close_ping(s):
    payload = b"*" * 262144
    s.send_in_background(encode_frame(OP_TEXT, payload)
                         + encode_frame(OP_CLOSE, close_payload(1000))
                         + encode_frame(OP_PING, b""))
    s.expect_message(OP_TEXT, payload, "the echo of the 256 KiB message sent before the close")
    s.join_sender()
    expect_close_reply(s, 1000)
    s.expect_tcp_close("the close handshake (the ping after the close must not be answered)")


def close_with(payload, reply):
    def run(s):
        s.send(encode_frame(OP_CLOSE, payload))
        if reply == "fail1002":
            s.expect_failure(1002)
        elif reply == "fail1007":
            s.expect_failure(1007)
        else:
            expect_close_reply(s, reply)
            s.expect_tcp_close("the close handshake")
    return run


def close_chopped(s):
    s.send_chopped(encode_frame(OP_CLOSE, close_payload(3000, "chopped")), 1)
    expect_close_reply(s, 3000)
    s.expect_tcp_close("the close handshake")


def wait_own_tcp_close(s, after):
    """Waits (until the case's deadline) for the server to end TCP by itself; it must do so
    within CLOSE_BOUND_S of `after`. Returns the frames that came before the EOF."""
    started = time.monotonic()
    try:
        frames = s.ws.wait_eof(s.remaining())
    except support.timed_out:
        fail(f"server kept TCP open {time.monotonic() - started:.1f}s after {after}")
    for f in frames:
        s.log.append(f"recv {f}")
    elapsed = time.monotonic() - started
    expect(elapsed <= CLOSE_BOUND_S,
           f"server ended TCP {elapsed:.2f}s after {after}, later than {CLOSE_BOUND_S:.1f}s "
           f"({CLOSE_FACTOR} x its {CLOSE_TIMEOUT_S:.0f} s close timeout + {CLOSE_FLOOR_S} s)")
    return frames


def close_without_reply(s):
    # We send our close and never read: the server must still end TCP by itself.
    s.send(encode_frame(OP_CLOSE, close_payload(1000)))
    frames = wait_own_tcp_close(s, "our close")
    expect(len(frames) == 1 and frames[0].opcode == OP_CLOSE,
           f"expected exactly one close reply before EOF, got {frames}")


def violation_never_answered(s):
    # The server fails the connection; we neither answer nor close: it must drop TCP on its
    # own close timeout rather than hold the slot forever.
    s.send(encode_frame(0x3, b""))
    f = s.next_frame("a close frame with code 1002")
    expect(f.opcode == OP_CLOSE and f.close_code() == 1002,
           f"expected close 1002 after the violation, got {f}")
    frames = wait_own_tcp_close(s, "its close 1002, which we never answered")
    expect(not frames, f"server sent frames after its close: {frames}")


def cases():
    result = [
        case("7.1.1", "text echo, then close 1000 → close 1000, EOF", text_then_close),
        case("7.1.2", "two closes in a row → one reply, EOF",
             close_then(encode_frame(OP_CLOSE, close_payload(1000)))),
        case("7.1.3", "close then ping → no pong", close_then(encode_frame(OP_PING, b"after"))),
        case("7.1.4", "close then text → no echo",
             close_then(encode_frame(OP_TEXT, b"not echoed"))),
        case("7.1.5", "fragment, close, fragment → close reply only", fragment_close_fragment),
        case("7.1.6", "256 KiB text, close, ping at once → echo, close reply, no pong",
             big_text_close_ping, timeout=10),
        case("7.1.7", "close then binary and a bad frame → close reply only, no 1002",
             close_then(encode_frame(OP_BINARY, b"x") + encode_frame(0x3, b""))),
        case("7.3.1", "close with an empty payload → empty close (or 1000)",
             close_with(b"", None)),
        case("7.3.2", "close with a 1-byte payload → 1002", close_with(b"\x03", "fail1002")),
        case("7.3.3", "close 1000 without a reason", close_with(close_payload(1000), 1000)),
        case("7.3.4", "close 1000 with a short reason",
             close_with(close_payload(1000, "Hello World!"), 1000)),
        case("7.3.5", "close 1000 with a 123-byte reason (125-byte payload)",
             close_with(close_payload(1000, "*" * 123), 1000)),
        case("7.3.6", "close with a 124-byte reason (126-byte payload) → 1002",
             close_with(close_payload(1000, "*" * 124), "fail1002")),
        case("7.3.7", "close in 1-byte writes", close_chopped),
        case("7.3.8", "server ends TCP after its close reply even if we never read",
             close_without_reply, timeout=HANG_S),
        case("7.3.9", "server ends TCP after failing a connection whose peer never answers",
             violation_never_answered, timeout=HANG_S),
        case("7.5.1", "close 1000 with an invalid UTF-8 reason → 1007",
             close_with(close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
                                      b"\xed\xa0\x80\x65\x64\x69\x74\x65\x64"), "fail1007")),
        case("7.5.2", "close 1000 with a truncated UTF-8 reason → 1007",
             close_with(close_payload(1000, b"abc\xe2\x82"), "fail1007")),
        case("7.5.3", "close 1000 with a valid multi-byte reason",
             close_with(close_payload(1000, "κόσμε ✓"), 1000)),
    ]
    for i, code in enumerate(VALID_CODES, start=1):
        result.append(case(f"7.7.{i}", f"close {code} → echoed {code}",
                           close_with(close_payload(code, "reason"), code)))
    for i, code in enumerate(INVALID_CODES, start=1):
        result.append(case(f"7.9.{i}", f"close with invalid code {code} → 1002",
                           close_with(close_payload(code), "fail1002")))
    return result
