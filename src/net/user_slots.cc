// The home shard's side of --max-connections-per-user (user_slots.h): one count per user
// that holds a slot.
#include "user_slots.h"

namespace ringcast::net {

bool user_slots::take(std::string_view user) {
    auto it = _held.find(user);
    if (it == _held.end()) {
        _held.emplace(std::string(user), 1u);
        return true;
    }
    if (it->second >= _max) {
        return false;
    }
    ++it->second;
    return true;
}

void user_slots::give_back(std::string_view user) noexcept {
    auto it = _held.find(user);
    RINGCAST_ASSERT(it != _held.end() && it->second > 0);
    if (it == _held.end()) {
        return;
    }
    if (--it->second == 0) {
        _held.erase(it);
    }
}

uint32_t user_slots::held(std::string_view user) const noexcept {
    auto it = _held.find(user);
    return it == _held.end() ? 0 : it->second;
}

} // namespace ringcast::net
