// History: retained messages per channel and the shard's budget (history.h has the model).
#include "history.h"

#include <algorithm>

namespace ringcast::pubsub {

channel_policy channel_rules::find(std::string_view channel) const noexcept {
    const std::size_t colon = channel.find(':');
    if (colon == std::string_view::npos) {
        return {};
    }
    const std::string_view ns = channel.substr(0, colon);
    for (const auto& [name, policy] : by_namespace) {
        if (name == ns) {
            return policy;
        }
    }
    return {};
}

// --- channel_history ------------------------------------------------------------------------

channel_history::channel_history(history_store& store, channel_policy policy)
    : _store(store), _policy(policy), _serial(store._next_serial++) {
    _store._live.emplace(_serial, this);
    ++_store._stats.channels;
}

channel_history::~channel_history() {
    for (const entry& e : _entries) {
        _store._stats.bytes -= history_store::cost(e.frame);
    }
    _store._stats.messages -= _entries.size();
    --_store._stats.channels;
    // Its entries in the store's oldest-first list are stale now; compaction removes them.
    _store._live.erase(_serial);
}

void channel_history::restart(uint64_t next_offset) noexcept {
    while (!_entries.empty()) {
        drop_oldest(drop_reason::count);
    }
    _first = next_offset;
}

void channel_history::push(uint64_t offset, core::frame_ref f, uint64_t now_s, bool ack) {
    if (!_entries.empty() && offset != _first + _entries.size()) {
        // Not the next offset: start again there rather than keep a ring with a hole.
        while (!_entries.empty()) {
            drop_oldest(drop_reason::count);
        }
    }
    if (_entries.empty()) {
        _first = offset;
    }
    const std::size_t bytes = history_store::cost(f);
    _entries.push_back(entry{std::move(f), static_cast<uint32_t>(now_s), ack});
    ++_store._stats.messages;
    _store._stats.bytes += bytes;
    while (_entries.size() > _policy.count) {
        drop_oldest(drop_reason::count);
    }
    expire(now_s);
    _store.added(*this, offset, bytes);
}

void channel_history::expire(uint64_t now_s) noexcept {
    if (_policy.ttl_s == 0) {
        return;
    }
    const auto now = static_cast<uint32_t>(now_s);
    // Whole seconds: strictly older than the ttl, so a message is kept at least ttl s
    // (and less than ttl + 1).
    while (!_entries.empty() && now - _entries.front().at_s > _policy.ttl_s) {
        drop_oldest(drop_reason::age);
    }
}

channel_history::stamped channel_history::stamped_from(uint64_t since_ms) const noexcept {
    std::size_t lo = 0;
    std::size_t hi = _entries.size();
    while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        if (envelope_timestamp(_entries[mid].frame) < since_ms) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return {_first + lo, lo > 0};
}

std::vector<core::frame_ref> channel_history::after(uint64_t since, std::size_t limit,
                                                    uint64_t now_s) {
    expire(now_s);
    std::vector<core::frame_ref> out;
    // Offsets at or before `since`, and offsets the ring no longer holds, are skipped.
    const uint64_t from = std::max(since + 1, _first);
    const uint64_t end = _first + _entries.size();
    if (from >= end) {
        return out;
    }
    const std::size_t n = std::min<uint64_t>(end - from, limit);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(_entries[static_cast<std::size_t>(from - _first) + i].frame);
    }
    return out;
}

std::vector<channel_history::item> channel_history::unconfirmed(uint64_t acked_through,
                                                               uint64_t delivered_through,
                                                               std::size_t limit,
                                                               uint64_t now_s) {
    expire(now_s);
    std::vector<item> out;
    const uint64_t from = std::max(std::min(acked_through, delivered_through) + 1, _first);
    const uint64_t end = _first + _entries.size();
    for (uint64_t offset = from; offset < end && out.size() < limit; ++offset) {
        const entry& e = _entries[static_cast<std::size_t>(offset - _first)];
        if (offset > delivered_through || (e.ack && offset > acked_through)) {
            out.push_back(item{offset, e.frame, e.ack});
        }
    }
    return out;
}

void channel_history::drop_oldest(drop_reason why) noexcept {
    _store._stats.bytes -= history_store::cost(_entries.front().frame);
    --_store._stats.messages;
    switch (why) {
    case drop_reason::count:
        ++_store._stats.evicted_count;
        break;
    case drop_reason::age:
        ++_store._stats.evicted_age;
        break;
    case drop_reason::budget:
        ++_store._stats.evicted_budget;
        break;
    }
    _entries.pop_front();
    ++_first;
}

// --- history_store ----------------------------------------------------------------------------

history_store::~history_store() {
    RINGCAST_ASSERT(_live.empty());
}

std::unique_ptr<channel_history> history_store::make(channel_policy policy) {
    RINGCAST_ASSERT(policy.count > 0);
    return std::make_unique<channel_history>(*this, policy);
}

std::size_t history_store::cost(const core::frame_ref& f) noexcept {
    return sizeof(core::frame) + f->size() + sizeof(channel_history::entry) + sizeof(order_entry);
}

bool history_store::live(const order_entry& e) const noexcept {
    auto it = _live.find(e.serial);
    if (it == _live.end()) {
        return false;
    }
    const channel_history& h = *it->second;
    return e.offset >= h._first && e.offset < h._first + h._entries.size();
}

void history_store::added(channel_history& h, uint64_t offset, std::size_t) {
    _oldest.push_back(order_entry{h._serial, offset});
    enforce_budget();
    if (_oldest.size() > 2 * _stats.messages + 1024) {
        compact();
    }
}

void history_store::enforce_budget() noexcept {
    // Oldest of the shard first. Each channel's entries are in offset order in the list,
    // so a live front entry is its channel's oldest message.
    while (_stats.bytes > _budget && !_oldest.empty()) {
        const order_entry e = _oldest.front();
        _oldest.pop_front();
        if (!live(e)) {
            continue; // already dropped for its count or age, or its channel ended
        }
        channel_history& h = *_live.find(e.serial)->second;
        if (e.offset != h._first) {
            continue; // only after a restarted ring (push's gap rule): not its oldest
        }
        h.drop_oldest(channel_history::drop_reason::budget);
    }
}

void history_store::compact() {
    std::erase_if(_oldest, [this](const order_entry& e) { return !live(e); });
}

} // namespace ringcast::pubsub
