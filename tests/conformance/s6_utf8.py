"""Section 6, UTF-8 (RFC 6455 §5.6, §8.1; RFC 3629): text messages must be valid UTF-8 or
the connection fails with 1007. Sequences follow Markus Kuhn's UTF-8 decoder stress test
(as Autobahn's 6.5-6.23 do): valid multi-byte characters, 5/6-byte forms, code points over
U+10FFFF, stray continuation bytes, lonely start bytes, truncated sequences, impossible
bytes, overlong forms, UTF-16 surrogates, non-characters (valid) and specials (valid).

Fail-fast (6.4, 6.24): an error that is already certain in a non-final fragment must be
answered with 1007 before the rest of the message is sent; the case waits for the close
without sending the final fragment. Inside a single frame, finding the error only when the
frame is complete is reported NON-STRICT (as Autobahn does)."""

from harness import NON_STRICT, OP_BINARY, OP_CONT, OP_TEXT, case, encode_frame, fail
import support

# "κόσμε" as in Kuhn's file and Autobahn: the omicron is U+1F79, a 3-byte sequence.
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

# (group title, [(valid, bytes), ...]); ids 6.5.x onwards in this order.
SEQUENCES = [
    ("valid UTF-8 with multi-byte code points", [
        (True, b"hello\x24world"), (True, b"hello\xc2\xa2world"),
        (True, b"hello\xe2\x82\xacworld"), (True, b"hello\xf0\xa4\xad\xa2world"),
        (True, KOSME)]),
    ("every prefix of κόσμε (valid only at character ends)",
     [(None, KOSME[:i]) for i in range(1, len(KOSME) + 1)]),
    ("first possible sequence of each length", [
        (True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"),
        (True, b"\xf0\x90\x80\x80")]),
    ("first possible 5- and 6-byte sequences (not UTF-8)", [
        (False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")]),
    ("last possible sequence of each length", [
        (True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"),
        (True, b"\xf4\x8f\xbf\xbf")]),
    ("last possible 4/5/6-byte forms (over U+10FFFF)", [
        (False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"),
        (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]),
    ("other boundaries: U+D7FF, U+E000, U+FFFD, U+10FFFF, U+110000", [
        (True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"), (True, b"\xef\xbf\xbd"),
        (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")]),
    ("unexpected continuation bytes", [
        (False, b"\x80"), (False, b"\xbf"), (False, b"\x80\xbf"), (False, b"\x80\xbf\x80"),
        (False, b"\x80\xbf\x80\xbf"), (False, b"\x80\xbf\x80\xbf\x80"),
        (False, b"\x80\xbf\x80\xbf\x80\xbf"), (False, bytes(range(0x80, 0xc0)))]),
    ("lonely start bytes, each followed by a space", [
        (False, b"".join(bytes([c, 0x20]) for c in range(lo, hi + 1)))
        for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd))]),
    ("sequences with the last continuation byte missing", [
        (False, x) for x in (b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
                             b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
                             b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf")]),
    ("concatenation of the incomplete sequences", [
        (False, b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf"
                b"\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf")]),
    ("impossible bytes", [
        (False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]),
    ("overlong '/'", [
        (False, b"\xc0\xaf"), (False, b"\xe0\x80\xaf"), (False, b"\xf0\x80\x80\xaf"),
        (False, b"\xf8\x80\x80\x80\xaf"), (False, b"\xfc\x80\x80\x80\x80\xaf")]),
    ("maximum overlong sequences", [
        (False, b"\xc1\xbf"), (False, b"\xe0\x9f\xbf"), (False, b"\xf0\x8f\xbf\xbf"),
        (False, b"\xf8\x87\xbf\xbf\xbf"), (False, b"\xfc\x83\xbf\xbf\xbf\xbf")]),
    ("overlong NUL", [
        (False, b"\xc0\x80"), (False, b"\xe0\x80\x80"), (False, b"\xf0\x80\x80\x80"),
        (False, b"\xf8\x80\x80\x80\x80"), (False, b"\xfc\x80\x80\x80\x80\x80")]),
    ("single UTF-16 surrogates", [
        (False, x) for x in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                             b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf")]),
    ("paired UTF-16 surrogates", [
        (False, hi + lo)
        for hi in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf")
        for lo in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]),
    ("non-characters (valid UTF-8)", [(True, b"\xef\xbf\xbe"), (True, b"\xef\xbf\xbf")] + [
        (True, lead + second + b"\xbf" + last)
        for lead in (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
        for second in (b"\x8f", b"\x9f", b"\xaf", b"\xbf")
        if not (lead == b"\xf4" and second != b"\x8f")
        for last in (b"\xbe", b"\xbf")
        if lead + second != b"\xf0\x8f"]),  # F0 8F is overlong
    ("specials, U+FFF9-U+FFFF (valid)",
     [(True, bytes([0xef, 0xbf, b])) for b in range(0xb9, 0xc0)]),
]


def _python_says_valid(data):
    try:
        data.decode("utf-8", "strict")
        return True
    except UnicodeDecodeError:
        return False


# The table's verdicts, cross-checked against CPython's strict RFC 3629 decoder so a typo in
# the table cannot turn into a wrong expectation. `None` means "let the decoder decide".
for _title, _items in SEQUENCES:
    for _i, (_valid, _data) in enumerate(_items):
        _truth = _python_says_valid(_data)
        assert _valid in (None, _truth), f"table error in '{_title}': {_data!r}"
        _items[_i] = (_truth, _data)


def single_frame(valid, payload):
    def run(s):
        s.send(encode_frame(OP_TEXT, payload))
        if valid:
            s.expect_message(OP_TEXT, payload)
            s.close_normally()
        else:
            s.expect_failure(1007)
    return run


def per_byte_fragments(valid, payload):
    def run(s):
        frames = [encode_frame(OP_TEXT if i == 0 else OP_CONT, payload[i:i + 1],
                               fin=i == len(payload) - 1) for i in range(len(payload))]
        s.send(b"".join(frames))
        if valid:
            s.expect_message(OP_TEXT, payload)
            s.close_normally()
        else:
            s.expect_failure(1007)
    return run


def fragmented_echo(parts, mode="together"):
    def run(s):
        frames = [encode_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1)
                  for i, p in enumerate(parts)]
        if mode == "bytes":
            s.send_chopped(b"".join(frames), 1)
        else:
            s.send(b"".join(frames))
        s.expect_message(OP_TEXT, b"".join(parts))
        s.close_normally()
    return run


def fail_fast(sent_parts, held_back, quiet_after=()):
    """Sends the non-final fragments in `sent_parts` and expects 1007 before the final
    fragment `held_back` is sent. `quiet_after` lists indexes of fragments after which the
    server must NOT have closed yet (their bytes are still a valid prefix)."""
    def run(s):
        for i, p in enumerate(sent_parts):
            s.send(encode_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=False))
            if i in quiet_after:
                s.expect_nothing(0.2)
        try:
            s.expect_failure(1007)
        except support.check_failed as e:
            fail(f"{e}\n(the final fragment {held_back!r} was deliberately not sent: the error "
                 f"is certain before it; RFC 6455 §8.1 says fail the connection at once)")
    return run


def fail_fast_in_frame(payload, cut):
    """One frame written in two parts: header + payload[:cut] (already invalid), then the
    rest. Close before the rest → OK; close only after → NON-STRICT."""
    def run(s):
        wire = encode_frame(OP_TEXT, payload)
        header = len(wire) - len(payload)
        s.send(wire[:header + cut])
        early = s.poll_frame(1.0)
        if early is not None:
            s.expect_failure(1007, received=early)
            return None
        s.send(wire[header + cut:])
        s.expect_failure(1007)
        return NON_STRICT
    return run


def binary_not_checked(s):
    payload = b"\xff\xfe\xc0\xaf\xed\xa0\x80"
    s.send(encode_frame(OP_BINARY, payload))
    s.expect_message(OP_BINARY, payload)
    s.close_normally()


def cases():
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    edited = KOSME + b"\xed\xa0\x80" + b"edited"
    result = [
        case("6.1.1", "empty text message", single_frame(True, b"")),
        case("6.1.2", "text of 3 empty fragments", fragmented_echo([b"", b"", b""])),
        case("6.1.3", "text of fragments: empty, 'middle', empty",
             fragmented_echo([b"", b"middle", b""])),
        case("6.2.1", "valid multi-byte text in one frame", single_frame(True, hello)),
        case("6.2.2", "valid multi-byte text in 2 fragments at a character boundary",
             fragmented_echo([hello[:7], hello[7:]])),
        case("6.2.3", "valid multi-byte text in one frame, 1-byte writes",
             fragmented_echo([hello], "bytes")),
        case("6.2.4", "κόσμε in one fragment per byte (characters split across fragments)",
             per_byte_fragments(True, KOSME)),
        case("6.3.1", "κόσμε + surrogate U+D800 + 'edited' in one frame → 1007",
             single_frame(False, edited)),
        case("6.3.2", "same, one fragment per byte → 1007", per_byte_fragments(False, edited)),
        case("6.4.1", "fail fast: κόσμε | F4 90 80 80 → 1007 before the final fragment",
             fail_fast([KOSME, b"\xf4\x90\x80\x80"], b"edited")),
        case("6.4.2", "fail fast: κόσμε F4 | 90 80 80 → quiet after F4, 1007 before final",
             fail_fast([KOSME + b"\xf4", b"\x90\x80\x80"], b"edited", quiet_after=(0,))),
        case("6.4.3", "fail fast inside one frame: error certain after F4 90",
             fail_fast_in_frame(KOSME + b"\xf4\x90\x80\x80edited", len(KOSME) + 2)),
        case("6.4.4", "fail fast inside one frame: first write ends after F4 90 80 80",
             fail_fast_in_frame(KOSME + b"\xf4\x90\x80\x80edited", len(KOSME) + 4)),
    ]
    for group, (title, items) in enumerate(SEQUENCES, start=5):
        for j, (valid, data) in enumerate(items, start=1):
            verdict = "valid, echoed" if valid else "invalid → 1007"
            result.append(case(f"6.{group}.{j}", f"{title}: {data[:12].hex(' ')}"
                               f"{'…' if len(data) > 12 else ''} ({verdict})",
                               single_frame(valid, data)))
    group = len(SEQUENCES) + 5
    # Per-byte fragmentation of every multi-byte valid sequence and of each invalid one:
    # validation state must carry across frame boundaries.
    j = 1
    for title, items in SEQUENCES:
        for valid, data in items:
            if len(data) > 1:
                result.append(case(f"6.{group}.{j}", f"1 fragment per byte: {data[:12].hex(' ')}"
                                   f" ({'valid' if valid else 'invalid → 1007'})",
                                   per_byte_fragments(valid, data)))
                j += 1
    group += 1
    euro, emoji = "€".encode(), "😀".encode()
    result += [
        case(f"6.{group}.1", "€ split 1|2 across fragments → echo",
             fragmented_echo([b"a" + euro[:1], euro[1:] + b"b"])),
        case(f"6.{group}.2", "€ split 2|1 across fragments → echo",
             fragmented_echo([b"a" + euro[:2], euro[2:] + b"b"])),
        case(f"6.{group}.3", "😀 split 1|1|1|1 across 4 fragments → echo",
             fragmented_echo([emoji[i:i + 1] for i in range(4)])),
        case(f"6.{group}.4", "😀 split 3|1 with an empty fragment between → echo",
             fragmented_echo([emoji[:3], b"", emoji[3:]])),
        case(f"6.{group}.5", "truncated € at the end of the final fragment → 1007",
             per_byte_fragments(False, b"abc" + euro[:2])),
        case(f"6.{group}.6", "truncated € at the end of a single frame → 1007",
             single_frame(False, b"abc" + euro[:2])),
        case(f"6.{group}.7", "fail fast: fragment ends E2 82 (valid prefix), next starts 'd'",
             fail_fast([b"abc\xe2\x82", b"d"], b"end", quiet_after=(0,))),
        case(f"6.{group}.8", "fail fast: fragment ends E2, next starts 28 → 1007",
             fail_fast([b"abc\xe2", b"\x28xyz"], b"end", quiet_after=(0,))),
        case(f"6.{group}.9", "fail fast: overlong C0 AF in the first fragment",
             fail_fast([b"\xc0\xafrest of the first fragment"], b"end")),
        case(f"6.{group}.10", "fail fast: stray continuation byte in the first fragment",
             fail_fast([b"ok so far \x80"], b"end")),
        case(f"6.{group}.11", "fail fast: surrogate ED A0 in the second fragment",
             fail_fast([b"first ", b"\xed\xa0\x80second"], b"end", quiet_after=(0,))),
        case(f"6.{group}.12", "fail fast: FF in the middle of a 64 KiB first fragment",
             fail_fast([b"a" * 32768 + b"\xff" + b"a" * 32767], b"end")),
        case(f"6.{group}.13", "binary messages are not UTF-8 checked", binary_not_checked),
    ]
    return result
