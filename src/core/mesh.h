// The SPSC mesh: the only way shards talk (docs/architecture.md "Shards"). Messages are
// typed (core.h: mesh_kind, conn_io::post, mesh_handlers); this file moves them. Every ordered pair of shards (i→j)
// has its own bounded lock-free ring, so each ring has exactly one producer and one consumer.
//
//            to 0        to 1        to 2
//   from 0    —        ring 0→1    ring 0→2      a shard pushes into its row,
//   from 1  ring 1→0     —         ring 1→2      drains its column
//   from 2  ring 2→0   ring 2→1      —
//
// Producers never block and never drop: when a ring is full the message waits in the
// producer's own overflow queue (mesh_port) and is retried on the next loop pass, in order.
// The overflow is bounded by back-pressure, not by refusal: past mesh_congestion_mark a
// shard raises its `congested` flag, and the protocol refuses new work that would travel
// through it (conn_io::mesh_congested) until it drains.
//
// The sleep protocol (written out once, here). A consumer about to block in
// io_uring_enter:
//   1. sets its flag with an atomic exchange (an RMW),
//   2. re-checks every inbound ring; if one has data it clears the flag and does not block.
// A producer, after pushing (release store of the ring's tail):
//   3. reads the consumer's flag with an RMW (fetch_or 0); if set, it sends one doorbell
//      (IORING_OP_MSG_RING into the consumer's ring) per target per loop pass.
// Both sides touch the flag with read-modify-writes, which are totally ordered on it. If the
// producer's RMW comes later, it reads "sleeping" and rings. If it comes earlier, the
// consumer's RMW reads from it (acq_rel), so the producer's earlier push happens-before
// the consumer's re-check in step 2, which then sees the message. Either way no message
// sits in a ring while its consumer sleeps. RMWs rather than fences because TSan does not
// model atomic_thread_fence, and the mesh must pass a TSan run. A busy consumer gets no
// doorbells at all (docs/architecture.md "Measured io_uring facts": ~0.9 µs per MSG_RING;
// never one per message).
#pragma once

#include "spsc_ring.h"

#include <ringcast/core.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

namespace ringcast::core {

/// Slots per shard-pair ring. Power of two for masking; at 1 M messages/s between two
/// shards this holds about 1 ms of traffic before the producer spills to its overflow queue.
inline constexpr std::size_t mesh_ring_slots = 1024;
/// Messages waiting in one overflow queue above which the producing shard says it is
/// congested (conn_io::mesh_congested); cleared when every queue is under half of it.
/// 8 rings' worth: ~8 ms of traffic at 1 M messages/s, ~200 KB of queue entries plus their
/// payloads; enough to ride out a consumer's GC-like pause without refusing anyone.
inline constexpr std::size_t mesh_congestion_mark = 8 * mesh_ring_slots;

/// The shared part: N×N rings, N sleep flags, N doorbell targets. Built before the shards
/// start and outlives them. Each ring/flag has the access pattern its comment states.
class mesh {
public:
    explicit mesh(unsigned shards, std::size_t ring_slots = mesh_ring_slots);

    unsigned shards() const noexcept { return _shards; }
    spsc_ring<mesh_message>& ring(unsigned from, unsigned to) noexcept {
        return *_rings[from * _shards + to];
    }
    /// Shard `s` may be blocked (1) or is running (0). Set and cleared by shard `s` (sleep
    /// protocol steps 1-2), read with an RMW by every producer (step 3).
    std::atomic<uint32_t>& sleeping(unsigned s) noexcept { return _sleep[s].flag; }
    /// Shard `s` has an overflow queue over mesh_congestion_mark. Written by shard `s` only,
    /// read by every shard; relaxed both ways: a hint that gates new work, it publishes no
    /// data, and a stale read costs at most one message's worth of extra overflow.
    std::atomic<bool>& congested(unsigned s) noexcept { return _sleep[s].congested; }
    /// The doorbell target of shard `s` (its ring fd), set before any message flows.
    int doorbell(unsigned s) const noexcept { return _doorbells[s]; }
    void set_doorbell(unsigned s, int ring_fd) noexcept { _doorbells[s] = ring_fd; }

private:
    struct alignas(cache_line_bytes) sleep_flag {
        std::atomic<uint32_t> flag{0};
        std::atomic<bool> congested{false};
    };
    unsigned _shards;
    std::vector<std::unique_ptr<spsc_ring<mesh_message>>> _rings;
    std::unique_ptr<sleep_flag[]> _sleep;
    std::vector<int> _doorbells;
};

/// One shard's end of the mesh: its outbound overflow queues and pending doorbells.
/// Owned and used by that shard's thread only.
class mesh_port {
public:
    /// `ring_doorbell(target)` sends the doorbell; the shard implements it with MSG_RING.
    mesh_port(mesh& m, unsigned self, std::function<void(unsigned)> ring_doorbell);
    /// Destroys the payloads of messages still in the overflow queues (see discard_inbound()
    /// for the ones in rings).
    ~mesh_port();
    mesh_port(const mesh_port&) = delete;
    mesh_port& operator=(const mesh_port&) = delete;

    unsigned self() const noexcept { return _self; }
    unsigned shards() const noexcept { return _mesh.shards(); }

    /// Queues `msg` for shard `to` (not self). Never blocks, never drops; order per target
    /// is preserved even when the ring is full.
    void send(unsigned to, mesh_message msg) noexcept;

    /// Once per loop pass: retries overflowed messages, then rings the doorbell of every
    /// target that received something and said it may sleep (sleep protocol step 3).
    void flush() noexcept;

    /// Pops every message addressed to this shard, in order per source; returns how many.
    template <typename F> std::size_t drain(F&& on_message) {
        std::size_t n = 0;
        for (unsigned from = 0; from < _mesh.shards(); ++from) {
            if (from == _self) {
                continue;
            }
            auto& r = _mesh.ring(from, _self);
            // Bounded per pass so one busy peer cannot starve the rest of the loop.
            for (std::size_t k = 0; k < mesh_ring_slots; ++k) {
                auto msg = r.pop();
                if (!msg) {
                    break;
                }
                on_message(from, std::move(*msg));
                ++n;
            }
        }
        return n;
    }

    /// At exit, once every shard has stopped posting: destroys the payloads of the
    /// messages waiting in this shard's inbound rings, unhandled.
    void discard_inbound() noexcept {
        while (drain([](unsigned, const mesh_message& m) { mesh_handlers::discard(m); }) > 0) {
        }
    }

    /// Sleep protocol steps 1-2: announces that this shard may block. Returns false (and
    /// withdraws the announcement) when a message is already waiting: do not block then.
    bool prepare_to_sleep() noexcept;
    /// After the wait returns: this shard is awake again.
    void woke_up() noexcept;

    /// Messages waiting in overflow queues (a gauge for stats).
    std::size_t overflowed() const noexcept;
    /// This shard's or `peer`'s overflow is over mesh_congestion_mark (see mesh::congested).
    bool congested(unsigned peer) const noexcept {
        return _mesh.congested(_self).load(std::memory_order_relaxed) ||
               _mesh.congested(peer).load(std::memory_order_relaxed);
    }

private:
    mesh& _mesh;
    unsigned _self;
    std::function<void(unsigned)> _ring_doorbell;
    std::vector<std::deque<mesh_message>> _overflow; // per target, FIFO
    std::vector<bool> _touched;                      // per target: pushed this pass
};

} // namespace ringcast::core
