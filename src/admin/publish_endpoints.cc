// POST /api/publish, /api/send and /api/broadcast, and the publishes they leave waiting.
// A publish goes to the pubsub engine, which orders it on its channel's home shard and
// reports the offset through on_published(); the request is answered when every item has
// its offset — at once when every home shard was this one. A broadcast to every connection
// is no publish (no channel, no offset): it is framed once here and delivered by every
// shard through a gather (gather.cc).
#include "endpoints.h"
#include "gather.h"

#include <ringcast/admin.h>
#include <ringcast/ws.h>

#include <chrono>

namespace ringcast::admin {

std::optional<std::string> api::post_publish(const call& c) {
    return publish_each(c, addressed_to::channel);
}

std::optional<std::string> api::post_send(const call& c) {
    return publish_each(c, addressed_to::user);
}

std::optional<std::string> api::publish_each(const call& c, addressed_to to) {
    auto parsed = pubsub::parse_publish_body(c.req.body);
    if (!parsed) {
        return http::make_error_response(parsed.error().code, parsed.error().message, c.ka);
    }
    std::vector<const pubsub::publish_request*> items;
    std::vector<std::string> targets;
    for (const auto& r : parsed->requests) {
        switch (to) {
        case addressed_to::channel:
            if (r.channel.empty()) {
                return http::make_error_response(400, "channel is required", c.ka);
            }
            targets.emplace_back(r.channel);
            break;
        case addressed_to::user:
            if (r.user_id.empty()) {
                return http::make_error_response(400, "userId is required", c.ka);
            }
            targets.push_back("user:" + std::string(r.user_id));
            break;
        }
        items.push_back(&r);
    }
    return issue(c, items, targets, parsed->shape);
}

std::optional<std::string> api::post_broadcast(const call& c) {
    auto parsed = pubsub::parse_publish_body(c.req.body);
    if (!parsed) {
        return http::make_error_response(parsed.error().code, parsed.error().message, c.ka);
    }
    if (parsed->requests.size() != 1) {
        return http::make_error_response(400, "broadcast takes one message", c.ka);
    }
    const pubsub::publish_request& r = parsed->requests.front();
    if (!r.channels.empty()) {
        // To a list of channels: one ordered publish per channel, all sharing one copy of
        // the data (each channel's frame splices it in: pubsub/fanout.h, splice_data_bytes).
        const std::vector<const pubsub::publish_request*> items(r.channels.size(), &r);
        const std::vector<std::string> targets(r.channels.begin(), r.channels.end());
        return issue(c, items, targets, pubsub::body_shape::batch, core::make_frame(r.data));
    }
    // To every connection: framed once here, the same frame on every shard.
    pubsub::envelope e;
    // Unique across shards as docs/protocol.md promises: the shard, then its clock and its
    // own request counter (two shards answering in the same millisecond collided before).
    const std::string id = "b-" + std::to_string(unsigned(_io.id())) + "-" +
                           std::to_string(_io.now_ms()) + "-" + std::to_string(_next_token);
    e.message_id = id;
    e.event = r.event;
    e.channel = "";
    e.data = r.data;
    e.prio = r.prio;
    e.timestamp_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    e.user_id = r.user_id;
    std::string text(pubsub::envelope_size(e), '\0');
    pubsub::write_envelope(e, text);
    auto frame = ws::make_server_frame(ws::opcode::text, text);
    // Every other node's connections too with --engine redis; "connections" counts this
    // node's (docs/scaling.md).
    _engine.broadcast_to_nodes(text, r.prio);
    return gather(c, question::broadcast_all, {}, static_cast<uint16_t>(r.prio), std::move(frame));
}

// --- publishes waiting for their home shards ----------------------------------------------

namespace {

/// {"ok":true,"offset":N} for a single request, {"ok":true,"results":[{"offset":N},…]} for
/// a batch (even of one). When an item was not ordered (a broker down: offsets of 0):
/// 503 with its reason, and for a batch the results, so a backend retries only those
/// ({"offset":0} marks them).
std::string publish_result(const pending_publish& p) {
    switch (p.shape) {
    case pubsub::body_shape::single:
        return "{\"ok\":true,\"offset\":" + std::to_string(p.offsets[0]) + "}";
    case pubsub::body_shape::batch:
        break;
    }
    std::string body = "{\"ok\":true,\"results\":[";
    for (std::size_t i = 0; i < p.offsets.size(); ++i) {
        body += (i ? ",{\"offset\":" : "{\"offset\":") + std::to_string(p.offsets[i]) + "}";
    }
    return body + "]}";
}

std::string publish_answer(const pending_publish& p) {
    if (p.failure.empty()) {
        return http::make_response(200, "application/json", publish_result(p), p.ka);
    }
    if (p.shape == pubsub::body_shape::single) {
        return http::make_error_response(503, p.failure, p.ka, http::retry_after(1));
    }
    std::string body = "{\"error\":{\"code\":503,\"message\":\"";
    core::append_json_escaped(body, p.failure);
    body += "\"}," + publish_result(p).substr(std::string_view("{\"ok\":true,").size());
    return http::make_response(503, "application/json", body, p.ka, http::retry_after(1));
}

} // namespace

std::optional<std::string> api::issue(const call& c,
                                      const std::vector<const pubsub::publish_request*>& items,
                                      const std::vector<std::string>& targets,
                                      pubsub::body_shape shape,
                                      const core::frame_ref& shared_data) {
    for (const auto& target : targets) {
        if (pubsub::channel_namespace(target) == auth::sys_namespace) {
            return http::make_error_response(403, "sys channels are written by the server only",
                                             c.ka);
        }
    }
    for (const auto& target : targets) {
        if (!_engine.accepts_work_for(target)) {
            ++_counters.busy_refused;
            return http::make_error_response(
                503, "server busy: traffic between shards is backed up; retry shortly", c.ka);
        }
    }
    const uint64_t token = _next_token++;
    auto& p = *_publishes.emplace(token, std::make_unique<pending_publish>()).first->second;
    p.h = c.h;
    p.ka = c.ka;
    p.shape = shape;
    p.remaining = static_cast<uint32_t>(items.size());
    p.offsets.assign(items.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
        pubsub::publish_origin origin;
        origin.from = pubsub::publish_origin::kind::api;
        origin.conn = c.h;
        origin.id = token;
        origin.index = static_cast<uint32_t>(i);
        _engine.publish(*items[i], targets[i], origin, shared_data);
    }
    p.issuing = false;
    if (p.remaining > 0) {
        return std::nullopt; // finish_publish() answers when the last home shard has
    }
    auto done = _publishes.extract(token);
    return publish_answer(*done.mapped());
}

void api::on_published(const pubsub::publish_origin& origin, uint64_t offset,
                       std::string_view failure) noexcept {
    auto it = _publishes.find(origin.id);
    if (it == _publishes.end()) {
        return;
    }
    pending_publish& p = *it->second;
    p.offsets[origin.index] = offset;
    if (offset == 0 && p.failure.empty()) {
        p.failure = failure.empty() ? std::string_view("not published") : failure;
    }
    if (--p.remaining == 0 && !p.issuing) {
        finish_publish(origin.id);
    }
}

void api::finish_publish(uint64_t token) {
    auto node = _publishes.extract(token);
    if (node.empty()) {
        return;
    }
    const pending_publish& p = *node.mapped();
    _out.respond(p.h, publish_answer(p));
}

} // namespace ringcast::admin
