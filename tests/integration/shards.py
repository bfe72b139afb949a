#!/usr/bin/python3
"""--shards N: several shards (also more than this machine has CPUs) serve connections.

Usage: shards.py PATH/TO/ringcastd
For --shards 1, 2, 3 and 2 x CPUs: 50 concurrent websockets clients each echo 50 messages
of varying size and type and check content and order; /healthz answers; SIGTERM exits 0.
With SO_REUSEPORT the kernel spreads the 50 connections over the shards' listeners; every
shard must have served echo traffic, read from /api/stats per shard (the odds that 50
connections miss one of 4 shards are 4 x (3/4)^50, about 2 in a million).
"""

import asyncio
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

try:
    import websockets
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

CLIENTS = 50
MESSAGES = 50
ECHO_FLOOR = 400


async def client(port, index):
    rng = random.Random(index)
    async with websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10,
                                  close_timeout=5, ping_interval=None,
                                  max_size=None) as ws:
        sent = []
        for i in range(MESSAGES):
            size = rng.choice((0, 1, 10, 125, 126, 1000, 65536, 70000))
            if i % 2:
                m = f"c{index}m{i}:" + "é" * (size // 2)
            else:
                m = bytes([index % 256, i % 256]) + rng.randbytes(size)
            sent.append(m)
            await ws.send(m)
        for i, m in enumerate(sent):
            got = await asyncio.wait_for(ws.recv(), 20)
            expect(got == m, f"client {index} message {i}: expected "
                   f"{type(m).__name__} of {len(m)}, got {type(got).__name__} of {len(got)}")
        await ws.close()
        expect(ws.close_code == 1000, f"client {index}: close answered with {ws.close_code}")


def shard_case(binary, shards):
    async def check():
        with support.server(binary, ["--shards", str(shards)]) as srv:
            results = await asyncio.gather(*(client(srv.port, i) for i in range(CLIENTS)),
                                           return_exceptions=True)
            failures = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
            if failures:
                index, error = failures[0]
                support.fail(f"--shards {shards}: {len(failures)} of {CLIENTS} clients "
                             f"failed; first: client {index}: {error!r}\n{srv.output()}")
            r = support.http_exchange(srv.port,
                                      b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            expect(r.status == 200, f"--shards {shards}: /healthz → {r.status}")
            # Each client sends a handshake of over 200 bytes and 50 frames of at least 6; the
            # two HTTP requests here are under 200 bytes together, so a shard past ECHO_FLOOR
            # bytes served at least one echo client.
            api = support.api_client(srv.port)
            received = [s.get("bytes_received") for s in api.stats().get("shards", [])]
            api.close()
            expect(len(received) == shards, f"--shards {shards}: /api/stats lists "
                                            f"{len(received)} shards")
            idle = [i for i, b in enumerate(received) if not (isinstance(b, int) and
                                                               b > ECHO_FLOOR)]
            expect(not idle, f"--shards {shards}: shards {idle} served no echo client "
                             f"(bytes received per shard {received})")
            srv.stop_and_expect_clean_exit()
    return check


def main():
    binary = support.binary_from_argv()
    cpus = len(os.sched_getaffinity(0))
    counts = [1, 2, 3]
    if 2 * cpus not in counts:
        counts.append(2 * cpus)
    cases = [(f"--shards {n}: {CLIENTS} clients x {MESSAGES} echoes"
              + (" (more shards than the CPUs available)" if n > cpus else ""),
              shard_case(binary, n)) for n in counts]
    return support.run_cases(cases, f"ringcastd shards ({cpus} CPUs available)",
                             case_timeout=120)


if __name__ == "__main__":
    sys.exit(main())
