// Private to src/pubsub: the engine's data structures and its mesh payloads.
#pragma once

#include <ringcast/pubsub.h>

#include <string>
#include <vector>

namespace ringcast::pubsub {

enum class reply_mode : uint8_t { reply, silent };

/// A subscribe waiting for the home shard's confirmation (the first local subscriber's
/// round trip); answered when it arrives.
struct pending_sub {
    conn_handle h;
    session* s;
    bool has_id;
    uint64_t id;
    reply_mode mode;
};

/// A channel as seen by one shard: its local subscribers. Exists while it has subscribers
/// or pending subscribes. `offset` is the last offset delivered here (or the subscription
/// point), which is what a later local subscribe reply reports.
struct local_channel {
    struct entry {
        conn_handle h;
        session* s;
        uint32_t sub_index; // position in s->_subs
    };
    std::string name;
    std::vector<entry> subscribers;
    std::vector<pending_sub> waiting;
    std::string epoch;
    uint64_t offset = 0;
    bool confirmed = false; // the home shard knows this shard is interested
};

/// A channel on its home shard: the order (offset, epoch) and which shards want it.
/// Kept for the life of the process so offsets never go back (history will bound it).
struct home_channel {
    uint64_t offset = 0;
    std::string epoch;
    std::vector<bool> interested; // per shard
};

/// A publish travelling to the channel's home shard and back to its origin.
struct publish_job {
    std::string channel;
    std::string event;
    std::string data;
    std::string user_id;
    priority prio;
    publish_origin origin;
    uint64_t offset;
};

/// One ordered frame for another shard's local subscribers.
struct delivery {
    core::frame_ref frame;
    std::string channel;
    priority prio;
    uint64_t offset;
};

/// interest / confirmed payload.
struct interest_msg {
    std::string channel;
    std::string epoch;
    uint64_t offset;
};

} // namespace ringcast::pubsub
