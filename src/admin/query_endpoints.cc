// GET /api/online, /api/channels, /api/channels/<name>, /api/history/<name> and
// /api/presence/<name>: questions every shard answers from its own tables (gather.cc),
// summed by name here (history, presence: the home shard's answer). Names reach these
// bodies only after
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

std::optional<std::string> api::get_presence(const call& c) {
    if (!_engine.tracks_presence(c.name)) {
        return http::make_error_response(
            400, "presence is off for this channel's namespace (--namespace NS:presence)", c.ka);
    }
    return gather(c, question::presence, std::string(c.name));
}

namespace {

/// A decimal query parameter: `fallback` when absent or empty, nullopt when not 1-19
/// digits.
std::optional<uint64_t> number_param(const http::request& req, std::string_view name,
                                     uint64_t fallback) {
    const std::string_view text = req.query_param(name);
    if (text.empty()) {
        return fallback;
    }
    if (text.size() > 19) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (const char ch : text) {
        if (ch < '0' || ch > '9') {
            return std::nullopt;
        }
        value = value * 10 + uint64_t(ch - '0');
    }
    return value;
}

/// The WebSocket payload of a server frame (unmasked; header 2, 4 or 10 bytes), appended.
void append_payload(std::string& out, const core::frame& f) {
    core::frame_piece pieces[3];
    const auto* head = f.data();
    const auto length_byte = static_cast<uint8_t>(head[1]) & 0x7f;
    const std::size_t header = length_byte < 126 ? 2 : length_byte == 126 ? 4 : 10;
    const unsigned n = core::frame_pieces(f, header, pieces);
    for (unsigned i = 0; i < n; ++i) {
        out.append(reinterpret_cast<const char*>(pieces[i].data), pieces[i].size);
    }
}

} // namespace

std::optional<std::string> api::get_history(const call& c) {
    const auto since = number_param(c.req, "since", 0);
    if (!since) {
        return http::make_error_response(400, "since must be an offset (digits)", c.ka);
    }
    const auto limit = number_param(c.req, "limit", default_history_limit);
    if (!limit || *limit == 0 || *limit > max_history_limit) {
        return http::make_error_response(
            400, "limit must be 1 to " + std::to_string(max_history_limit), c.ka);
    }
    return gather(c, question::history, std::string(c.name), 0, {}, {}, *since, *limit);
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
    const gather_msg* presence = nullptr; // presence: the home's counts
    for (const auto& a : answers) {
        if (a.home_found) {
            found = true;
            offset = a.offset;
            epoch = a.epoch;
            presence = a.presence_tracked ? &a : nullptr;
        }
    }
    if (!found && subscribers == 0) {
        return http::make_error_response(404, "no such channel", ka);
    }
    std::string body = "{\"channel\":" + json_name(channel) +
                       ",\"subscribers\":" + std::to_string(subscribers) +
                       ",\"offset\":" + std::to_string(offset) +
                       ",\"epoch\":" + json_name(epoch);
    if (presence != nullptr) {
        body += ",\"users\":" + std::to_string(presence->presence.users) +
                ",\"anonymous\":" + std::to_string(presence->presence.anonymous);
    }
    body += "}";
    return http::make_response(200, "application/json", body, ka);
}

std::string presence_response(std::string_view channel, std::span<const gather_msg> answers,
                              http::keep_alive ka) {
    for (const auto& a : answers) {
        if (a.home_found) {
            return http::make_response(
                200, "application/json", "{" + pubsub::presence_fields(channel, a.presence) + "}",
                ka);
        }
    }
    return http::make_error_response(500, "the channel's home shard did not answer", ka);
}

std::string history_response(std::string_view channel, uint64_t since,
                             std::span<const gather_msg> answers, http::keep_alive ka) {
    const gather_msg* home = nullptr;
    for (const auto& a : answers) {
        if (a.home_found) {
            home = &a;
        }
    }
    if (home == nullptr) {
        return http::make_error_response(404, "no such channel", ka);
    }
    if (!home->kept) {
        return http::make_error_response(
            404, "this channel keeps no history (--namespace NS:history=N)", ka);
    }
    // What after `since` is gone for good, and whether the limit left some out.
    const uint64_t from = std::max(since + 1, home->first);
    const uint64_t gone_until = std::min(home->first, home->offset + 1);
    const uint64_t missed = gone_until > since + 1 ? gone_until - (since + 1) : 0;
    const bool more = from + home->frames.size() <= home->offset;
    std::string body = "{\"channel\":" + json_name(channel) + ",\"epoch\":" +
                       json_name(home->epoch) + ",\"offset\":" + std::to_string(home->offset) +
                       ",\"first\":" + std::to_string(home->first) +
                       ",\"missed\":" + std::to_string(missed) +
                       ",\"more\":" + (more ? "true" : "false") + ",\"messages\":[";
    for (std::size_t i = 0; i < home->frames.size(); ++i) {
        if (i > 0) {
            body += ',';
        }
        append_payload(body, *home->frames[i].get());
    }
    body += "]}";
    return http::make_response(200, "application/json", body, ka);
}

} // namespace ringcast::admin
