// Connection slots of one shard: a fixed-capacity array (reserved once, so a conn& stays
// valid for the life of the shard) plus a free list. Each slot carries a generation that is
// bumped on release, so a conn_handle taken before a close can never reach the slot's next
// tenant (op.h puts the generation in every SQE's user_data).
//
//   free ──allocate()──► open ──close(after_flush)──► draining ──queue empty──► lingering
//     │                    │ ▲                            │                      │ EOF/timeout
//     │                    └─┼────── close(now) / error ──┴──────────────────────┴─► closing
//     │ conn_io::connect()   │ connected                                               ▲
//     └──────────────► connecting ── refused / deadline / close() / stopping ──────────┘
//   closing ──no op outstanding──► close the descriptor, handler.on_closed() ──► free
//   (generation+1)
#pragma once

#include "send_queue.h"

#include <ringcast/core.h>

#include <cstdint>
#include <vector>

struct msghdr;

namespace ringcast::core {

enum class conn_state : uint8_t { free, connecting, open, draining, lingering, closing };

struct send_batch;

/// One connection's runtime state; the protocol's state hangs off `user`.
/// 64 bytes: one cache line per connection for the fields the loop touches.
struct conn {
    send_queue out;
    void* user = nullptr;
    send_batch* batch = nullptr; // the in-flight sendmsg's msghdr and iovecs
    uint32_t generation = 0;
    uint32_t file_index = 0; // direct-descriptor slot in the shard's sparse file table
    conn_state state = conn_state::free;
    bool recv_armed : 1 = false;     // a multishot recv is outstanding
    bool recv_paused : 1 = false;    // output backlog: reading stopped until it drains
    bool send_in_flight : 1 = false; // a sendmsg is outstanding (at most one)
    bool shutdown_in_flight : 1 = false;
    bool cancel_sent : 1 = false;
    bool in_dirty_list : 1 = false; // queued output waits for flush_sends()
    bool in_rearm_list : 1 = false; // its multishot recv ended and must be re-armed
    bool connect_in_flight : 1 = false; // an outbound connection's connect is outstanding
};
static_assert(sizeof(conn) <= 64, "conn: one cache line per connection");

class conn_table {
public:
    explicit conn_table(uint32_t capacity);

    /// A fresh open slot (the caller may make it connecting), or nullptr when all
    /// `capacity` slots are in use.
    conn* allocate() noexcept;
    /// The live connection `h` names, or nullptr when it has closed (stale generation).
    conn* get(conn_handle h) noexcept {
        if (h.slot >= _slots.size()) {
            return nullptr;
        }
        conn& c = _slots[h.slot];
        return c.state != conn_state::free && c.generation == h.generation ? &c : nullptr;
    }
    conn& at(uint32_t slot) noexcept { return _slots[slot]; }
    conn_handle handle(const conn& c) const noexcept {
        return {static_cast<uint32_t>(&c - _slots.data()), c.generation};
    }
    /// Returns the slot to the free list; its generation moves on.
    void release(conn& c) noexcept;

    uint32_t live() const noexcept { return _live; }
    uint32_t capacity() const noexcept { return _capacity; }
    /// Slots ever used (live ones are among them).
    uint32_t high_water() const noexcept { return static_cast<uint32_t>(_slots.size()); }

private:
    std::vector<conn> _slots;
    std::vector<uint32_t> _free;
    uint32_t _capacity;
    uint32_t _live = 0;
};

} // namespace ringcast::core
