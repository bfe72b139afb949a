// Private to src/pubsub: the vocabulary the engine's parts share — how an interest change
// is said, the command path's backlog and limits, and the mesh kinds with their payloads.
// Each part's own types are in its header (subscriptions.h, ordering.h, fanout.h).
#pragma once

#include <ringcast/pubsub.h>

#include <deque>
#include <string>
#include <vector>

namespace ringcast::pubsub {

/// A shard's interest in a channel changed: its first local subscriber came (or is
/// pending), or its last one went. The shard's subscriptions produce it, the channel's home
/// shard's ordering consumes it (the interest mesh kind carries it between them).
enum class interest_change : uint8_t { gained, lost };

/// Commands a session may hold back while an earlier one is under way, and their bytes
/// (a command is at most --max-message-bytes on its own). Above the default burst of the
/// rate limit (200), so a client pipelining a whole burst is never refused; ~40 KB of
/// small commands at most.
inline constexpr std::size_t max_deferred_commands = 1024;
inline constexpr std::size_t max_deferred_bytes = 4u << 20;
/// Output a connection may have queued and unread when it asks for presence; past it the
/// command is refused 429 (a presence list is up to ~35 KB: an amplifier for a client that
/// never reads). The --read-pause-bytes default, at which the connection is not read either.
inline constexpr std::size_t max_presence_backlog_bytes = 256u << 10;
/// Publishes one session may have travelling to home shards at once; the next waits.
/// A backend feed at 100 k/s with a 1 ms round trip keeps ~100 under way.
inline constexpr uint32_t max_publishes_in_flight = 4096;

/// What a session holds while commands wait (see session in pubsub.h): commands not yet
/// started, and replies in command order, each filled when its command finishes. Exists
/// only while one of the two is not empty.
struct session_backlog {
    std::deque<std::string> deferred;
    std::size_t deferred_bytes = 0;
    struct slot {
        bool ready = false;
        std::string text; // empty when the command answers nothing (silent subscribe)
    };
    std::deque<slot> replies;
    uint32_t first_slot = 0; // number of replies.front(); wraps harmlessly
};

/// A publish travelling to the channel's home shard and back to its origin. `data` is
/// the raw JSON of the message's data, shared by every publish of one broadcast.
struct publish_job {
    std::string channel;
    std::string event;
    core::frame_ref data;
    std::string user_id;
    priority prio;
    publish_origin origin;
    uint64_t offset;
    bool ack = false; ///< set by the home: its receivers must acknowledge it
    /// core::monotonic_us() when the publishing shard accepted it (engine::route), carried
    /// to every subscriber shard for the publish-to-send histogram.
    uint64_t accepted_us = 0;
    /// Set by the home: the envelope's "timestamp", never below the channel's previous one
    /// (home_channel::stamp_ms), so recovery by time can search the history.
    uint64_t timestamp_ms = 0;
    /// The envelope's "id": empty, fanout makes one; with a broker, the one every node
    /// makes from the order (broker_message::message_id).
    std::string message_id;
    /// With a broker: the shard the publish came from (its answer goes back there), and
    /// why it was not ordered (offset 0).
    unsigned from_shard = 0;
    std::string_view failure;
};

/// One ordered frame for another shard's local subscribers.
struct delivery {
    core::frame_ref frame;
    std::string channel;
    priority prio;
    uint64_t offset;
    bool ack = false; ///< its receivers must acknowledge it (docs/protocol.md "Acks")
    /// publish_job::accepted_us of a live publish; 0 for what is not one (presence events,
    /// replays from history), which the latency histogram leaves out.
    uint64_t accepted_us = 0;
};

/// acked payload: a connection acknowledged its user: channel up to `offset`.
struct ack_msg {
    std::string channel;
    uint64_t offset = 0;
};

/// The most messages one recovery replays; a client that missed more is answered
/// recovered:false (it reloads from its backend). Bounds what one subscribe makes the home
/// copy into an answer (8 B a reference) and queue on the connection (~2.5 MB of 250 B
/// envelopes, under the 4 MiB slow-consumer default).
inline constexpr uint64_t max_recover_messages = 10000;

/// recover / recovered payload: a subscribe with "recover" asks the channel's home for what
/// it missed (docs/protocol.md "Recovery"), and the home answers with it.
struct recover_msg {
    std::string channel;
    std::string epoch;  ///< recover: the client's; recovered: the channel's
    uint64_t since = 0; ///< the client's offset
    bool by_time = false; ///< recover from since_ms instead (recover_point::by_time)
    uint64_t since_ms = 0;
    uint64_t point = 0; ///< recover: the subscription point here; recovered: the offset after
                        ///< which every message follows (the frames, then live)
    uint64_t offset = 0; ///< recovered: the channel's last offset
    bool recovered = false;
    std::vector<core::frame_ref> frames; ///< recovered: (point, offset], oldest first
    // The subscriber and its reply, untouched by the home.
    conn_handle conn;
    uint32_t token = 0; ///< local_channel::entry::recovering of this recovery
    bool has_id = false;
    uint64_t id = 0;
    uint32_t slot = 0;
};

/// interest / confirmed payload.
struct interest_msg {
    std::string channel;
    std::string epoch;
    uint64_t offset;
    uint64_t generation; // the local channel instance that asked (echoed in confirmed)
    bool gained = false; // interest: the first subscriber came (true) or the last went
};

/// The engine's mesh kinds (core.h: mesh_kind). The handler of each owns the payload:
///
///   interest    S → home   interest_msg   S gained (`gained`) or lost its first / last local
///                                         subscriber of `channel`
///   confirmed   home → S   interest_msg   the subscription point (epoch, offset)
///   publish     S → home   publish_job    home orders it and posts it back as `published`
///   published   home → S   publish_job    offset filled in; S answers the publisher
///   deliver     home → T   delivery       one ordered frame for T's local subscribers
///   recover     S → home   recover_msg    a subscriber of S asks for what it missed
///   recovered   home → S   recover_msg    the frames after its point, and the verdict
///   acked       S → home   ack_msg        a user acknowledged its user: channel this far
///
/// Per (from, to) pair the mesh keeps order across kinds, which the command order relies
/// on: a shard's interest for a channel reaches the home before a later publish of the same
/// shard, and the home's confirmation and deliveries reach the shard before the publish's
/// answer. Recovery relies on it too: every delivery the home ordered before answering a
/// recover reaches S before the answer, every later one after it.
namespace kinds {
struct interest {
    using payload = interest_msg;
    static constexpr std::string_view name = "pubsub.interest";
};
struct confirmed {
    using payload = interest_msg;
    static constexpr std::string_view name = "pubsub.confirmed";
};
struct publish {
    using payload = publish_job;
    static constexpr std::string_view name = "pubsub.publish";
};
struct published {
    using payload = publish_job;
    static constexpr std::string_view name = "pubsub.published";
};
struct deliver {
    using payload = delivery;
    static constexpr std::string_view name = "pubsub.deliver";
};
struct recover {
    using payload = recover_msg;
    static constexpr std::string_view name = "pubsub.recover";
};
struct recovered {
    using payload = recover_msg;
    static constexpr std::string_view name = "pubsub.recovered";
};
struct acked {
    using payload = ack_msg;
    static constexpr std::string_view name = "pubsub.acked";
};
} // namespace kinds

// --- presence (presence.h, docs/protocol.md "Presence") ----------------------------------
//
//   member           S → home   member_msg     a connection of S joined / left `channel`
//   presence_ask     S → home   presence_msg   a presence command asks for the page
//   presence_answer  home → S   presence_msg   the page; S answers in the command's slot
//
// A shard's member deltas for a channel travel on the same ordered pair as its interest:
// the join after the interest gained, every leave before the interest lost; an ask after
// the deltas of the same shard's earlier subscribes. Join / leave events go back as
// `deliver` (offset 0: no channel's offset moves; priority low).

/// One subscription of a presence channel was added or removed (interest_sink).
enum class member_change : uint8_t { joined, left };

/// member payload.
struct member_msg {
    std::string channel;
    std::string user_id; ///< empty: an anonymous connection
    member_change change;
};

/// presence_ask / presence_answer payload.
struct presence_msg {
    std::string channel;
    presence_page page; ///< presence_answer: filled by the home
    // The asker and its reply, untouched by the home.
    conn_handle conn;
    bool has_id = false;
    uint64_t id = 0;
    uint32_t slot = 0;
};

namespace kinds {
struct member {
    using payload = member_msg;
    static constexpr std::string_view name = "pubsub.member";
};
struct presence_ask {
    using payload = presence_msg;
    static constexpr std::string_view name = "pubsub.presence_ask";
};
struct presence_answer {
    using payload = presence_msg;
    static constexpr std::string_view name = "pubsub.presence_answer";
};
} // namespace kinds

uint64_t wall_clock_ms() noexcept;
/// A value unique to this process start, for epochs (ordering).
uint64_t epoch_instance() noexcept;

} // namespace ringcast::pubsub
