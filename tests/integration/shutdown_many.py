#!/usr/bin/python3
"""SIGTERM with many connections held: every connection's teardown completes before the
exit (the exit line's `closed` equals `accepted` for each shard), the clients see it (every
connection the bench held ends from the server's side, none fails; the test's own raw
clients each get close 1001 and then EOF), and the exit is not slow for the count.

Teardown cost must not grow with the number of other connections: cancelling a
connection's operations by descriptor made the kernel walk every armed receive of the
ring, and SIGTERM with 19 900 idle connections took ~12 s, with none of them released
(docs/decisions.md, "Connection teardown cost"; perf/RESULTS.md).

"Not slow" is measured against this run, not a wall clock: the exit must come within the
drain contract (--shutdown-timeout-ms plus the second the server waits for final
completions) plus TEARDOWN_FACTOR times what opening the same connections took just
before (accepts and upgrades on the same machine under the same load).

The connections are held by ringcast-bench (`idle`), not by a client library: the point is
the count, and the bench is the only client here that holds thousands from one process.
What the bench's connections saw is read from its progress lines (one a second on stderr:
`open N/M  failed F  dropped D`, where dropped counts connections the server ended while
they were held, once their sockets are finished: a close frame, EOF or a reset).

Usage: shutdown_many.py PATH/TO/ringcastd PATH/TO/ringcast-bench
"""

import concurrent.futures
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import OP_CLOSE, expect, fail  # noqa: E402

CONNECTIONS = 19000
RAW_CLIENTS = 20  # the test's own: they look at the close code, which the bench does not
SHUTDOWN_TIMEOUT_MS = 2000
FINAL_STALL_S = 1.0  # after the shutdown timeout the server waits this long for final CQEs
TEARDOWN_FACTOR = 3  # x the time opening the connections took in this run
HANG_S = 60  # only against a hang: every wait below gives up after this
EXIT_LINE = re.compile(r"shard (\d+): accepted (\d+), closed (\d+)")
PROGRESS = re.compile(r"idle\s+\d+s\s+(\w+)\s+open (\d+)/(\d+)\s+failed (\d+)\s+"
                      r"dropped (\d+)")


def open_connections(srv):
    stats = support.http_exchange(srv.port, b"GET /api/stats HTTP/1.1\r\nHost: t\r\n\r\n")
    expect(stats.status == 200, f"/api/stats answered {stats.status}")
    return json.loads(stats.body)["total"]["connections"] - 1  # minus this request


class bench_progress:
    """Reads the bench's progress lines; `latest` is the newest as a dict, with `seq`
    counting the lines so a caller can wait for one printed after a moment."""

    def __init__(self, stream):
        self.latest, self.seq, self.tail = None, 0, []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            with self._cond:
                self.tail = (self.tail + [line])[-8:]
                m = PROGRESS.search(line)
                if m:
                    phase, opened, total, failed, dropped = m.groups()
                    self.seq += 1
                    self.latest = {"phase": phase, "open": int(opened), "total": int(total),
                                   "failed": int(failed), "dropped": int(dropped),
                                   "seq": self.seq}
                self._cond.notify_all()

    def wait_for(self, predicate, timeout):
        """Waits until the newest progress line satisfies `predicate` and returns it;
        None if none did within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.latest is None or not predicate(self.latest):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))
            return dict(self.latest)

    def said(self):
        with self._cond:
            return "\n  ".join(self.tail) or "(nothing)"


def raw_client_goodbye(ws):
    """What one of the test's raw clients saw after the signal: None if a close 1001 and
    then EOF after its reply, else a description. It closes its socket at the end, as a
    real client does (the server waits for that FIN, up to its shutdown timeout)."""
    with ws:
        try:
            f = ws.recv_frame(timeout=HANG_S)
        except (support.timed_out, support.connection_closed) as e:
            return f"{type(e).__name__} {e} instead of a close frame"
        if f.opcode != OP_CLOSE or f.close_code() != 1001:
            return f"{f} instead of close 1001"
        ws.send_frame(OP_CLOSE, support.close_payload(1001))
        try:
            ws.wait_eof(HANG_S)
        except support.timed_out:
            return "TCP still open after the close handshake"
        return None


def sigterm_with_many_connections(binary, bench):
    # Every connection comes from 127.0.0.1 (the bench uses one source address up to its
    # ephemeral port range): the per-address limits are off so one address may hold them all.
    with support.server(binary, ["--shards", "1", "--shutdown-timeout-ms",
                                 str(SHUTDOWN_TIMEOUT_MS), "--max-connections-per-ip", "0",
                                 "--connect-rate-per-ip", "0"]) as srv:
        opening = time.monotonic()
        holder = subprocess.Popen(
            [bench, "idle", "--url", f"ws://127.0.0.1:{srv.port}/echo", "--connections",
             str(CONNECTIONS), "--seconds", "300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        progress = bench_progress(holder.stderr)
        raws = []
        try:
            # The baseline: how long this machine, now, takes to accept and upgrade them.
            deadline = time.monotonic() + HANG_S
            held = 0
            while time.monotonic() < deadline and holder.poll() is None:
                held = open_connections(srv)
                if held >= CONNECTIONS:
                    break
                time.sleep(0.1)
            opened_s = time.monotonic() - opening
            expect(held >= CONNECTIONS, f"only {held} of {CONNECTIONS} connections open "
                   f"after {HANG_S} s (bench: {progress.said()})")
            before = progress.wait_for(
                lambda p: p["phase"] == "holding" and p["open"] == CONNECTIONS, HANG_S)
            expect(before is not None, f"the bench never said it holds all {CONNECTIONS} "
                   f"(bench: {progress.said()})")
            raws = [support.raw_ws(srv.port, timeout=HANG_S) for _ in range(RAW_CLIENTS)]
            expect(open_connections(srv) == CONNECTIONS + RAW_CLIENTS,
                   f"connections before the signal: {open_connections(srv)}, expected "
                   f"{CONNECTIONS} + {RAW_CLIENTS}")
            with concurrent.futures.ThreadPoolExecutor(RAW_CLIENTS) as pool:
                goodbyes = [pool.submit(raw_client_goodbye, ws) for ws in raws]
                started = time.monotonic()
                code = srv.stop(signal.SIGTERM, timeout=HANG_S)  # fails if still running
                took = time.monotonic() - started
                raw_seen = [f.result(timeout=2 * HANG_S) for f in goodbyes]
            # The bench prints a line a second: wait for one that shows them all gone. A
            # connection leaves `open` when the close frame arrives and is counted in
            # `dropped` only once its socket is finished, so wait for the count.
            after = progress.wait_for(
                lambda p: p["seq"] > before["seq"] and p["open"] == 0
                and p["dropped"] >= before["open"], HANG_S)
        finally:
            for ws in raws:
                ws.close()
            holder.kill()
            holder.wait(timeout=10)
        expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")
        shards = [tuple(int(g) for g in m.groups())
                  for m in map(EXIT_LINE.search, srv.lines()) if m]
        expect(shards, f"no per-shard exit line\n{srv.output()}")
        for shard, accepted, closed in shards:
            expect(accepted >= CONNECTIONS + RAW_CLIENTS and closed == accepted,
                   f"shard {shard}: accepted {accepted}, closed {closed}: connections were "
                   f"still being torn down at exit ({took:.1f} s after SIGTERM)\n"
                   f"{srv.output()}")
        # What the clients saw, from outside the server.
        expect(after is not None, f"{HANG_S} s after the server exited the bench had not seen "
               f"all {before['open']} connections it held end: {progress.latest} (bench: "
               f"{progress.said()})")
        expect(after["dropped"] == before["open"] and after["failed"] == before["failed"] == 0,
               f"the bench held {before['open']} connections at the signal; after the exit it "
               f"saw {after['dropped']} ended by the server ({after['failed']} failed): "
               f"{after}")
        bad = [(i, what) for i, what in enumerate(raw_seen) if what is not None]
        expect(not bad, f"raw clients that did not see close 1001 then EOF (index, what): "
               f"{bad[:5]}")
        budget = SHUTDOWN_TIMEOUT_MS / 1000 + FINAL_STALL_S + TEARDOWN_FACTOR * opened_s
        expect(took <= budget,
               f"exit {took:.1f} s after SIGTERM with {CONNECTIONS + RAW_CLIENTS} connections; "
               f"opening them took {opened_s:.1f} s in this run, so the bound is "
               f"{budget:.1f} s ({SHUTDOWN_TIMEOUT_MS} ms shutdown timeout + "
               f"{FINAL_STALL_S:.0f} s + {TEARDOWN_FACTOR} x {opened_s:.1f} s)\n"
               f"{srv.output()}")
        print(f"# {CONNECTIONS} + {RAW_CLIENTS} connections (opened in {opened_s:.2f} s): "
              f"exited {took:.2f} s after SIGTERM (bound {budget:.2f} s), all released; the "
              f"bench saw {after['dropped']} ended, the raw clients {RAW_CLIENTS} x 1001",
              flush=True)


def main():
    binary = support.binary_from_argv()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 100:
        support.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {CONNECTIONS} "
                     f"connections one shard and one bench process must hold")
    if len(sys.argv) < 3 or not os.access(sys.argv[2], os.X_OK):
        fail("usage: shutdown_many.py PATH/TO/ringcastd PATH/TO/ringcast-bench")
    bench = sys.argv[2]
    return support.run_cases(
        [(f"SIGTERM with {CONNECTIONS} connections held: all released, clients see it, "
          f"exit in time",
          lambda: sigterm_with_many_connections(binary, bench))],
        "ringcastd shutdown with many connections")


if __name__ == "__main__":
    sys.exit(main())
