// Fanout: the delivery side of the pubsub engine. It frames an ordered message once, hands
// the frame by reference to every shard interested in its channel, queues a reference on
// each local subscriber under the per-priority slow-consumer policy, and does the same for
// a broadcast to every session of the shard.
//
//   home shard:  engine::order ─► ordering (offset) ─► fan_out(job, interested)
//                   frame once ──┬─► this shard:   deliver_local
//                                └─► other shards: deliver (mesh) ─► engine ─► deliver_local
//   deliver_local ─► subscriptions::delivering (one lookup) ─► per subscriber: admit() ─►
//                    send a reference | drop (counted) | close as a slow consumer
//
// This is the hot path. Per message: one channel lookup, one budget check, and the
// allocations of the frame, its message id and one mesh payload per other shard. Per
// subscriber: one queued-bytes read and one send of a reference, no allocation, and only
// calls that are inline or in fanout.cc.
//
// permessage-deflate (docs/protocol.md "Compression"): a channel message of at least
// config::deflate_threshold_bytes is compressed once per shard, at its first subscriber
// that negotiated deflate, without context takeover; that compressed frame is then shared
// by every such subscriber whose window it fits, exactly like the plain one:
//
//   deliver_local(f) ─► per subscriber: deflate off, or message < threshold ─► f
//                                       deflate on ─► compressed (made once) ─► f′
//
// History, recovery, ack resends and shard broadcasts (presence, sys:) send the plain frame,
// which a deflate connection accepts as well (RSV1 clear).
//
// One per shard, used by that shard's thread only.
#pragma once

#include "acks.h"
#include "engine_types.h"

#include <ringcast/core.h>
#include <ringcast/ws.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcast::pubsub {

class subscriptions;
struct local_channel;

/// Data at least this large is not copied into each channel's frame but spliced in by
/// reference (core::make_spliced_frame): a broadcast of 1 MiB to 1,000 channels holds the
/// megabyte once. Below it a copy is cheaper than the two extra iovecs per send.
inline constexpr std::size_t splice_data_bytes = 4096;

/// Frames one message: a WebSocket text frame holding envelope `e`, header and envelope in
/// one shareable buffer. `data` holds e.data's bytes (e.data views them); from
/// splice_data_bytes on they are spliced in by reference instead of copied.
core::frame_ref frame_message(const envelope& e, const core::frame_ref& data);

/// What the slow-consumer policy does with one message for one connection.
enum class delivery_verdict : uint8_t { send, drop, close };

/// The slow-consumer policy (docs/decisions.md, "Backpressure policy"): the connection's
/// queued bytes decide. At `slow_consumer_bytes` the connection is closed; from three
/// quarters of it priority 3 is dropped, from half of it priority 4; 1 and 2 are never
/// dropped. Over the shard's output budget, 3 and 4 are dropped for every connection.
inline delivery_verdict admit(std::size_t queued_bytes, std::size_t slow_consumer_bytes,
                              priority prio, bool shard_over_budget) noexcept {
    if (queued_bytes >= slow_consumer_bytes) {
        return delivery_verdict::close;
    }
    switch (prio) {
    case priority::critical:
    case priority::high:
        return delivery_verdict::send;
    case priority::normal:
        return queued_bytes >= slow_consumer_bytes / 4 * 3 || shard_over_budget
                   ? delivery_verdict::drop
                   : delivery_verdict::send;
    case priority::low:
        return queued_bytes >= slow_consumer_bytes / 2 || shard_over_budget
                   ? delivery_verdict::drop
                   : delivery_verdict::send;
    }
    return delivery_verdict::send; // a value outside the enum (never parsed): as 1 and 2
}

/// Fanout's counters (the engine's counters gather them).
struct delivery_stats {
    uint64_t messages_out = 0; ///< frames queued to connections
    uint64_t bytes_out = 0;    ///< bytes of those frames
    uint64_t dropped[5] = {};  ///< by priority (index 1-4)
    uint64_t slow_consumer_closes = 0;
    uint64_t ack_pending = 0; ///< messages held in the connections' ack windows (gauge)
    uint64_t acked = 0;
    uint64_t ack_resent = 0;
    uint64_t ack_closes = 0;
    uint64_t deflate_compressions = 0; ///< messages compressed here (once per message)
    uint64_t deflate_input_bytes = 0;  ///< their payload bytes
    uint64_t deflate_output_bytes = 0; ///< their compressed payload bytes
    uint64_t compressed_messages_out = 0; ///< of messages_out: sent compressed
    uint64_t compressed_bytes_out = 0;    ///< of bytes_out: those frames' bytes
    /// Publish accepted (on any shard) → its last copy queued to this shard's subscribers,
    /// µs, once per message per shard (deliver_local).
    core::latency_histogram publish_to_send;
    /// Closes begun here and by the engine (disconnects), by code.
    ws::close_counts closes;
};

/// Framing, fan-out and local delivery of one shard (see the file comment). Reads the
/// local subscriber lists through `local` and sends through `io`; sets a session's closing
/// flag when it closes it as a slow consumer.
class fanout {
public:
    /// `slow_consumer_bytes`: config::slow_consumer_bytes; `start_s` (process start,
    /// wall-clock seconds) makes message ids differ across restarts; `ack_timeout_ms`:
    /// config::ack_timeout_ms.
    /// `socketio`: config::socketio (kept by reference: the engine's config outlives it).
    fanout(core::conn_io& io, subscriptions& local, std::size_t slow_consumer_bytes,
           uint32_t start_s, uint32_t ack_timeout_ms = 10000,
           std::size_t deflate_threshold_bytes = 256, const socketio_config* socketio = nullptr);
    ~fanout();
    fanout(const fanout&) = delete;
    fanout& operator=(const fanout&) = delete;

    /// On the channel's home shard, after ordering gave `job` its offset: frames it once and
    /// hands the frame to every shard set in `interested` (indexed by shard): this one
    /// through deliver_local, the others as a deliver mesh message. Returns the frame (for
    /// the channel's history).
    core::frame_ref fan_out(const publish_job& job, const std::vector<bool>& interested);
    /// Queues `f` (the message at `offset` on `channel`) on every local subscriber of the
    /// channel that is not closing, under the slow-consumer policy. Nothing when the last
    /// local subscriber left while the message was in flight. `ack`: the message needs
    /// acknowledging: it is never dropped (sent as priority 2 at least) and waits in each
    /// receiver's ack window (acks.h).
    /// `accepted_us`: publish_job::accepted_us of a live publish, recorded once in the
    /// publish-to-send histogram when at least one copy was queued; 0 records nothing.
    void deliver_local(std::string_view channel, const core::frame_ref& f, priority prio,
                       uint64_t offset, bool ack = false, uint64_t accepted_us = 0) noexcept;
    /// Queues `f`, a message recovered from history, on `s` unless it is closing; never
    /// dropped (the slow-consumer limit still closes it). `ack`: as deliver_local, with
    /// `channel` the local channel it belongs to and `offset` its place. A Socket.IO
    /// session gets it re-framed, with a delivery tag when recovery is on.
    void deliver_recovered(conn_handle h, session& s, const core::frame_ref& f,
                           const local_channel* channel = nullptr, uint64_t offset = 0,
                           bool ack = false) noexcept;

    // Acknowledged delivery (acks.h): each connection's window of unacknowledged messages.
    /// `s` acknowledged `channel` (its local instance) through `offset`: what left its
    /// window.
    ack_window::acked acknowledge(session& s, const local_channel& channel,
                                  uint64_t offset) noexcept;
    /// `s` no longer subscribes to `channel`: its unacknowledged messages there are dropped.
    void forget(session& s, const local_channel& channel) noexcept;
    /// h's ack timer fired: sends again, once, what is due, and re-arms for the next.
    void resend_due(conn_handle h, session& s) noexcept;
    /// `s` is closing for good: its window goes (and leaves the gauge).
    void release(session& s) noexcept;
    /// Queues `f` on every session in `sessions` that is not closing, under the same
    /// policy; returns how many got it.
    uint64_t broadcast(const std::vector<std::pair<conn_handle, session*>>& sessions,
                       const core::frame_ref& f, priority prio) noexcept;

    const delivery_stats& stats() const noexcept { return _stats; }
    /// The engine began closing a connection with `code` (a disconnect): counted with ours.
    void close_sent(ws::close_code code) noexcept { _stats.closes.close_sent(code); }
    /// New limits (a reload): config::slow_consumer_bytes and ack_timeout_ms.
    void set_limits(std::size_t slow_consumer_bytes, uint32_t ack_timeout_ms) noexcept {
        _slow_consumer_bytes = slow_consumer_bytes;
        _ack_timeout_ms = ack_timeout_ms;
    }
    /// A frame's compressed variant for one deliver_local pass: made at the first
    /// subscriber that can take it, then shared (see the file comment).
    struct compressed_variant {
        core::frame_ref frame;      ///< null until made, or when it cannot be
        std::size_t payload_bytes = 0; ///< the uncompressed payload: what windows must fit
        bool tried = false;
    };
    /// Every variant of one message a pass may need, each made at most once: compressed,
    /// and for Socket.IO subscribers re-framed (socketio_wire.h) and that compressed.
    struct variants {
        compressed_variant plain_z;
        core::frame_ref sio; ///< null until made, or when the frame has no Socket.IO form
        bool sio_tried = false;
        compressed_variant sio_z;
    };

private:
    bool deliver(conn_handle h, session& s, const core::frame_ref& f, priority prio,
                 bool shard_over_budget) noexcept;
    /// The frame `s` gets for `plain`: its compressed variant (made now if not tried yet)
    /// when `s` negotiated permessage-deflate and the variant fits its window; else plain.
    const core::frame_ref& frame_for(const session& s, const core::frame_ref& plain,
                                     compressed_variant& z) noexcept;
    /// The frame `s` gets for `plain` (of `channel`; empty: no channel) in one pass: as
    /// frame_for for a /ws session; for a Socket.IO session the re-framed variant (made
    /// once), compressed as frame_for would. Null: nothing to send it (no Socket.IO form).
    /// `offset`: the channel message's (0: not a live channel message, no recovery tag).
    const core::frame_ref& wire_frame(const session& s, const core::frame_ref& plain,
                                      std::string_view channel, uint64_t offset,
                                      variants& v) noexcept;
public:
    /// Socket.IO recovery (engine::socketio_seq, socketio_position).
    uint64_t socketio_seq() const noexcept { return _sio_seq; }
    std::optional<uint64_t> socketio_position(std::string_view channel, std::string_view last,
                                              uint64_t joined_offset,
                                              uint64_t joined_seq) const noexcept;

private:
    /// The next delivery tag, logged with the channel message it tags.
    std::string log_socketio(std::string_view channel, uint64_t offset);
    /// Compresses `plain`'s payload into z (nothing under the threshold, or on failure).
    void compress(const core::frame_ref& plain, compressed_variant& z) noexcept;
    void close_slow_consumer(conn_handle h, session& s) noexcept;
    void track(conn_handle h, session& s, const local_channel& channel, uint64_t offset,
               const core::frame_ref& f) noexcept;
    std::string next_message_id();

    core::conn_io& _io;
    subscriptions& _local;
    delivery_stats _stats;
    std::size_t _slow_consumer_bytes;
    uint32_t _ack_timeout_ms;
    uint64_t _message_seq = 0;
    std::size_t _deflate_threshold_bytes;
    /// The shard's compressor (~270 KiB of zlib state), made at the first compression.
    std::unique_ptr<ws::deflater> _deflater;
    shard_id _self;
    uint32_t _start_s;
    socketio_config _no_socketio;
    const socketio_config& _socketio;
    /// Socket.IO recovery: the delivery sequence, its ring log (socketio_log_entries, made
    /// at the first entry) and the tag prefix "<start_s hex>.<shard hex>-".
    struct logged_delivery {
        uint64_t seq;
        uint64_t channel_hash;
        uint64_t offset;
    };
    uint64_t _sio_seq = 0;
    std::vector<logged_delivery> _sio_log;
    std::string _sio_prefix;
};

} // namespace ringcast::pubsub
