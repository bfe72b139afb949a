#include "timer_wheel.h"

#include <ringcast/core.h>

#include <algorithm>

namespace ringcast::core {

timer_wheel::timer_wheel(uint32_t slots, uint64_t now_ms)
    : _buckets(bucket_count, none), _nodes(slots), _current_tick(now_ms / tick_ms) {}

void timer_wheel::link(uint32_t slot, uint32_t bucket) noexcept {
    node& n = _nodes[slot];
    n.prev = none;
    n.next = _buckets[bucket];
    if (n.next != none) {
        _nodes[n.next].prev = slot;
    }
    _buckets[bucket] = slot;
}

void timer_wheel::unlink(uint32_t slot) noexcept {
    node& n = _nodes[slot];
    if (slot == _cursor) {
        _cursor = n.next; // a callback removed the node expire_bucket() was about to visit
    }
    if (n.prev != none) {
        _nodes[n.prev].next = n.next;
    } else {
        const auto bucket = static_cast<uint32_t>(n.deadline_tick & (bucket_count - 1));
        RINGCAST_ASSERT(_buckets[bucket] == slot);
        _buckets[bucket] = n.next;
    }
    if (n.next != none) {
        _nodes[n.next].prev = n.prev;
    }
    n.next = n.prev = none;
}

void timer_wheel::schedule(uint32_t slot, uint64_t deadline_ms) noexcept {
    RINGCAST_ASSERT(slot < _nodes.size());
    cancel(slot);
    // Round up so a timer never fires early; never into the tick being processed.
    const uint64_t tick = std::max((deadline_ms + tick_ms - 1) / tick_ms, _current_tick + 1);
    _nodes[slot].deadline_tick = tick;
    link(slot, static_cast<uint32_t>(tick & (bucket_count - 1)));
    ++_count;
}

void timer_wheel::cancel(uint32_t slot) noexcept {
    if (_nodes[slot].deadline_tick == 0) {
        return;
    }
    unlink(slot);
    _nodes[slot].deadline_tick = 0;
    --_count;
}

uint32_t timer_wheel::next_wait_ms(uint64_t now_ms, uint32_t max_wait_ms) const noexcept {
    if (_count == 0) {
        return max_wait_ms;
    }
    const uint64_t now_tick = now_ms / tick_ms;
    const uint64_t max_ticks = std::min<uint64_t>(max_wait_ms / tick_ms + 1, bucket_count);
    for (uint64_t t = _current_tick + 1; t <= now_tick + max_ticks; ++t) {
        if (_buckets[t & (bucket_count - 1)] != none) {
            const uint64_t due_ms = t * tick_ms;
            return due_ms <= now_ms
                       ? 0
                       : static_cast<uint32_t>(std::min<uint64_t>(due_ms - now_ms, max_wait_ms));
        }
    }
    return max_wait_ms;
}

} // namespace ringcast::core
