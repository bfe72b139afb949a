// The backend API of one shard. Requests that need other shards fan out over the mesh and
// are answered when the last shard replies:
//
//   gather_question   origin → every other shard   gather_msg: the question
//   gather_answer     shard → origin                the same gather_msg, with that shard's
//                                                   answer filled in
//
// Publishes go through the pubsub engine, which reports each ordered offset back through
// on_published(). A request whose every part completes synchronously (one shard, or the
// channel's home is here) is answered at once.
#include "stats.h"

#include <ringcast/admin.h>
#include <ringcast/ws.h>

#include <simdjson.h>

#include <algorithm>
#include <map>

namespace ringcast::admin {

namespace {

enum what : uint16_t { stats = 1, online, channels, channel_info, broadcast_all, disconnect };

std::string json_name(std::string_view s) {
    // Only names that passed valid_channel/valid_user_id reach here: no escaping needed.
    std::string out = "\"";
    out.append(s);
    out += '"';
    return out;
}

/// %XX escapes decoded; a malformed escape is kept as is (the name check refuses it).
std::string percent_decode(std::string_view in) {
    auto hex = [](char c) -> int {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
    };
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

} // namespace

/// The question a gather asks every shard, and one shard's answer to it.
struct gather_msg {
    uint64_t token = 0;
    uint16_t what = 0;
    std::string arg;
    std::string text; // disconnect: the close reason
    uint16_t code = 0;
    core::frame_ref frame;
    pubsub::priority prio = pubsub::priority::normal;
    // One shard's answer:
    unsigned shard = 0;
    stats::shard_stats counters;
    std::vector<std::pair<std::string, uint32_t>> list;
    uint64_t number = 0;
    bool home_found = false;
    uint64_t offset = 0;
    std::string epoch;
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

/// A request waiting for other shards or for the home shards of its publishes.
struct pending_request {
    conn_handle h;
    http::keep_alive ka = http::keep_alive::yes;
    uint16_t what = 0; // 0: publish
    bool issuing = true;
    pubsub::body_shape shape = pubsub::body_shape::single;
    uint32_t remaining = 0;
    std::vector<uint64_t> offsets;
    std::vector<gather_msg> answers;
    std::string arg;
};

api::api(core::conn_io& io, pubsub::engine& engine, const api_config& cfg, responder& out)
    : _io(io), _engine(engine), _config(cfg), _out(out) {
    _engine.set_listener(this);
    _io.mesh_receivers().on<kinds::gather_question>(*this);
    _io.mesh_receivers().on<kinds::gather_answer>(*this);
}

api::~api() {
    _engine.set_listener(nullptr);
}

std::optional<std::string> api::handle(conn_handle h, const http::request& req,
                                       http::keep_alive ka) {
    if (_config.api_key.empty()) {
        // No key configured: whoever reaches the port could publish into anyone's user:
        // channel and disconnect them, so only this host may.
        if (!_io.peer(h).loopback()) {
            ++_counters.not_loopback;
            return http::make_error_response(
                403,
                "the API answers only this host (loopback) until an API key is set "
                "(--api-key-file or RINGCAST_API_KEY)",
                ka);
        }
    } else if (!bearer_matches(req, _config.api_key)) {
        ++_counters.unauthorized;
        return http::make_error_response(401, "missing or wrong API key (Authorization: Bearer)",
                                         ka);
    }
    const std::string_view path = req.path;
    const bool post = req.method == "POST";
    const bool get = req.method == "GET";
    auto only = [&](bool ok, auto&& run) -> std::optional<std::string> {
        return ok ? run() : http::make_error_response(405, "method not allowed here", ka);
    };
    if (path == "/api/publish") {
        return only(post, [&] { return publish(h, req, ka, false); });
    }
    if (path == "/api/send") {
        return only(post, [&] { return publish(h, req, ka, true); });
    }
    if (path == "/api/broadcast") {
        return only(post, [&] { return broadcast(h, req, ka); });
    }
    if (path == "/api/disconnect") {
        return only(post, [&]() -> std::optional<std::string> {
            // A small body, parsed whole with the DOM parser: validated completely, and the
            // strings copied out before the parser is reused.
            simdjson::dom::parser parser;
            simdjson::dom::object doc;
            if (parser.parse(req.body.data(), req.body.size()).get(doc) != simdjson::SUCCESS) {
                return http::make_error_response(400, "body must be a JSON object", ka);
            }
            std::string_view user_view;
            if (doc["userId"].get(user_view) != simdjson::SUCCESS ||
                !pubsub::valid_user_id(user_view)) {
                return http::make_error_response(400, "userId must be a valid user id", ka);
            }
            const std::string user(user_view);
            int64_t code = 1000;
            if (auto c = doc["code"]; c.error() != simdjson::NO_SUCH_FIELD) {
                if (c.get(code) != simdjson::SUCCESS || code < 1000 || code > 4999 ||
                    !ws::close_code_valid_on_wire(static_cast<uint16_t>(code))) {
                    return http::make_error_response(
                        400, "code must be a close code clients may receive", ka);
                }
            }
            std::string_view reason_view = "disconnected by the server";
            if (auto r = doc["reason"]; r.error() != simdjson::NO_SUCH_FIELD) {
                if (r.get(reason_view) != simdjson::SUCCESS || reason_view.size() > 123) {
                    return http::make_error_response(
                        400, "reason must be a string of at most 123 bytes", ka);
                }
            }
            const std::string reason(reason_view);
            return gather(h, ka, disconnect, std::string(user), static_cast<uint16_t>(code), {},
                          std::string(reason));
        });
    }
    if (path == "/api/stats") {
        return only(get, [&] { return gather(h, ka, what::stats, {}); });
    }
    if (path == "/api/online") {
        return only(get, [&] { return gather(h, ka, online, {}); });
    }
    if (path == "/api/channels") {
        return only(get, [&] { return gather(h, ka, channels, {}); });
    }
    if (path.starts_with("/api/channels/")) {
        // Clients build this path with encodeURIComponent, which turns ':' into %3A.
        const std::string decoded = percent_decode(path.substr(14));
        const std::string_view name = decoded;
        if (!pubsub::valid_channel(name)) {
            return http::make_error_response(400, "not a valid channel name", ka);
        }
        return only(get, [&] { return gather(h, ka, channel_info, std::string(name)); });
    }
    return http::make_error_response(404, "no such API path", ka);
}

// --- publishing ---------------------------------------------------------------------------

std::optional<std::string> api::publish(conn_handle h, const http::request& req,
                                        http::keep_alive ka, bool to_user) {
    auto parsed = pubsub::parse_publish_body(req.body);
    if (!parsed) {
        return http::make_error_response(parsed.error().code, parsed.error().message, ka);
    }
    const auto& requests = parsed->requests;
    std::vector<std::string> targets;
    for (const auto& r : requests) {
        if (to_user) {
            if (r.user_id.empty()) {
                return http::make_error_response(400, "userId is required", ka);
            }
            targets.push_back("user:" + std::string(r.user_id));
        } else {
            if (r.channel.empty()) {
                return http::make_error_response(400, "channel is required", ka);
            }
            targets.emplace_back(r.channel);
        }
    }
    std::vector<const pubsub::publish_request*> items;
    for (const auto& r : requests) {
        items.push_back(&r);
    }
    if (auto busy = refuse_if_busy(targets, ka)) {
        return busy;
    }
    return issue(h, ka, items, targets, parsed->shape);
}

std::optional<std::string> api::refuse_if_busy(const std::vector<std::string>& targets,
                                               http::keep_alive ka) {
    for (const auto& target : targets) {
        if (!_engine.accepts_work_for(target)) {
            ++_counters.busy_refused;
            return http::make_error_response(
                503, "server busy: traffic between shards is backed up; retry shortly", ka);
        }
    }
    return std::nullopt;
}

std::optional<std::string> api::issue(conn_handle h, http::keep_alive ka,
                                      const std::vector<const pubsub::publish_request*>& items,
                                      const std::vector<std::string>& targets,
                                      pubsub::body_shape shape,
                                      const core::frame_ref& shared_data) {
    const uint64_t token = _next_token++;
    auto& p = *_pending.emplace(token, std::make_unique<pending_request>()).first->second;
    p.h = h;
    p.ka = ka;
    p.shape = shape;
    p.remaining = static_cast<uint32_t>(items.size());
    p.offsets.assign(items.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
        pubsub::publish_origin origin;
        origin.from = pubsub::publish_origin::kind::api;
        origin.conn = h;
        origin.id = token;
        origin.index = static_cast<uint32_t>(i);
        _engine.publish(*items[i], targets[i], origin, shared_data);
    }
    p.issuing = false;
    if (p.remaining > 0) {
        return std::nullopt; // finish() answers when the last home shard has
    }
    auto done = _pending.extract(token);
    return http::make_response(200, "application/json", publish_result(*done.mapped()), ka);
}

std::string api::publish_result(const pending_request& p) {
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

void api::on_published(const pubsub::publish_origin& origin, uint64_t offset) noexcept {
    auto it = _pending.find(origin.id);
    if (it == _pending.end()) {
        return;
    }
    pending_request& p = *it->second;
    p.offsets[origin.index] = offset;
    if (--p.remaining == 0 && !p.issuing) {
        finish(origin.id);
    }
}

std::optional<std::string> api::broadcast(conn_handle h, const http::request& req,
                                          http::keep_alive ka) {
    auto parsed = pubsub::parse_publish_body(req.body);
    if (!parsed) {
        return http::make_error_response(parsed.error().code, parsed.error().message, ka);
    }
    if (parsed->requests.size() != 1) {
        return http::make_error_response(400, "broadcast takes one message", ka);
    }
    const pubsub::publish_request& r = parsed->requests.front();
    if (!r.channels.empty()) {
        // To a list of channels: one ordered publish per channel, all sharing one copy of
        // the data (each channel's frame splices it in: pubsub/publish.cc).
        const std::vector<const pubsub::publish_request*> items(r.channels.size(), &r);
        const std::vector<std::string> targets(r.channels.begin(), r.channels.end());
        if (auto busy = refuse_if_busy(targets, ka)) {
            return busy;
        }
        return issue(h, ka, items, targets, pubsub::body_shape::batch, core::make_frame(r.data));
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
    return gather(h, ka, broadcast_all, {}, static_cast<uint16_t>(r.prio), std::move(frame));
}

// --- scatter-gather -----------------------------------------------------------------------

std::optional<std::string> api::gather(conn_handle h, http::keep_alive ka, uint16_t question,
                                       std::string arg, uint16_t code, core::frame_ref frame,
                                       std::string text) {
    const uint64_t token = _next_token++;
    auto& p = *_pending.emplace(token, std::make_unique<pending_request>()).first->second;
    p.h = h;
    p.ka = ka;
    p.what = question;
    p.arg = arg;
    p.remaining = _io.shards();
    for (unsigned shard = 0; shard < _io.shards(); ++shard) {
        auto g = std::make_unique<gather_msg>();
        g->token = token;
        g->what = question;
        g->arg = arg;
        g->code = code;
        g->text = text;
        g->frame = frame;
        g->prio = question == broadcast_all ? static_cast<pubsub::priority>(code)
                                            : pubsub::priority::normal;
        if (shard == unsigned(_io.id())) {
            answer_here(*g);
            merge(p, *g);
            --p.remaining;
        } else {
            _io.post<kinds::gather_question>(shard_id(static_cast<uint16_t>(shard)), std::move(g));
        }
    }
    p.issuing = false;
    if (p.remaining == 0) {
        finish(token);
    }
    return std::nullopt;
}

void api::answer_here(gather_msg& g) noexcept {
    g.shard = unsigned(_io.id());
    switch (g.what) {
    case what::stats:
        g.counters = {_engine.stats(), _io.counters(), _out.edge_stats(), _counters};
        break;
    case online:
        g.list = _engine.local_users();
        break;
    case channels:
    case channel_info:
        g.list = _engine.local_channels();
        if (g.what == channel_info) {
            std::erase_if(g.list, [&](const auto& e) { return e.first != g.arg; });
            g.home_found = _engine.home_info(g.arg, g.offset, g.epoch);
        }
        break;
    case broadcast_all:
        g.number = _engine.broadcast_local(g.frame, g.prio);
        break;
    case disconnect:
        g.number = _engine.disconnect_user(g.arg, g.code, g.text);
        break;
    }
    g.frame = core::frame_ref();
}

void api::merge(pending_request& p, const gather_msg& g) {
    p.answers.push_back(g);
}

void api::on_mesh(kinds::gather_question, shard_id from, std::unique_ptr<gather_msg> g) noexcept {
    answer_here(*g);
    _io.post<kinds::gather_answer>(from, std::move(g));
}

void api::on_mesh(kinds::gather_answer, shard_id, std::unique_ptr<gather_msg> g) noexcept {
    auto it = _pending.find(g->token);
    if (it == _pending.end()) {
        return;
    }
    merge(*it->second, *g);
    if (--it->second->remaining == 0) {
        finish(g->token);
    }
}

void api::finish(uint64_t token) {
    auto node = _pending.extract(token);
    if (node.empty()) {
        return;
    }
    pending_request& p = *node.mapped();
    std::string body;
    int status = 200;
    if (p.what == 0) {
        body = publish_result(p);
    } else if (p.what == what::stats) {
        std::sort(p.answers.begin(), p.answers.end(),
                  [](const gather_msg& a, const gather_msg& b) { return a.shard < b.shard; });
        std::vector<stats::shard_stats> shards;
        for (const auto& a : p.answers) {
            shards.push_back(a.counters);
        }
        body = stats::stats_json(shards);
    } else if (p.what == online || p.what == channels || p.what == channel_info) {
        std::map<std::string, uint64_t> merged;
        bool found = false;
        uint64_t offset = 0;
        std::string epoch;
        for (const auto& a : p.answers) {
            for (const auto& [name, n] : a.list) {
                merged[name] += n;
            }
            if (a.home_found) {
                found = true;
                offset = a.offset;
                epoch = a.epoch;
            }
        }
        if (p.what == channel_info) {
            const uint64_t subscribers = merged.empty() ? 0 : merged.begin()->second;
            if (!found && subscribers == 0) {
                status = 404;
            } else {
                body = "{\"channel\":" + json_name(p.arg) +
                       ",\"subscribers\":" + std::to_string(subscribers) +
                       ",\"offset\":" + std::to_string(offset) + ",\"epoch\":" + json_name(epoch) +
                       "}";
            }
        } else {
            const bool users = p.what == online;
            body = users ? "{\"users\":[" : "{\"channels\":[";
            bool first = true;
            for (const auto& [name, n] : merged) {
                body += first ? "" : ",";
                first = false;
                body += users ? "{\"userId\":" + json_name(name) + ",\"connections\":"
                              : "{\"channel\":" + json_name(name) + ",\"subscribers\":";
                body += std::to_string(n) + "}";
            }
            body += "],\"count\":" + std::to_string(merged.size()) + "}";
        }
    } else {
        uint64_t n = 0;
        for (const auto& a : p.answers) {
            n += a.number;
        }
        body = "{\"ok\":true,\"connections\":" + std::to_string(n) + "}";
    }
    _out.respond(p.h, status == 200 ? http::make_response(200, "application/json", body, p.ka)
                                    : http::make_error_response(status, "no such channel", p.ka));
}

} // namespace ringcast::admin
