"""Section 5, fragmentation (RFC 6455 §5.4): fragmented messages are reassembled and echoed
whole; control frames may sit between fragments but may not themselves be fragmented; a
continuation without a started message, or a new data frame inside a fragmented message,
fails the connection with 1002."""

import os

from harness import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, case, fail, \
    close_payload, encode_frame


def fragments(opcode, parts):
    """Frames of one message split into `parts` (a list of payloads)."""
    out = []
    for i, p in enumerate(parts):
        out.append(encode_frame(opcode if i == 0 else OP_CONT, p, fin=i == len(parts) - 1))
    return out


def send(s, frames, mode):
    if mode == "together":
        s.send(b"".join(frames))
    elif mode == "frames":
        for f in frames:
            s.send(f)
            s.pause(0.005)
    else:  # 'bytes'
        s.send_chopped(b"".join(frames), 1)


def fragmented_control(opcode):
    def run(s):
        payload = b"fragment1" if opcode != OP_CLOSE else close_payload(1000, "fragment1")
        s.send(encode_frame(opcode, payload, fin=False))
        s.send(encode_frame(OP_CONT, b"fragment2"))
        s.expect_failure(1002)
    return run


def fragmented_echo(opcode, parts, mode="together"):
    def run(s):
        send(s, fragments(opcode, parts), mode)
        s.expect_message(opcode, b"".join(parts))
        s.close_normally()
    return run


def ping_inside(mode):
    # Autobahn 5.6-5.8: fragment 1, ping, fragment 2 → pong, echo.
    def run(s):
        frames = [encode_frame(OP_TEXT, b"fragment1", fin=False),
                  encode_frame(OP_PING, b"ping payload"),
                  encode_frame(OP_CONT, b"fragment2")]
        send(s, frames, mode)
        s.expect_pong(b"ping payload")
        s.expect_message(OP_TEXT, b"fragment1fragment2")
        s.close_normally()
    return run


def orphan_continuation(fin, mode):
    # Autobahn 5.9-5.14: a continuation with nothing to continue, then fragments of a
    # text message → 1002 and no echo.
    def run(s):
        frames = [encode_frame(OP_CONT, b"non-continuation payload", fin=fin),
                  encode_frame(OP_TEXT, b"Hello, world!", fin=False),
                  encode_frame(OP_CONT, b"fragment2", fin=True)]
        send(s, frames, mode)
        s.expect_failure(1002)
    return run


def continuation_after_complete(s):
    # Autobahn 5.15: fragment1 (start), fragment2 (fin) → echo; fragment3 (continuation
    # after the message finished) → 1002.
    s.send(encode_frame(OP_TEXT, b"fragment1", fin=False) + encode_frame(OP_CONT, b"fragment2")
           + encode_frame(OP_CONT, b"fragment3", fin=False) + encode_frame(OP_CONT, b"fragment4"))
    s.expect_message(OP_TEXT, b"fragment1fragment2")
    s.expect_failure(1002)


def leading_continuations(first_fin):
    # Autobahn 5.16/5.17: (continuation, text start, continuation) x 2 → 1002 at once.
    def run(s):
        block = (encode_frame(OP_CONT, b"fragment1", fin=first_fin)
                 + encode_frame(OP_TEXT, b"fragment2", fin=False)
                 + encode_frame(OP_CONT, b"fragment3"))
        s.send(block + block)
        s.expect_failure(1002)
    return run


def data_inside_fragmented(second_opcode):
    # Autobahn 5.18 and variants: a new data frame while a message is open → 1002.
    def run(s):
        s.send(encode_frame(OP_TEXT, b"fragment1", fin=False)
               + encode_frame(second_opcode, b"fragment2"))
        s.expect_failure(1002)
    return run


def pings_with_pauses(mode):
    # Autobahn 5.19/5.20: 5 fragments with pings after 2 and 4 and pauses; pongs arrive
    # while the message is still open, then the whole echo.
    def run(s):
        parts = [f"fragment{i}".encode() for i in range(1, 6)]
        frames = fragments(OP_TEXT, parts)
        chunk = mode == "bytes"

        def out(data):
            return s.send_chopped(data, 1) if chunk else s.send(data)
        out(frames[0])
        out(frames[1])
        out(encode_frame(OP_PING, b"pongme 1!"))
        s.expect_pong(b"pongme 1!")
        s.pause(0.2)
        out(frames[2])
        out(frames[3])
        out(encode_frame(OP_PING, b"pongme 2!"))
        s.expect_pong(b"pongme 2!")
        s.pause(0.2)
        out(frames[4])
        s.expect_message(OP_TEXT, b"".join(parts))
        s.close_normally()
    return run


def pong_inside(s):
    s.send(encode_frame(OP_BINARY, b"\x01\x02", fin=False) + encode_frame(OP_PONG, b"unasked")
           + encode_frame(OP_CONT, b"\x03\x04"))
    s.expect_message(OP_BINARY, b"\x01\x02\x03\x04")
    s.close_normally()


def close_inside(s):
    # A close between fragments is legal (control frame); the open message is dropped.
    s.send(encode_frame(OP_TEXT, b"never finished", fin=False)
           + encode_frame(OP_CLOSE, close_payload(1000)))
    f = s.next_frame("the close reply")
    if f.opcode != OP_CLOSE or f.close_code() != 1000:
        fail(f"expected close 1000 as the reply, got {f}")
    s.expect_tcp_close("the close handshake")


def split(data, n):
    size = max(1, -(-len(data) // n))
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def cases():
    text = "Hello, fragmented world! ✓ κόσμε".encode()
    blob = os.urandom(3000)
    result = [
        case("5.1", "ping in 2 fragments → 1002", fragmented_control(OP_PING)),
        case("5.2", "pong in 2 fragments → 1002", fragmented_control(OP_PONG)),
        case("5.3", "text in 2 fragments, one write",
             fragmented_echo(OP_TEXT, [b"fragment1", b"fragment2"])),
        case("5.4", "text in 2 fragments, one write per frame",
             fragmented_echo(OP_TEXT, [b"fragment1", b"fragment2"], "frames")),
        case("5.5", "text in 2 fragments, 1-byte writes",
             fragmented_echo(OP_TEXT, [b"fragment1", b"fragment2"], "bytes")),
        case("5.6", "text fragment, ping, fragment; one write → pong, echo",
             ping_inside("together")),
        case("5.7", "text fragment, ping, fragment; write per frame → pong, echo",
             ping_inside("frames")),
        case("5.8", "text fragment, ping, fragment; 1-byte writes → pong, echo",
             ping_inside("bytes")),
        case("5.9", "continuation (FIN) with nothing to continue, one write → 1002",
             orphan_continuation(True, "together")),
        case("5.10", "continuation (FIN) with nothing to continue, per frame → 1002",
             orphan_continuation(True, "frames")),
        case("5.11", "continuation (FIN) with nothing to continue, 1-byte writes → 1002",
             orphan_continuation(True, "bytes")),
        case("5.12", "continuation (no FIN) with nothing to continue, one write → 1002",
             orphan_continuation(False, "together")),
        case("5.13", "continuation (no FIN) with nothing to continue, per frame → 1002",
             orphan_continuation(False, "frames")),
        case("5.14", "continuation (no FIN) with nothing to continue, 1-byte writes → 1002",
             orphan_continuation(False, "bytes")),
        case("5.15", "message of 2 fragments, then a continuation → echo, 1002",
             continuation_after_complete),
        case("5.16", "(continuation, text start, continuation) x2 → 1002",
             leading_continuations(False)),
        case("5.17", "(continuation FIN, text start, continuation) x2 → 1002",
             leading_continuations(True)),
        case("5.18", "text start, then a text frame (not continuation) → 1002",
             data_inside_fragmented(OP_TEXT)),
        case("5.19", "5 fragments, pings after 2 and 4, pauses → 2 pongs, echo",
             pings_with_pauses("frames")),
        case("5.20", "as 5.19 in 1-byte writes", pings_with_pauses("bytes")),
        case("5.21.1", "text start, then a binary frame → 1002",
             data_inside_fragmented(OP_BINARY)),
        case("5.21.2", "close in 2 fragments → 1002", fragmented_control(OP_CLOSE)),
        case("5.21.3", "pong between binary fragments is ignored, echo whole", pong_inside),
        case("5.21.4", "close between fragments → close reply, no echo", close_inside),
    ]
    n = 1
    for kind, opcode, data in (("text", OP_TEXT, text), ("binary", OP_BINARY, blob)):
        for count in (2, 3, 10, 100):
            parts = split(data, count)
            result.append(case(f"5.22.{n}", f"{kind} in {len(parts)} fragments",
                               fragmented_echo(opcode, parts)))
            n += 1
        result.append(case(f"5.22.{n}", f"{kind} in 10 fragments, 1-byte writes",
                           fragmented_echo(opcode, split(data, 10), "bytes"), timeout=10))
        n += 1
        result.append(case(f"5.22.{n}", f"{kind} with empty first, middle and last fragments",
                           fragmented_echo(opcode, [b"", data[:10], b"", data[10:], b""])))
        n += 1
        result.append(case(f"5.22.{n}", f"{kind}: 3 empty fragments → empty echo",
                           fragmented_echo(opcode, [b"", b"", b""])))
        n += 1
    result.append(case(f"5.22.{n}", "text of 1-byte fragments (1 fragment per byte)",
                       fragmented_echo(OP_TEXT, [bytes([b]) for b in text])))
    return result
