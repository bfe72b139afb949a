// Coarse per-shard timers for handshake, ping, pong, idle, expiry and close deadlines:
// conn_timer_count timers per connection slot (timer id = slot × conn_timer_count + which),
// kept in a hashed wheel of intrusive lists, with no kernel timer per connection (one would
// cost a ~256 B request and an hrtimer each; docs/architecture.md "Timers"). Scheduling and cancelling are O(1); advancing visits only the
// buckets of elapsed ticks. The loop's wait timeout comes from next_wait_ms(), so a shard
// with no due timers sleeps.
//
//   bucket[t & mask] ──► timer ⇄ timer ⇄ timer    (doubly linked by timer id)
//   A node whose deadline is a later revolution stays in its bucket until then.
//
// Callbacks run while a bucket is being walked and may cancel or re-arm any timer, the
// next one of the same bucket included: a handler's timer may close connections, its own or
// (through what the handler does on a close) others, and each close cancels that
// connection's timers and arms its close timeout. The walk therefore keeps every node in
// its bucket's list until it fires and follows a cursor that unlink() moves past a node it
// removes. A walk that held a plain `next` across the callback lost every node behind a
// cancelled one (close timeouts included: such a connection was never torn down) and fired
// the cancelled one.
//
// Owned by one shard; not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringcast::core {

class timer_wheel {
public:
    /// 10 ms ticks: finer than any protocol timeout needs, coarse enough that one bucket
    /// visit serves many connections.
    static constexpr uint64_t tick_ms = 10;
    /// 4096 buckets: one revolution is ~41 s, longer than the default ping interval, so
    /// most timers are visited once.
    static constexpr uint32_t bucket_count = 4096;

    /// Timers with ids 0 .. timers-1 (16 B each), none armed.
    timer_wheel(uint32_t timers, uint64_t now_ms);

    /// Arms (or re-arms) timer `id` for `deadline_ms`; a deadline in the past fires at the
    /// next advance().
    void schedule(uint32_t id, uint64_t deadline_ms) noexcept;
    void cancel(uint32_t id) noexcept;
    bool scheduled(uint32_t id) const noexcept { return _nodes[id].deadline_tick != 0; }
    std::size_t size() const noexcept { return _count; }

    /// Fires every timer due at `now_ms`: on_expired(id) runs after the timer was
    /// disarmed, so the callback may schedule it again, and may cancel or schedule any
    /// other timer. A timer it schedules for `now_ms` or earlier fires in this advance()
    /// or the next one, never a revolution late.
    template <typename F> void advance(uint64_t now_ms, F&& on_expired) {
        const uint64_t now_tick = now_ms / tick_ms;
        // After a stall longer than a revolution, one pass over every bucket (the last
        // revolution's ticks) still finds every due node, because each node's own deadline
        // decides.
        uint64_t tick = std::max(_current_tick,
                                 now_tick > bucket_count ? now_tick - bucket_count : uint64_t(0));
        while (tick < now_tick) {
            ++tick;
            // Moved before the bucket's callbacks run: schedule() never links into a tick
            // this walk has already visited.
            _current_tick = tick;
            expire_bucket(static_cast<uint32_t>(tick & (bucket_count - 1)), now_tick, on_expired);
        }
        _current_tick = std::max(_current_tick, now_tick);
    }

    /// Milliseconds until the earliest non-empty bucket, at most `max_wait_ms`.
    uint32_t next_wait_ms(uint64_t now_ms, uint32_t max_wait_ms) const noexcept;

private:
    static constexpr uint32_t none = UINT32_MAX;
    struct node {
        uint32_t next = none;
        uint32_t prev = none;
        uint64_t deadline_tick = 0; // 0: not scheduled
    };

    void link(uint32_t slot, uint32_t bucket) noexcept;
    void unlink(uint32_t slot) noexcept;

    template <typename F> void expire_bucket(uint32_t bucket, uint64_t now_tick, F& on_expired) {
        // Nodes a callback links into this bucket go to its head, behind the cursor, so they
        // are not revisited (and none is due: schedule() links a due deadline into the next
        // tick, see advance()).
        _cursor = _buckets[bucket];
        while (_cursor != none) {
            const uint32_t slot = _cursor;
            _cursor = _nodes[slot].next;
            if (_nodes[slot].deadline_tick <= now_tick) {
                unlink(slot);
                _nodes[slot].deadline_tick = 0;
                --_count;
                on_expired(slot);
            }
        }
    }

    std::vector<uint32_t> _buckets;
    std::vector<node> _nodes;
    uint64_t _current_tick;
    std::size_t _count = 0;
    /// The next node expire_bucket() visits, or none outside a walk; unlink() moves it on.
    uint32_t _cursor = none;
};

} // namespace ringcast::core
