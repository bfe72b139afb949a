// Scatter-gather over the mesh (private to src/admin). A request that needs every shard —
// stats, online users, channels, a broadcast to every connection, a disconnect — asks each
// shard one question and is answered when the last shard has replied:
//
//   origin shard                         every other shard
//   api::gather ── gather_question ────▶ api::on_mesh: answer_here fills in its part
//      │ answer_here (its own part)       │
//      ▼                                  ▼
//   pending_gather ◀── gather_answer ─── the same gather_msg, answered
//      │ last answer in
//      ▼
//   finish_gather: the question's body (stats.cc, query_endpoints.cc) → responder::respond
//
// A gather_msg travels out and back as one allocation: the handler of each kind owns it
// (core.h "Cross-shard messages"); what is in flight at exit the mesh destroys.
#pragma once

#include "stats.h"

#include <ringcast/admin.h>
#include <ringcast/core.h>
#include <ringcast/http.h>
#include <ringcast/pubsub.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcast::admin {

/// What a gather asks every shard. A closed set: answer_here and finish_gather switch over
/// all of it.
enum class question : uint8_t {
    stats,         ///< its counters (GET /api/stats)
    metrics,       ///< the same counters, for GET /metrics (the Prometheus text format)
    online,        ///< its users and their connection counts (GET /api/online)
    channels,      ///< its channels and their subscriber counts (GET /api/channels)
    channel_info,  ///< one channel's subscribers, and its offset where it is home
    history,       ///< one channel's retained messages, where it is home
    presence,      ///< one channel's members, where it is home
    broadcast_all, ///< deliver a frame to every connection (POST /api/broadcast)
    disconnect,    ///< close a user's connections (POST /api/disconnect)
    snapshot,      ///< its counters and its busiest channels, for sys:stats (snapshot.cc)
};

/// The question a gather asks every shard, and one shard's answer to it.
struct gather_msg {
    uint64_t token = 0;
    question what = question::stats;
    // The question's arguments: channel_info's channel or disconnect's user; disconnect's
    // close code and reason; broadcast_all's frame (dropped once answered) and priority.
    std::string arg;
    std::string text;
    uint16_t code = 0;
    core::frame_ref frame;
    pubsub::priority prio = pubsub::priority::normal;
    // One shard's answer: stats its counters; online, channels and channel_info its names
    // with their counts; broadcast_all and disconnect the connections reached; channel_info
    // also the channel's offset and epoch when this shard is its home.
    unsigned shard = 0;
    stats::shard_stats counters;
    std::vector<std::pair<std::string, uint32_t>> list;
    uint64_t number = 0;
    bool home_found = false;
    uint64_t offset = 0;
    std::string epoch;
    // history: the question's range, and the home's answer (whether the channel keeps
    // history, its oldest retained offset, the frames asked for).
    uint64_t since = 0;
    uint64_t limit = 0;
    bool kept = false;
    uint64_t first = 0;
    std::vector<core::frame_ref> frames;
    // presence: the home's page (presence with the members; channel_info counts only,
    // when presence_tracked).
    bool presence_tracked = false;
    pubsub::presence_page presence;
    uint64_t parked = 0; ///< presence: the page is being read from the broker (api::park)
    // stats, metrics: the queue bridges this shard runs (bridge_stats.cc).
    std::vector<bridge_row> bridges;
};

namespace kinds {
struct gather_question {
    using payload = gather_msg;
    static constexpr std::string_view name = "admin.gather_question";
};
struct gather_answer {
    using payload = gather_msg;
    static constexpr std::string_view name = "admin.gather_answer";
};
} // namespace kinds

/// A gather waiting for shards to answer. Lives in api::_gathers.
struct pending_gather {
    conn_handle h;
    http::keep_alive ka = http::keep_alive::yes;
    question what = question::stats;
    std::string arg;
    uint64_t since = 0; // history's range
    uint64_t limit = 0;
    uint32_t remaining = 0;
    std::vector<gather_msg> answers; // in arrival order
};

// The response each question's answers make (status and body), written next to its
// endpoint; pure functions of the answers.

/// The answers' counters in shard order (stats.cc).
std::vector<stats::shard_stats> counters_by_shard(std::span<const gather_msg> answers);
/// The "bridges" of GET /api/stats, `,"bridges":[…]`, appended (bridge_stats.cc): every
/// shard's rows, in shard order.
void append_bridges_json(std::string& out, std::span<const gather_msg> answers);
/// The ringcast_bridge_* metrics of every shard's rows, appended (bridge_stats.cc).
void append_bridges_metrics(std::string& out, std::span<const gather_msg> answers);
/// GET /api/stats (stats.cc).
std::string stats_response(std::span<const gather_msg> answers, http::keep_alive ka);
/// GET /metrics: the answers' counters in the Prometheus text format.
std::string metrics_response(std::span<const gather_msg> answers, http::keep_alive ka);
/// GET /api/online, /api/channels (query_endpoints.cc).
std::string names_response(question what, std::span<const gather_msg> answers,
                           http::keep_alive ka);
/// GET /api/history/<name>?since=&limit= (query_endpoints.cc): 100 messages unless
/// asked for fewer or more, at most 1,000 in one answer.
inline constexpr uint64_t default_history_limit = 100;
inline constexpr uint64_t max_history_limit = 1000;
/// Its response: the home shard's answer.
std::string history_response(std::string_view channel, uint64_t since,
                             std::span<const gather_msg> answers, http::keep_alive ka);
/// GET /api/channels/<name> (query_endpoints.cc).
std::string channel_response(std::string_view channel, std::span<const gather_msg> answers,
                             http::keep_alive ka);
/// GET /api/presence/<name> (query_endpoints.cc): the home shard's page.
std::string presence_response(std::string_view channel, std::span<const gather_msg> answers,
                              http::keep_alive ka);

// --- sys:stats (snapshot.cc) -------------------------------------------------------------

/// The channel the snapshots go to, and their period.
inline constexpr std::string_view sys_stats_channel = "sys:stats";
/// Once a second: the dashboard's rates are per second, and a gather of every shard a
/// second costs nothing a server notices.
inline constexpr uint64_t snapshot_interval_ms = 1000;
/// Channels a snapshot lists, by subscribers across shards: a screenful.
inline constexpr std::size_t snapshot_channels = 10;
/// Channels each shard reports, its own busiest: more than snapshot_channels so that a
/// channel spread over every shard, in none of them first, still makes the list. The list
/// is exact unless a channel outside every shard's 32 would rank in the merged 10.
inline constexpr std::size_t snapshot_channels_per_shard = 32;

/// The shards' lists summed by name, the `most` largest first (ties by name).
std::vector<std::pair<std::string, uint64_t>> top_channels(std::span<const gather_msg> answers,
                                                           std::size_t most);
/// The data of one sys:stats message: {"timestamp":MS,"interval_ms":N,"total":{…},
/// "shards":[…],"channels":[{"channel":C,"subscribers":N},…]} — total and shards exactly
/// as GET /api/stats writes them (stats::append_stats_fields). Channel names are
/// valid_channel names (no escaping needed).
std::string snapshot_json(std::span<const stats::shard_stats> shards,
                          std::span<const std::pair<std::string, uint64_t>> channels,
                          uint64_t timestamp_ms);

} // namespace ringcast::admin
