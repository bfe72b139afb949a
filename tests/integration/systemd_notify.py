#!/usr/bin/python3
"""ringcastd under systemd's notify protocol (docs/operations.md "systemd"), against a
notify socket this test listens on, as the service manager would:

* READY=1 (with STATUS=) arrives once the server listens: a connection made right after it
  is answered;
* WATCHDOG=1 keeps coming while every shard's loop turns (WATCHDOG_USEC=1000000);
* one shard's thread frozen (ptrace, the other shard and the main thread running on): the
  server says which shard is stuck and WATCHDOG=1 stops, while STATUS= goes on; thawed,
  WATCHDOG=1 comes back — so systemd restarts a process with a stuck shard and only then;
* SIGTERM: STOPPING=1;
* without NOTIFY_SOCKET nothing changes (the other tests run that way).

Usage: systemd_notify.py PATH/TO/ringcastd.
"""

import ctypes
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        support.fail(f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


def thread_named(pid, name):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == name:
                return int(tid)
    support.fail(f"no thread named {name} in {pid}: shard threads should be named")


class manager:
    """The notify socket's side: datagrams as dicts of their assignments."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            support.fail(f"no notify datagram within {timeout}s")
        return dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)

    def until(self, want, timeout=10.0, what=None):
        """Datagrams until one for which want(d) holds; returns (it, those before)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                support.fail(f"{what or 'datagram'} not seen within {timeout}s; got {seen[-5:]}")
            d = self.next(left)
            if want(d):
                return d, seen
            seen.append(d)


def main():
    binary = support.binary_from_argv()
    tmp = tempfile.mkdtemp(prefix="ringcast-notify-")
    path = os.path.join(tmp, "notify")
    m = manager(path)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv = support.server(binary, ["--shards", "2"], echo_path=None)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def ready_once_listening():
        d, before = m.until(lambda d: "READY" in d, what="READY=1")
        expect(d["READY"] == "1" and not before, f"first datagram {before or d}")
        expect("connections" in d.get("STATUS", "") and "2 shards" in d["STATUS"],
               f"STATUS with READY: {d}")
        api = support.api_client(srv.port)
        expect(api.ok("GET", "/healthz") is not None, "healthz after READY")
        api.close()

    def pets_while_turning():
        pets = 0
        for _ in range(3):
            m.until(lambda d: d.get("WATCHDOG") == "1", what="WATCHDOG=1")
            pets += 1
        expect(pets == 3, "three pets")

    def a_stuck_shard_stops_the_pets():
        pid = srv.proc.pid
        tid = thread_named(pid, "ringcast-s1")
        ptrace(PTRACE_SEIZE, tid)
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)  # the thread is stopped; the rest of the process runs on
        try:
            # Datagrams sent before the freeze may still be queued: the first one without
            # a pet marks the stuck state, and while frozen no pet follows it.
            m.until(lambda d: "WATCHDOG" not in d and "STATUS" in d, what="a tick without a pet")
            for _ in range(4):
                d = m.next()
                expect("WATCHDOG" not in d, f"a pet while shard 1 is frozen: {d}")
                expect("STATUS" in d, f"STATUS goes on: {d}")
            deadline = time.monotonic() + 5
            while not any("shard 1: its loop has not turned" in l for l in srv.lines()):
                expect(time.monotonic() < deadline, f"no stuck-shard line: {srv.output()}")
                time.sleep(0.05)
        finally:
            ptrace(PTRACE_DETACH, tid)
        m.until(lambda d: d.get("WATCHDOG") == "1", what="WATCHDOG=1 after the thaw")
        expect(srv.alive(), "alive after the thaw")

    def stopping_on_sigterm():
        srv.proc.send_signal(signal.SIGTERM)
        m.until(lambda d: d.get("STOPPING") == "1", what="STOPPING=1")
        srv.proc.wait(timeout=10)
        expect(srv.proc.returncode == 0, f"exit {srv.proc.returncode}")

    try:
        status = support.run_cases([
            ("READY=1 once listening, with STATUS=", ready_once_listening),
            ("WATCHDOG=1 while every shard's loop turns", pets_while_turning),
            ("a frozen shard withholds WATCHDOG=1 until it turns again",
             a_stuck_shard_stops_the_pets),
            ("SIGTERM sends STOPPING=1 and exits 0", stopping_on_sigterm),
        ], title="systemd notify protocol")
    finally:
        srv.stop()
        m.sock.close()
        os.unlink(path)
        os.rmdir(tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
