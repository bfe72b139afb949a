// ringcast admin — the backend HTTP API (docs/protocol.md "Backend API").
//
// What it owns: routing of /api/* requests, API-key checks, and the requests that need more
// than the shard they arrive on: publishes ordered by a channel's home shard, and
// scatter-gather questions (stats, online users, channels, broadcast, disconnect) that every
// shard answers over the mesh. One instance per shard, next to that shard's pubsub engine;
// the gateway (src/net) hands it requests and sends what it answers.
#pragma once

#include <ringcast/core.h>
#include <ringcast/http.h>
#include <ringcast/pubsub.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringcast::admin {

struct api_config {
    /// Required as "Authorization: Bearer <key>" on every /api/ request when not empty (and
    /// makes a /ws upgrade carrying it a backend session). Empty: the API answers only peers
    /// on this host (peer_address::loopback()), 403 to anyone else.
    std::string api_key;
};

/// Compares a presented secret with the configured one in time that depends only on their
/// lengths, never on their contents (no early exit at the first difference), so response
/// timing does not reveal how much of a guess was right. Every API-key check goes through
/// it (bearer_matches).
bool keys_equal(std::string_view presented, std::string_view expected) noexcept;

/// True when `req` carries "Authorization: Bearer <key>" (scheme in any case) and the token
/// is `key` (keys_equal). Always false for an empty `key`.
bool bearer_matches(const http::request& req, std::string_view key) noexcept;

/// The API's own counters, per shard (GET /api/stats). Every member is a row of
/// src/admin/stats.h, which refuses to compile without one.
struct api_counters {
    uint64_t unauthorized = 0; ///< 401: missing or wrong API key
    uint64_t not_loopback = 0; ///< 403: no API key configured and the peer is not on this host
    uint64_t busy_refused = 0; ///< publishes refused with 503 (mesh congested)
};

/// Counters of the connection layer (src/net), for GET /api/stats. Every member is a row of
/// src/admin/stats.h, which refuses to compile without one.
struct edge_counters {
    uint64_t inbound_held_bytes = 0;    ///< unfinished inbound messages (gauge)
    uint64_t inbound_budget_closes = 0; ///< closed with 1009: the shard's inbound budget
};

/// How the API answers a request it could not answer at once (the gateway implements it).
class responder {
public:
    virtual ~responder() = default;
    /// The complete HTTP response for the request pending on `h` (ignored if it closed).
    virtual void respond(conn_handle h, std::string response) noexcept = 0;
    /// This shard's connection-layer counters.
    virtual edge_counters edge_stats() const noexcept = 0;
};

struct pending_request;
struct gather_msg;
/// The API's mesh kinds (src/admin/api.cc): a question to every shard and each answer.
namespace kinds {
struct gather_question;
struct gather_answer;
} // namespace kinds

class api final : public pubsub::publish_listener {
public:
    api(core::conn_io& io, pubsub::engine& engine, const api_config& cfg, responder& out);
    ~api() override;

    /// Handles one /api/ request. Returns the response, or nothing when it will come later
    /// through responder::respond() (the connection must not answer anything else first).
    std::optional<std::string> handle(conn_handle h, const http::request& req, http::keep_alive ka);
    /// The API's mesh messages, registered with the shard in the constructor.
    void on_mesh(kinds::gather_question, shard_id from, std::unique_ptr<gather_msg> g) noexcept;
    void on_mesh(kinds::gather_answer, shard_id from, std::unique_ptr<gather_msg> g) noexcept;
    void on_published(const pubsub::publish_origin& origin, uint64_t offset) noexcept override;

private:
    std::optional<std::string> publish(conn_handle h, const http::request& req, http::keep_alive ka,
                                       bool to_user);
    std::optional<std::string> broadcast(conn_handle h, const http::request& req,
                                         http::keep_alive ka);
    /// Hands each item to the engine for its target channel; answers at once when every
    /// home shard was this one, else later through finish().
    std::optional<std::string> issue(conn_handle h, http::keep_alive ka,
                                     const std::vector<const pubsub::publish_request*>& items,
                                     const std::vector<std::string>& targets,
                                     pubsub::body_shape shape,
                                     const core::frame_ref& shared_data = {});
    /// A 503 when a target's home shard is congested (pubsub::engine::accepts_work_for).
    std::optional<std::string> refuse_if_busy(const std::vector<std::string>& targets,
                                              http::keep_alive ka);
    static std::string publish_result(const pending_request& p);
    std::optional<std::string> gather(conn_handle h, http::keep_alive ka, uint16_t what,
                                      std::string arg, uint16_t code = 0,
                                      core::frame_ref frame = {}, std::string text = {});
    void answer_here(gather_msg& g) noexcept;
    void merge(pending_request& p, const gather_msg& g);
    void finish(uint64_t token);

    core::conn_io& _io;
    pubsub::engine& _engine;
    api_config _config;
    responder& _out;
    std::unordered_map<uint64_t, std::unique_ptr<pending_request>> _pending;
    uint64_t _next_token = 1;
    api_counters _counters;
};

} // namespace ringcast::admin
