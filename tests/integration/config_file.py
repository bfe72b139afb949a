#!/usr/bin/python3
"""The config file and environment variables with the real binary (docs/operations.md
"Configuration"):

* a server started with `--config FILE` runs with the file's settings (its shard count,
  its namespace tables: presence answers on the file's namespace);
* `--check-config` on a broken file prints every problem as `FILE:LINE: sentence`, in file
  order, and exits 2; a good file: exit 0;
* precedence flag > RINGCAST_<OPTION> > file > default, seen in `--print-config`, whose
  output read back as a config file gives the same `--print-config`.

Usage: config_file.py PATH/TO/ringcastd.
"""

import asyncio
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

GOOD = """# ringcastd test configuration
shards = 2
insecure = true
max-connections-per-user = 4

[namespace.room]
history = 20
presence = true
"""

BROKEN = """shards = 0
max-conections = 5
ping-interval-ms = "soon"
version = true
"""


def run(binary, args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("RINGCAST_")}
    e.update(env or {})
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, env=e)


def values(printed):
    """name -> value of a --print-config text, sources (comments) left out."""
    out = {}
    for line in printed.splitlines():
        m = re.match(r"^([a-z0-9-]+) = (.*?)  # ", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def main():
    binary = support.binary_from_argv()
    tmp = tempfile.mkdtemp(prefix="ringcast-config-")
    good = os.path.join(tmp, "good.toml")
    broken = os.path.join(tmp, "broken.toml")
    open(good, "w").write(GOOD)
    open(broken, "w").write(BROKEN)
    srv = support.server(binary, ["--config", good], echo_path=None)

    async def the_server_runs_the_file():
        stats = support.api_client(srv.port)
        shards = len(stats.stats()["shards"])
        expect(shards == 2, f"shards from the file: {shards}")
        c = await pubsub_client.connect(srv.port, user="ann")
        await c.subscribe("room:1")
        reply = await c.ok("presence", channel="room:1")
        expect(reply.get("users") == 1 and reply.get("members") ==
               [{"userId": "ann", "connections": 1}], f"presence on the file's namespace: {reply}")
        await c.close()
        stats.close()

    def check_config_says_every_problem():
        r = run(binary, ["--config", broken, "--check-config"])
        expect(r.returncode == 2, f"exit {r.returncode}")
        lines = [l for l in r.stderr.splitlines() if l.startswith("ringcastd: ")]
        expect(len(lines) == 4, f"four problems: {r.stderr}")
        numbers = [int(re.match(rf"ringcastd: {re.escape(broken)}:(\d+): ", l).group(1))
                   for l in lines]
        expect(numbers == [1, 2, 3, 4], f"lines in file order: {numbers}\n{r.stderr}")
        expect("unknown key 'max-conections'" in r.stderr, r.stderr)
        expect("'version' is for the command line only" in r.stderr, r.stderr)
        ok = run(binary, ["--config", good, "--check-config"])
        expect(ok.returncode == 0 and "configuration OK (2 shards" in ok.stdout,
               f"a good file: {ok.returncode} {ok.stdout[:200]} {ok.stderr}")

    def precedence_and_round_trip():
        r = run(binary, ["--config", good, "--print-config"],
                env={"RINGCAST_MAX_CONNECTIONS_PER_USER": "7", "RINGCAST_SHARDS": "3"})
        expect(r.returncode == 0, r.stderr)
        v = values(r.stdout)
        expect(v.get("shards") == "3" and "shards = 3  # environment" in r.stdout,
               f"environment over file: {v.get('shards')}")
        expect(v.get("max-connections-per-user") == "7", f"{v.get('max-connections-per-user')}")
        expect("insecure = true  # config file" in r.stdout, "from the file")
        expect("[namespace.room]  # config file" in r.stdout, "the namespace table")
        flag = run(binary, ["--config", good, "--shards", "1", "--print-config"],
                   env={"RINGCAST_SHARDS": "3"})
        expect("shards = 1  # command line" in flag.stdout, "flag over environment")
        again = os.path.join(tmp, "again.toml")
        open(again, "w").write(r.stdout)
        back = run(binary, ["--config", again, "--print-config"])
        expect(back.returncode == 0, back.stderr)
        expect(values(back.stdout) == v, "the printed configuration read back gives the same")
        unknown = run(binary, ["--config", good, "--check-config"], env={"RINGCAST_SHRADS": "2"})
        expect(unknown.returncode == 0 and
               "warning: the environment variable RINGCAST_SHRADS is no option" in unknown.stderr,
               f"an unknown variable: {unknown.returncode} {unknown.stderr}")

    try:
        status = support.run_cases([
            ("a server started with --config runs with the file's settings",
             the_server_runs_the_file),
            ("--check-config: every problem with FILE:LINE, in order, exit 2",
             check_config_says_every_problem),
            ("flag > environment > file; --print-config reads back the same",
             precedence_and_round_trip),
        ], title="config file and environment")
        expect(srv.alive(), f"server died: {srv.output()}")
    finally:
        srv.stop()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
