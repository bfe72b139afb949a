"""Section 9, limits and throughput against the default --max-message-bytes (16 MiB):
big messages in one frame and in fragments, writes of many sizes, pipelined small
messages; exactly 16 MiB is echoed, one byte more is closed with 1009. Times are printed
(milliseconds column) for information only; nothing here asserts a duration."""

import os

from harness import OP_BINARY, OP_CONT, OP_TEXT, case, encode_frame

KIB, MIB = 1 << 10, 1 << 20
LIMIT = 16 * MIB


def payload_of(opcode, size):
    if opcode == OP_TEXT:
        return (b"Hello, ringcast! " * (size // 17 + 1))[:size]
    return os.urandom(size)


def fragmented_frames(opcode, payload, fragment):
    n = max(1, -(-len(payload) // fragment))
    return b"".join(encode_frame(opcode if i == 0 else OP_CONT,
                                 payload[i * fragment:(i + 1) * fragment], fin=i == n - 1)
                    for i in range(n))


def echo(opcode, size, fragment=None, chunk=None):
    def run(s):
        payload = payload_of(opcode, size)
        wire = fragmented_frames(opcode, payload, fragment) if fragment else \
            encode_frame(opcode, payload)
        if chunk:
            s.send_chopped(wire, chunk)
        else:
            s.send_in_background(wire)
        s.expect_message(opcode, payload)
        s.join_sender()
        s.close_normally()
    return run


def too_big(opcode, fragment=None):
    def run(s):
        payload = payload_of(opcode, LIMIT + 1)
        wire = fragmented_frames(opcode, payload, fragment) if fragment else \
            encode_frame(opcode, payload)
        # The server may close before reading all of it; a failed send is fine.
        s.send_in_background(wire)
        s.expect_failure(1009)
    return run


def pipelined(opcode, size, count=1000):
    def run(s):
        payloads = [payload_of(opcode, size) if opcode == OP_BINARY else
                    (f"{i:06d}".encode() + payload_of(OP_TEXT, size))[:size] for i in range(count)]
        s.send_in_background(b"".join(encode_frame(opcode, p) for p in payloads),
                             f"{count} messages")
        for i, p in enumerate(payloads):
            s.expect_message(opcode, p, f"echo {i} of {count}")
        s.join_sender()
        s.close_normally()
    return run


def cases():
    result = []
    sizes = ((64 * KIB, "64 KiB"), (256 * KIB, "256 KiB"), (MIB, "1 MiB"), (4 * MIB, "4 MiB"),
             (LIMIT, "16 MiB (= the limit)"))
    for group, opcode, kind in ((1, OP_TEXT, "text"), (2, OP_BINARY, "binary")):
        for i, (size, name) in enumerate(sizes, start=1):
            result.append(case(f"9.{group}.{i}", f"{kind} {name} in one frame",
                               echo(opcode, size), timeout=60 if size >= 4 * MIB else 20))
    fragment_sizes = (64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB)
    for group, opcode, kind in ((3, OP_TEXT, "text"), (4, OP_BINARY, "binary")):
        for i, frag in enumerate(fragment_sizes, start=1):
            result.append(case(f"9.{group}.{i}", f"{kind} 4 MiB in {frag}-byte fragments",
                               echo(opcode, 4 * MIB, fragment=frag), timeout=60))
    for group, opcode, kind in ((5, OP_TEXT, "text"), (6, OP_BINARY, "binary")):
        for i, chunk in enumerate((64, 128, 256, 512, 1024, 2048), start=1):
            result.append(case(f"9.{group}.{i}", f"{kind} 1 MiB in {chunk}-byte writes",
                               echo(opcode, MIB, chunk=chunk), timeout=30))
        result.append(case(f"9.{group}.7", f"{kind} 4 KiB in 1-byte writes",
                           echo(opcode, 4 * KIB, chunk=1), timeout=20))
        result.append(case(f"9.{group}.8", f"{kind} 64 KiB in 1-byte writes",
                           echo(opcode, 64 * KIB, chunk=1), timeout=60))
    for group, opcode, kind in ((7, OP_TEXT, "text"), (8, OP_BINARY, "binary")):
        for i, size in enumerate((0, 16, 64, 256, 1024, 4096), start=1):
            result.append(case(f"9.{group}.{i}", f"1000 pipelined {kind} messages of {size} "
                               "bytes", pipelined(opcode, size), timeout=30))
    result += [
        case("9.9.1", "text 16 MiB (= the limit) in 1 MiB fragments",
             echo(OP_TEXT, LIMIT, fragment=MIB), timeout=60),
        case("9.9.2", "binary 16 MiB (= the limit) in 64 KiB fragments",
             echo(OP_BINARY, LIMIT, fragment=64 * KIB), timeout=60),
        case("9.10.1", "binary 16 MiB + 1 byte in one frame → 1009", too_big(OP_BINARY),
             timeout=60),
        case("9.10.2", "text 16 MiB + 1 byte in 1 MiB fragments → 1009",
             too_big(OP_TEXT, fragment=MIB), timeout=60),
    ]
    return result
