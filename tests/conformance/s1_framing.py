"""Section 1, framing: text and binary messages of every length-encoding boundary, whole
and chopped into small writes, plus header-level checks Autobahn leaves out (unmasked
client frames, split headers, several frames in one write)."""

from harness import OP_BINARY, OP_TEXT, case, encode_frame

LENGTHS = (0, 125, 126, 127, 128, 65535, 65536)


def echo(opcode, payload, chunk=None):
    def run(s):
        wire = encode_frame(opcode, payload)
        if chunk:
            s.send_chopped(wire, chunk)
        else:
            s.send(wire)
        s.expect_message(opcode, payload)
        s.close_normally()
    return run


def header_split(opcode, payload):
    # Every possible split point inside the header and the first payload bytes, each in
    # its own segment, on one connection: one echo per variation.
    def run(s):
        wire = encode_frame(opcode, payload)
        header_len = len(wire) - len(payload)
        for cut in range(1, header_len + 2):
            s.send(wire[:cut])
            s.pause(0.002)
            s.send(wire[cut:])
            s.expect_message(opcode, payload, f"the echo with a write split at byte {cut}")
        s.close_normally()
    return run


def unmasked(opcode):
    def run(s):
        s.send(encode_frame(opcode, b"Hello, world!", mask=False))
        s.expect_failure(1002)
    return run


def frames_in_one_write(s):
    msgs = [(OP_TEXT, b"first"), (OP_BINARY, b"\x00\x01second"), (OP_TEXT, b""),
            (OP_TEXT, "fourth ✓".encode())]
    s.send(b"".join(encode_frame(op, p) for op, p in msgs))
    for op, p in msgs:
        s.expect_message(op, p)
    s.close_normally()


def valid_then_unmasked(s):
    s.send(encode_frame(OP_TEXT, b"valid") + encode_frame(OP_TEXT, b"unmasked", mask=False))
    s.expect_message(OP_TEXT, b"valid")
    s.expect_failure(1002)


def length_msb_set(s):
    # RFC 6455 §5.2: in the 64-bit length the most significant bit MUST be 0. A server may
    # see this as a protocol error (1002) or as a message over its limit (1009).
    s.send(bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5]) + b"\x00\x00\x00\x00" + b"hello")
    s.expect_failure(1002, also=(1009,))


def cases():
    result = []
    for group, opcode, kind in ((1, OP_TEXT, "text"), (2, OP_BINARY, "binary")):
        for i, n in enumerate(LENGTHS, start=1):
            payload = b"*" * n if opcode == OP_TEXT else bytes([0xFE]) * n
            result.append(case(f"1.{group}.{i}", f"{kind} message, payload length {n}",
                               echo(opcode, payload)))
        payload = b"*" * 65536 if opcode == OP_TEXT else bytes([0xFE]) * 65536
        result.append(case(f"1.{group}.8", f"{kind} message, 65536 bytes, in 997-byte writes",
                           echo(opcode, payload, chunk=997)))
        result.append(case(f"1.{group}.9", f"{kind} message, 200 bytes, in 1-byte writes",
                           echo(opcode, payload[:200], chunk=1)))
    result += [
        case("1.3.1", "text message with an unmasked frame → 1002", unmasked(OP_TEXT)),
        case("1.3.2", "binary message with an unmasked frame → 1002", unmasked(OP_BINARY)),
        case("1.3.3", "valid text then unmasked text in one write → echo, then 1002",
             valid_then_unmasked),
        case("1.3.4", "four messages in one write → four echoes in order",
             frames_in_one_write),
        case("1.3.5", "7-bit-length frame split at every header byte", header_split(
            OP_TEXT, b"split")),
        case("1.3.6", "16-bit-length frame split at every header byte", header_split(
            OP_BINARY, bytes(range(256)) * 2)),
        case("1.3.7", "64-bit-length frame split at every header byte", header_split(
            OP_BINARY, b"\xab" * 70000), timeout=10),
        case("1.3.8", "64-bit length with the most significant bit set → 1002 (or 1009)",
             length_msb_set),
    ]
    return result
