#!/usr/bin/python3
"""Priority thresholds of one slow subscriber (docs and `ringcastd --help`,
`--slow-consumer-bytes`: "half of it drops priority 4, three quarters drops priority 3";
priorities 1 and 2 are never dropped).

Usage: pubsub_priorities.py PATH/TO/ringcastd

Server: `--shards 1 --ping-interval-ms 0 --slow-consumer-bytes S`, S a power of two at
least 16 MiB and at least 4 × the host's largest TCP send buffer (`tcp_wmem`), so the
half-way mark lies well past what the kernel buffers for the connection. One shard, so
every publish is decided in the order this script sends it.

The slow consumer is a raw socket (SO_RCVBUF 4 KiB) that subscribes to `prio`, reads the
reply and then reads nothing. A second raw client on `prio` reads everything. Publishes
come from the API:

* coarse: priority-1 fillers of 256 KiB until the connection's queue is about 1 MiB
  below S/2 (the queue estimated from what was published minus what the kernel holds);
* fine: rounds of one batch each — a 32 KiB priority-1 filler, then small probes of
  priority 4, 3 and 2 — until the queue is past 3/4 S (and well below S); in the band
  between S/2 and 3/4 S and again past 3/4 S, a broadcast to every connection at
  priority 4, 3 and 2;
* an end marker (priority 1); then the slow consumer drains everything.

What the kernel holds for the connection (K) is read from outside: the client's
FIONREAD plus the server socket's send queue in /proc/net/tcp; the check requires it to
stay the same through the fine phase (read every 8th round: the socket is stalled). From
K and the frames the slow consumer finally reads, the server's queued cost at each probe
is recomputed the way the docs count it (wire bytes not yet sent + 64 bytes per queued
frame) and, for each
priority-3/4 probe and broadcast not within 512 bytes of a mark, the prediction "dropped
iff cost ≥ S/2 (priority 4), ≥ 3/4 S (priority 3)" must match what arrived. Also:

* the slow consumer gets every priority-1 and -2 message, in offset order; its
  priority-4 probes are exactly the rounds before the first drop, likewise priority 3,
  and priority 3 keeps flowing for at least S/8 bytes after priority 4 stopped;
* the reader gets every message (drops are per connection);
* `dropped_by_priority` in /api/stats equals the probes and broadcasts of that priority
  the slow consumer did not get; `dropped` is their sum; no slow-consumer close;
* each broadcast's `connections` is the number of connections that got it (2, or 1 when
  the slow consumer dropped it).
"""

import fcntl
import json
import os
import socket
import struct
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

MIB = 1 << 20
COARSE_DATA = 256 * 1024
FINE_DATA = 32 * 1024
OVERHEAD = 64           # per queued frame, as the docs and --read-pause-bytes count it
UNSURE = 512            # probes this close to a mark are not judged either way
MAX_ROUNDS = 1200       # bounds on the fine phase
PHASE_SECONDS = 120


def slow_consumer_bytes():
    """16 MiB, or 4 × the largest TCP send buffer if that is larger (power of two)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 * MIB
    s = 16 * MIB
    while s < 4 * wmem_max:
        s *= 2
    return s


def server_send_queue(server_port, client_port):
    """Bytes in the server-side socket's send queue (written, not yet acknowledged), from
    /proc/net/tcp; None if the socket is not listed. A busy host lists tens of thousands
    of sockets: the line is found by a substring search, not by splitting every line."""
    key = f" 0100007F:{server_port:04X} 0100007F:{client_port:04X} "
    with open("/proc/net/tcp") as f:
        text = f.read()
    at = text.find(key)
    if at < 0:
        return None
    fields = text[at:text.find("\n", at)].split()
    return int(fields[3].split(":")[0], 16)


def fionread(sock):
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]


def wire_size(payload_len):
    return 2 + (2 if 126 <= payload_len < 65536 else 8 if payload_len >= 65536 else 0) \
        + payload_len


def subscribe(ws, channel):
    ws.send_frame(support.OP_TEXT, json.dumps({"op": "subscribe", "channel": channel,
                                               "id": 1}).encode())
    op, payload, _ = ws.recv_message()
    reply = json.loads(payload)
    expect(op == support.OP_TEXT and reply.get("ok") is True,
           f"subscribe {channel}: {payload!r}")


class reader_thread:
    """Reads every frame of a raw client into `frames` (wire size, opcode, payload)."""

    def __init__(self, ws):
        self.ws, self.frames, self.error = ws, [], None
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while True:
                f = self.ws.recv_frame(timeout=PHASE_SECONDS * 2)
                self.frames.append((wire_size(len(f.payload)), f.opcode, f.payload))
                if f.opcode == support.OP_CLOSE or b'"kind":"end"' in f.payload:
                    break
        except Exception as e:  # kept for the failure message
            self.error = repr(e)
        finally:
            self.done.set()


def tag_of(payload):
    """(kind, round) of one of our messages; kind is in the data."""
    m = json.loads(payload)
    d = m.get("data")
    return (d.get("kind"), d.get("round")), m


def run_case(binary):
    S = slow_consumer_bytes()
    half, three_q = S // 2, S // 4 * 3
    print(f"     --slow-consumer-bytes {S} (priority 4 from {half}, 3 from {three_q})",
          flush=True)
    with support.server(binary, ["--shards", "1", "--ping-interval-ms", "0",
                                 "--slow-consumer-bytes", str(S)], echo_path=None) as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect((support.LOOPBACK, srv.port))
        slow = support.raw_ws.__new__(support.raw_ws)
        slow.port, slow.timeout, slow.sock = srv.port, 10.0, sock
        slow.buf, slow.eof, slow.response_head = bytearray(), False, None
        slow.handshake("/ws")
        subscribe(slow, "prio")
        expect(not slow.buf, f"bytes after the subscribe reply: {support.short(slow.buf)}")
        client_port = sock.getsockname()[1]

        rd = support.raw_ws(srv.port, path="/ws", timeout=10)
        subscribe(rd, "prio")
        reader = reader_thread(rd)
        api = support.api_client(srv.port, timeout=30)

        def kernel_held():
            q = server_send_queue(srv.port, client_port)
            expect(q is not None, "the slow consumer's server socket is not in /proc/net/tcp")
            return q + fionread(sock)

        log = []          # what was published, in order: (kind, round, priority)
        published = 0     # estimated wire bytes + overhead towards the slow consumer
        deadline = time.monotonic() + PHASE_SECONDS

        def note(kind, rnd, prio, data_len):
            nonlocal published
            log.append((kind, rnd, prio))
            published += data_len + 300 + OVERHEAD   # envelope upper estimate

        # Coarse: big priority-1 fillers up to ~1 MiB below the priority-4 mark.
        n = 0
        while published - kernel_held() < half - MIB:
            expect(time.monotonic() < deadline and n < 4 * S // COARSE_DATA,
                   f"coarse fill did not reach {half - MIB} in time ({n} fillers)")
            data = {"kind": "coarse", "round": n, "pad": "c" * COARSE_DATA}
            api.publish("prio", data, priority=1)
            note("coarse", n, 1, COARSE_DATA)
            n += 1
        k_start = kernel_held()

        broadcasts = []   # (name, priority, connections answered)

        def broadcast_all(name):
            for prio in (4, 3, 2):
                r = api.ok("POST", "/api/broadcast",
                           {"event": "b", "priority": prio,
                            "data": {"kind": f"{name}-p{prio}", "round": -1}})
                expect(r.get("ok") is True and support.is_int(r.get("connections")),
                       f"broadcast: {r}")
                log.append((f"{name}-p{prio}", -1, prio))
                broadcasts.append((f"{name}-p{prio}", prio, r["connections"]))

        # Fine: rounds of filler + probes 4, 3, 2 until past three quarters.
        rounds, k_seen = 0, set()
        band_done = False
        while published - k_start < three_q + 256 * 1024:
            expect(time.monotonic() < deadline and rounds < MAX_ROUNDS,
                   f"fine phase did not pass {three_q} in time ({rounds} rounds)")
            batch = [{"channel": "prio", "priority": 1,
                      "data": {"kind": "fill", "round": rounds, "pad": "f" * FINE_DATA}}]
            for prio in (4, 3, 2):
                batch.append({"channel": "prio", "priority": prio,
                              "data": {"kind": f"p{prio}", "round": rounds}})
            r = api.ok("POST", "/api/publish", {"messages": batch})
            expect(len(r.get("results", [])) == 4, f"batch: {r}")
            note("fill", rounds, 1, FINE_DATA)
            for prio in (4, 3, 2):
                note(f"p{prio}", rounds, prio, 40)
            if rounds % 8 == 0:
                k_seen.add(kernel_held())
            rounds += 1
            est = published - k_start
            if not band_done and half + 1536 * 1024 < est < three_q - 1536 * 1024:
                broadcast_all("mid")
                band_done = True
        expect(band_done, "no round landed between the two marks for the broadcasts")
        broadcast_all("late")
        api.publish("prio", {"kind": "end", "round": -1}, priority=1)
        log.append(("end", -1, 1))
        k_end = kernel_held()
        stats = api.stats()["total"]

        # Drain the slow consumer from the outside.
        frames = []
        while True:
            try:
                f = slow.recv_frame(timeout=60)
            except (support.timed_out, support.connection_closed) as e:
                fail(f"slow consumer: {type(e).__name__} after {len(frames)} frames while "
                     f"draining")
            frames.append((wire_size(len(f.payload)), f.opcode, f.payload))
            expect(f.opcode == support.OP_TEXT, f"slow consumer got {f}")
            if b'"kind":"end"' in f.payload:
                break
        reader.done.wait(60)
        expect(reader.error is None and reader.done.is_set(),
               f"reader: {reader.error or 'did not get the end marker'}")

        # --- judge ------------------------------------------------------------------
        expect(k_seen == {k_start} and k_end == k_start,
               f"the kernel's share changed while stalled: {k_start} then {sorted(k_seen)}, "
               f"{k_end}; the cost recomputation needs it constant")
        got = []
        for size, _, payload in frames:
            (kind, rnd), m = tag_of(payload)
            got.append(((kind, rnd), size, m))
        # Every priority 1/2 message, in publish order; offsets increase on `prio`.
        wanted_12 = [(k, r) for k, r, p in log if p <= 2]
        got_12 = [t for t, _, m in got if m["priority"] <= 2]
        expect(got_12 == wanted_12, f"slow consumer: priority 1/2 messages differ from "
               f"what was published ({len(got_12)} of {len(wanted_12)}; first difference at "
               f"{next((i for i, (a, b) in enumerate(zip(got_12, wanted_12)) if a != b), '-')})")
        offs = [m["offset"] for _, _, m in got if m["channel"] == "prio"]
        expect(offs == sorted(offs) and len(set(offs)) == len(offs),
               "slow consumer: offsets on prio not strictly increasing")
        # Reader: everything.
        reader_tags = [tag_of(p)[0] for _, op, p in reader.frames if op == support.OP_TEXT]
        expect(reader_tags == [(k, r) for k, r, _ in log],
               f"reader got {len(reader_tags)} of {len(log)} messages, or out of order")

        # Prefix property.
        received = {t for t, _, _ in got}
        for prio in (4, 3):
            rnds = [r for r in range(rounds) if (f"p{prio}", r) in received]
            expect(rnds == list(range(len(rnds))),
                   f"priority {prio} probes received in rounds {rnds[:5]}…: not a prefix "
                   f"(a probe arrived after one was dropped)")
        k4 = sum(1 for r in range(rounds) if ("p4", r) in received)
        k3 = sum(1 for r in range(rounds) if ("p3", r) in received)
        expect(0 < k4 < k3 < rounds, f"priority 4 flowed for {k4} rounds, priority 3 for "
               f"{k3}, of {rounds}: expected 0 < p4 rounds < p3 rounds < all")
        gap = (k3 - k4) * (FINE_DATA + OVERHEAD)
        expect(gap >= S // 8, f"priority 3 kept flowing only {k3 - k4} rounds (~{gap} B) "
               f"after priority 4 stopped; the marks are S/4 = {S // 4} B apart")

        # Recompute the cost at every decision.
        sizes = {t: size for t, size, _ in got}
        stream = [size for _, size, _ in got]
        k = k_start
        sent_frames, acc = 0, 0
        for size in stream:
            if acc + size > k:
                break
            acc += size
            sent_frames += 1
        base = k + OVERHEAD * sent_frames    # the part of the stream no longer queued
        queued = 0                           # wire bytes + overhead pushed so far
        judged, unsure, wrong = 0, 0, []
        for kind, rnd, prio in log:
            t = (kind, rnd)
            if prio >= 3:
                cost = queued - base
                mark = half if prio == 4 else three_q
                if abs(cost - mark) < UNSURE:
                    unsure += 1
                else:
                    judged += 1
                    if (cost >= mark) == (t in received):
                        wrong.append((t, prio, cost, mark, t in received))
            if t in sizes:
                queued += sizes[t] + OVERHEAD
        expect(queued - base < S, f"the queue reached {queued - base} ≥ S = {S}")
        print(f"     kernel held {k} B; {judged} decisions judged, {unsure} too close to "
              f"call; p4 stopped after round {k4}, p3 after {k3}", flush=True)
        expect(not wrong, f"{len(wrong)} decisions contradict 'priority 4 dropped from "
               f"S/2, priority 3 from 3/4 S' (first: {wrong[:3]}; (tag, prio, cost, mark, "
               f"delivered))")

        # Counters against what the slow consumer saw.
        missing = {3: 0, 4: 0}
        for kind, rnd, prio in log:
            if prio >= 3 and (kind, rnd) not in received:
                missing[prio] += 1
        dbp = stats.get("dropped_by_priority", {})
        expect(dbp == {"3": missing[3], "4": missing[4]},
               f"dropped_by_priority {dbp}, the slow consumer missed {missing}")
        expect(stats.get("dropped") == missing[3] + missing[4],
               f"dropped {stats.get('dropped')}, expected {missing[3] + missing[4]}")
        expect(stats.get("slow_consumer_closes") == 0,
               f"slow_consumer_closes {stats.get('slow_consumer_closes')}")
        for name, prio, answered in broadcasts:
            want = 1 + ((name, -1) in received)
            expect(answered == want, f"broadcast {name}: connections {answered}, but "
                   f"{want} connection(s) got it")
        expect([(n, c) for n, _, c in broadcasts] ==
               [("mid-p4", 1), ("mid-p3", 2), ("mid-p2", 2),
                ("late-p4", 1), ("late-p3", 1), ("late-p2", 2)],
               f"broadcast connections {broadcasts}")
        api.close()
        slow.close()
        rd.close()
        srv.stop_and_expect_clean_exit()


def main():
    binary = support.binary_from_argv()
    return support.run_cases([
        ("slow consumer: priority 4 dropped from 1/2, priority 3 from 3/4 of "
         "--slow-consumer-bytes, 1-2 never; counters and broadcasts match", lambda: run_case(binary)),
    ], "priority thresholds", case_timeout=300)


if __name__ == "__main__":
    sys.exit(main())
