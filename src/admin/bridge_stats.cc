// The queue bridges' rows (admin::bridge_row, docs/bridges.md "Health and figures") in GET
// /api/stats and GET /metrics. A block of their own: the rows are per bridge, not per
// shard, so they stand beside the shard tables of stats.h rather than in them.
//
//   /api/stats  "bridges":[{"kind":"bull","name":"reports","shard":0,"up":1,…},…]
//   /metrics    ringcast_bridge_<figure>{kind="bull",bridge="reports",shard="0"} N
#include "gather.h"

#include <ringcast/core.h>

#include <algorithm>

namespace ringcast::admin {

namespace {

/// One figure of a row: its JSON key (and metric stem), type and help.
struct bridge_figure {
    std::string_view name;
    bool counter; // else a gauge
    uint64_t (*value)(const bridge_row& r) noexcept;
    std::string_view help;
};

// clang-format off
constexpr bridge_figure figures[] = {
    {"up", false, [](const bridge_row& r) noexcept -> uint64_t { return r.up ? 1 : 0; },
     "1 while the bridge's broker connection is up and the queue is read, else 0"},
    {"connects", true, [](const bridge_row& r) noexcept { return r.connects; },
     "broker connections of the bridge that came up"},
    {"connect_failures", true, [](const bridge_row& r) noexcept { return r.connect_failures; },
     "broker connection attempts of the bridge that failed"},
    {"disconnects", true, [](const bridge_row& r) noexcept { return r.disconnects; },
     "up broker connections of the bridge that went down (each followed by a reconnect)"},
    {"received", true, [](const bridge_row& r) noexcept { return r.received; },
     "events read from the queue, re-reads after a failure included"},
    {"published", true, [](const bridge_row& r) noexcept { return r.published; },
     "publishes of queue events ringcast accepted"},
    {"publish_failed", true, [](const bridge_row& r) noexcept { return r.publish_failed; },
     "publishes of queue events ringcast refused (engine down); the events are read again"},
    {"unmatched", true, [](const bridge_row& r) noexcept { return r.unmatched; },
     "events no rule takes, acknowledged and ignored"},
    {"unmapped", true, [](const bridge_row& r) noexcept { return r.unmapped; },
     "events a rule takes but no valid channel or data could be made of"},
    {"dead_lettered", true, [](const bridge_row& r) noexcept { return r.dead_lettered; },
     "unmapped events handed to the dead-letter exchange"},
    {"acked", true, [](const bridge_row& r) noexcept { return r.acked; },
     "events acknowledged to the broker, after ringcast accepted their publishes"},
    {"in_flight", false, [](const bridge_row& r) noexcept { return r.in_flight; },
     "events of the read being published now"},
};
// clang-format on

/// Every shard's rows with the shard that runs them, in shard order.
template <typename Fn>
void for_each_row(std::span<const gather_msg> answers, Fn&& fn) {
    std::vector<const gather_msg*> sorted;
    for (const gather_msg& a : answers) {
        sorted.push_back(&a);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const gather_msg* a, const gather_msg* b) { return a->shard < b->shard; });
    for (const gather_msg* a : sorted) {
        for (const bridge_row& r : a->bridges) {
            fn(a->shard, r);
        }
    }
}

/// A Prometheus label value: backslash, quote and line feed escaped.
void append_label_value(std::string& out, std::string_view v) {
    for (const char ch : v) {
        if (ch == '\\' || ch == '"') {
            out += '\\';
            out += ch;
        } else if (ch == '\n') {
            out += "\\n";
        } else {
            out += ch;
        }
    }
}

void append_labels(std::string& out, unsigned shard, const bridge_row& r) {
    out += "{kind=\"";
    append_label_value(out, r.kind);
    out += "\",bridge=\"";
    append_label_value(out, r.name);
    out += "\",shard=\"" + std::to_string(shard) + "\"}";
}

} // namespace

void append_bridges_json(std::string& out, std::span<const gather_msg> answers) {
    out += ",\"bridges\":[";
    bool first = true;
    for_each_row(answers, [&](unsigned shard, const bridge_row& r) {
        out += first ? "{\"kind\":\"" : ",{\"kind\":\"";
        first = false;
        core::append_json_escaped(out, r.kind);
        out += "\",\"name\":\"";
        core::append_json_escaped(out, r.name);
        out += "\",\"shard\":" + std::to_string(shard);
        for (const bridge_figure& f : figures) {
            out += ",\"";
            out += f.name;
            out += "\":" + std::to_string(f.value(r));
        }
        out += ",\"lag_ms\":" + std::to_string(r.lag_ms) + "}";
    });
    out += ']';
}

void append_bridges_metrics(std::string& out, std::span<const gather_msg> answers) {
    bool any = false;
    for_each_row(answers, [&](unsigned, const bridge_row&) { any = true; });
    if (!any) {
        return; // no bridge: no empty metric families
    }
    for (const bridge_figure& f : figures) {
        std::string name = "ringcast_bridge_";
        name += f.name;
        if (f.counter) {
            name += "_total";
        }
        out += "# HELP " + name + " ";
        out += f.help;
        out += "\n# TYPE " + name + (f.counter ? " counter\n" : " gauge\n");
        for_each_row(answers, [&](unsigned shard, const bridge_row& r) {
            out += name;
            append_labels(out, shard, r);
            out += " " + std::to_string(f.value(r)) + "\n";
        });
    }
    out += "# HELP ringcast_bridge_lag_seconds age of the oldest event read from the queue "
           "and not acknowledged yet; 0 when none waits\n"
           "# TYPE ringcast_bridge_lag_seconds gauge\n";
    for_each_row(answers, [&](unsigned shard, const bridge_row& r) {
        out += "ringcast_bridge_lag_seconds";
        append_labels(out, shard, r);
        out += " " + stats::seconds_of_us(r.lag_ms * 1000) + "\n";
    });
}

} // namespace ringcast::admin
