// Private to src/net: --max-connections-per-user, counted across the node.
//
// A user's /ws connections are counted on the user's home shard (pubsub::home_shard of the
// user id), whichever shards hold them. A handshake that carries a user id asks that home
// for a slot before its 101 goes out; a connection that got one gives it back when it
// closes:
//
//   serve_pubsub ─► home here? ─yes─► take ─► upgrade, or 429
//                       └─no─► (user_claim) ─► home: take ─► (user_answer) ─► upgrade, or 429
//   granted connection closes ─► home here? give_back : (user_release) ─► home: give_back
//   an answer for a connection that closed while waiting: a grant is given back at once
//
// The mesh keeps order per (from, to) pair, so a shard's release never overtakes the claim
// it answers. Nothing is counted twice or lost: a slot is taken only on the home, and every
// grant ends in exactly one release (the connection's close, or the late answer's).
#pragma once

#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <string>
#include <string_view>

namespace ringcast::net {

/// The slot counts of the users homed on one shard. Bounded by the connections that hold
/// slots: a user's entry exists while it holds at least one (give_back of the last erases
/// it), and every slot is one open (or opening) connection of the node.
class user_slots {
public:
    /// `max_per_user`: the most connections one user may hold; must be at least 1.
    explicit user_slots(uint32_t max_per_user) noexcept : _max(max_per_user) {}
    /// A new limit (a reload): later claims are judged by it; slots held stay held.
    void set_limit(uint32_t max_per_user) noexcept { _max = max_per_user; }

    /// One more connection of `user`, if it holds fewer than the limit: true and counted;
    /// otherwise false and nothing changes.
    bool take(std::string_view user);
    /// One connection of `user` that take() admitted has ended. A user with no slot is an
    /// invariant violation (a release without its grant).
    void give_back(std::string_view user) noexcept;
    /// Slots `user` holds now (0 for a user without any).
    uint32_t held(std::string_view user) const noexcept;
    /// Users holding at least one slot here (gauge).
    std::size_t users() const noexcept { return _held.size(); }
    /// Calls fn(user, slots held) for every user holding slots here.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [user, held] : _held) {
            fn(std::string_view(user), held);
        }
    }

private:
    uint32_t _max;
    pubsub::name_map<uint32_t> _held;
};

/// A claim, its answer or a release travelling between a shard and a user's home.
struct user_slot_msg {
    std::string user;
    conn_handle conn;     ///< claim, answer: the waiting handshake on the asking shard
    bool granted = false; ///< answer: the home took a slot for it
};

/// The gateway's mesh kinds:
///
///   user_claim    S → home   user_slot_msg   a handshake on S asks for a slot of `user`
///   user_answer   home → S   user_slot_msg   `granted`: a slot was taken for `conn`
///   user_release  S → home   user_slot_msg   a connection holding a slot of `user` ended
namespace kinds {
struct user_claim {
    using payload = user_slot_msg;
    static constexpr std::string_view name = "net.user_claim";
};
struct user_answer {
    using payload = user_slot_msg;
    static constexpr std::string_view name = "net.user_answer";
};
struct user_release {
    using payload = user_slot_msg;
    static constexpr std::string_view name = "net.user_release";
};
} // namespace kinds

} // namespace ringcast::net
