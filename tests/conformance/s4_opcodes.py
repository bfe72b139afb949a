"""Section 4, opcodes (RFC 6455 §5.2): reserved non-control opcodes 0x3-0x7 and reserved
control opcodes 0xB-0xF fail the connection with 1002, with or without payload, and also
after a valid message in the same write (which is still echoed first)."""

from harness import OP_PING, OP_TEXT, case, encode_frame

RESERVED = (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)


def bad(opcode, payload=b""):
    def run(s):
        s.send(encode_frame(opcode, payload))
        s.expect_failure(1002)
    return run


def after_valid(opcode, payload):
    # Autobahn 4.x.3-5: text, reserved frame, ping → echo, then close; no pong.
    def run(s):
        s.send(encode_frame(OP_TEXT, b"Hello, world!") + encode_frame(opcode, payload)
               + encode_frame(OP_PING, b""))
        s.expect_message(OP_TEXT, b"Hello, world!")
        s.expect_failure(1002)
    return run


def cases():
    result = []
    for group, ops in ((1, (3, 4, 5, 6, 7)), (2, (0xB, 0xC, 0xD, 0xE, 0xF))):
        kind = "non-control" if group == 1 else "control"
        a, b, c, d, e = ops
        result += [
            case(f"4.{group}.1", f"reserved {kind} opcode {a:#x}, no payload → 1002", bad(a)),
            case(f"4.{group}.2", f"reserved {kind} opcode {b:#x} with payload → 1002",
                 bad(b, b"reserved opcode payload")),
            case(f"4.{group}.3", f"text, opcode {c:#x}, ping → echo, 1002",
                 after_valid(c, b"")),
            case(f"4.{group}.4", f"text, opcode {d:#x} with payload, ping → echo, 1002",
                 after_valid(d, b"reserved opcode payload")),
            case(f"4.{group}.5", f"text, opcode {e:#x} with payload, ping → echo, 1002",
                 after_valid(e, b"reserved opcode payload")),
        ]
    for op in RESERVED:
        result += [
            case(f"4.3.{op:X}.1", f"opcode {op:#x} with payload → 1002",
                 bad(op, b"\x00" * 10)),
            case(f"4.3.{op:X}.2", f"text then opcode {op:#x} (no payload) → echo, 1002",
                 after_valid(op, b"")),
        ]
    return result
