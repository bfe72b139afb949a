// Subscriptions: local channels, their subscriber lists and waiting subscribes, the
// sessions' channel lists, and when this shard's interest changes (subscriptions.h has the
// model).
#include "subscriptions.h"

#include <algorithm>

namespace ringcast::pubsub {

subscriptions::subscriptions(interest_sink& sink) : _sink(sink) {}

subscriptions::~subscriptions() = default;

const local_channel* subscriptions::subscribed(const session& s,
                                               std::string_view channel) const noexcept {
    for (const auto& sub : s._subs) {
        if (sub.channel->name == channel) {
            return sub.channel;
        }
    }
    return nullptr;
}

void subscriptions::add(local_channel& ch, conn_handle h, session& s) {
    s._subs.push_back({&ch, static_cast<uint32_t>(ch.subscribers.size())});
    ch.subscribers.push_back({h, &s, static_cast<uint32_t>(s._subs.size() - 1), 0});
    ++_subscriptions;
    _sink.member_changed(ch, s, member_change::joined);
}

local_channel::entry* subscriptions::entry_of(local_channel& ch, session& s) noexcept {
    for (const auto& sub : s._subs) {
        if (sub.channel == &ch) {
            return &ch.subscribers[sub.index];
        }
    }
    return nullptr;
}

void subscriptions::wait(std::string_view channel, local_channel* ch, const pending_sub& p) {
    const bool created = ch == nullptr;
    if (created) {
        auto fresh = std::make_unique<local_channel>();
        fresh->name = std::string(channel);
        fresh->generation = ++_generation;
        ch = fresh.get();
        _local.emplace(fresh->name, std::move(fresh));
    }
    ch->waiting.push_back(p);
    p.s->_waiting_on.push_back(ch);
    ++p.s->_pending;
    if (created) {
        // First local subscriber: a round trip to the home shard fixes the point from which
        // this shard receives the channel's messages.
        _sink.interest_changed(ch->name, ch->generation, interest_change::gained);
    }
}

std::vector<pending_sub> subscriptions::confirm(local_channel& ch, std::string_view epoch,
                                                uint64_t offset) {
    ch.confirmed = true;
    ch.epoch = std::string(epoch);
    ch.offset = offset;
    auto waiting = std::move(ch.waiting);
    ch.waiting.clear();
    for (const pending_sub& p : waiting) {
        session& s = *p.s;
        --s._pending;
        std::erase(s._waiting_on, &ch);
        bool already = false;
        for (const auto& sub : s._subs) {
            already = already || sub.channel == &ch;
        }
        if (!already) {
            add(ch, p.h, s);
        }
    }
    return waiting;
}

bool subscriptions::remove(session& s, std::string_view channel) noexcept {
    for (std::size_t i = 0; i < s._subs.size(); ++i) {
        if (s._subs[i].channel->name == channel) {
            remove_at(s, i);
            return true;
        }
    }
    return false;
}

void subscriptions::close(conn_handle h, session& s) noexcept {
    while (!s._subs.empty()) {
        remove_at(s, s._subs.size() - 1);
    }
    cancel_pending(h, s);
}

void subscriptions::remove_at(session& s, std::size_t at) noexcept {
    local_channel* ch = s._subs[at].channel;
    const uint32_t index = s._subs[at].index;
    // Swap-remove in the channel, fixing the moved subscriber's back-reference...
    ch->subscribers[index] = ch->subscribers.back();
    ch->subscribers.pop_back();
    if (index < ch->subscribers.size()) {
        const auto& moved = ch->subscribers[index];
        moved.s->_subs[moved.sub_index].index = index;
    }
    // ...and in the session.
    s._subs[at] = s._subs.back();
    s._subs.pop_back();
    if (at < s._subs.size()) {
        const auto& moved = s._subs[at];
        moved.channel->subscribers[moved.index].sub_index = static_cast<uint32_t>(at);
    }
    --_subscriptions;
    // Before drop(): the home hears the member leave before the shard's interest goes.
    _sink.member_changed(*ch, s, member_change::left);
    if (ch->subscribers.empty() && ch->waiting.empty()) {
        drop(*ch);
    }
}

void subscriptions::cancel_pending(conn_handle h, session& s) noexcept {
    // Only the channels this session waits on: closing costs O(its own subscribes).
    for (local_channel* ch : s._waiting_on) {
        std::erase_if(ch->waiting, [&](const pending_sub& p) { return p.h == h; });
        if (ch->subscribers.empty() && ch->waiting.empty()) {
            drop(*ch);
        }
    }
    s._waiting_on.clear();
    s._pending = 0;
}

void subscriptions::drop(local_channel& ch) noexcept {
    // Erasing frees `ch`: keep what the home shard must be told.
    const std::string name = std::move(ch.name);
    const uint64_t generation = ch.generation;
    _local.erase(name);
    // Also when the interest was never confirmed: the home counted it when it arrived.
    _sink.interest_changed(name, generation, interest_change::lost);
}

std::vector<std::pair<std::string, uint32_t>> subscriptions::channel_counts() const {
    std::vector<std::pair<std::string, uint32_t>> out;
    for (const auto& [name, ch] : _local) {
        if (!ch->subscribers.empty()) {
            out.emplace_back(name, static_cast<uint32_t>(ch->subscribers.size()));
        }
    }
    return out;
}

std::vector<std::pair<std::string, uint32_t>> subscriptions::top_counts(std::size_t most) const {
    using candidate = std::pair<uint32_t, const std::string*>;
    // "Ranks before": more subscribers, then the smaller name. The heap keeps its worst
    // candidate on top, to be replaced by a better one.
    const auto before = [](const candidate& a, const candidate& b) {
        return a.first != b.first ? a.first > b.first : *a.second < *b.second;
    };
    std::vector<candidate> heap;
    heap.reserve(most);
    for (const auto& [name, ch] : _local) {
        if (ch->subscribers.empty() || most == 0) {
            continue;
        }
        const candidate c{static_cast<uint32_t>(ch->subscribers.size()), &name};
        if (heap.size() < most) {
            heap.push_back(c);
            std::push_heap(heap.begin(), heap.end(), before);
        } else if (before(c, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), before);
            heap.back() = c;
            std::push_heap(heap.begin(), heap.end(), before);
        }
    }
    std::sort(heap.begin(), heap.end(), before);
    std::vector<std::pair<std::string, uint32_t>> out;
    out.reserve(heap.size());
    for (const candidate& c : heap) {
        out.emplace_back(*c.second, c.first);
    }
    return out;
}

} // namespace ringcast::pubsub
