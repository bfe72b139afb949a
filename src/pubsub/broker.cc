// The home shard's side of the node-wide order (--engine redis; docs/scaling.md). With a
// broker, a channel's home shard on each node does not give offsets: it hands each publish
// to the broker, which orders it for every node, and fans out what the broker sends back
// for the channels some shard of this node subscribes to. Everything else — framing once,
// the mesh, local delivery, the slow-consumer policy, the history ring — is the embedded
// engine's, unchanged:
//
//   publish ─► route ─► home ─► order_by_broker ─► broker ─► on_ordered ─► finish (origin)
//   broker ─► on_broker_message ─► ordering.touch (offset, epoch) ─► fan_out_ordered
//   first gain ─► watch ─► on_point ─► confirm every waiting gain at the broker's point
//   recover ─► home history covers it? answer here : read_by_broker ─► on_history ─► answer
//
// The broker's order is the order: two nodes that publish to one channel get offsets from
// one sequence, and every node fans them out in that sequence.
#include "engine_types.h"
#include "fanout.h"
#include "history.h"
#include "ordering.h"
#include "subscriptions.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace ringcast::pubsub {

namespace {

/// The id every node gives the message at (epoch, offset): the same everywhere, unique
/// as long as epochs are (the broker draws them at random).
std::string message_id_of(const broker_message& m) {
    char offset[20];
    std::snprintf(offset, sizeof(offset), "%llx", static_cast<unsigned long long>(m.offset));
    return "m-" + std::string(m.epoch) + "-" + offset;
}

/// The frame of a message the broker ordered, as fanout would frame it here.
core::frame_ref frame_of(const broker_message& m) {
    const std::string id = message_id_of(m);
    envelope e;
    e.message_id = id;
    e.event = m.event;
    e.channel = m.channel;
    e.data = m.data;
    e.prio = m.prio;
    e.timestamp_ms = m.timestamp_ms;
    e.user_id = m.user_id;
    e.offset = m.offset;
    return frame_message(e, core::make_frame(m.data));
}

} // namespace

// --- publishing ---------------------------------------------------------------------------

void engine::order_by_broker(std::unique_ptr<publish_job> job, unsigned from_shard) {
    job->from_shard = from_shard;
    const channel_policy keep = _config.channels.find(job->channel);
    job->ack = keep.ack || (job->prio == priority::critical && job->channel.starts_with("user:"));
    broker_message m;
    m.channel = job->channel;
    m.event = job->event;
    m.data = std::string_view(reinterpret_cast<const char*>(job->data->data()),
                              job->data->own_size());
    m.user_id = job->user_id;
    m.prio = job->prio;
    m.ack = job->ack;
    const uint64_t token = ++_broker_seq;
    _broker_publishes.emplace(token, std::move(job));
    _broker->publish(m, keep, token); // may answer at once (on_ordered)
}

void engine::on_ordered(uint64_t token, std::string_view, uint64_t offset,
                        std::string_view reason) noexcept {
    auto node = _broker_publishes.extract(token);
    if (node.empty()) {
        return;
    }
    std::unique_ptr<publish_job> job = std::move(node.mapped());
    job->offset = offset;
    job->failure = reason; // a static text of the broker's
    // The message itself comes back through on_broker_message, to every watching node.
    if (job->from_shard == unsigned(_io.id())) {
        return finish_publish(job->origin, offset, reason);
    }
    const auto to = shard_id(static_cast<uint16_t>(job->from_shard));
    _io.post<kinds::published>(to, std::move(job));
}

void engine::on_broker_message(const broker_message& m) noexcept {
    home_channel* known = _ordering->find(m.channel);
    if (known == nullptr || !known->watching || !known->point_known) {
        return; // no longer watched here (an unwatch crossed it)
    }
    home_channel& ch = _ordering->touch(m.channel);
    if (m.epoch != ch.epoch) {
        // The broker lost the channel's order (its data went): offsets start again. The
        // history ring restarts at the new offset by itself (a gap restarts it).
        ch.epoch = std::string(m.epoch);
        ch.offset = 0;
    }
    if (m.offset <= ch.offset) {
        return; // seen already (a point read after it was sent)
    }
    auto job = std::make_unique<publish_job>(publish_job{
        std::string(m.channel), std::string(m.event), core::make_frame(m.data),
        std::string(m.user_id), m.prio, {}, m.offset});
    job->message_id = message_id_of(m);
    job->ack = m.ack;
    // The broker's stamp is the node-wide clock; the histogram measures from it (ms).
    const uint64_t now_wall = wall_clock_ms();
    const uint64_t age_us = now_wall > m.timestamp_ms ? (now_wall - m.timestamp_ms) * 1000 : 0;
    const uint64_t now_us = core::monotonic_us();
    job->accepted_us = now_us > age_us ? now_us - age_us : 1;
    job->timestamp_ms = m.timestamp_ms;
    ch.offset = m.offset;
    ch.stamp_ms = std::max(ch.stamp_ms, m.timestamp_ms);
    ++_counters.messages_in;
    fan_out_ordered(*job, ch);
}

// --- watching: the subscription point -------------------------------------------------------

void engine::gain_by_broker(home_channel& ch, unsigned from_shard, uint64_t generation) {
    if (ch.point_known) {
        return confirm_to(from_shard, ch, generation);
    }
    if (!_broker->up()) {
        // Down: confirmed at this node's last point, so a subscribe does not wait for the
        // broker; its messages flow once it is back (docs/scaling.md "Failures").
        confirm_to(from_shard, ch, generation);
    } else {
        ch.awaiting_point.emplace_back(from_shard, generation);
    }
    if (!ch.watching) {
        ch.watching = true;
        _broker->watch(*ch.name); // may name the point at once (on_point)
    }
}

void engine::on_point(std::string_view channel, std::string_view epoch, uint64_t offset) noexcept {
    home_channel* ch = _ordering->find(channel);
    if (ch == nullptr || !ch->watching) {
        return; // unwatched meanwhile
    }
    if (epoch != ch->epoch) {
        ch->epoch = std::string(epoch);
        ch->offset = offset;
    } else {
        // After a reconnect the point may have moved on: what was published meanwhile did
        // not reach this node's subscribers, who see the offsets jump and recover it from
        // the broker's history (docs/scaling.md "Failures").
        ch->offset = std::max(ch->offset, offset);
    }
    if (ch->history && ch->history->next_offset() != ch->offset + 1) {
        // What came before the point, or while nothing was watched here, never reached
        // this ring: it covers only what follows (older offsets are read from the broker).
        ch->history->restart(ch->offset + 1);
    }
    ch->point_known = true;
    const std::vector<std::pair<unsigned, uint64_t>> waiting = std::move(ch->awaiting_point);
    ch->awaiting_point.clear();
    for (const auto& [shard, generation] : waiting) {
        confirm_to(shard, *ch, generation); // confirm_interest runs no command: ch stays
    }
}

void engine::on_point_lost(std::string_view channel) noexcept {
    home_channel* ch = _ordering->find(channel);
    if (ch == nullptr || !ch->watching || ch->awaiting_point.empty()) {
        return;
    }
    // As when the broker is down at the subscribe (gain_by_broker): confirmed at this
    // node's last point; the broker's comes later through on_point, and the subscribers
    // see the offsets jump and recover what they missed (docs/scaling.md "Failures").
    const std::vector<std::pair<unsigned, uint64_t>> waiting = std::move(ch->awaiting_point);
    ch->awaiting_point.clear();
    for (const auto& [shard, generation] : waiting) {
        confirm_to(shard, *ch, generation);
    }
}

// --- recovery from the broker's history -----------------------------------------------------

bool engine::answerable_here(const recover_msg& m) const noexcept {
    const home_channel* ch = _ordering->find(m.channel);
    if (ch == nullptr || !_broker->up() || _config.channels.find(m.channel).count == 0) {
        return true; // nothing more to read: answered from what is here
    }
    if (!ch->point_known || !ch->history) {
        return false;
    }
    const channel_history& h = *ch->history;
    if (m.by_time) {
        return false; // the stamps of what this node never saw are the broker's
    }
    return m.epoch == ch->epoch && m.since <= ch->offset && h.first_offset() <= m.since + 1;
}

void engine::read_by_broker(unsigned from_shard, std::unique_ptr<recover_msg> m) {
    const uint64_t token = ++_broker_seq;
    // By time: the newest messages, searched by their stamps. By offset: those after it,
    // one more than a recovery may replay, so a longer gap is seen as one.
    const uint64_t after = m->by_time ? 0 : m->since;
    const std::string channel = m->channel;
    _broker_reads.emplace(token, std::make_pair(from_shard, std::move(m)));
    _broker->read_history(channel, after, max_recover_messages + 1, token);
}

void engine::broadcast_to_nodes(std::string_view text, priority prio) noexcept {
    if (_broker != nullptr) {
        _broker->broadcast(text, prio);
    }
}

void engine::on_node_broadcast(std::string_view text, priority prio) noexcept {
    broadcast_local(ws::make_server_frame(ws::opcode::text, text), prio);
}

std::optional<history_page> engine::read_history_page(std::string_view channel, uint64_t since,
                                                      std::size_t limit, history_listener& to,
                                                      uint64_t token) {
    if (_broker == nullptr || !_broker->up()) {
        return history(channel, since, limit);
    }
    if (_config.channels.find(channel).count == 0) {
        history_page page; // nothing kept anywhere: the API's 404 says so
        page.found = true;
        return page;
    }
    const uint64_t asked = ++_broker_seq;
    _history_reads.emplace(asked, history_read{&to, token, std::string(channel), since, limit});
    _broker->read_range(channel, since, limit, asked); // may answer at once (on_range)
    return std::nullopt;
}

void engine::on_range(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                      uint64_t first, std::span<const broker_message> messages) noexcept {
    auto node = _history_reads.extract(token);
    if (node.empty()) {
        return;
    }
    const history_read& r = node.mapped();
    if (!ok) {
        return r.to->on_history_page(r.token, history(r.channel, r.since, r.limit));
    }
    history_page page;
    page.found = !epoch.empty();
    page.kept = true;
    page.epoch = std::string(epoch);
    page.offset = offset;
    page.first = first;
    page.frames.reserve(messages.size());
    for (broker_message m : messages) {
        m.channel = r.channel; // a history answer names none
        page.frames.push_back(frame_of(m));
    }
    r.to->on_history_page(r.token, std::move(page));
}

void engine::on_history(uint64_t token, bool ok, std::string_view epoch, uint64_t offset,
                        std::span<const broker_message> messages) noexcept {
    auto node = _broker_reads.extract(token);
    if (node.empty()) {
        return;
    }
    const unsigned asker = node.mapped().first;
    std::unique_ptr<recover_msg> m = std::move(node.mapped().second);
    home_channel* ch = _ordering->find(m->channel);
    // The answer goes up to H, the home's last offset now: every delivery up to H has gone
    // to the asker, every later one goes after the answer (the mesh's order per pair).
    if (!ok || ch == nullptr || epoch != ch->epoch) {
        answer_recovery(*m); // what this node has: recovered only if that covers it
        return answer_to(asker, std::move(m));
    }
    const uint64_t H = ch->offset;
    if (m->by_time) {
        // After every retained message stamped before since_ms; complete only when one
        // stamped before it is still retained, or the epoch's first message is.
        std::size_t i = 0;
        while (i < messages.size() && messages[i].timestamp_ms < m->since_ms) {
            ++i;
        }
        const bool complete = i > 0 || (!messages.empty() && messages[0].offset == 1) ||
                              (messages.empty() && offset == 0);
        m->since = i < messages.size() ? messages[i].offset - 1
                                       : (messages.empty() ? offset : messages.back().offset);
        m->epoch = complete ? std::string(epoch) : std::string();
        messages = messages.subspan(i);
    }
    bool recovered = m->epoch == epoch && m->since <= H && H - m->since <= max_recover_messages;
    std::vector<core::frame_ref> frames;
    uint64_t last = m->since;
    for (const broker_message& b : messages) {
        if (b.offset <= last) {
            continue;
        }
        if (b.offset > H) {
            break; // comes live after the answer
        }
        if (b.offset != last + 1) {
            recovered = false; // trimmed or expired in between
            break;
        }
        broker_message named = b;
        named.channel = m->channel; // the broker's history answer names no channel
        frames.push_back(frame_of(named));
        last = b.offset;
    }
    if (recovered && last < H) {
        // Ordered after the broker's read, already fanned out here: this node's ring.
        if (ch->history && ch->history->first_offset() <= last + 1) {
            for (core::frame_ref& f :
                 ch->history->after(last, H - last, _io.now_ms() / 1000)) {
                frames.push_back(std::move(f));
                ++last;
            }
        }
        recovered = last == H;
    }
    if (!recovered) {
        answer_recovery(*m);
        return answer_to(asker, std::move(m));
    }
    m->recovered = true;
    m->point = m->since;
    m->epoch = ch->epoch;
    m->offset = H;
    m->frames = std::move(frames);
    answer_to(asker, std::move(m));
}

void engine::answer_to(unsigned to_shard, std::unique_ptr<recover_msg> m) {
    if (to_shard != unsigned(_io.id())) {
        _io.post<kinds::recovered>(shard_id(static_cast<uint16_t>(to_shard)), std::move(m));
        return;
    }
    finish_recovery(*m);
    if (session* s = find_session(m->conn); s != nullptr) {
        resume(m->conn, *s); // answered later than the command: its session waited
    }
}

} // namespace ringcast::pubsub
