#include "mesh.h"

#include <ringcast/log.h>

#include <cstdio>

namespace ringcast::core {

uint32_t detail::next_mesh_kind_index() noexcept {
    // Runs during static initialisation, one call per kind, possibly from several
    // translation units: the counter is a function-local static so it exists first.
    static uint32_t next = 0;
    RINGCAST_ASSERT(next < mesh_max_kinds);
    return next++;
}

void mesh_handlers::dispatch(shard_id from, const mesh_message& msg) const noexcept {
    const entry& e = _entries[msg.kind->index];
    if (e.call == nullptr) [[unlikely]] {
        log::line(log::level::error, "mesh_kind_unhandled", nullptr)
            .field("kind", msg.kind->name)
            .msg("no handler for mesh kind %.*s", static_cast<int>(msg.kind->name.size()),
                 msg.kind->name.data());
        RINGCAST_ASSERT(e.call != nullptr);
    }
    e.call(e.target, from, msg.payload);
}

mesh::mesh(unsigned shards, std::size_t ring_slots)
    : _shards(shards), _sleep(std::make_unique<sleep_flag[]>(shards)), _doorbells(shards, -1) {
    _rings.reserve(std::size_t(shards) * shards);
    for (unsigned i = 0; i < shards * shards; ++i) {
        // The diagonal (i→i) is never used; an empty ring there keeps indexing uniform.
        _rings.push_back(
            std::make_unique<spsc_ring<mesh_message>>(i % (shards + 1) == 0 ? 2 : ring_slots));
    }
}

mesh_port::mesh_port(mesh& m, unsigned self, std::function<void(unsigned)> ring_doorbell)
    : _mesh(m), _self(self), _ring_doorbell(std::move(ring_doorbell)), _overflow(m.shards()),
      _touched(m.shards(), false) {}

mesh_port::~mesh_port() {
    // Messages that never reached a ring: their payloads die with the port (the shards
    // have stopped; nobody will pop them).
    for (auto& q : _overflow) {
        for (const mesh_message& m : q) {
            mesh_handlers::discard(m);
        }
    }
}

void mesh_port::send(unsigned to, mesh_message msg) noexcept {
    RINGCAST_ASSERT(to < _mesh.shards() && to != _self);
    // Older overflowed messages go first, or per-pair order would break.
    if (!_overflow[to].empty() || !_mesh.ring(_self, to).push(msg)) {
        _overflow[to].push_back(msg);
        if (_overflow[to].size() > mesh_congestion_mark) {
            _mesh.congested(_self).store(true, std::memory_order_relaxed);
        }
    }
    _touched[to] = true;
}

void mesh_port::flush() noexcept {
    for (unsigned to = 0; to < _mesh.shards(); ++to) {
        auto& pending = _overflow[to];
        auto& r = _mesh.ring(_self, to);
        while (!pending.empty() && r.push(pending.front())) {
            pending.pop_front();
            _touched[to] = true;
        }
    }
    if (_mesh.congested(_self).load(std::memory_order_relaxed)) {
        bool below = true;
        for (const auto& q : _overflow) {
            below = below && q.size() < mesh_congestion_mark / 2;
        }
        if (below) {
            _mesh.congested(_self).store(false, std::memory_order_relaxed);
        }
    }
    for (unsigned to = 0; to < _mesh.shards(); ++to) {
        if (_touched[to]) {
            _touched[to] = false;
            // Sleep protocol step 3: an RMW (acq_rel) on the consumer's flag; pairs with the
            // exchange in prepare_to_sleep() (see mesh.h for why no push can be missed).
            if (_mesh.sleeping(to).fetch_or(0, std::memory_order_acq_rel) != 0) {
                _ring_doorbell(to);
            }
        }
    }
}

bool mesh_port::prepare_to_sleep() noexcept {
    auto& flag = _mesh.sleeping(_self);
    // Steps 1-2: the exchange pairs with the producers' fetch_or in flush(); after it either
    // the re-check below sees their pushes or they see our flag.
    flag.exchange(1, std::memory_order_acq_rel);
    for (unsigned from = 0; from < _mesh.shards(); ++from) {
        if (from != _self && !_mesh.ring(from, _self).empty()) {
            flag.store(0, std::memory_order_relaxed);
            return false;
        }
    }
    return true;
}

void mesh_port::woke_up() noexcept {
    // relaxed: a stale "sleeping" seen by a producer only costs one spare doorbell.
    _mesh.sleeping(_self).store(0, std::memory_order_relaxed);
}

std::size_t mesh_port::overflowed() const noexcept {
    std::size_t n = 0;
    for (const auto& q : _overflow) {
        n += q.size();
    }
    return n;
}

} // namespace ringcast::core
