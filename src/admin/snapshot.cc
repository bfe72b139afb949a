// sys:stats: once a second, while anyone subscribes, the server publishes there what
// GET /api/stats answers, plus the busiest channels and a timestamp (docs/protocol.md "The
// sys namespace"; /dashboard reads it). One shard does it, the channel's home, because
// that is where interest in the channel is known:
//
//   first subscriber anywhere ─► home: engine::on_interest ─► on_watched ─► arm shard timer
//   shard timer ─► on_timer ─┬─ no shard interested any more ─► stop (the timer stays off)
//                            └─ begin_gather(snapshot) ─► every shard answers (gather.cc)
//                                 └─► finish_gather ─► publish_snapshot ─► engine::publish
//
// No subscriber, no timer and no gather: the feature costs nothing until someone watches.
#include "gather.h"

#include <ringcast/admin.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace ringcast::admin {

void api::on_watched(std::string_view channel) noexcept {
    if (channel != sys_stats_channel || _snapshots_on) {
        return;
    }
    // The first snapshot a full interval after the first subscribe: its subscription is
    // confirmed by then, and a dashboard needs two snapshots for a rate anyway.
    _snapshots_on = true;
    _snapshot_due_ms = _io.now_ms() + snapshot_interval_ms;
    _io.set_shard_timer(_snapshot_due_ms);
}

void api::on_timer() noexcept {
    if (!_snapshots_on) {
        return;
    }
    if (!_engine.watched(sys_stats_channel)) {
        _snapshots_on = false;
        return;
    }
    // A gather still out (a shard stalled for a second) is not doubled: this second has
    // no snapshot, and the next one asks again.
    if (!_snapshot_gathering) {
        _snapshot_gathering = true;
        begin_gather(conn_handle{}, http::keep_alive::no, question::snapshot, {});
    }
    // Due times step by the interval, so snapshots stay a second apart on average however
    // late a loop pass runs the timer; after a long stall, one interval from now.
    _snapshot_due_ms += snapshot_interval_ms;
    if (_snapshot_due_ms <= _io.now_ms()) {
        _snapshot_due_ms = _io.now_ms() + snapshot_interval_ms;
    }
    _io.set_shard_timer(_snapshot_due_ms);
}

void api::publish_snapshot(std::span<const gather_msg> answers) {
    _snapshot_gathering = false;
    if (!_engine.accepts_work_for(sys_stats_channel)) {
        ++_counters.sys_stats_skipped;
        return;
    }
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto timestamp_ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
    // The counters were gathered before this count: a snapshot's sys_stats_published is
    // the number published before it.
    ++_counters.sys_stats_published;
    const std::string data = snapshot_json(counters_by_shard(answers),
                                           top_channels(answers, snapshot_channels), timestamp_ms);
    pubsub::publish_request r;
    r.channel = sys_stats_channel;
    r.event = "stats";
    r.data = data;
    // Origin token 0 names no pending publish (tokens start at 1): on_published ignores
    // the offset, which nobody waits for.
    pubsub::publish_origin origin;
    origin.from = pubsub::publish_origin::kind::api;
    origin.id = 0;
    _engine.publish(r, sys_stats_channel, origin);
}

std::vector<std::pair<std::string, uint64_t>> top_channels(std::span<const gather_msg> answers,
                                                           std::size_t most) {
    std::map<std::string, uint64_t, std::less<>> merged;
    for (const gather_msg& a : answers) {
        for (const auto& [name, n] : a.list) {
            merged[name] += n;
        }
    }
    std::vector<std::pair<std::string, uint64_t>> out(merged.begin(), merged.end());
    const auto before = [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    };
    const std::size_t kept = std::min(most, out.size());
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kept), out.end(),
                      before);
    out.resize(kept);
    return out;
}

std::string snapshot_json(std::span<const stats::shard_stats> shards,
                          std::span<const std::pair<std::string, uint64_t>> channels,
                          uint64_t timestamp_ms) {
    std::string out = "{\"timestamp\":" + std::to_string(timestamp_ms) +
                      ",\"interval_ms\":" + std::to_string(snapshot_interval_ms) + ",";
    stats::append_stats_fields(out, shards);
    out += ",\"channels\":[";
    for (std::size_t i = 0; i < channels.size(); ++i) {
        out += i == 0 ? "{\"channel\":\"" : ",{\"channel\":\"";
        out += channels[i].first;
        out += "\",\"subscribers\":" + std::to_string(channels[i].second) + "}";
    }
    out += "]}";
    return out;
}

} // namespace ringcast::admin
