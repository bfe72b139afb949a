// The scatter-gather machinery (diagram in gather.h): asking every shard a question,
// answering one on this shard, collecting the answers, and handing them to the question's
// response (stats.cc, query_endpoints.cc; broadcast and disconnect count connections here).
#include "gather.h"

#include "endpoints.h"

#include <ringcast/admin.h>

namespace ringcast::admin {

std::optional<std::string> api::gather(const call& c, question what, std::string arg,
                                       uint16_t code, core::frame_ref frame, std::string text,
                                       uint64_t since, uint64_t limit) {
    begin_gather(c.h, c.ka, what, std::move(arg), code, std::move(frame), std::move(text), since,
                 limit);
    return std::nullopt;
}

void api::begin_gather(conn_handle h, http::keep_alive ka, question what, std::string arg,
                       uint16_t code, core::frame_ref frame, std::string text, uint64_t since,
                       uint64_t limit) {
    const uint64_t token = _next_token++;
    auto& p = *_gathers.emplace(token, std::make_unique<pending_gather>()).first->second;
    p.h = h;
    p.ka = ka;
    p.what = what;
    p.arg = arg;
    p.since = since;
    p.limit = limit;
    p.remaining = _io.shards();
    for (unsigned shard = 0; shard < _io.shards(); ++shard) {
        auto g = std::make_unique<gather_msg>();
        g->token = token;
        g->what = what;
        g->arg = arg;
        g->code = code;
        g->text = text;
        g->frame = frame;
        g->since = since;
        g->limit = limit;
        g->prio = what == question::broadcast_all ? static_cast<pubsub::priority>(code)
                                                  : pubsub::priority::normal;
        if (shard == unsigned(_io.id())) {
            if (!answer_here(*g)) {
                park(shard, std::move(g));
                continue;
            }
            p.answers.push_back(std::move(*g));
            --p.remaining;
        } else {
            _io.post<kinds::gather_question>(shard_id(static_cast<uint16_t>(shard)), std::move(g));
        }
    }
    // Other shards answer over the mesh and a parked answer after the broker's reply, so
    // never before this returns.
    if (p.remaining == 0) {
        finish_gather(token);
    }
}

bool api::answer_here(gather_msg& g) noexcept {
    g.shard = unsigned(_io.id());
    // A copy of each figure and one walk of the slot table: no lock, and nothing allocated
    // per connection (the answer is one allocation, made by the asker). The same for the
    // API, /metrics and the sys:stats snapshot, which must show what the API shows.
    const auto fill_counters = [&] {
        g.counters = {_engine.stats(),
                      _io.counters(),
                      _out.edge_stats(),
                      _counters,
                      _engine.node_broker() != nullptr ? _engine.node_broker()->stats()
                                                       : pubsub::broker_stats{},
                      _out.close_stats(),
                      _engine.publish_latency(),
                      {}};
        _io.queue_depths(g.counters.queue_depth_bytes);
        g.bridges = _out.bridge_rows();
    };
    switch (g.what) {
    case question::stats:
    case question::metrics:
        fill_counters();
        break;
    case question::online:
        g.list = _engine.local_users();
        break;
    case question::channels:
        g.list = _engine.local_channels();
        break;
    case question::snapshot:
        fill_counters();
        g.list = _engine.top_local_channels(snapshot_channels_per_shard);
        break;
    case question::channel_info:
        g.list = _engine.local_channels();
        std::erase_if(g.list, [&](const auto& e) { return e.first != g.arg; });
        g.home_found = _engine.home_info(g.arg, g.offset, g.epoch);
        // presence: the home's counts
        if (g.home_found && _engine.tracks_presence(g.arg)) {
            g.presence_tracked = true;
            g.presence = _engine.presence_of(g.arg, pubsub::presence_detail::counts);
        }
        break;
    case question::history: {
        // Every node's (the channel's stream) with --engine redis: the broker's answer
        // comes later.
        std::optional<pubsub::history_page> read;
        if (pubsub::home_shard(g.arg, _io.shards()) == unsigned(_io.id())) {
            const uint64_t token = _next_park++;
            read = _engine.read_history_page(g.arg, g.since, static_cast<std::size_t>(g.limit),
                                             *this, token);
            if (!read) {
                g.parked = token;
                return false;
            }
        }
        pubsub::history_page page =
            read ? std::move(*read)
                 : _engine.history(g.arg, g.since, static_cast<std::size_t>(g.limit));
        g.home_found = page.found;
        g.kept = page.kept;
        g.epoch = std::move(page.epoch);
        g.offset = page.offset;
        g.first = page.first;
        g.frames = std::move(page.frames);
        break;
    }
    case question::presence:
        g.home_found = pubsub::home_shard(g.arg, _io.shards()) == unsigned(_io.id());
        if (g.home_found) {
            // Every node's members with --engine redis: the broker's answer comes later.
            const uint64_t token = _next_park++;
            std::optional<pubsub::presence_page> page = _engine.read_presence(g.arg, *this, token);
            if (!page) {
                g.parked = token;
                return false;
            }
            g.presence = std::move(*page);
        }
        break;
    case question::broadcast_all:
        g.number = _engine.broadcast_local(g.frame, g.prio);
        break;
    case question::disconnect:
        g.number = _engine.disconnect_user(g.arg, g.code, g.text);
        break;
    }
    g.frame = core::frame_ref();
    return true;
}

void api::park(unsigned from, std::unique_ptr<gather_msg> g) {
    const uint64_t token = g->parked;
    _parked.emplace(token, std::make_pair(from, std::move(g)));
}

void api::on_presence_page(uint64_t token, const pubsub::presence_page& page) noexcept {
    auto node = _parked.extract(token);
    if (node.empty()) {
        return;
    }
    auto& [from, g] = node.mapped();
    g->presence = page;
    unpark(std::move(g), from);
}

void api::on_history_page(uint64_t token, pubsub::history_page page) noexcept {
    auto node = _parked.extract(token);
    if (node.empty()) {
        return;
    }
    auto& [from, g] = node.mapped();
    g->home_found = page.found;
    g->kept = page.kept;
    g->epoch = std::move(page.epoch);
    g->offset = page.offset;
    g->first = page.first;
    g->frames = std::move(page.frames);
    unpark(std::move(g), from);
}

void api::unpark(std::unique_ptr<gather_msg> g, unsigned from) {
    g->parked = 0;
    if (from == unsigned(_io.id())) {
        return take_answer(std::move(g));
    }
    _io.post<kinds::gather_answer>(shard_id(static_cast<uint16_t>(from)), std::move(g));
}

void api::on_mesh(kinds::gather_question, shard_id from, std::unique_ptr<gather_msg> g) noexcept {
    if (!answer_here(*g)) {
        return park(unsigned(from), std::move(g));
    }
    _io.post<kinds::gather_answer>(from, std::move(g));
}

void api::on_mesh(kinds::gather_answer, shard_id, std::unique_ptr<gather_msg> g) noexcept {
    take_answer(std::move(g));
}

void api::take_answer(std::unique_ptr<gather_msg> g) {
    auto it = _gathers.find(g->token);
    if (it == _gathers.end()) {
        return;
    }
    it->second->answers.push_back(std::move(*g));
    if (--it->second->remaining == 0) {
        finish_gather(it->first);
    }
}

void api::finish_gather(uint64_t token) {
    auto node = _gathers.extract(token);
    if (node.empty()) {
        return;
    }
    const pending_gather& p = *node.mapped();
    std::string response;
    switch (p.what) {
    case question::stats:
        response = stats_response(p.answers, p.ka);
        break;
    case question::metrics:
        response = metrics_response(p.answers, p.ka);
        break;
    case question::online:
    case question::channels:
        response = names_response(p.what, p.answers, p.ka);
        break;
    case question::channel_info:
        response = channel_response(p.arg, p.answers, p.ka);
        break;
    case question::history:
        response = history_response(p.arg, p.since, p.answers, p.ka);
        break;
    case question::presence:
        response = presence_response(p.arg, p.answers, p.ka);
        break;
    case question::snapshot:
        // No HTTP request waits for it: the answer is a message on sys:stats.
        return publish_snapshot(p.answers);
    case question::broadcast_all:
    case question::disconnect: {
        uint64_t connections = 0;
        for (const auto& a : p.answers) {
            connections += a.number;
        }
        response = http::make_response(
            200, "application/json",
            "{\"ok\":true,\"connections\":" + std::to_string(connections) + "}", p.ka);
        break;
    }
    }
    _out.respond(p.h, std::move(response));
}

} // namespace ringcast::admin
