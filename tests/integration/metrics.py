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
* the API key guards it like /api/stats: 401 without the key, 200 with it;
* the histograms (`ringcast_publish_to_send_seconds`, `ringcast_queue_depth_bytes`) are
  histogram families with a `shard` label on every sample, cumulative monotone buckets
  ending in `+Inf` equal to `_count`; the latency's `_count` on a shard is exactly the
  publishes delivered there (5 where a subscriber sat, 0 elsewhere: once per message per
  shard), and each histogram equals its /api/stats object (`{le, counts, count, sum}`,
  counts per bucket, one more than `le`);
* closes by code match the closes caused: the two subscribers and a raw client close with
  1000 (`closes_received`, code="1000"), a reserved opcode gets 1002 from the server
  (`closes_sent`, code="1002"), a client close with 4321 counts as code="other", and no
  connection ended without a close frame (1006 is 0);
* `--metrics-listen`: /metrics and /healthz answer there, every other path is 404 there,
  and /metrics on the API's listener is 404 naming --metrics-listen.

Usage: metrics.py PATH/TO/ringcastd. Fails without python3-prometheus-client.
"""

import asyncio
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402
from support import expect, pubsub_client  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    support.missing("python3 module 'prometheus_client' (apt-get install "
                    "python3-prometheus-client)")

METRICS_PATTERN = re.compile(r"metrics on [0-9.]+:(\d+)")
HANG_S = 30  # only against a hang
# /api/stats objects that are metrics of another name or shape (histograms, labels).
NOT_ROWS = {"closes_sent": "ringcast_closes_sent", "closes_received": "ringcast_closes_received",
            "publish_to_send_us": "ringcast_publish_to_send_seconds",
            "queue_depth_bytes": "ringcast_queue_depth_bytes"}
HISTOGRAMS = {"ringcast_publish_to_send_seconds": ("publish_to_send_us", 1e-6),
              "ringcast_queue_depth_bytes": ("queue_depth_bytes", 1)}
PUBLISHES = 5


def metrics_port(srv):
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        for line in srv.lines():
            m = METRICS_PATTERN.search(line)
            if m:
                return int(m.group(1))
        time.sleep(0.05)
    support.fail(f"no 'metrics on HOST:PORT' line\n{srv.output()}")


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
        for n in range(PUBLISHES):
            api.ok("POST", "/api/publish", {"channel": "room:1", "data": n})
        await a.wait_messages(PUBLISHES + 2)  # the messages and the two joins
        await b.wait_messages(PUBLISHES + 1)
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
            expect(f.type in ("counter", "gauge", "histogram"), f"{name}: type {f.type}")
            expect((f.type == "histogram") == (name in HISTOGRAMS), f"{name}: type {f.type}")
            expect(f.documentation.strip() != "", f"{name}: no HELP")
            expect(f.samples, f"{name}: no samples")
            for s in f.samples:
                expect(s.labels.get("shard") in ("0", "1"), f"{name}: labels {s.labels}")
                if f.type == "counter":
                    expect(s.name == name + "_total", f"counter sample {s.name}")
                if f.type == "histogram":
                    expect(s.name in (name + "_bucket", name + "_sum", name + "_count"),
                           f"histogram sample {s.name}")
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
        missing = [k for k in stats if k not in DERIVED_SUMS and k not in NOT_ROWS and
                   metric_for(fams, k) is None]
        missing += [k for k, name in NOT_ROWS.items() if k not in stats or name not in fams]
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

    def histograms_are_cumulative_and_count_the_deliveries():
        stats = api.stats()
        fams = families(api.request("GET", "/metrics").body.decode())
        for name, (key, unit) in HISTOGRAMS.items():
            f = fams.get(name)
            expect(f is not None and f.type == "histogram", f"{name}: {f}")
            for shard in ("0", "1"):
                mine = [s for s in f.samples if s.labels["shard"] == shard]
                buckets = [s for s in mine if s.name == name + "_bucket"]
                count = next(s.value for s in mine if s.name == name + "_count")
                total = next(s.value for s in mine if s.name == name + "_sum")
                bounds = [float(s.labels["le"]) for s in buckets]
                values = [s.value for s in buckets]
                expect(bounds == sorted(bounds) and bounds[-1] == float("inf"),
                       f"{name} shard {shard}: le {bounds}")
                expect(values == sorted(values), f"{name} shard {shard}: not cumulative {values}")
                expect(values[-1] == count, f"{name} shard {shard}: +Inf {values[-1]} vs "
                                            f"_count {count}")
                # The same histogram in /api/stats: bounds, per-bucket counts, count, sum.
                j = stats["shards"][int(shard)][key]
                expect(len(j["counts"]) == len(j["le"]) + 1 and sum(j["counts"]) == j["count"],
                       f"{key} shard {shard}: {j}")
                expect([round(b / unit) for b in bounds[:-1]] == j["le"],
                       f"{key} shard {shard}: le {j['le']} vs {bounds}")
                running = 0
                for b, v in zip(j["counts"], values):
                    running += b
                    expect(running == v, f"{key} shard {shard}: {j['counts']} vs {values}")
                if key == "publish_to_send_us":
                    expect(j["count"] == count and abs(j["sum"] * unit - total) < 1e-9,
                           f"{key} shard {shard}: {j} vs count {count} sum {total}")
        # Once per message per shard: the publishes on every shard that had a subscriber.
        latency = fams["ringcast_publish_to_send_seconds"]
        for shard in ("0", "1"):
            count = next(s.value for s in latency.samples
                         if s.name.endswith("_count") and s.labels["shard"] == shard)
            delivered = stats["shards"][int(shard)]["messages_out"] > 0
            expect(count == (PUBLISHES if delivered else 0),
                   f"shard {shard}: {count} latencies, messages_out "
                   f"{stats['shards'][int(shard)]['messages_out']}")
            expect(count <= stats["shards"][int(shard)]["messages_out"], "count ≤ messages_out")

    def closes_are_counted_by_code():
        # The traffic's two subscribers closed with 1000 (the websockets default).
        with support.raw_ws(srv.port, path="/ws") as raw:
            raw.send_frame(support.OP_CLOSE, support.close_payload(1000))
            expect(raw.recv_frame(HANG_S).close_code() == 1000, "1000 echoed")
        with support.raw_ws(srv.port, path="/ws") as raw:
            raw.send_frame(support.OP_CLOSE, support.close_payload(4321))
            expect(raw.recv_frame(HANG_S).close_code() == 4321, "4321 echoed")
        with support.raw_ws(srv.port, path="/ws") as raw:
            raw.send_frame(0x3)  # a reserved opcode: RFC 6455 §5.2, fail the connection
            expect(raw.recv_frame(HANG_S).close_code() == 1002, "1002 for a reserved opcode")
        want_received = {"1000": 3, "other": 1, "1006": 0, "1002": 0}
        want_sent = {"1002": 1, "1000": 0, "1008": 0}
        deadline = time.monotonic() + HANG_S
        while True:
            fams = families(api.request("GET", "/metrics").body.decode())

            def by_code(stem):
                out = {}
                for s in fams["ringcast_" + stem].samples:
                    out[s.labels["code"]] = out.get(s.labels["code"], 0) + s.value
                return out
            received, sent = by_code("closes_received"), by_code("closes_sent")
            got = ({k: received.get(k) for k in want_received}, {k: sent.get(k) for k in want_sent})
            if got == (want_received, want_sent) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        expect(got == (want_received, want_sent),
               f"closes received {got[0]} (want {want_received}), sent {got[1]} "
               f"(want {want_sent})")
        stats = api.stats()["total"]
        expect(stats["closes_received"]["1000"] == 3 and stats["closes_sent"]["1002"] == 1,
               f"/api/stats closes: {stats['closes_received']} {stats['closes_sent']}")
        reasons = {s.labels["code"]: s.labels["reason"]
                   for s in fams["ringcast_closes_sent"].samples}
        expect(reasons.get("1002") == "protocol error", f"reason labels {reasons}")
        expect("1005" not in reasons and "1006" not in reasons, "never-sent codes listed as sent")

    def metrics_listen_serves_metrics_only():
        with support.server(binary, ["--shards", "2", "--metrics-listen", "127.0.0.1:0"],
                            echo_path=None) as side:
            m = support.api_client(metrics_port(side))
            r = m.request("GET", "/metrics")
            expect(r.status == 200 and
                   r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
                   f"/metrics on --metrics-listen: {r}")
            fams = families(r.body.decode())
            expect("ringcast_publish_to_send_seconds" in fams, "histograms on --metrics-listen")
            expect(m.request("GET", "/healthz").status == 200, "/healthz on --metrics-listen")
            for method, path in [("GET", "/api/stats"), ("POST", "/api/publish"), ("GET", "/"),
                                 ("GET", "/ws"), ("GET", "/nosuch")]:
                r = m.request(method, path)
                expect(r.status == 404, f"{method} {path} on --metrics-listen: {r.status}")
            m.close()
            main_api = support.api_client(side.port)
            r = main_api.request("GET", "/metrics")
            expect(r.status == 404 and b"--metrics-listen" in r.body,
                   f"/metrics on the main listener: {r}")
            expect(main_api.request("GET", "/api/stats").status == 200, "/api/stats stays")
            main_api.close()
            side.stop_and_expect_clean_exit()

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
            ("histograms: cumulative, +Inf = _count, latency counted once per message per "
             "shard, equal to /api/stats", histograms_are_cumulative_and_count_the_deliveries),
            ("closes by code: 1000 and other received, 1002 sent for a reserved opcode",
             closes_are_counted_by_code),
            ("--metrics-listen serves /metrics and /healthz, nothing else",
             metrics_listen_serves_metrics_only),
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
