// GET /api/stats: the endpoint, and the counters tables (stats.h) put to work — summing the
// shards' answers row by row and writing each figure under its row's name.
#include "stats.h"

#include "endpoints.h"
#include "gather.h"

#include <algorithm>

namespace ringcast::admin {

std::optional<std::string> api::get_stats(const call& c) {
    return gather(c, question::stats, {});
}

std::optional<std::string> api::get_metrics(const call& c) {
    return gather(c, question::metrics, {});
}

std::vector<stats::shard_stats> counters_by_shard(std::span<const gather_msg> answers) {
    std::vector<const gather_msg*> sorted;
    sorted.reserve(answers.size());
    for (const gather_msg& a : answers) {
        sorted.push_back(&a);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const gather_msg* a, const gather_msg* b) { return a->shard < b->shard; });
    std::vector<stats::shard_stats> shards;
    shards.reserve(sorted.size());
    for (const gather_msg* a : sorted) {
        shards.push_back(a->counters);
    }
    return shards;
}

std::string metrics_response(std::span<const gather_msg> answers, http::keep_alive ka) {
    std::string text = stats::metrics_text(counters_by_shard(answers));
    append_bridges_metrics(text, answers);
    return http::make_response(200, "text/plain; version=0.0.4; charset=utf-8", text, ka);
}

std::string stats_response(std::span<const gather_msg> answers, http::keep_alive ka) {
    std::string body = stats::stats_json(counters_by_shard(answers));
    body.pop_back(); // its closing brace: the bridges go before it
    append_bridges_json(body, answers);
    body += '}';
    return http::make_response(200, "application/json", body, ka);
}

namespace stats {

namespace {

/// `"name":` after a '{' or a ','.
void append_key(std::string& out, std::string_view name) {
    out += out.back() == '{' ? "\"" : ",\"";
    out += name;
    out += "\":";
}

template <typename S>
void append_rows(std::string& out, rows<S> table, const S& s) {
    for (const field<S>& row : table) {
        append_key(out, row.name);
        if (row.value != nullptr) {
            out += std::to_string(s.*row.value);
            continue;
        }
        out += '{';
        for (auto p = static_cast<unsigned>(row.shown_from);
             p <= static_cast<unsigned>(pubsub::priority::low); ++p) {
            append_key(out, std::to_string(p));
            out += std::to_string((s.*row.per_priority)[p]);
        }
        out += '}';
    }
}

} // namespace

void merge(shard_stats& total, const shard_stats& one) noexcept {
    for_each_section([&](std::string_view, auto table, auto part) {
        merge_rows(table, total.*part, one.*part);
    });
    total.closes.merge(one.closes);
    total.publish_to_send_us.merge(one.publish_to_send_us);
    total.queue_depth_bytes.merge(one.queue_depth_bytes);
}

namespace {

/// The label a close code's slot has: its number, or "other".
std::string code_label(std::size_t slot) {
    return slot == ws::close_code_other
               ? std::string("other")
               : std::to_string(static_cast<uint16_t>(ws::counted_close_codes[slot]));
}

/// Slots of `sent` worth writing: the codes a close frame may carry (1005 and 1006 are
/// only ever reported, and every code the server sends has its slot).
bool sendable(std::size_t slot) noexcept {
    return slot != ws::close_code_other &&
           ws::close_code_valid_on_wire(static_cast<uint16_t>(ws::counted_close_codes[slot]));
}

/// "name":{"1000":n,…} for the slots `shown` keeps.
void append_by_code(std::string& out, std::string_view name,
                    const uint64_t (&counts)[ws::close_code_slots], bool (*shown)(std::size_t)) {
    append_key(out, name);
    out += '{';
    for (std::size_t slot = 0; slot < ws::close_code_slots; ++slot) {
        if (shown(slot)) {
            append_key(out, code_label(slot));
            out += std::to_string(counts[slot]);
        }
    }
    out += '}';
}

bool every_slot(std::size_t) noexcept {
    return true;
}

} // namespace

void append_json(std::string& out, const shard_stats& s) {
    out += '{';
    for (const derived_field& d : derived_fields) {
        append_key(out, d.name);
        out += std::to_string(d.value(s));
    }
    for_each_section(
        [&](std::string_view, auto table, auto part) { append_rows(out, table, s.*part); });
    append_by_code(out, closes_sent_name, s.closes.sent, &sendable);
    append_by_code(out, closes_received_name, s.closes.received, &every_slot);
    append_key(out, publish_to_send_name);
    append_histogram_json(out, s.publish_to_send_us);
    append_key(out, queue_depth_name);
    append_histogram_json(out, s.queue_depth_bytes);
    out += '}';
}

std::string seconds_of_us(uint64_t us) {
    std::string out = std::to_string(us / 1000000);
    uint64_t fraction = us % 1000000;
    if (fraction == 0) {
        return out;
    }
    std::string digits = std::to_string(fraction);
    digits.insert(0, 6 - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    return out + "." + digits;
}

void append_stats_fields(std::string& out, std::span<const shard_stats> shards) {
    shard_stats total;
    std::string each;
    for (const shard_stats& one : shards) {
        each += each.empty() ? "" : ",";
        append_json(each, one);
        merge(total, one);
    }
    out += "\"total\":";
    append_json(out, total);
    out += ",\"shards\":[" + each + "]";
}

std::string stats_json(std::span<const shard_stats> shards) {
    std::string body = "{";
    append_stats_fields(body, shards);
    body += '}';
    return body;
}

namespace {

std::string_view prometheus_type(figure type) noexcept {
    switch (type) {
    case figure::counter:
        return "counter";
    case figure::gauge_sum:
    case figure::gauge_max:
        return "gauge";
    }
    return "untyped";
}

/// # HELP and # TYPE of one metric; returns its name.
std::string metric_head(std::string& out, std::string_view row_name, figure type,
                        std::string_view help) {
    std::string name = "ringcast_";
    name += row_name;
    if (type == figure::counter) {
        name += "_total";
    }
    out += "# HELP " + name + " ";
    out += help;
    out += "\n# TYPE " + name + " ";
    out += prometheus_type(type);
    out += '\n';
    return name;
}

void sample(std::string& out, const std::string& name, std::size_t shard, uint64_t value,
            unsigned prio = 0) {
    out += name;
    out += "{shard=\"" + std::to_string(shard) + "\"";
    if (prio != 0) {
        out += ",priority=\"" + std::to_string(prio) + "\"";
    }
    out += "} " + std::to_string(value) + "\n";
}

template <typename S>
void append_metrics(std::string& out, rows<S> table, std::span<const shard_stats> shards,
                    S shard_stats::*part) {
    for (const field<S>& row : table) {
        const std::string name = metric_head(out, row.name, row.type, row.help);
        for (std::size_t i = 0; i < shards.size(); ++i) {
            const S& s = shards[i].*part;
            if (row.value != nullptr) {
                sample(out, name, i, s.*row.value);
                continue;
            }
            for (auto p = static_cast<unsigned>(row.shown_from);
                 p <= static_cast<unsigned>(pubsub::priority::low); ++p) {
                sample(out, name, i, (s.*row.per_priority)[p], p);
            }
        }
    }
}

void append_closes_metrics(std::string& out, std::string_view stem, std::string_view help,
                           std::span<const shard_stats> shards,
                           uint64_t (ws::close_counts::*counts)[ws::close_code_slots],
                           bool (*shown)(std::size_t)) {
    const std::string name = metric_head(out, stem, figure::counter, help);
    for (std::size_t i = 0; i < shards.size(); ++i) {
        for (std::size_t slot = 0; slot < ws::close_code_slots; ++slot) {
            if (!shown(slot)) {
                continue;
            }
            const std::string_view reason = slot == ws::close_code_other
                                                ? "other"
                                                : ws::describe(ws::counted_close_codes[slot]);
            out += name;
            out +=
                "{shard=\"" + std::to_string(i) + "\",code=\"" + code_label(slot) + "\",reason=\"";
            out += reason;
            out += "\"} " + std::to_string((shards[i].closes.*counts)[slot]) + "\n";
        }
    }
}

/// One Prometheus histogram: `le` and _sum through `unit` (seconds_of_us for µs, plain
/// numbers for bytes).
template <const auto& Bounds>
void append_histogram_metrics(std::string& out, std::string_view name, std::string_view help,
                              std::span<const shard_stats> shards,
                              core::histogram<Bounds> shard_stats::*member,
                              std::string (*unit)(uint64_t)) {
    out += "# HELP ";
    out += name;
    out += " ";
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += " histogram\n";
    for (std::size_t i = 0; i < shards.size(); ++i) {
        const core::histogram<Bounds>& h = shards[i].*member;
        const std::string shard = "shard=\"" + std::to_string(i) + "\"";
        uint64_t cumulative = 0;
        for (std::size_t b = 0; b < std::size(Bounds); ++b) {
            cumulative += h.counts[b];
            out += name;
            out += "_bucket{" + shard + ",le=\"" + unit(Bounds[b]) + "\"} " +
                   std::to_string(cumulative) + "\n";
        }
        out += name;
        out += "_bucket{" + shard + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
        out += name;
        out += "_sum{" + shard + "} " + unit(h.sum) + "\n";
        out += name;
        out += "_count{" + shard + "} " + std::to_string(h.count) + "\n";
    }
}

std::string plain_number(uint64_t n) {
    return std::to_string(n);
}

} // namespace

std::string metrics_text(std::span<const shard_stats> shards) {
    std::string out;
    out.reserve(64 * 1024);
    for (const derived_field& d : derived_fields) {
        if (d.type == figure::counter) {
            continue; // a sum of rows: the query adds them
        }
        const std::string name = metric_head(out, d.name, d.type, d.help);
        for (std::size_t i = 0; i < shards.size(); ++i) {
            sample(out, name, i, d.value(shards[i]));
        }
    }
    for_each_section([&](std::string_view, auto table, auto part) {
        append_metrics(out, table, shards, part);
    });
    append_closes_metrics(out, closes_sent_name,
                          "WebSocket connections the server began closing, by close code", shards,
                          &ws::close_counts::sent, &sendable);
    append_closes_metrics(out, closes_received_name,
                          "WebSocket connections the client began closing, by close code (1005 "
                          "a close frame without a code, 1006 no close frame at all)",
                          shards, &ws::close_counts::received, &every_slot);
    append_histogram_metrics(out, "ringcast_publish_to_send_seconds",
                             "time from a publish accepted on any shard to its last copy "
                             "queued to this shard's subscribers, once per message per shard",
                             shards, &shard_stats::publish_to_send_us, &seconds_of_us);
    append_histogram_metrics(out, "ringcast_queue_depth_bytes",
                             "queued output of each open connection when the shard answered "
                             "this scrape (bytes plus 64 per queued frame)",
                             shards, &shard_stats::queue_depth_bytes, &plain_number);
    return out;
}

} // namespace stats

} // namespace ringcast::admin
