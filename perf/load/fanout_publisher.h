// fanout publisher — the one process (the only one, or --procs worker 0) that publishes.
//
// Messages: message j of publisher connection k goes to channel k + K·(j mod C_k), where
// C_k is the number of channels c with c mod K = k. Every channel therefore has exactly
// one publisher connection, so its per-channel sequence numbers (seq = 1, 2, ...) reach the
// server in order and a subscriber can call any other order the server's.
//
//   data = {"seq":S,"t":T,"pad":"xxx..."}     exactly --size bytes when --size is large
//                                             enough (≥ ~45); T = CLOCK_MONOTONIC ns
//   http: POST /api/publish {"channel":"bench-3","event":"tick","data":...}
//         or {"messages":[...up to M...]}     pipelined on K keep-alive connections
//   ws:   {"op":"publish","channel":"chat:bench-3","event":"tick","data":...,"id":j}
//         on K extra connections of the subscribers' client (its ring, its loop)
//   raw:  POST <raw_path with {channel} replaced> with the data object as the body, for
//         peer servers (nchan's /pub/ID, perf/peers' Node servers); any 2xx is accepted
//
// Pacing: a token bucket filled at --rate messages/s, looked at once per millisecond (a
// step); a step spends whole tokens, at most 5 ms worth (the bucket's depth), and only as
// far as each connection's window of unanswered publishes allows. Tokens that overflow the
// bucket because the window was full are counted (tokens_dropped): the offered rate was
// not reached. --rate 0: every step fills every window (steps every 100 µs).
//
// Answers: a publish counts as accepted when the server answered it with 200 /
// "ok":true; accepted_per_channel() is what a subscriber of that channel should receive.
//
// HTTP I/O is plain non-blocking send/recv on the publisher's own sockets from step():
// at 1 ms granularity that is ≤ 2 K syscalls/s per connection, next to the ring's work.
// One thread; no allocation in step() beyond the output strings' growth to their peak.
#pragma once

#include "client.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ringcast::bench {

struct publisher_config {
    endpoint target;
    std::string api_key;
    std::string channel_prefix = "bench-"; ///< "chat:bench-" for --publisher ws
    uint32_t channels = 1;
    uint32_t rate = 1000; ///< 0: as fast as the windows allow
    uint32_t size = 100;  ///< bytes of the "data" object
    /// --text-pad: "pad" holds feed-like text (symbols, prices, quantities) that deflate
    /// compresses about as well as a real JSON feed; default: 'x' repeated, which
    /// compresses to almost nothing and would flatter permessage-deflate.
    bool text_pad = false;
    uint32_t connections = 1;
    uint32_t batch = 1; ///< http only
    uint32_t window = 256;
    bool ws = false;
    /// Not empty: raw HTTP publishing to this path template ({channel}); batch must be 1.
    std::string raw_path;
};

class fanout_publisher {
public:
    explicit fanout_publisher(publisher_config config);
    ~fanout_publisher();
    fanout_publisher(const fanout_publisher&) = delete;
    fanout_publisher& operator=(const fanout_publisher&) = delete;

    /// Connections actually used: min(--publishers, --channels).
    uint32_t connections() const noexcept { return uint32_t(_conns.size()); }

    /// http: connects the keep-alive sockets (blocking connect on loopback, then
    /// non-blocking). False with a sentence in `error`. Setup time.
    bool connect_http(std::string& error);
    /// ws: the publisher's connections are slots first_slot .. first_slot+K-1 of `cl`.
    void attach_ws(client& cl, uint32_t first_slot);
    /// ws: is `slot` one of ours? Which connection index?
    bool owns_slot(uint32_t slot) const noexcept {
        return _ws_client != nullptr && slot >= _first_slot && slot < _first_slot + connections();
    }
    /// ws: all publisher connections are open.
    bool ws_ready() const noexcept;

    /// Starts the bucket (empty) at `now`.
    void start(uint64_t now) noexcept;
    /// Publishes what the bucket and windows allow; reads HTTP answers. Cheap to call every
    /// loop iteration: returns at once until the next step is due.
    void step(uint64_t now) noexcept;
    /// After the publishing window: step() only reads answers from then on.
    void stop() noexcept { _publishing = false; }
    /// ws: a data message on one of our slots (a publish reply).
    void on_ws_message(uint32_t slot, std::span<const std::byte> payload) noexcept;
    /// ws: one of our slots closed.
    void on_ws_closed(uint32_t slot) noexcept;

    /// Messages written and not answered yet (on connections still alive).
    uint64_t unanswered() const noexcept;

    uint64_t sent() const noexcept { return _sent; }
    uint64_t accepted() const noexcept { return _accepted; }
    uint64_t rejected() const noexcept { return _rejected; }
    uint64_t requests() const noexcept { return _requests; }
    uint64_t tokens_dropped() const noexcept { return _tokens_dropped; }
    uint64_t connections_lost() const noexcept { return _connections_lost; }
    /// HTTP status (http) or error code (ws) of the last rejected publish; 0 if none.
    uint32_t last_error() const noexcept { return _last_error; }
    const std::vector<uint64_t>& accepted_per_channel() const noexcept {
        return _accepted_by_channel;
    }

private:
    struct request_record {
        uint64_t first; ///< connection-local index of its first message
        uint32_t count;
    };
    /// One publisher connection. http: fd + output string + FIFO of pipelined requests
    /// (answers come back in order). ws: a client slot + a byte ring of masked frames:
    ///
    ///   arena  [..... tail ====== frames in flight ====== head ......]   (circular)
    ///   frame j lives at start[j % W] until its reply arrives (replies may come out of
    ///   order: different channels have different home shards); tail = start of the
    ///   oldest unanswered frame, so a frame is overwritten only after it was answered.
    struct connection {
        uint32_t index = 0;    ///< k
        uint32_t channels = 0; ///< C_k
        uint64_t next = 0;     ///< connection-local index j of the next message
        bool alive = true;
        // http
        int fd = -1;
        std::string out;
        std::size_t out_sent = 0;
        std::unique_ptr<char[]> in;
        std::size_t in_used = 0;
        std::vector<request_record> fifo; ///< ring of `window` records
        uint32_t fifo_head = 0;
        uint32_t fifo_count = 0;
        // ws
        uint32_t slot = 0;
        std::unique_ptr<std::byte[]> arena;
        uint64_t head = 0;           ///< monotonic byte position of the next frame
        uint64_t tail = 0;           ///< monotonic start of the oldest unanswered frame
        uint64_t oldest = 0;         ///< j of the oldest unanswered frame (== next when none)
        std::vector<uint64_t> start; ///< per window slot: monotonic start of frame j
        std::vector<uint64_t> id;    ///< per window slot: j + 1 while unanswered, else 0
        uint32_t in_flight = 0;
    };

    uint32_t channel_of(const connection& c, uint64_t j) const noexcept {
        return c.index + uint32_t(_conns.size()) * uint32_t(j % c.channels);
    }
    /// Appends the JSON of message j of `c` (the object with channel, event, data) to out.
    void append_message(std::string& out, connection& c, uint64_t j, uint64_t now) noexcept;
    /// Appends the data object {"seq":..,"t":..,"pad":".."} of the next message of
    /// `channel`, exactly --size bytes when that is large enough.
    void append_data(std::string& out, uint32_t channel, uint64_t now) noexcept;
    uint64_t publish_http(connection& c, uint64_t quota, uint64_t now) noexcept;
    uint64_t publish_ws(connection& c, uint64_t quota, uint64_t now) noexcept;
    void flush_http(connection& c) noexcept;
    void read_http(connection& c) noexcept;
    void answer(connection& c, uint64_t first, uint32_t count, bool ok, uint32_t status) noexcept;
    void lose(connection& c) noexcept;

    publisher_config _config;
    std::vector<connection> _conns;
    std::vector<uint64_t> _seq_by_channel;
    std::vector<uint64_t> _accepted_by_channel;
    std::vector<std::string> _channel_names;
    std::string _body;                   ///< scratch: one request body
    std::string _http_head;              ///< "POST /api/publish ... Content-Length: "
    std::vector<std::string> _raw_heads; ///< raw: the same per channel (POST /pub/bench-3)
    std::string _pad;                    ///< --size 'x' bytes
    client* _ws_client = nullptr;
    uint32_t _first_slot = 0;
    std::size_t _arena_bytes = 0;
    double _tokens = 0;
    double _bucket_depth = 1;
    uint64_t _last_fill_ns = 0;
    uint64_t _next_step_ns = 0;
    uint64_t _step_ns = 1'000'000;
    uint32_t _rr = 0; ///< round robin over connections for the step's tokens
    bool _publishing = false;
    uint64_t _sent = 0;
    uint64_t _accepted = 0;
    uint64_t _rejected = 0;
    uint64_t _requests = 0;
    uint64_t _tokens_dropped = 0;
    uint64_t _connections_lost = 0;
    uint32_t _last_error = 0;
};

} // namespace ringcast::bench
