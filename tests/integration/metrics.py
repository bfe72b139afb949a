#!/usr/bin/python3
"""GET /metrics (docs/operations.md "Metrics"): the counters of /api/stats in the Prometheus
text format, read with an independent parser — Debian's python3-prometheus-client
(`text_string_to_metric_families`) — against the real server (`--shards 2`, a namespace
with history and presence, two subscribers, five publishes):

* 200 with Content-Type `text/plain; version=0.0.4`; every family is `ringcast_*`, has
  HELP and TYPE (counter or gauge), counters end in `_total`, and every sample carries a
  `shard` label of a real shard (and `priority` for the per-priority drops);
* every figure /api/stats reports is a metric (save the two derived sums, `dropped` and
  `busy_refused`, which Prometheus adds itself), and the pub/sub figures agree exactly
  with /api/stats summed over the shards;
* the API key guards it like /api/stats: 401 without the key, 200 with it.

Usage: metrics.py PATH/TO/ringcastd. Fails without python3-prometheus-client.
"""

import asyncio
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    support.missing("python3 module 'prometheus_client' (apt-get install "
                    "python3-prometheus-client)")

# Figures of the pub/sub engine that nothing but clients and publishes move: equal in two
# reads a moment apart once the traffic is over (HTTP and core counters move with every
# request, these do not).
STABLE = ["sessions", "subscriptions", "messages_in", "messages_out", "bytes_out",
          "history_messages", "history_channels", "presence_channels", "presence_members",
          "presence_joins", "local_channels", "home_channels", "commands"]
DERIVED_SUMS = {"dropped", "busy_refused"}


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def metric_for(fams, key):
    """The family of /api/stats key `key`: the parser drops a counter's _total suffix."""
    return fams.get("ringcast_" + key)


def main():
    binary = support.binary_from_argv()
    key_dir = tempfile.mkdtemp(prefix="ringcast-metrics-")
    key_file = os.path.join(key_dir, "api-key")
    with open(key_file, "w") as f:
        f.write("metrics-test-key-0123456789abcdef\n")
    srv = support.server(binary, ["--shards", "2", "--insecure", "--namespace",
                                  "room:history=10,presence"], echo_path=None)
    keyed = support.server(binary, ["--api-key-file", key_file], echo_path=None)
    api = support.api_client(srv.port)
    async def traffic():
        # Each case runs in its own event loop: the clients close with this one, and the
        # figures below are read once everything they did has settled.
        a = await pubsub_client.connect(srv.port, user="ann")
        b = await pubsub_client.connect(srv.port, user="bob")
        await a.subscribe("room:1")
        await b.subscribe("room:1")
        for n in range(5):
            api.ok("POST", "/api/publish", {"channel": "room:1", "data": n})
        await a.wait_messages(5 + 2)  # 5 messages and the two joins
        await b.wait_messages(5 + 1)
        await a.close()
        await b.close()
        for _ in range(100):  # both gone: the gauges are back at 0 and stay there
            if api.stats()["total"]["sessions"] == 0:
                break
            await asyncio.sleep(0.05)

    def the_format_is_prometheus():
        r = api.request("GET", "/metrics")
        expect(r.status == 200, f"GET /metrics: {r.status}")
        ctype = r.headers.get("content-type", "")
        expect(ctype.startswith("text/plain; version=0.0.4"), f"Content-Type {ctype!r}")
        text = r.body.decode()
        fams = families(text)
        expect(len(fams) > 50, f"{len(fams)} families")
        for name, f in fams.items():
            expect(name.startswith("ringcast_"), f"family {name}")
            expect(f.type in ("counter", "gauge"), f"{name}: type {f.type}")
            expect(f.documentation.strip() != "", f"{name}: no HELP")
            expect(f.samples, f"{name}: no samples")
            for s in f.samples:
                expect(s.labels.get("shard") in ("0", "1"), f"{name}: labels {s.labels}")
                if f.type == "counter":
                    expect(s.name == name + "_total", f"counter sample {s.name}")
                expect(s.value >= 0, f"{s.name}: {s.value}")
        dropped = fams.get("ringcast_dropped_by_priority") or next(
            (f for n, f in fams.items() if any("priority" in s.labels for s in f.samples)),
            None)
        expect(dropped is not None, "a per-priority family with a priority label")
        # Every HELP and TYPE line once per family, in that order, before its samples.
        lines = text.splitlines()
        heads = [l for l in lines if l.startswith("# ")]
        expect(len(heads) == 2 * len(fams), f"{len(heads)} comment lines, {len(fams)} families")

    def every_stats_figure_is_a_metric():
        stats = api.stats()["total"]
        fams = families(api.request("GET", "/metrics").body.decode())
        missing = [k for k in stats if k not in DERIVED_SUMS and metric_for(fams, k) is None]
        expect(not missing, f"/api/stats figures without a metric: {missing}")
        for k in DERIVED_SUMS:
            expect(metric_for(fams, k) is None, f"{k} is a sum of rows; not a metric")

    def the_figures_agree():
        stats = api.stats()
        fams = families(api.request("GET", "/metrics").body.decode())
        for k in STABLE:
            f = metric_for(fams, k)
            expect(f is not None, f"no metric for {k}")
            total = sum(s.value for s in f.samples)
            expect(total == stats["total"][k],
                   f"{k}: metrics sum {total}, /api/stats {stats['total'][k]}")
            for s in f.samples:
                shard = int(s.labels["shard"])
                expect(s.value == stats["shards"][shard][k],
                       f"{k} shard {shard}: {s.value} vs {stats['shards'][shard][k]}")
        t = stats["total"]
        expect(t["messages_in"] == 5 and t["presence_joins"] == 2 and t["sessions"] == 0,
               f"the traffic: messages_in {t['messages_in']}, presence_joins "
               f"{t['presence_joins']}, sessions {t['sessions']}")

    def the_api_key_guards_it():
        k = support.api_client(keyed.port)
        r = k.request("GET", "/metrics")
        expect(r.status == 401, f"without the key: {r.status}")
        k.close()
        with_key = support.api_client(keyed.port,
                                      api_key="metrics-test-key-0123456789abcdef")
        r = with_key.request("GET", "/metrics")
        expect(r.status == 200 and b"ringcast_connections" in r.body, f"with the key: {r}")
        with_key.close()

    try:
        status = support.run_cases([
            ("traffic: two presence subscribers, five publishes", traffic),
            ("text format 0.0.4 that prometheus_client parses: names, HELP, TYPE, labels",
             the_format_is_prometheus),
            ("every /api/stats figure is a metric", every_stats_figure_is_a_metric),
            ("the pub/sub figures equal /api/stats, per shard and summed", the_figures_agree),
            ("the API key guards /metrics like /api/stats", the_api_key_guards_it),
        ], title="Prometheus metrics")
        expect(srv.alive() and keyed.alive(), "servers alive")
    finally:
        api.close()
        srv.stop()
        keyed.stop()
        os.unlink(key_file)
        os.rmdir(key_dir)
    sys.exit(status)


if __name__ == "__main__":
    main()
