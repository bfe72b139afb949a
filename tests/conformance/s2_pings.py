"""Section 2, pings and pongs (RFC 6455 §5.5.2-§5.5.3): every ping is answered with a pong
carrying the same payload, in order; pings over 125 bytes are a protocol error; pongs
nobody asked for are ignored; pings may arrive between the fragments of a message."""

from harness import OP_CONT, OP_PING, OP_PONG, OP_TEXT, case, encode_frame


def ping(payload, chunk=None):
    def run(s):
        wire = encode_frame(OP_PING, payload)
        if chunk:
            s.send_chopped(wire, chunk)
        else:
            s.send(wire)
        s.expect_pong(payload)
        s.close_normally()
    return run


def oversized_ping(n):
    def run(s):
        s.send(encode_frame(OP_PING, b"\xfe" * n))
        s.expect_failure(1002)
    return run


def unsolicited_pong(payload):
    def run(s):
        s.send(encode_frame(OP_PONG, payload))
        s.expect_nothing(0.3)
        s.close_normally()
    return run


def pong_then_ping(s):
    s.send(encode_frame(OP_PONG, b"unsolicited pong payload"))
    s.send(encode_frame(OP_PING, b"ping payload"))
    s.expect_pong(b"ping payload")
    s.close_normally()


def ten_pings(chunk=None, pause=0.0):
    def run(s):
        wire = b"".join(encode_frame(OP_PING, f"payload-{i}".encode()) for i in range(10))
        if chunk:
            s.send_chopped(wire, chunk, pause)
        else:
            s.send(wire)
        for i in range(10):
            s.expect_pong(f"payload-{i}".encode())
        s.close_normally()
    return run


def ping_between_fragments(s):
    s.send(encode_frame(OP_TEXT, b"fragment1", fin=False))
    s.send(encode_frame(OP_PING, b"in the middle"))
    s.expect_pong(b"in the middle")
    s.send(encode_frame(OP_CONT, b"fragment2", fin=True))
    s.expect_message(OP_TEXT, b"fragment1fragment2")
    s.close_normally()


def cases():
    return [
        case("2.1", "ping without payload → pong without payload", ping(b"")),
        case("2.2", "ping with a small text payload → pong", ping(b"Hello, world!")),
        case("2.3", "ping with a small binary payload → pong",
             ping(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")),
        case("2.4", "ping with a 125-byte binary payload → pong", ping(b"\xfe" * 125)),
        case("2.5", "ping with a 126-byte payload → 1002", oversized_ping(126)),
        case("2.6", "ping with a 125-byte payload in 1-byte writes → pong",
             ping(b"\xfe" * 125, chunk=1)),
        case("2.7", "unsolicited pong without payload is ignored", unsolicited_pong(b"")),
        case("2.8", "unsolicited pong with payload is ignored",
             unsolicited_pong(b"unsolicited pong payload")),
        case("2.9", "unsolicited pong, then ping → exactly one pong, for the ping",
             pong_then_ping),
        case("2.10", "10 pings in one write → 10 pongs in order", ten_pings()),
        case("2.11", "10 pings in 1-byte writes → 10 pongs in order", ten_pings(1, 0.0005)),
        case("2.12", "ping between the fragments of a text message → pong, then the echo",
             ping_between_fragments),
        case("2.13", "ping with a 65535-byte (16-bit length) payload → 1002",
             oversized_ping(65535)),
    ]
