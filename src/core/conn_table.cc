#include "conn_table.h"

#include "op.h"

namespace ringcast::core {

conn_table::conn_table(uint32_t capacity) : _capacity(capacity) {
    // Reserved, never reallocated: address space only until slots are touched, and a conn&
    // held across allocate() stays valid.
    _slots.reserve(capacity);
    _free.reserve(capacity);
}

conn* conn_table::allocate() noexcept {
    conn* c;
    if (!_free.empty()) {
        c = &_slots[_free.back()];
        _free.pop_back();
    } else if (_slots.size() < _capacity) {
        c = &_slots.emplace_back();
    } else {
        return nullptr;
    }
    RINGCAST_ASSERT(c->state == conn_state::free);
    c->state = conn_state::open;
    ++_live;
    return c;
}

void conn_table::release(conn& c) noexcept {
    RINGCAST_ASSERT(c.state != conn_state::free);
    RINGCAST_ASSERT(!c.recv_armed && !c.send_in_flight && !c.shutdown_in_flight &&
                    !c.connect_in_flight);
    c.out.clear();
    c.user = nullptr;
    c.batch = nullptr;
    c.state = conn_state::free;
    c.recv_paused = c.cancel_sent = c.in_dirty_list = c.in_rearm_list = false;
    c.generation = (c.generation + 1) & generation_mask;
    _free.push_back(static_cast<uint32_t>(&c - _slots.data()));
    --_live;
}

} // namespace ringcast::core
