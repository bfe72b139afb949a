// GET /api/online, /api/channels and /api/channels/<name>: questions every shard answers
// from its own tables (gather.cc), summed by name here. Names reach these bodies only after
// valid_channel / valid_user_id passed (pubsub), so they are written without escaping.
#include "endpoints.h"
#include "gather.h"

#include <ringcast/admin.h>

#include <map>

namespace ringcast::admin {

std::optional<std::string> api::get_online(const call& c) {
    return gather(c, question::online, {});
}

std::optional<std::string> api::get_channels(const call& c) {
    return gather(c, question::channels, {});
}

std::optional<std::string> api::get_channel(const call& c) {
    return gather(c, question::channel_info, std::string(c.name));
}

namespace {

std::string json_name(std::string_view s) {
    std::string out = "\"";
    out.append(s);
    out += '"';
    return out;
}

/// Each name's count, summed over the shards, in name order.
std::map<std::string, uint64_t> sum_by_name(std::span<const gather_msg> answers) {
    std::map<std::string, uint64_t> merged;
    for (const auto& a : answers) {
        for (const auto& [name, n] : a.list) {
            merged[name] += n;
        }
    }
    return merged;
}

} // namespace

std::string names_response(question what, std::span<const gather_msg> answers,
                           http::keep_alive ka) {
    const bool users = what == question::online;
    const auto merged = sum_by_name(answers);
    std::string body = users ? "{\"users\":[" : "{\"channels\":[";
    bool first = true;
    for (const auto& [name, n] : merged) {
        body += first ? "" : ",";
        first = false;
        body += users ? "{\"userId\":" + json_name(name) + ",\"connections\":"
                      : "{\"channel\":" + json_name(name) + ",\"subscribers\":";
        body += std::to_string(n) + "}";
    }
    body += "],\"count\":" + std::to_string(merged.size()) + "}";
    return http::make_response(200, "application/json", body, ka);
}

std::string channel_response(std::string_view channel, std::span<const gather_msg> answers,
                             http::keep_alive ka) {
    // Each shard listed only this channel, so the sum has at most one entry.
    const auto merged = sum_by_name(answers);
    const uint64_t subscribers = merged.empty() ? 0 : merged.begin()->second;
    bool found = false;
    uint64_t offset = 0;
    std::string_view epoch;
    for (const auto& a : answers) {
        if (a.home_found) {
            found = true;
            offset = a.offset;
            epoch = a.epoch;
        }
    }
    if (!found && subscribers == 0) {
        return http::make_error_response(404, "no such channel", ka);
    }
    const std::string body = "{\"channel\":" + json_name(channel) +
                             ",\"subscribers\":" + std::to_string(subscribers) +
                             ",\"offset\":" + std::to_string(offset) +
                             ",\"epoch\":" + json_name(epoch) + "}";
    return http::make_response(200, "application/json", body, ka);
}

} // namespace ringcast::admin
