// Presence: who is subscribed to a channel, kept by the channel's home shard for the
// namespaces marked `presence` (--namespace NS:presence; docs/protocol.md "Presence").
//
//   shard S: subscriptions::add / remove ─► sink: member_changed ─► engine relay
//              (presence namespace, not user:) ─► (member) ─► home, or at once when home
//   home:    apply() to the home_channel's channel_presence ─► a user's 0→1 / 1→0?
//              ─► join / leave frame, built once ─► every interested shard (deliver,
//                 offset 0, priority 4), unless the channel is past the cut-off
//   presence command / GET /api/presence/<channel> ─► the home's page (counts, members)
//
// A member is one subscription of one connection: a user with three connections to the
// channel counts 3 connections and 1 user. Anonymous connections are counted, never named.
// What a channel_presence holds is bounded by the subscriptions themselves (each entry
// stands for at least one existing subscription on some shard); it is dropped when the
// last member leaves.
//
// Used by the home shard's thread only; knows nothing of sessions or the mesh, so a unit
// test drives it alone.
#pragma once

#include "engine_types.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcast::pubsub {

/// The members of one channel on its home shard (home_channel::presence).
struct channel_presence {
    name_map<uint32_t> users; ///< user id → its connections subscribed (≥ 1)
    uint64_t anonymous = 0;   ///< connections without a user id
    uint64_t connections = 0; ///< every member connection, anonymous ones included
};

/// What one member delta did to a channel's users.
enum class user_transition : uint8_t {
    none,   ///< only a connection count moved (another connection of the user, anonymous)
    joined, ///< the user's first connection to the channel: 0 → 1
    left,   ///< the user's last connection left: 1 → 0
};

/// Applies one member delta: connection `user_id` (empty: anonymous) joined or left. A
/// leave the presence does not hold (never sent: every leave follows its join on the same
/// ordered mesh pair) changes nothing and answers none.
user_transition apply_member(channel_presence& p, std::string_view user_id, member_change change);

/// The entries a broker keeps of `p` (docs/scaling.md "Presence"): each user and its
/// connections, and the anonymous connections under the empty user when there are any.
std::vector<std::pair<std::string, uint32_t>> member_entries(const channel_presence& p);

/// The page of `p` (null: nobody): counts, and with `detail` members the users sorted by id
/// unless there are more than `max_listed` (then listed is false and members empty).
presence_page presence_page_of(const channel_presence* p, presence_detail detail,
                               uint32_t max_listed);

/// The text of a join / leave event: {"op":"presence","type":"join"|"leave","channel":C,
/// "userId":U}. Names are valid_channel / valid_user_id: written without escaping.
std::string presence_event_text(std::string_view channel, std::string_view user_id,
                                member_change change);

} // namespace ringcast::pubsub
