// The RabbitMQ bridge (include/ringcast/bridge.h, docs/bridges.md): one durable queue bound
// to the rules' exchanges, consumed with a prefetch window over an amqp::link of shard 0;
// each delivery published by rule and acknowledged once ringcast accepted every publish.
//
//   channel 1 open ─► exchange.declare P.dlx fanout ─► queue.declare P.dead ─► queue.bind
//      ─► exchange.declare E topic (each rule's; passive for amq.*)
//      ─► queue.declare P.bridge {x-dead-letter-exchange: P.dlx} ─► queue.bind E K (each)
//      ─► basic.qos prefetch ─► basic.consume ─► live
//
//   delivery ─► amqp_mapper ─► unmatched: basic.ack
//                           ├► unmapped:  basic.reject requeue=false (to P.dlx → P.dead)
//                           └► mapped:    engine::publish (kind::bridge) per channel
//                                         ─► every answer an offset ─► basic.ack
//                                         ─► any refused ─► held; its refused channels
//                                            published again after a backoff
//   connection lost ─► every delivery not acked is the broker's again (redelivered)
//
// The work in flight is at most the prefetch window: the broker sends no more until acks
// free it, so a held (refused) delivery slows the bridge instead of making it buffer.
#include <ringcast/bridge.h>
#include <ringcast/log.h>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace ringcast::bridge {

namespace {

constexpr uint32_t backoff_base_ms = 200;
constexpr uint32_t backoff_cap_ms = 5000;
/// The bits of a delivery tag a publish's token carries: 2^40 deliveries per connection,
/// and at most 65 535 (the largest prefetch) in flight, so the low bits tell them apart.
constexpr uint64_t tag_bits = 40;
constexpr uint64_t tag_mask = (uint64_t{1} << tag_bits) - 1;
/// A delivery publishes to at most one channel per rule; the token has 8 bits for which.
constexpr std::size_t max_channels = 255;
constexpr std::string_view consumer_tag = "ringcast-bridge";

uint64_t wall_ms() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

/// "sha256:" and the first 16 bytes of SHA-256(exchange \0 routing key \0 body) in hex: the
/// identity of a message its publisher gave no message-id, the same on every redelivery.
std::string digest_id(std::string_view exchange, std::string_view routing_key,
                      std::string_view body) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const char zero = '\0';
    bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(ctx, exchange.data(), exchange.size()) == 1 &&
              EVP_DigestUpdate(ctx, &zero, 1) == 1 &&
              EVP_DigestUpdate(ctx, routing_key.data(), routing_key.size()) == 1 &&
              EVP_DigestUpdate(ctx, &zero, 1) == 1 &&
              EVP_DigestUpdate(ctx, body.data(), body.size()) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok || n < 16) {
        return "sha256:unavailable";
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned i = 0; i < 16; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

/// One declaration of the set-up sequence (file comment), sent when the one before it was
/// answered.
struct step {
    enum class kind : uint8_t { exchange, queue, bind, qos, consume } what;
    std::string name;     // exchange or queue
    std::string type;     // exchange: fanout or topic
    std::string exchange; // bind
    std::string key;      // bind
    bool passive = false; // exchange: amq.* exists and may not be declared
    bool dead_letter = false; // queue: carries x-dead-letter-exchange
};

class amqp_bridge final : public bridges, private amqp::link_owner {
public:
    amqp_bridge(core::conn_io& io, core::outbound_connector& connector, pubsub::engine& engine,
                const amqp::amqp_target& target, const amqp_config& cfg, uint32_t index,
                amqp::link_timing timing)
        : _io(io), _engine(engine), _prefix(cfg.prefix), _prefetch(cfg.prefetch), _index(index),
          _queue(cfg.prefix + ".bridge"), _dlx(cfg.prefix + ".dlx"), _mapper(cfg.rules),
          _link(io, connector, target, *this, timing) {
        _link.set_max_body_bytes(max_event_bytes);
        plan();
        _link.start();
    }

    ~amqp_bridge() override { _link.stop(); }

    void rows(std::vector<admin::bridge_row>& out) const override {
        const amqp::link_stats& ls = _link.stats();
        admin::bridge_row r;
        r.kind = "amqp";
        r.name = _queue;
        r.up = _link.up() && _phase == phase::live;
        r.connects = ls.connects;
        r.connect_failures = ls.connect_failures;
        r.disconnects = ls.disconnects;
        r.received = _received;
        r.published = _published;
        r.publish_failed = _publish_failed;
        r.unmatched = _unmatched;
        r.unmapped = _unmapped;
        r.dead_lettered = _dead_lettered;
        r.acked = _acked;
        r.in_flight = _in_flight.size();
        uint64_t oldest = 0;
        for (const auto& [tag, e] : _in_flight) {
            oldest = oldest == 0 ? e.since_ms : std::min(oldest, e.since_ms);
        }
        const uint64_t now = wall_ms();
        r.lag_ms = oldest != 0 && now > oldest ? now - oldest : 0;
        out.push_back(std::move(r));
    }

    void answer(const pubsub::publish_origin& origin, uint64_t offset,
                std::string_view failure) noexcept override {
        if ((origin.id >> 48) != (_generation & 0xffff)) {
            return; // for a connection gone since: its delivery is the broker's again
        }
        const auto it = _in_flight.find(origin.id & tag_mask);
        const std::size_t ch = (origin.id >> tag_bits) & 0xff;
        if (it == _in_flight.end() || ch >= it->second.channels.size()) {
            return;
        }
        entry& e = it->second;
        if (offset == 0) {
            ++_publish_failed;
            e.failed[ch] = 1;
            RINGCAST_LOG_EVERY(log::level::warn, "amqp_bridge_publish_failed", 1, 10000)
                .field("channel", e.channels[ch])
                .msg("amqp bridge: publish to %s refused (%.*s); published again later",
                     e.channels[ch].c_str(), int(failure.size()), failure.data());
        } else {
            ++_published;
        }
        --e.remaining;
        if (e.remaining == 0 && !e.issuing) {
            finish(it);
        }
    }

private:
    enum class phase : uint8_t { down, setting_up, live };

    /// A mapped delivery whose publishes are out (or held after a refusal).
    struct entry {
        uint64_t tag = 0;
        std::vector<std::string> channels;
        std::vector<char> failed; // per channel: refused, to be published again
        std::string event;
        std::string data;
        core::frame_ref shared; // data, framed once for every channel
        uint64_t since_ms = 0;  // lag: the message's timestamp, else when it arrived
        uint32_t remaining = 0; // publishes not answered yet
        bool issuing = false;   // publishing now (answers may come synchronously)
        bool held = false;      // refused: waiting for on_wake
    };
    using entries = std::unordered_map<uint64_t, entry>;

    /// The set-up sequence, once: it is the same on every connection.
    void plan() {
        _steps.push_back({step::kind::exchange, _dlx, "fanout"});
        _steps.push_back({step::kind::queue, _prefix + ".dead"});
        _steps.push_back({step::kind::bind, _prefix + ".dead", {}, _dlx, ""});
        std::vector<std::string> exchanges;
        std::vector<std::pair<std::string, std::string>> bindings;
        for (const amqp_rule& r : _mapper.rules()) {
            if (std::find(exchanges.begin(), exchanges.end(), r.exchange) == exchanges.end()) {
                exchanges.push_back(r.exchange);
            }
            const auto b = std::make_pair(r.exchange, r.binding_key);
            if (std::find(bindings.begin(), bindings.end(), b) == bindings.end()) {
                bindings.push_back(b);
            }
        }
        for (const std::string& e : exchanges) {
            step s{step::kind::exchange, e, "topic"};
            s.passive = e.starts_with("amq.");
            _steps.push_back(std::move(s));
        }
        step q{step::kind::queue, _queue};
        q.dead_letter = true;
        _steps.push_back(std::move(q));
        for (const auto& [exchange, key] : bindings) {
            _steps.push_back({step::kind::bind, _queue, {}, exchange, key});
        }
        _steps.push_back({step::kind::qos});
        _steps.push_back({step::kind::consume, _queue});
    }

    /// Sends step `_step`; false when the link refused (it is going down: on_down follows).
    bool send_step() noexcept {
        const step& s = _steps[_step];
        amqp_table_entry_t dlx[1];
        switch (s.what) {
        case step::kind::exchange: {
            amqp_exchange_declare_t m{};
            m.exchange = amqp::bytes_of(s.name);
            m.type = amqp::bytes_of(s.type);
            m.passive = s.passive;
            m.durable = 1;
            m.arguments = amqp_empty_table;
            _expect = AMQP_EXCHANGE_DECLARE_OK_METHOD;
            return _link.send(AMQP_EXCHANGE_DECLARE_METHOD, &m);
        }
        case step::kind::queue: {
            amqp_queue_declare_t m{};
            m.queue = amqp::bytes_of(s.name);
            m.durable = 1;
            m.arguments = amqp_empty_table;
            if (s.dead_letter) {
                dlx[0].key = amqp::bytes_of("x-dead-letter-exchange");
                dlx[0].value.kind = AMQP_FIELD_KIND_UTF8;
                dlx[0].value.value.bytes = amqp::bytes_of(_dlx);
                m.arguments = amqp_table_t{1, dlx};
            }
            _expect = AMQP_QUEUE_DECLARE_OK_METHOD;
            return _link.send(AMQP_QUEUE_DECLARE_METHOD, &m);
        }
        case step::kind::bind: {
            amqp_queue_bind_t m{};
            m.queue = amqp::bytes_of(s.name);
            m.exchange = amqp::bytes_of(s.exchange);
            m.routing_key = amqp::bytes_of(s.key);
            m.arguments = amqp_empty_table;
            _expect = AMQP_QUEUE_BIND_OK_METHOD;
            return _link.send(AMQP_QUEUE_BIND_METHOD, &m);
        }
        case step::kind::qos: {
            amqp_basic_qos_t m{};
            m.prefetch_count = static_cast<uint16_t>(std::min<uint32_t>(_prefetch, 65535));
            _expect = AMQP_BASIC_QOS_OK_METHOD;
            return _link.send(AMQP_BASIC_QOS_METHOD, &m);
        }
        case step::kind::consume: {
            amqp_basic_consume_t m{};
            m.queue = amqp::bytes_of(s.name);
            m.consumer_tag = amqp::bytes_of(consumer_tag);
            m.arguments = amqp_empty_table;
            _expect = AMQP_BASIC_CONSUME_OK_METHOD;
            return _link.send(AMQP_BASIC_CONSUME_METHOD, &m);
        }
        }
        return false;
    }

    // ---- link_owner ----------------------------------------------------------------------

    void on_open(amqp::link&) noexcept override {
        _phase = phase::setting_up;
        _step = 0;
        send_step();
    }

    void on_down(amqp::link&) noexcept override {
        _phase = phase::down;
        ++_generation;
        _in_flight.clear();
        _attempt = 0;
    }

    void on_method(amqp::link&, uint32_t id, const void*) noexcept override {
        if (id == AMQP_BASIC_CANCEL_METHOD) {
            return _link.reconnect("the broker cancelled the consumer (was the queue deleted?)");
        }
        if (_phase != phase::setting_up || id != _expect) {
            return _link.reconnect("a reply the bridge did not ask for");
        }
        if (++_step < _steps.size()) {
            send_step();
            return;
        }
        _phase = phase::live;
        _link.settled();
        RINGCAST_LOG(log::level::info, "amqp_bridge_live")
            .msg("amqp bridge: consuming %s (prefetch %u)", _queue.c_str(), _prefetch);
    }

    void on_delivery(amqp::link&, const amqp::delivery& d) noexcept override {
        ++_received;
        const amqp_basic_properties_t& p = *d.properties;
        std::string id;
        if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0 && p.message_id.len > 0) {
            id = amqp::view(p.message_id);
        } else if (!d.body_too_large) {
            id = digest_id(d.exchange, d.routing_key, d.body);
        }
        amqp_message m;
        m.exchange = d.exchange;
        m.routing_key = d.routing_key;
        m.body = d.body;
        m.id = id;
        m.redelivered = d.redelivered;
        m.body_too_large = d.body_too_large;
        switch (_mapper.map(m, _mapped)) {
        case amqp_mapping::unmatched:
            ++_unmatched;
            return ack(d.delivery_tag);
        case amqp_mapping::unmapped:
            ++_unmapped;
            RINGCAST_LOG_EVERY(log::level::warn, "amqp_bridge_unmapped", 1, 10000)
                .field("exchange", d.exchange)
                .field("routing_key", d.routing_key)
                .msg("amqp bridge: message from %.*s with key %.*s dead-lettered: %.*s",
                     int(d.exchange.size()), d.exchange.data(), int(d.routing_key.size()),
                     d.routing_key.data(), int(_mapped.why.size()), _mapped.why.data());
            return reject(d.delivery_tag);
        case amqp_mapping::mapped:
            break;
        }
        if (_mapped.channels.size() > max_channels) {
            ++_unmapped;
            return reject(d.delivery_tag);
        }
        const uint64_t key = d.delivery_tag & tag_mask;
        auto [it, fresh] = _in_flight.try_emplace(key);
        if (!fresh) {
            return _link.reconnect("a delivery tag reused while in flight");
        }
        entry& e = it->second;
        e.tag = d.delivery_tag;
        e.channels = std::move(_mapped.channels);
        e.failed.assign(e.channels.size(), 0);
        e.event = std::move(_mapped.event);
        e.data = std::move(_mapped.data);
        e.shared = core::make_frame(e.data);
        const uint64_t now = wall_ms();
        const uint64_t stamped = (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0 ? p.timestamp * 1000 : 0;
        e.since_ms = stamped != 0 && stamped <= now ? stamped : now;
        issue(it, /*only_failed=*/false);
    }

    void on_wake(amqp::link&) noexcept override {
        // Publish again what was refused; a refusal again holds it again.
        std::vector<uint64_t> held;
        for (const auto& [key, e] : _in_flight) {
            if (e.held) {
                held.push_back(key);
            }
        }
        for (const uint64_t key : held) {
            const auto it = _in_flight.find(key);
            if (it != _in_flight.end()) {
                it->second.held = false;
                issue(it, /*only_failed=*/true);
            }
        }
    }

    // ---- publishing, acknowledging --------------------------------------------------------

    /// Publishes the entry's channels (all, or those refused before). Its answers may come
    /// during the calls: `issuing` keeps the entry until the last call has returned.
    void issue(entries::iterator it, bool only_failed) noexcept {
        entry& e = it->second;
        std::vector<std::size_t> which;
        for (std::size_t i = 0; i < e.channels.size(); ++i) {
            if (!only_failed || e.failed[i] != 0) {
                which.push_back(i);
                e.failed[i] = 0;
            }
        }
        e.remaining += static_cast<uint32_t>(which.size());
        e.issuing = true;
        pubsub::publish_request req;
        req.event = e.event;
        req.data = e.data;
        for (const std::size_t i : which) {
            pubsub::publish_origin origin;
            origin.from = pubsub::publish_origin::kind::bridge;
            origin.id = ((_generation & 0xffff) << 48) | (uint64_t{i} << tag_bits) |
                        (e.tag & tag_mask);
            origin.index = _index;
            _engine.publish(req, e.channels[i], origin, e.shared);
        }
        e.issuing = false;
        if (e.remaining == 0) {
            finish(it);
        }
    }

    /// Every publish of the entry was answered: acknowledged, or held for a retry.
    void finish(entries::iterator it) noexcept {
        entry& e = it->second;
        if (std::any_of(e.failed.begin(), e.failed.end(), [](char f) { return f != 0; })) {
            e.held = true;
            return back_off();
        }
        const uint64_t tag = e.tag;
        _in_flight.erase(it);
        _attempt = 0;
        ack(tag);
    }

    void back_off() noexcept {
        const uint32_t shift = std::min<uint32_t>(_attempt++, 8);
        const uint64_t delay =
            std::min<uint64_t>(uint64_t{backoff_base_ms} << shift, backoff_cap_ms);
        _link.wake_at(_io.now_ms() + delay); // down: the deliveries are the broker's again
    }

    void ack(uint64_t tag) noexcept {
        amqp_basic_ack_t m{};
        m.delivery_tag = tag;
        if (_link.send(AMQP_BASIC_ACK_METHOD, &m)) {
            ++_acked;
        } else if (_link.up()) {
            // Up but not taking output: an ack lost here would shrink the window for good.
            _link.reconnect("the broker is not reading (acknowledgements pile up)");
        }
    }

    void reject(uint64_t tag) noexcept {
        amqp_basic_reject_t m{};
        m.delivery_tag = tag;
        m.requeue = 0; // to the queue's dead-letter exchange
        if (_link.send(AMQP_BASIC_REJECT_METHOD, &m)) {
            ++_dead_lettered;
        } else if (_link.up()) {
            _link.reconnect("the broker is not reading (rejections pile up)");
        }
    }

    core::conn_io& _io;
    pubsub::engine& _engine;
    std::string _prefix;
    uint32_t _prefetch;
    uint32_t _index; // origin.index of its publishes (make_bridge_set)
    std::string _queue;
    std::string _dlx;
    amqp_mapper _mapper;
    amqp_mapped _mapped; // reused per delivery
    amqp::link _link;
    phase _phase = phase::down;
    std::vector<step> _steps;
    std::size_t _step = 0;
    uint32_t _expect = 0;     // the reply the step in progress waits for
    uint64_t _generation = 0; // connections so far: answers for an older one are ignored
    uint32_t _attempt = 0;
    entries _in_flight;
    uint64_t _received = 0, _published = 0, _publish_failed = 0, _unmatched = 0, _unmapped = 0,
             _dead_lettered = 0, _acked = 0;
};

} // namespace

std::unique_ptr<bridges> make_amqp_bridge(core::conn_io& io, core::outbound_connector& connector,
                                          pubsub::engine& engine, const amqp::amqp_target& target,
                                          const amqp_config& cfg, uint32_t index,
                                          amqp::link_timing timing) {
    return std::make_unique<amqp_bridge>(io, connector, engine, target, cfg, index, timing);
}

} // namespace ringcast::bridge
