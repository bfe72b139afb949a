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

std::string stats_response(std::span<const gather_msg> answers, http::keep_alive ka) {
    std::vector<const gather_msg*> by_shard;
    by_shard.reserve(answers.size());
    for (const gather_msg& a : answers) {
        by_shard.push_back(&a);
    }
    std::sort(by_shard.begin(), by_shard.end(),
              [](const gather_msg* a, const gather_msg* b) { return a->shard < b->shard; });
    std::vector<stats::shard_stats> shards;
    shards.reserve(by_shard.size());
    for (const gather_msg* a : by_shard) {
        shards.push_back(a->counters);
    }
    return http::make_response(200, "application/json", stats::stats_json(shards), ka);
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

std::string stats_json(std::span<const shard_stats> shards) {
    shard_stats total;
    std::string body = "{\"total\":";
    std::string each;
    for (const shard_stats& one : shards) {
        each += each.empty() ? "" : ",";
        append_json(each, one);
        merge(total, one);
    }
    append_json(body, total);
    body += ",\"shards\":[" + each + "]}";
    return body;
}

} // namespace stats

} // namespace ringcast::admin
