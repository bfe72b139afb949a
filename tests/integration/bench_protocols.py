#!/usr/bin/python3
"""ringcast-bench against real servers: ringcastd with the ringcast protocol and, when they
are installed (perf/peers/install; .ci/install runs it), the peers perf/compare measures —
nginx + nchan (--protocol ws), the Node `ws` broadcast server (ws) and Socket.IO 4
(socketio). A functional test of the load generator's protocol layers and bookkeeping with
small numbers, not a benchmark: nothing here is timed.

For each server: `fanout` (every subscriber subscribed, every accepted message delivered
exactly once and in order, over several channels so {channel} substitution is exercised),
`storm` and `idle` (every connection ready), and for ringcast `sustained` (one JSON line
per second before the summary). Against ringcastd with an HMAC key: `storm --token-file`
with perf/jwt/make_tokens.py's tokens (every connection ready, from two workers, fewer
tokens than connections) and without (every upgrade refused).

Usage: bench_protocols.py PATH/TO/ringcastd PATH/TO/ringcast-bench SOURCE_ROOT
Every peer is a case of its own; a peer that is not installed fails its case (.ci/install
installs all three), so the suite cannot shrink to ringcast alone without saying so.
"""

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect  # noqa: E402

SUBSCRIBERS = 120
CHANNELS = 3
RATE = 150
CONNECTIONS = 300


def load_script(source_root, relative):
    """A script of the source tree as a module (it need not end in .py)."""
    path = os.path.join(source_root, relative)
    name = os.path.basename(relative).replace(".", "_")
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_peers(source_root):
    """perf/peers/smoke's Server class (start/stop/sub_url) and installed(): the peers are
    started exactly the way the comparison and its smoke check start them."""
    return load_script(source_root, "perf/peers/smoke")


def run_bench(bench, args, timeout=60):
    """Runs the bench; returns (summary dict, interval lines). Fails on a non-zero exit."""
    cmd = [bench, *args, "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    expect(proc.returncode == 0,
           f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-1500:]}")
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    expect(lines, f"{' '.join(cmd)} printed no JSON")
    return lines[-1], [l for l in lines[:-1] if l.get("interval")]


def check_fanout(name, summary):
    """The bench's own verdict must be clean: all subscribed, nothing lost or repeated."""
    expect(summary["subscribers"] == SUBSCRIBERS,
           f"{name}: {summary['subscribers']} of {SUBSCRIBERS} subscribed "
           f"(failures {summary.get('subscribe_failures')})")
    expect(summary["published"] > 0, f"{name}: nothing was published: {summary}")
    expect(summary["expected_deliveries"] > 0, f"{name}: no deliveries expected: {summary}")
    expect(summary["deliveries"] == summary["expected_deliveries"],
           f"{name}: {summary['deliveries']} deliveries, {summary['expected_deliveries']} "
           f"expected")
    for key in ("loss", "duplicates", "out_of_order", "out_of_order_offset", "malformed",
                "unexpected_messages", "protocol_errors", "publish_rejected"):
        expect(summary[key] == 0, f"{name}: {key} = {summary[key]}")
    expect(summary["latency_us"]["p50"] > 0, f"{name}: no latency recorded")


def check_connections(name, scenario, summary, key):
    expect(summary[key] == CONNECTIONS,
           f"{name} {scenario}: {summary[key]} of {CONNECTIONS} ready: {summary}")
    expect(summary["failures"] == 0, f"{name} {scenario}: failures {summary['failures']}")


def exercise(bench, name, protocol, sub_url, publish_url=None):
    """fanout, storm and idle against one running server."""
    fan = ["fanout", "--protocol", protocol, "--url", sub_url, "--subscribers",
           str(SUBSCRIBERS), "--channels", str(CHANNELS), "--rate", str(RATE), "--size", "80",
           "--seconds", "1.5"]
    if publish_url:
        fan += ["--publish-url", publish_url]
    summary, _ = run_bench(bench, fan)
    check_fanout(name, summary)
    one = sub_url.replace("{channel}", "bench-0")
    storm, _ = run_bench(bench, ["storm", "--protocol", protocol, "--url", one,
                                 "--connections", str(CONNECTIONS)])
    check_connections(name, "storm", storm, "ready")
    idle, _ = run_bench(bench, ["idle", "--protocol", protocol, "--url", one,
                                "--connections", str(CONNECTIONS), "--seconds", "1"])
    check_connections(name, "idle", idle, "connections")
    if protocol == "socketio":
        expect(idle["socketio_connected"] == CONNECTIONS,
               f"{name} idle: {idle['socketio_connected']} Socket.IO connects answered")
    support.tap_comment(f"{name}: fanout {summary['deliveries']} deliveries of "
                        f"{summary['published']} messages, storm {storm['ready']}, "
                        f"idle {idle['connections']}")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    ringcastd, bench, root = sys.argv[1:4]
    if not os.access(bench, os.X_OK):
        support.missing(f"{bench} is not executable (build it: ninja -C build)")
    peers = load_peers(root)

    def ringcast():
        # The bench opens every connection from 127.0.0.1: one address, so the per-address
        # limits (meant for clients on the network) are off for it.
        with support.server(ringcastd, ["--shards", "1", "--insecure",
                                        "--max-connections-per-ip", "0",
                                        "--connect-rate-per-ip", "0"], echo_path=None) as srv:
            url = f"ws://127.0.0.1:{srv.port}/ws"
            exercise(bench, "ringcast", "ringcast", url)
            summary, intervals = run_bench(bench, [
                "sustained", "--url", url, "--subscribers", "50", "--rate", "50",
                "--seconds", "3.2"])
            expect(summary["scenario"] == "sustained", f"sustained summary: {summary}")
            expect(len(intervals) >= 2, f"sustained printed {len(intervals)} per-second lines")
            expect(all(i["deliveries_per_s"] > 0 for i in intervals),
                   f"a sustained second without deliveries: {intervals}")
            expect(summary["loss"] == 0, f"sustained loss {summary['loss']}")
            srv.stop_and_expect_clean_exit()

    def ringcast_tokens():
        # Fewer tokens than connections: connection i presents line i mod N, across both
        # workers. Users repeat (CONNECTIONS / TOKENS each), as the file says they may.
        tokens_made = CONNECTIONS // 3
        with tempfile.TemporaryDirectory(prefix="ringcast-bench-tokens-") as tmp:
            flag, tokens = load_script(root, "perf/jwt/make_tokens.py").make_tokens(
                "HS256", tokens_made, tmp)
            with support.server(ringcastd, ["--shards", "1", "--max-connections-per-ip", "0",
                                            "--connect-rate-per-ip", "0", *flag],
                                echo_path=None) as srv:
                url = f"ws://127.0.0.1:{srv.port}/ws"
                storm, _ = run_bench(bench, ["storm", "--url", url, "--connections",
                                             str(CONNECTIONS), "--procs", "2",
                                             "--token-file", tokens])
                check_connections("ringcast with tokens", "storm", storm, "ready")
                refused, _ = run_bench(bench, ["storm", "--url", url, "--connections", "20"])
                expect(refused["ready"] == 0 and refused["handshake_failed"] == 20,
                       f"storm without tokens against JWT keys: {refused}")
                srv.stop_and_expect_clean_exit()

    def peer(name, protocol):
        def case():
            expect(peers.installed(name),
                   f"{name} is not installed: perf/peers/install (run by .ci/install) "
                   "provides it")
            server = peers.Server(name)
            try:
                server.start()
                exercise(bench, name, protocol, server.sub_url("{channel}"),
                         f"http://127.0.0.1:{server.port}/pub/{{channel}}")
            finally:
                server.stop()
        return case

    return support.run_cases([
        ("ringcast: fanout, storm, idle, sustained", ringcast),
        ("ringcast with JWT: storm --token-file", ringcast_tokens),
        ("nchan: fanout, storm, idle", peer("nchan", "ws")),
        ("ws-broadcast: fanout, storm, idle", peer("ws-broadcast", "ws")),
        ("socketio: fanout, storm, idle", peer("socketio", "socketio")),
    ], title="ringcast-bench against ringcastd and its peers")


if __name__ == "__main__":
    sys.exit(main())
