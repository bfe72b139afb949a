#!/usr/bin/python3
"""SIGTERM with many connections held: every connection's teardown completes before the
exit (the exit line's `closed` equals `accepted` for each shard) and the exit comes
within the drain contract (--shutdown-timeout-ms plus a second without completions).

Teardown cost must not grow with the number of other connections: cancelling a
connection's operations by descriptor made the kernel walk every armed receive of the
ring, and SIGTERM with 19 900 idle connections took ~12 s, with none of them released
(docs/decisions.md, "Connection teardown cost"; perf/RESULTS.md).

The connections are held by ringcast-bench (`idle`), not by a client library: the point is
the count, and the bench is the only client here that holds thousands from one process.

Usage: shutdown_many.py PATH/TO/ringcastd PATH/TO/ringcast-bench
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, fail  # noqa: E402

CONNECTIONS = 19000
SHUTDOWN_TIMEOUT_MS = 2000
# The drain contract: the shutdown timeout, one second without completions, and slack for
# a loaded CI host. Far below what the by-descriptor cancel took (~12 s at 19 900).
EXIT_BUDGET_S = SHUTDOWN_TIMEOUT_MS / 1000 + 2.5
EXIT_LINE = re.compile(r"shard (\d+): accepted (\d+), closed (\d+)")


def open_connections(srv):
    stats = support.http_exchange(srv.port, b"GET /api/stats HTTP/1.1\r\nHost: t\r\n\r\n")
    expect(stats.status == 200, f"/api/stats answered {stats.status}")
    return json.loads(stats.body)["total"]["connections"] - 1  # minus this request


def sigterm_with_many_connections(binary, bench):
    # Every connection comes from 127.0.0.1 (the bench uses one source address up to its
    # ephemeral port range): the per-address limits are off so one address may hold them all.
    with support.server(binary, ["--shards", "1", "--shutdown-timeout-ms",
                                 str(SHUTDOWN_TIMEOUT_MS), "--max-connections-per-ip", "0",
                                 "--connect-rate-per-ip", "0"]) as srv:
        holder = subprocess.Popen(
            [bench, "idle", "--url", f"ws://127.0.0.1:{srv.port}/echo", "--connections",
             str(CONNECTIONS), "--seconds", "60", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            held = 0
            while time.monotonic() < deadline and holder.poll() is None:
                held = open_connections(srv)
                if held >= CONNECTIONS:
                    break
                time.sleep(0.2)
            if held < CONNECTIONS:
                bench_said = (holder.stderr.read().decode()[-800:]
                              if holder.poll() is not None else "still running")
                fail(f"only {held} of {CONNECTIONS} connections open before the signal "
                     f"(bench: {bench_said})")
            started = time.monotonic()
            code = srv.stop(signal.SIGTERM, timeout=30)  # fails if it is still running
            took = time.monotonic() - started
        finally:
            holder.kill()
            holder.wait(timeout=10)
        expect(code == 0, f"exit status {code}, expected 0\n{srv.output()}")
        shards = [tuple(int(g) for g in m.groups())
                  for m in map(EXIT_LINE.search, srv.lines()) if m]
        expect(shards, f"no per-shard exit line\n{srv.output()}")
        for shard, accepted, closed in shards:
            expect(accepted >= CONNECTIONS and closed == accepted,
                   f"shard {shard}: accepted {accepted}, closed {closed}: connections were "
                   f"still being torn down at exit ({took:.1f} s after SIGTERM)\n"
                   f"{srv.output()}")
        expect(took <= EXIT_BUDGET_S,
               f"exit {took:.1f} s after SIGTERM with {CONNECTIONS} connections; the drain "
               f"contract is {EXIT_BUDGET_S:.1f} s\n{srv.output()}")
        print(f"     {CONNECTIONS} connections: exited {took:.2f} s after SIGTERM, "
              f"all released", flush=True)


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
        [(f"SIGTERM with {CONNECTIONS} connections held: all released, exit in time",
          lambda: sigterm_with_many_connections(binary, bench))],
        "ringcastd shutdown with many connections")


if __name__ == "__main__":
    sys.exit(main())
