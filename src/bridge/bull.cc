// The Bull bridge (include/ringcast/bridge.h, docs/bridges.md): BullMQ's events streams
// read through a Redis consumer group, each event published by rule, acknowledged once
// ringcast accepted its publishes. One per process, on shard 0.
//
//   link up ─► XGROUP CREATE <stream> <group> $ MKSTREAM per queue (BUSYGROUP: exists)
//      ─► recovering: XREADGROUP … STREAMS <streams> 0   this consumer's pending events,
//                     until a read finds none left          (read before, never acked)
//      ─► live:       XREADGROUP … BLOCK 1000 STREAMS <streams> >   new events
//
//   a read's events ─► rules ─► engine::publish (kind::bridge) per channel
//                    ─► every answer in ─► XACK the events whose publishes all got an
//                       offset (and those no rule takes or can map) ─► the next read
//   any publish refused ─► its event stays pending ─► backoff ─► recovering again
//
// One read is open at a time and the next waits for every answer of the last: the work in
// flight is at most bull_read_count events, whatever the queues hold.
#include <ringcast/bridge.h>
#include <ringcast/core.h>
#include <ringcast/log.h>

#include <hiredis/hiredis.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <unordered_map>

namespace ringcast::bridge {

namespace {

/// XREADGROUP's BLOCK: well inside the link's reply timeout (5 s), so a quiet queue is not
/// taken for a dead Redis.
constexpr std::string_view block_ms = "1000";
constexpr uint32_t backoff_base_ms = 200;
constexpr uint32_t backoff_cap_ms = 5000;

/// Fields BullMQ writes as plain text: put in the data as JSON strings even when they read
/// as JSON (a failedReason "404" stays "404").
bool text_field(std::string_view name) noexcept {
    return name == "failedReason" || name == "prev" || name == "name" || name == "jobId" ||
           name == "event";
}

uint64_t wall_ms() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

/// The milliseconds part of a stream id "MS-SEQ" (0 when it has none).
uint64_t id_ms(std::string_view id) noexcept {
    uint64_t ms = 0;
    std::from_chars(id.data(), id.data() + id.size(), ms);
    return ms;
}

enum tag : uint64_t { tag_create = 1, tag_read = 2, tag_ack = 3 };

class bull_bridge final : public bridges,
                          private redis::link_owner,
                          private pubsub::publish_listener {
public:
    bull_bridge(core::conn_io& io, core::outbound_connector& connector, pubsub::engine& engine,
                const redis::redis_target& target, const bull_config& cfg, uint32_t index,
                redis::link_timing timing)
        : _io(io), _engine(engine), _cfg(cfg), _target(target), _index(index),
          _link(io, connector, target, "bull-bridge", *this, timing) {
        for (const bull_rule& r : _cfg.rules) {
            auto it = std::find_if(_queues.begin(), _queues.end(),
                                   [&](const queue& q) { return q.name == r.queue; });
            if (it == _queues.end()) {
                queue q;
                q.name = r.queue;
                q.key = _cfg.key_prefix + ":" + r.queue + ":events";
                _queues.push_back(std::move(q));
                it = std::prev(_queues.end());
            }
            it->rules.push_back(&r);
        }
        _link.start();
    }

    ~bull_bridge() override { _link.stop(); }

    void answer(const pubsub::publish_origin& origin, uint64_t offset,
                std::string_view failure) noexcept override {
        on_published(origin, offset, failure);
    }

    void rows(std::vector<admin::bridge_row>& out) const override {
        const redis::link_stats& ls = _link.stats();
        const uint64_t now = wall_ms();
        for (const queue& q : _queues) {
            admin::bridge_row r;
            r.kind = "bull";
            r.name = q.name;
            r.up = _link.up() && _phase != phase::setting_up && _phase != phase::down;
            r.connects = ls.connects;
            r.connect_failures = ls.connect_failures;
            r.disconnects = ls.disconnects;
            r.received = q.received;
            r.published = q.published;
            r.publish_failed = q.publish_failed;
            r.unmatched = q.unmatched;
            r.unmapped = q.unmapped;
            r.acked = q.acked;
            r.in_flight = q.in_flight;
            r.lag_ms = q.oldest_waiting_ms != 0 && now > q.oldest_waiting_ms
                           ? now - q.oldest_waiting_ms
                           : 0;
            out.push_back(std::move(r));
        }
    }

private:
    /// Where the bridge is (see the file comment). `backoff`: waiting for on_wake after a
    /// refused publish or an error reply.
    enum class phase : uint8_t { down, setting_up, recovering, live, backoff };

    struct queue {
        std::string name;
        std::string key; // <prefix>:<name>:events
        std::vector<const bull_rule*> rules;
        bool pending_read = false; // recovering: its pending events are all read
        uint64_t received = 0, published = 0, publish_failed = 0, unmatched = 0, unmapped = 0,
                 acked = 0, in_flight = 0;
        uint64_t oldest_waiting_ms = 0; // stream time of the oldest event read, not acked
    };

    /// One event of the open read.
    struct event {
        uint32_t queue;
        std::string id;
        uint32_t remaining = 0; // publishes not answered yet
        bool failed = false;    // a publish was refused: not acknowledged
    };

    // ---- link_owner ----------------------------------------------------------------------

    void on_up(redis::link&) noexcept override { set_up(); }

    void on_down(redis::link&) noexcept override {
        _phase = phase::down;
        _reading = false;
        _creates_left = 0;
    }

    void on_push(redis::link&, const redisReply&) noexcept override {}

    void on_wake(redis::link&) noexcept override {
        if (_phase == phase::backoff) {
            set_up();
        }
    }

    void on_reply(redis::link&, uint64_t t, const redisReply* r) noexcept override {
        if (r == nullptr) {
            return; // the link went down: on_down has reset the state
        }
        switch (static_cast<tag>(t)) {
        case tag_create:
            return on_created(*r);
        case tag_read:
            _reading = false;
            return on_read(*r);
        case tag_ack:
            return;
        }
    }

    // ---- setting up, reading -------------------------------------------------------------

    /// The group on every stream (again after a reconnect or an error: the stream or the
    /// group may have been deleted meanwhile), then this consumer's pending events.
    void set_up() noexcept {
        _phase = phase::setting_up;
        _creates_left = 0;
        for (queue& q : _queues) {
            q.pending_read = false;
            const std::string_view args[] = {"XGROUP", "CREATE", q.key, _cfg.group, "$",
                                             "MKSTREAM"};
            if (!_link.send(args, tag_create)) {
                return; // down again: on_up starts over
            }
            ++_creates_left;
        }
    }

    void on_created(const redisReply& r) noexcept {
        if (redis::type_of(r) == redis::reply_type::error &&
            !redis::text_of(r).starts_with("BUSYGROUP")) {
            fail("XGROUP CREATE refused", redis::text_of(r));
        }
        if (--_creates_left == 0 && _phase == phase::setting_up) {
            _phase = phase::recovering;
            next_read();
        }
    }

    /// The next read, unless one is open, a read's publishes are still out, or the bridge
    /// is not reading (down, setting up, backing off).
    void next_read() noexcept {
        if (_reading || _outstanding > 0 || _issuing ||
            (_phase != phase::recovering && _phase != phase::live)) {
            return;
        }
        if (_phase == phase::recovering &&
            std::all_of(_queues.begin(), _queues.end(),
                        [](const queue& q) { return q.pending_read; })) {
            _phase = phase::live;
        }
        const bool live = _phase == phase::live;
        const std::string count = std::to_string(bull_read_count);
        std::vector<std::string_view> args = {"XREADGROUP", "GROUP", _cfg.group, _cfg.consumer,
                                              "COUNT", count};
        if (live) {
            args.push_back("BLOCK");
            args.push_back(block_ms);
        }
        args.push_back("STREAMS");
        std::size_t streams = 0;
        for (const queue& q : _queues) {
            if (live || !q.pending_read) {
                args.push_back(q.key);
                ++streams;
            }
        }
        for (std::size_t i = 0; i < streams; ++i) {
            args.push_back(live ? ">" : "0");
        }
        _reading = _link.send(args, tag_read);
    }

    queue* find_queue(std::string_view key, uint32_t& index) noexcept {
        for (uint32_t i = 0; i < _queues.size(); ++i) {
            if (_queues[i].key == key) {
                index = i;
                return &_queues[i];
            }
        }
        return nullptr;
    }

    void on_read(const redisReply& r) noexcept {
        if (redis::type_of(r) == redis::reply_type::error) {
            return fail("XREADGROUP refused", redis::text_of(r));
        }
        if (redis::type_of(r) != redis::reply_type::array) {
            // nil: BLOCK ran out with nothing new (live), or no stream had anything.
            if (_phase == phase::recovering) {
                for (queue& q : _queues) {
                    q.pending_read = true;
                }
            }
            return next_read();
        }
        _batch.clear();
        ++_generation;
        _issuing = true;
        if (_phase == phase::recovering) {
            // A stream the answer leaves out has no pending events either: without this,
            // a Redis that omits empty streams would be asked again and again.
            for (queue& q : _queues) {
                q.pending_read = true;
            }
        }
        for (const redisReply* stream : redis::elements_of(r)) {
            const auto parts = stream ? redis::elements_of(*stream) : std::span<redisReply* const>();
            uint32_t qi = 0;
            queue* q = parts.size() == 2 && parts[0] ? find_queue(redis::text_of(*parts[0]), qi)
                                                     : nullptr;
            if (q == nullptr || parts[1] == nullptr) {
                continue;
            }
            const auto entries = redis::elements_of(*parts[1]);
            if (_phase == phase::recovering && !entries.empty()) {
                q->pending_read = false; // more may follow: read its pending list again
            }
            for (const redisReply* e : entries) {
                take(qi, e);
            }
        }
        _issuing = false;
        if (_outstanding == 0) {
            finish_batch();
        }
    }

    // ---- one event -----------------------------------------------------------------------

    /// One entry [id, [field, value, …]] (fields nil: trimmed from the stream since it was
    /// read): matched, mapped and published, or marked for acknowledgement as it is.
    void take(uint32_t qi, const redisReply* entry) noexcept {
        queue& q = _queues[qi];
        const auto parts = entry ? redis::elements_of(*entry) : std::span<redisReply* const>();
        if (parts.size() != 2 || parts[0] == nullptr) {
            return; // not an entry: nothing to acknowledge either
        }
        event& ev = _batch.emplace_back(event{qi, std::string(redis::text_of(*parts[0]))});
        ++q.received;
        ++q.in_flight;
        if (q.oldest_waiting_ms == 0) {
            q.oldest_waiting_ms = id_ms(ev.id);
        }
        if (parts[1] == nullptr || redis::type_of(*parts[1]) != redis::reply_type::array) {
            ++q.unmapped;
            RINGCAST_LOG_EVERY(log::level::warn, "bridge_event_gone", 1, 10000)
                .field("queue", q.name)
                .field("id", ev.id)
                .msg("bull bridge: event %s of queue %s left the stream before it was "
                     "published (the stream is trimmed: BullMQ's maxEvents)",
                     ev.id.c_str(), q.name.c_str());
            return;
        }
        const auto fields = redis::elements_of(*parts[1]);
        std::string_view name, job_id;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
            if (fields[i] == nullptr || fields[i + 1] == nullptr) {
                continue;
            }
            const std::string_view k = redis::text_of(*fields[i]);
            bytes += k.size() + redis::text_of(*fields[i + 1]).size();
            if (k == "event") {
                name = redis::text_of(*fields[i + 1]);
            } else if (k == "jobId") {
                job_id = redis::text_of(*fields[i + 1]);
            }
        }
        std::vector<const bull_rule*> matched;
        for (const bull_rule* rule : q.rules) {
            if (rule->event == name || (rule->event == "*" && !name.empty())) {
                matched.push_back(rule);
            }
        }
        if (matched.empty()) {
            ++q.unmatched;
            return;
        }
        std::string data;
        if (!pubsub::valid_event(name) || bytes > max_event_bytes ||
            !event_data(q.name, ev.id, job_id, fields, data)) {
            return unmappable(q, ev, name, "its event name or data is not valid");
        }
        std::vector<std::string> channels;
        for (const bull_rule* rule : matched) {
            auto channel = rule->channel.expand(q.name, name, job_id);
            if (!channel) {
                return unmappable(q, ev, name, "a rule's channel template makes no channel of it");
            }
            if (std::find(channels.begin(), channels.end(), *channel) == channels.end()) {
                channels.push_back(std::move(*channel));
            }
        }
        const core::frame_ref shared = core::make_frame(data);
        pubsub::publish_request req;
        req.event = name;
        req.data = data;
        const uint64_t token = (_generation << 32) | (_batch.size() - 1);
        for (const std::string& channel : channels) {
            ++ev.remaining;
            ++_outstanding;
            pubsub::publish_origin origin;
            origin.from = pubsub::publish_origin::kind::bridge;
            origin.id = token;
            origin.index = _index;
            _engine.publish(req, channel, origin, shared);
        }
    }

    void unmappable(queue& q, const event& ev, std::string_view name, std::string_view why) {
        ++q.unmapped;
        RINGCAST_LOG_EVERY(log::level::warn, "bridge_unmapped", 1, 10000)
            .field("queue", q.name)
            .field("id", ev.id)
            .field("event", name)
            .msg("bull bridge: event %s of queue %s not published: %.*s", ev.id.c_str(),
                 q.name.c_str(), int(why.size()), why.data());
    }

    /// The message's data: {"queue":Q,"jobId":J,"id":STREAM-ID, then every other field of
    /// the entry: its value as JSON where it is one (BullMQ writes progress data and return
    /// values with JSON.stringify), else as a string}. False when the result would not be
    /// valid JSON (bytes that are not UTF-8).
    bool event_data(std::string_view queue_name, std::string_view id, std::string_view job_id,
                    std::span<redisReply* const> fields, std::string& out) {
        out = "{\"queue\":\"";
        core::append_json_escaped(out, queue_name);
        out += "\",\"jobId\":\"";
        core::append_json_escaped(out, job_id);
        out += "\",\"id\":\"";
        core::append_json_escaped(out, id);
        out += '"';
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
            if (fields[i] == nullptr || fields[i + 1] == nullptr) {
                continue;
            }
            const std::string_view k = redis::text_of(*fields[i]);
            const std::string_view v = redis::text_of(*fields[i + 1]);
            if (k == "event" || k == "jobId" || k == "queue" || k == "id") {
                continue;
            }
            out += ",\"";
            core::append_json_escaped(out, k);
            out += "\":";
            if (!text_field(k) && is_json(v)) {
                out += v;
            } else {
                out += '"';
                core::append_json_escaped(out, v);
                out += '"';
            }
        }
        out += '}';
        return simdjson::validate_utf8(out.data(), out.size());
    }

    bool is_json(std::string_view v) {
        if (v.empty()) {
            return false;
        }
        const simdjson::padded_string text(v);
        simdjson::dom::element root;
        return _json.parse(text).get(root) == simdjson::SUCCESS;
    }

    // ---- answers -------------------------------------------------------------------------

    void on_published(const pubsub::publish_origin& origin, uint64_t offset,
                      std::string_view failure) noexcept override {
        const uint64_t index = origin.id & 0xffffffffu;
        if ((origin.id >> 32) != (_generation & 0xffffffffu) || index >= _batch.size()) {
            return;
        }
        event& ev = _batch[index];
        queue& q = _queues[ev.queue];
        if (offset == 0) {
            ++q.publish_failed;
            if (!ev.failed) {
                RINGCAST_LOG_EVERY(log::level::warn, "bridge_publish_failed", 1, 10000)
                    .field("queue", q.name)
                    .field("id", ev.id)
                    .msg("bull bridge: publish of event %s of queue %s refused (%.*s); read "
                         "again later",
                         ev.id.c_str(), q.name.c_str(), int(failure.size()), failure.data());
            }
            ev.failed = true;
        } else {
            ++q.published;
        }
        --ev.remaining;
        if (--_outstanding == 0 && !_issuing) {
            finish_batch();
        }
    }

    /// Every answer of the read is in: acknowledges what may be, then reads on (or backs
    /// off when a publish was refused: its event is read again from the pending list).
    void finish_batch() noexcept {
        bool any_failed = false;
        for (uint32_t qi = 0; qi < _queues.size(); ++qi) {
            queue& q = _queues[qi];
            std::vector<std::string_view> args = {"XACK", q.key, _cfg.group};
            uint64_t waiting = 0; // the oldest event left unacknowledged (stream order)
            for (const event& ev : _batch) {
                if (ev.queue != qi) {
                    continue;
                }
                --q.in_flight;
                if (ev.failed) {
                    any_failed = true;
                    waiting = waiting != 0 ? waiting : id_ms(ev.id);
                    continue;
                }
                args.push_back(ev.id);
            }
            const uint64_t n = args.size() - 3;
            if (n > 0) {
                if (_link.up() && _link.send(args, tag_ack)) {
                    q.acked += n;
                } else {
                    // Read again after the reconnect (this consumer's pending events).
                    const uint64_t first = id_ms(args[3]);
                    waiting = waiting != 0 ? std::min(waiting, first) : first;
                }
            }
            q.oldest_waiting_ms = waiting;
        }
        _batch.clear();
        if (any_failed) {
            return back_off();
        }
        _attempt = 0;
        next_read();
    }

    void fail(std::string_view what, std::string_view why) noexcept {
        RINGCAST_LOG_EVERY(log::level::warn, "bridge_redis_error", 1, 10000)
            .field("reason", why)
            .msg("bull bridge: %.*s: %.*s", int(what.size()), what.data(), int(why.size()),
                 why.data());
        back_off();
    }

    void back_off() noexcept {
        if (_phase == phase::down) {
            return; // on_up starts over
        }
        _phase = phase::backoff;
        const uint32_t shift = std::min<uint32_t>(_attempt++, 8);
        const uint64_t delay =
            std::min<uint64_t>(uint64_t{backoff_base_ms} << shift, backoff_cap_ms);
        if (!_link.wake_at(_io.now_ms() + delay)) {
            _phase = phase::down;
        }
    }

    core::conn_io& _io;
    pubsub::engine& _engine;
    bull_config _cfg; // _queues' rules point into it
    redis::redis_target _target;
    uint32_t _index; // origin.index of its publishes (make_bridge_set)
    redis::link _link;
    phase _phase = phase::down;
    std::vector<queue> _queues;
    std::vector<event> _batch; // the open read's events
    uint64_t _generation = 0;  // of the open read: stale answers are told apart
    uint32_t _outstanding = 0; // publishes of the open read not answered
    uint32_t _creates_left = 0;
    uint32_t _attempt = 0;
    bool _reading = false; // an XREADGROUP is out
    bool _issuing = false; // publishing a read's events (answers may come synchronously)
    simdjson::dom::parser _json;
};

} // namespace

std::unique_ptr<bridges> make_bull_bridge(core::conn_io& io, core::outbound_connector& connector,
                                          pubsub::engine& engine, const redis::redis_target& target,
                                          const bull_config& cfg, uint32_t index,
                                          redis::link_timing timing) {
    return std::make_unique<bull_bridge>(io, connector, engine, target, cfg, index, timing);
}

} // namespace ringcast::bridge
