"""Section 3, reserved bits (RFC 6455 §5.2): without a negotiated extension any of RSV1,
RSV2, RSV3 set fails the connection with 1002, on every kind of frame, also when a valid
message came first in the same write, and nothing after the bad frame is processed."""

from harness import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, case, close_payload, \
    encode_frame

RSV_NAMES = {4: "RSV1", 2: "RSV2", 1: "RSV3", 6: "RSV1+RSV2", 5: "RSV1+RSV3", 3: "RSV2+RSV3",
             7: "RSV1+RSV2+RSV3"}


def bad_alone(opcode, rsv, payload=b"Hello, world!"):
    def run(s):
        s.send(encode_frame(opcode, payload, rsv=rsv))
        s.expect_failure(1002)
    return run


def after_valid(rsv, mode):
    """Valid text, text with `rsv`, ping: echo of the first only, then close 1002 (no pong).
    mode: 'frames' one write per frame, 'together' one write, 'bytes' 1-byte writes."""
    def run(s):
        frames = [encode_frame(OP_TEXT, b"Hello, world!"),
                  encode_frame(OP_TEXT, b"Hello, world!", rsv=rsv),
                  encode_frame(OP_PING, b"")]
        if mode == "frames":
            s.send(frames[0])
            s.expect_message(OP_TEXT, b"Hello, world!")
            s.send(frames[1])
            s.send(frames[2])
        elif mode == "together":
            s.send(b"".join(frames))
            s.expect_message(OP_TEXT, b"Hello, world!")
        else:
            s.send_chopped(b"".join(frames), 1)
            s.expect_message(OP_TEXT, b"Hello, world!")
        s.expect_failure(1002)
    return run


def on_continuation(rsv):
    def run(s):
        s.send(encode_frame(OP_TEXT, b"start", fin=False))
        s.send(encode_frame(OP_CONT, b"end", rsv=rsv))
        s.expect_failure(1002)
    return run


def cases():
    result = [
        case("3.1", "text with RSV3 → 1002", bad_alone(OP_TEXT, 1)),
        case("3.2", "text, text with RSV2, ping (one write each) → echo, 1002, no pong",
             after_valid(2, "frames")),
        case("3.3", "text, text with RSV2+RSV3, ping in one write → echo, 1002, no pong",
             after_valid(3, "together")),
        case("3.4", "text, text with RSV1, ping in 1-byte writes → echo, 1002, no pong",
             after_valid(4, "bytes")),
        case("3.5", "binary with RSV1+RSV3 → 1002", bad_alone(OP_BINARY, 5, bytes(range(8)))),
        case("3.6", "ping with RSV1+RSV2 → 1002", bad_alone(OP_PING, 6)),
        case("3.7", "close with all RSV bits → 1002",
             bad_alone(OP_CLOSE, 7, close_payload(1000))),
    ]
    for rsv, name in RSV_NAMES.items():
        result.append(case(f"3.8.{rsv}", f"text with {name} → 1002", bad_alone(OP_TEXT, rsv)))
        result.append(case(f"3.9.{rsv}", f"binary with {name} → 1002",
                           bad_alone(OP_BINARY, rsv, b"\x00\x01")))
        result.append(case(f"3.10.{rsv}", f"continuation frame with {name} → 1002",
                           on_continuation(rsv)))
        result.append(case(f"3.11.{rsv}", f"valid text then text with {name} in one write "
                           "→ echo, 1002", after_valid(rsv, "together")))
    return result
