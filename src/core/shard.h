// A shard: one thread pinned to one CPU that owns an io_uring, a listening socket, its
// connections (accepted ones, and the outbound ones its handler opens: outbound.cc), their
// buffers, timers and counters. Nothing in it is shared; the only way in from another
// thread is the stop flag (and, with pubsub, the SPSC mesh).
//
// The loop is a sequence of named phases, one pass per io_uring_enter:
//
//   submit_and_wait ─► reap_completions ─► drain_mesh ─► run_timers ─► rearm_receives ─┐
//         ▲                                                                            │
//         └──────────────────────── flush_mesh ◄─ flush_sends ◄────────────────────────┘
//
// Everything queued for a connection during one pass leaves in one sendmsg (flush_sends).
#pragma once

#include "admission.h"
#include "buf_ring.h"
#include "conn_table.h"
#include "mesh.h"
#include "timer_wheel.h"
#include "uring.h"

#include <ringcast/core.h>
#include <ringcast/log.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

namespace ringcast::core {

/// Frames gathered into one sendmsg at most. 64 iovecs = 1 KiB per in-flight send; 32
/// frames per writev already cost 0.12-0.17 µs each against ~3 µs for a lone send
/// (docs/architecture.md "Send batching").
inline constexpr unsigned max_iov_per_send = 64;
/// Bytes gathered into one sendmsg at most (a single larger frame still goes whole).
inline constexpr std::size_t max_send_bytes = 256 * 1024;
/// At most one log line per kind of refusal per this long (per shard, each a call site's
/// limit, log.h): a flood must not become a flood of log lines, and an operator still
/// learns within seconds that it is happening; the next line after a quiet interval is
/// preceded by a summary of what was left out.
inline constexpr uint64_t refusal_log_interval_ms = 10000;

/// One shard's sign of life: its loop passes so far, stored by the shard once a pass and
/// read by the process's main thread (status_of: the systemd watchdog, the status line).
/// Relaxed on both sides: a count that moves, ordering nothing. On its own cache line so
/// the shards' stores do not contend.
struct alignas(64) shard_pulse {
    std::atomic<uint64_t> passes{0};
    std::atomic<uint64_t> frames_sent{0}; ///< shard_counters::frames_sent, for a rate
};

/// What shards share with each other and the main thread: open connections in the process,
/// for the total cap, touched only at accept and release (relaxed RMWs: it is a gauge, it
/// orders nothing); and each shard's pulse.
struct process_gauge {
    std::atomic<uint32_t> connections{0};
    std::unique_ptr<shard_pulse[]> pulses; // one per shard, indexed by shard id
    // reload_shards(): the latest settings under the mutex, and a version each shard
    // compares with the one it applied, once a pass: incremented (release) after the
    // settings were stored, loaded (acquire) by the shards.
    std::mutex reload_mutex;
    std::shared_ptr<const reload_payload> reload_settings;
    std::atomic<uint64_t> reload_version{0};
};

/// The address buffer of one armed single-shot accept; the kernel writes it before the
/// completion, so it must stay put until then (the shard never moves).
struct accept_buffer {
    sockaddr_storage addr{};
    socklen_t len = 0;
    bool armed = false;
};

/// Which budget a connection's slot came from (released with it).
enum class slot_use : uint8_t {
    none,  ///< not admitted (closed at once, or the shard is stopping)
    full,     ///< a capped listener, under the cap: counts toward the cap and the total
    spare,    ///< one of refusal_slots: restricted mode or a per-address refusal
    reserved, ///< one of a reserved listener's own slots (slot_admission::listener_index)
    outbound, ///< one of runtime_config::outbound_slots (conn_io::connect)
};

/// What the shard remembers about a slot's connection besides its conn.
struct slot_admission {
    peer_address peer;
    slot_use use = slot_use::none;
    uint8_t listener_index = 0;    ///< which of the shard's listeners accepted it
    void* address_entry = nullptr; ///< address_table::admit()'s handle, or null
    /// From a runtime_config::proxy_from network, client not named yet (admit_client):
    /// `peer` is the proxy's, and no per-address limit has counted the connection.
    bool awaiting_client = false;
};

/// One listening socket of the shard and the single-shot accepts armed on it.
struct listener_state {
    const listener_config* config = nullptr;
    int fd = -1;
    uint32_t armed = 0;           ///< accepts outstanding
    uint32_t reserved_in_use = 0; ///< listener_slots::reserved: slots taken (slot_use::reserved)
    std::array<accept_buffer, accepts_per_listener> buffers{};
};

/// Why the shard ended an outbound connect before it opened (outbound.cc). A closed set:
/// on_connect() switches over it.
enum class connect_end : uint8_t {
    none,      ///< still connecting, or the kernel answered (refused, unreachable)
    deadline,  ///< outbound_target::connect_timeout_ms passed: timed_out
    stopping,  ///< the shard began stopping: operation_canceled
    abandoned, ///< the handler closed it: no on_connect_result
};

/// One outbound slot: the target's address, which the kernel reads while the connect is
/// outstanding, so it lives here rather than on a stack. Indexed by file index minus the
/// first outbound file index (the top of the descriptor table, uring::init).
struct outbound_state {
    sockaddr_storage addr{};
    socklen_t len = 0;
    connect_end end = connect_end::none;
    uint32_t connect_timeout_ms = 0; // armed when the connect starts (after the delay)
};

/// The msghdr and iovecs of one in-flight sendmsg; must live until its completion.
struct send_batch {
    msghdr msg{};
    iovec iov[max_iov_per_send];
    unsigned frames = 0; // queued frames the iovecs cover (discard_queued keeps them)
};

class shard final : public conn_io {
public:
    /// Shard `id` serves socket `id` of every listener in `config` (and closes them).
    shard(shard_id id, const runtime_config& config, stop_token& stop, mesh& m,
          process_gauge& gauge);
    ~shard() override;

    /// Sets up the ring, buffer ring and handler; must run on the shard's own thread.
    result<void, std::string> init(const handler_factory& factory);
    /// Runs until stop is requested and every connection has closed (or the shutdown
    /// deadline passed).
    void run() noexcept;
    /// After every shard has left run() (none posts any more): destroys the payloads still
    /// in the inbound rings, unhandled, so what they own (frame references) is released.
    /// The outbound overflow goes with the shard (mesh_port's destructor).
    void drain_leftovers() noexcept;
    const shard_counters& counters() const noexcept override { return _counters; }

    // conn_io
    void send(conn_handle h, frame_ref f) noexcept override;
    void close(conn_handle h, close_mode mode) noexcept override;
    void set_timer(conn_handle h, conn_timer which, uint64_t deadline_ms) noexcept override;
    void cancel_timer(conn_handle h, conn_timer which) noexcept override;
    void set_shard_timer(uint64_t deadline_ms) noexcept override;
    result<conn_handle> connect(const outbound_target& to, void* user) noexcept override;
    uint64_t now_ms() const noexcept override { return _now_ms; }
    shard_id id() const noexcept override { return _id; }
    unsigned shards() const noexcept override { return _port.shards(); }
    std::size_t queued_bytes(conn_handle h) const noexcept override;
    std::size_t shard_queued_bytes() const noexcept override { return _queued_total; }
    void queue_depths(queue_depth_histogram& out) const noexcept override;
    bool output_over_budget() const noexcept override {
        return _queued_total > _config.output_budget_bytes;
    }
    void discard_queued(conn_handle h) noexcept override;
    void* user(conn_handle h) noexcept override;
    mesh_handlers& mesh_receivers() noexcept override { return _receivers; }
    bool mesh_congested(shard_id s) const noexcept override {
        return _port.congested(unsigned(s));
    }
    drain_phase drain() const noexcept override {
        // The process's phase now, not as of the last pass: a request the loop reaps before
        // it looks again must see a drain the main thread has begun. Acquire: as in
        // follow_drain.
        return _stop.drain.load(std::memory_order_acquire);
    }
    void ask_drain() noexcept override;
    peer_address peer(conn_handle h) const noexcept override;
    bool awaits_client(conn_handle h) const noexcept override;
    client_verdict admit_client(conn_handle h, const peer_address& client) noexcept override;

private:
    void send_to_shard(shard_id to, mesh_message msg) noexcept override;
    /// The wheel's id of timer `which` of `slot`.
    static uint32_t timer_id(uint32_t slot, conn_timer which) noexcept {
        return slot * conn_timer_count + static_cast<uint32_t>(which);
    }
    void cancel_timers(uint32_t slot) noexcept;
    /// The wheel's id of the shard timer (set_shard_timer): the one after every slot's.
    uint32_t shard_timer_id() const noexcept { return _conns.capacity() * conn_timer_count; }

    // Loop phases.
    void apply_reload(uint64_t version) noexcept;
    void reap_completions() noexcept;
    void drain_mesh() noexcept;
    void run_timers() noexcept;
    void rearm_receives() noexcept;
    void flush_sends() noexcept;
    void enforce_output_budget() noexcept;
    void follow_drain() noexcept;
    void close_for_drain() noexcept;
    void begin_stop() noexcept;
    bool finished() noexcept;

    // dispatch.cc: one handler per op.
    void dispatch(const io_uring_cqe& cqe) noexcept;
    void on_accept(uint32_t listener_index, uint32_t index, const io_uring_cqe& cqe) noexcept;
    /// Admission of one accepted descriptor (admission.h): full, restricted, refused.
    void admit(uint32_t listener_index, uint32_t file_index, const peer_address& peer) noexcept;
    void open_connection(conn& c, listener which, admission mode) noexcept;
    /// A connection from a runtime_config::proxy_from network (it names its client later).
    bool from_proxy(const peer_address& peer) const noexcept;
    /// Counts and logs a per-address refusal of `peer` (over_cap or over_rate); returns the
    /// answer to send (runtime_config::refusal_address_*).
    const std::string& refuse_address(address_verdict verdict, const peer_address& peer) noexcept;
    /// Answers `refusal` from a spare slot and closes; unanswered when none is free.
    void refuse_with(conn& c, const std::string& refusal) noexcept;
    /// Closes `c` without a word (no slot left to answer from); `why` goes to the log.
    void refuse_unanswered(conn& c, const char* why) noexcept;
    /// Returns the slot's budgets (cap, spare, API slots, its address's count).
    void forget_admission(uint32_t slot) noexcept;
    /// Queues a frame regardless of what the handler knows (the refusal).
    void send_raw(conn& c, frame_ref f) noexcept;
    void push_output(conn& c, frame_ref f) noexcept;
    void on_recv(conn_handle h, const io_uring_cqe& cqe) noexcept;
    void on_send(conn_handle h, const io_uring_cqe& cqe) noexcept;
    void on_shutdown(conn_handle h, const io_uring_cqe& cqe) noexcept;
    void on_cancel(conn_handle h, const io_uring_cqe& cqe) noexcept;
    void on_close(conn_handle h, const io_uring_cqe& cqe) noexcept;
    void on_wake(const io_uring_cqe& cqe) noexcept;
    // outbound.cc
    void on_connect(conn_handle h, const io_uring_cqe& cqe) noexcept;
    /// Ends a connecting `c` for `why`: cancels its connect (on_connect() then reports
    /// it), or reports at once if it has not started (outbound_target::delay_ms).
    void end_connect(conn& c, connect_end why) noexcept;
    /// The connect of `c` never opened: reports `why` (nothing when the handler abandoned
    /// it) and releases `c` once nothing is outstanding.
    void fail_connect(conn& c, int cqe_res) noexcept;
    /// The deadline of a connecting `c`: starts a delayed connect, or ends one past its
    /// connect timeout.
    void on_connect_timer(conn& c) noexcept;
    outbound_state& outbound_of(const conn& c) noexcept {
        return _outbound[c.file_index - _outbound_base];
    }
    /// Releases an outbound slot's descriptor (synchronously, so connect() may reuse it).
    void release_outbound(conn& c) noexcept;

    // SQE builders.
    void prep_accept(uint32_t listener_index, uint32_t index) noexcept;
    /// Arms every accept buffer of every listener that is not armed.
    void arm_accepts() noexcept;
    void cancel_accepts() noexcept;
    void prep_recv(conn& c) noexcept;
    void prep_send(conn& c) noexcept;
    /// `how`: SHUT_WR after the last byte of a close; SHUT_RDWR from on_teardown_overdue.
    void prep_shutdown(conn& c, int how = SHUT_WR) noexcept;
    void on_teardown_overdue(conn& c) noexcept;
    uint32_t teardown_backstop_ms() const noexcept;
    void prep_cancel(conn& c) noexcept;
    void prep_cancel_recv(conn& c) noexcept;
    void prep_cancel_op(uint64_t target, conn_handle h) noexcept;
    void prep_connect(conn& c) noexcept;
    void prep_close(uint32_t file_index) noexcept;
    void prep_doorbell(unsigned target) noexcept;

    // Connection life cycle (conn_table.h has the state diagram).
    void mark_dirty(conn& c) noexcept;
    void request_rearm(conn& c) noexcept;
    void begin_lingering(conn& c) noexcept;
    void begin_teardown(conn& c) noexcept;
    void maybe_release(conn& c) noexcept;
    void update_clock() noexcept;

    send_batch* take_batch();
    void give_batch(send_batch* b) noexcept;

    shard_id _id;
    const runtime_config& _config;
    stop_token& _stop;
    mesh& _mesh;
    process_gauge& _gauge;
    mesh_port _port;
    mesh_handlers _receivers; // filled by the handler's modules in init()
    bool _mesh_closed = false; // drain_leftovers() ran: a later post is destroyed at once
    uring _ring;
    buf_ring _buffers;
    conn_table _conns;
    timer_wheel _timers;
    std::unique_ptr<conn_handler> _handler;
    std::vector<uint32_t> _dirty; // slots with output waiting for flush_sends()
    std::vector<uint32_t> _rearm; // slots whose multishot recv must be re-armed
    std::vector<std::unique_ptr<send_batch>> _batch_pool;
    std::vector<send_batch*> _free_batches;
    shard_counters _counters;
    uint64_t _now_ms = 0;
    uint64_t _now_us = 0;
    uint64_t _dirty_since_us = 0; // when the current batch's first frame was queued
    uint64_t _stop_deadline_ms = 0;
    uint64_t _last_completion_ms = 0;    // stopping: when a CQE last arrived (progress)
    std::vector<listener_state> _listeners; // as in runtime_config::listeners
    std::vector<slot_admission> _admitted; // by conn slot
    uint32_t _outbound_base = 0;           // first outbound file index (the table's top)
    std::vector<outbound_state> _outbound; // by file index - _outbound_base
    std::vector<uint32_t> _outbound_free;  // free outbound file indices
    address_table _addresses;
    uint32_t _full_connections = 0;  // slot_use::full
    uint32_t _spare_connections = 0; // slot_use::spare
    bool _accept_paused = false;         // descriptor table full: resume when a connection closes
    bool _stopping = false;
    // The drain as this shard follows it (stop_token::drain). In the closing phase
    // `cursor` walks the slot table once; of the `total` connections that could be offered
    // to on_drain when closing began, `offered` have been, paced to total × elapsed / window
    // from `closing_since_ms` (the main thread's instant, the same for every shard).
    struct {
        drain_phase phase = drain_phase::serving;
        uint64_t closing_since_ms = 0;
        uint32_t window_ms = 0;
        uint32_t total = 0;
        uint32_t offered = 0;
        uint32_t cursor = 0;
    } _drain;
    /// A connection close_for_drain offers to the handler: open, accepted by the main
    /// listener, not an outbound one.
    bool drainable(uint32_t slot) noexcept;
    uint64_t _reload_seen = 0; // process_gauge::reload_version last applied
    std::size_t _queued_total = 0; // sum of every connection's send_queue::cost_bytes()
};

} // namespace ringcast::core
