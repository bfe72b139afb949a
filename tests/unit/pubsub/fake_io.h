// Shared by the pubsub unit tests: a core::conn_io without a shard. It records what the
// engine's parts send, close and post, and answers queued bytes and budgets as a test sets
// them, so fanout and the engine run on the test's thread with no ring, socket or mesh;
// with it, the readers of what it recorded (frame_text, texts_to) and handle().
#pragma once

#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringcast::pubsub::testing {

class fake_io final : public core::conn_io {
public:
    struct sent {
        conn_handle h;
        core::frame_ref f;
    };
    struct posted {
        shard_id to;
        core::mesh_message msg; // owns its payload until the fake is destroyed
    };

    explicit fake_io(unsigned self = 0, unsigned shards_in_process = 1)
        : self_id(shard_id(static_cast<uint16_t>(self))), shard_count(shards_in_process) {}
    ~fake_io() override {
        for (const posted& p : posts) {
            core::mesh_handlers::discard(p.msg);
        }
    }
    fake_io(const fake_io&) = delete;
    fake_io& operator=(const fake_io&) = delete;

    /// The payload of post `i` if it is of kind K, else nullptr.
    template <core::mesh_kind K> typename K::payload* post_of(std::size_t i) const {
        const posted& p = posts.at(i);
        return p.msg.kind == &core::mesh_kind_info_of<K>
                   ? static_cast<typename K::payload*>(p.msg.payload)
                   : nullptr;
    }

    void send(conn_handle h, core::frame_ref f) noexcept override {
        sends.push_back({h, std::move(f)});
    }
    void close(conn_handle h, core::close_mode mode) noexcept override {
        closes.emplace_back(h, mode);
    }
    void set_timer(conn_handle h, core::conn_timer which, uint64_t deadline_ms) noexcept override {
        timers.push_back({h, which, deadline_ms});
    }
    void cancel_timer(conn_handle, core::conn_timer) noexcept override {}
    void set_shard_timer(uint64_t deadline_ms) noexcept override { shard_timer = deadline_ms; }
    /// The engine opens no outbound connections yet: refused, as a shard out of slots.
    result<conn_handle> connect(const core::outbound_target&, void*) noexcept override {
        return errno_error(EMFILE);
    }
    uint64_t now_ms() const noexcept override { return now; }
    shard_id id() const noexcept override { return self_id; }
    std::size_t queued_bytes(conn_handle h) const noexcept override {
        auto it = queued.find(h.slot);
        return it == queued.end() ? 0 : it->second;
    }
    std::size_t shard_queued_bytes() const noexcept override { return 0; }
    void queue_depths(core::queue_depth_histogram&) const noexcept override {}
    bool output_over_budget() const noexcept override { return over_budget; }
    void discard_queued(conn_handle h) noexcept override { discarded.push_back(h); }
    void* user(conn_handle) noexcept override { return nullptr; }
    unsigned shards() const noexcept override { return shard_count; }
    const core::shard_counters& counters() const noexcept override { return shard_stats; }
    peer_address peer(conn_handle) const noexcept override { return {}; }
    bool awaits_client(conn_handle) const noexcept override { return false; }
    core::client_verdict admit_client(conn_handle, const peer_address&) noexcept override {
        return core::client_verdict::admitted;
    }
    core::mesh_handlers& mesh_receivers() noexcept override { return handlers; }
    bool mesh_congested(shard_id) const noexcept override { return false; }
    core::drain_phase drain() const noexcept override { return drain_now; }
    void ask_drain() noexcept override { ++drain_asks; }

    shard_id self_id;
    unsigned shard_count;
    uint64_t now = 1000;
    bool over_budget = false;
    core::drain_phase drain_now = core::drain_phase::serving; // what drain() answers
    int drain_asks = 0;                                        // ask_drain() calls
    std::unordered_map<uint32_t, std::size_t> queued; // by conn_handle::slot
    std::vector<sent> sends;
    std::vector<std::pair<conn_handle, core::close_mode>> closes;
    std::vector<conn_handle> discarded;
    struct timer_set {
        conn_handle h;
        core::conn_timer which;
        uint64_t deadline_ms;
    };
    std::vector<timer_set> timers; // every set_timer, in order
    uint64_t shard_timer = 0;      // the last set_shard_timer deadline; 0: never armed
    std::vector<posted> posts;
    core::shard_counters shard_stats{};
    core::mesh_handlers handlers;

protected:
    void send_to_shard(shard_id to, core::mesh_message msg) noexcept override {
        posts.push_back({to, msg});
    }
};

/// The payload text of a server frame (unmasked, header of 2, 4 or 10 bytes), with a
/// spliced body put back in its place.
inline std::string frame_text(const core::frame_ref& f) {
    std::string wire;
    core::frame_piece pieces[3];
    const unsigned n = core::frame_pieces(*f.get(), 0, pieces);
    for (unsigned i = 0; i < n; ++i) {
        wire.append(reinterpret_cast<const char*>(pieces[i].data), pieces[i].size);
    }
    if (wire.size() < 2) {
        return {};
    }
    const unsigned length = static_cast<unsigned char>(wire[1]) & 0x7f;
    const std::size_t header = length < 126 ? 2 : length == 126 ? 4 : 10;
    return wire.substr(header);
}

/// The handle of the connection in `slot` (generation 1: the fakes never reuse a slot).
inline conn_handle handle(uint32_t slot) {
    return conn_handle{slot, 1};
}

/// The payload texts of the frames `io` sent to `slot`, in order.
inline std::vector<std::string> texts_to(const fake_io& io, uint32_t slot) {
    std::vector<std::string> out;
    for (const auto& s : io.sends) {
        if (s.h.slot == slot) {
            out.push_back(frame_text(s.f));
        }
    }
    return out;
}

/// A "room:<n>" channel whose home is `shard` of `shards`.
inline std::string homed_on(unsigned shard, unsigned shards) {
    for (unsigned i = 0;; ++i) {
        std::string name = "room:" + std::to_string(i);
        if (home_shard(name, shards) == shard) {
            return name;
        }
    }
}

/// Where a backend (API) publish's result goes.
inline publish_origin api_origin() {
    publish_origin o;
    o.from = publish_origin::kind::api;
    return o;
}

/// The first byte of a frame: FIN and opcode.
inline unsigned frame_first_byte(const core::frame_ref& f) {
    return static_cast<unsigned>(f->data()[0]);
}

} // namespace ringcast::pubsub::testing
