#!/usr/bin/python3
"""SIGHUP reload (docs/operations.md "Reload") with the real server (`--shards 2 --config
FILE`) and Python `websockets` clients:

* the file is rewritten (other allowed origins, a higher per-user limit, a new namespace
  with history, and --shards 3) and SIGHUP sent: every shard applies it (`reloads` in
  /api/stats), the new origin is let in and the old one refused 403, the per-user limit is
  the new one, a channel of the new namespace keeps history, --shards is named "needs a
  restart" and the shard count stays; a connection opened before the reload stays open and
  keeps receiving;
* a broken file on SIGHUP: "reload refused" with the file's problem, nothing changes.

Usage: reload.py PATH/TO/ringcastd. Fails without python3-websockets.
"""

import asyncio
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    import websockets  # noqa: F401
except ImportError:
    support.missing("python3 module 'websockets' (apt-get install python3-websockets)")

BEFORE = """insecure = true
shards = 2
allowed-origins = ["https://a.example"]
max-connections-per-user = 2
"""

AFTER = """insecure = true
shards = 3
allowed-origins = ["https://b.example"]
max-connections-per-user = 3

[namespace.news]
history = 5
"""


def upgrade_status(port, origin, user):
    r = support.http_exchange(port, support.upgrade_request(
        f"/ws?user={user}", headers=[f"Origin: {origin}"]))
    return r.status


def main():
    binary = support.binary_from_argv()
    tmp = tempfile.mkdtemp(prefix="ringcast-reload-")
    path = os.path.join(tmp, "ringcast.toml")
    open(path, "w").write(BEFORE)
    srv = support.server(binary, ["--config", path], echo_path=None)
    api = support.api_client(srv.port)
    state = {}

    def wait_line(text, since, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = srv.lines()[since:]
            hit = [l for l in lines if text in l]
            if hit:
                return hit
            time.sleep(0.05)
        support.fail(f"no line with {text!r} within {timeout}s:\n{srv.output()}")

    def reloads():
        return api.stats()["total"]["reloads"]

    async def before_the_reload():
        expect(upgrade_status(srv.port, "https://a.example", "u0") == 101, "origin a before")
        expect(upgrade_status(srv.port, "https://b.example", "u0") == 403, "origin b before")
        c = await pubsub_client.connect(srv.port, user="keeper")
        await c.subscribe("live")
        state["keeper"] = c
        api.ok("POST", "/api/publish", {"channel": "live", "data": 1})
        await c.wait_messages(1)
        expect(reloads() == 0, "no reload yet")

        # The reload, with the connection open (in this case's event loop).
        open(path, "w").write(AFTER)
        mark = len(srv.lines())
        srv.proc.send_signal(signal.SIGHUP)
        wait_line("ringcastd: reloaded:", mark)
        restart = wait_line("--shards changed to 3: needs a restart", mark)
        expect(restart, "--shards named")
        deadline = time.monotonic() + 10
        while reloads() != 2:  # both shards, each at its next loop pass
            expect(time.monotonic() < deadline, f"reloads {reloads()}, expected 2")
            await asyncio.sleep(0.05)
        expect(len(api.stats()["shards"]) == 2, "still 2 shards")
        api.ok("POST", "/api/publish", {"channel": "live", "data": 2})
        await c.wait_messages(2)
        expect(not c.closed.is_set(), "the connection opened before the reload stays open")
        await c.close()

    async def the_new_settings_apply():
        expect(upgrade_status(srv.port, "https://b.example", "u1") == 101, "origin b after")
        expect(upgrade_status(srv.port, "https://a.example", "u1") == 403, "origin a after")
        held = []
        for _ in range(3):
            held.append(await pubsub_client.connect(srv.port, user="limited"))
        try:
            await pubsub_client.connect(srv.port, user="limited")
            support.fail("a 4th connection of one user passed the reloaded limit of 3")
        except websockets.exceptions.InvalidStatusCode as e:
            expect(e.status_code == 429, f"4th connection: {e.status_code}")
        for c in held:
            await c.close()
        for n in range(3):
            api.ok("POST", "/api/publish", {"channel": "news:1", "data": n})
        page = api.ok("GET", "/api/history/news:1")
        expect([m["data"] for m in page["messages"]] == [0, 1, 2],
               f"history of the reloaded namespace: {page}")

    def a_broken_file_changes_nothing():
        open(path, "w").write("shards = 2\nmax-conections = 9\n")
        mark = len(srv.lines())
        before = reloads()
        srv.proc.send_signal(signal.SIGHUP)
        refused = wait_line("reload refused", mark)
        expect(any("unknown key 'max-conections'" in l for l in refused), f"{refused}")
        time.sleep(0.3)
        expect(reloads() == before, f"reloads {before} -> {reloads()}")
        expect(upgrade_status(srv.port, "https://b.example", "u2") == 101, "origin b kept")
        expect(srv.alive(), "alive")

    try:
        status = support.run_cases([
            ("SIGHUP: every shard applies the file; a connection stays open",
             before_the_reload),
            ("origins, per-user limit and a new namespace as reloaded", the_new_settings_apply),
            ("a broken file on SIGHUP: refused, the running configuration stays",
             a_broken_file_changes_nothing),
        ], title="reload on SIGHUP")
        expect(srv.alive(), f"server died: {srv.output()}")
    finally:
        api.close()
        srv.stop()
        os.unlink(path)
        os.rmdir(tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
