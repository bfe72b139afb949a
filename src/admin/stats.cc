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
    return http::make_response(200, "text/plain; version=0.0.4; charset=utf-8",
                               stats::metrics_text(counters_by_shard(answers)), ka);
}

std::string stats_response(std::span<const gather_msg> answers, http::keep_alive ka) {
    return http::make_response(200, "application/json",
                               stats::stats_json(counters_by_shard(answers)), ka);
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
}

void append_json(std::string& out, const shard_stats& s) {
    out += '{';
    for (const derived_field& d : derived_fields) {
        append_key(out, d.name);
        out += std::to_string(d.value(s));
    }
    for_each_section(
        [&](std::string_view, auto table, auto part) { append_rows(out, table, s.*part); });
    out += '}';
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
    return out;
}

} // namespace stats

} // namespace ringcast::admin
