#include "shard.h"

#include "op.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringcast::core {

uint64_t monotonic_us() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

namespace {
/// SQ entries per shard: a loop pass rarely prepares more than a few hundred SQEs; when it
/// does, get_sqe() submits early instead of failing.
constexpr unsigned sq_entries = 4096;
/// Longest sleep in one wait: bounds how late a shard notices a stop request.
constexpr uint32_t max_wait_ms = 100;
/// Stopping, past the shutdown deadline: exit when no completion came for this long...
constexpr uint64_t final_cqe_stall_ms = 1000;
/// ...and in any case this long after the deadline (a lost CQE must not hang the process).
constexpr uint64_t final_cqe_cap_ms = 10000;

uint64_t monotonic_ms() noexcept {
    return monotonic_us() / 1000;
}
} // namespace

shard::shard(shard_id id, const runtime_config& config, stop_token& stop, mesh& m,
             process_gauge& gauge)
    : _id(id), _config(config), _stop(stop), _mesh(m), _gauge(gauge),
      _port(m, unsigned(id), [this](unsigned target) { prep_doorbell(target); }),
      _conns(descriptor_slots(config.max_connections_per_shard, config.listeners,
                              config.outbound_slots)),
      _timers(_conns.capacity() * conn_timer_count + 1, monotonic_ms()), // + the shard's
      _addresses(per_shard(config.per_address, config.shards()), _conns.capacity()) {
    _now_ms = monotonic_ms();
    _admitted.resize(_conns.capacity());
    _outbound_base = _conns.capacity() - config.outbound_slots;
    _outbound.resize(config.outbound_slots);
    for (uint32_t i = config.outbound_slots; i > 0; --i) {
        _outbound_free.push_back(i - 1); // lowest first
    }
    // The listener index travels in an accept's user_data and in slot_admission.
    RINGCAST_ASSERT(config.listeners.size() <= UINT8_MAX);
    for (const listener_config& l : config.listeners) {
        RINGCAST_ASSERT(l.fds.size() == config.shards());
        auto& state = _listeners.emplace_back();
        state.config = &l;
        state.fd = l.fds[unsigned(id)];
    }
}

shard::~shard() {
    // The handler may hold frames; release it before the ring and buffers go away.
    _handler.reset();
    for (const listener_state& l : _listeners) {
        ::close(l.fd);
    }
}

result<void, std::string> shard::init(const handler_factory& factory) {
    if (auto r = _ring.init(sq_entries, _conns.capacity(), _config.outbound_slots); !r) {
        return r;
    }
    if (auto r = _buffers.init(_ring.raw()); !r) {
        return r;
    }
    _mesh.set_doorbell(unsigned(_id), _ring.ring_fd());
    _handler = factory(*this);
    _dirty.reserve(1024);
    _rearm.reserve(1024);
    return {};
}

void shard::update_clock() noexcept {
    _now_us = monotonic_us();
    _now_ms = _now_us / 1000;
}

void shard::run() noexcept {
    arm_accepts();
    while (!finished()) {
        // Sleep protocol (mesh.h): announce, re-check the inbound rings, then block.
        uint64_t wait_us = _port.prepare_to_sleep()
                               ? uint64_t(_timers.next_wait_ms(_now_ms, max_wait_ms)) * 1000
                               : 0;
        if (_config.linger_us > 0 && !_dirty.empty()) {
            // Lingering output: wake in time to send it.
            const uint64_t due = _dirty_since_us + _config.linger_us;
            wait_us = std::min(wait_us, due > _now_us ? due - _now_us : 0);
        }
        const int rc = _ring.submit_and_wait(wait_us);
        _port.woke_up();
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) [[unlikely]] {
            RINGCAST_LOG(log::level::error, "ring_enter_failed")
                .field("error", std::strerror(-rc))
                .msg("shard %u: io_uring_enter: %s", unsigned(_id), std::strerror(-rc));
        }
        update_clock();
        ++_counters.loop_iterations;
        _counters.log_suppressed = log::suppressed_here(); // this thread's: no atomic
        // Relaxed: signs for the main thread's relaxed loads (status_of), ordering nothing.
        shard_pulse& pulse = _gauge.pulses[unsigned(_id)];
        pulse.passes.store(_counters.loop_iterations, std::memory_order_relaxed);
        pulse.frames_sent.store(_counters.frames_sent, std::memory_order_relaxed);
        reap_completions();
        drain_mesh();
        run_timers();
        rearm_receives();
        enforce_output_budget();
        flush_sends();
        _port.flush();
        follow_drain();
        if (_stop.requested.load(std::memory_order_relaxed) && !_stopping) {
            begin_stop();
        }
        // Acquire: pairs with reload_shards' release increment, so the settings it stored
        // under the mutex before are what apply_reload reads (a plain load on x86).
        if (const uint64_t v = _gauge.reload_version.load(std::memory_order_acquire);
            v != _reload_seen) [[unlikely]] {
            apply_reload(v);
        }
    }
}

void shard::apply_reload(uint64_t version) noexcept {
    std::shared_ptr<const reload_payload> settings;
    {
        std::lock_guard lock(_gauge.reload_mutex);
        settings = _gauge.reload_settings;
    }
    _reload_seen = version;
    if (settings) {
        _handler->on_reload(settings);
    }
}

void shard::reap_completions() noexcept {
    if (_ring.cq_overflowed()) [[unlikely]] {
        // NODROP kept the overflow in the kernel; this wait's GETEVENTS flushes it.
        ++_counters.cq_overflows;
    }
    // Several reaps: handlers queue SQEs, and under DEFER_TASKRUN one enter runs a bounded
    // amount of task work, so keep going while completions keep coming.
    for (int pass = 0; pass < 4; ++pass) {
        const unsigned n = _ring.reap([this](const io_uring_cqe& cqe) { dispatch(cqe); });
        _buffers.publish();
        if (n == 0) {
            break;
        }
        _last_completion_ms = _now_ms;
    }
}

void shard::drain_mesh() noexcept {
    _port.drain([this](unsigned from, const mesh_message& msg) {
        _receivers.dispatch(shard_id(static_cast<uint16_t>(from)), msg);
    });
}

void shard::drain_leftovers() noexcept {
    _port.discard_inbound();
    _mesh_closed = true;
}

void shard::queue_depths(queue_depth_histogram& out) const noexcept {
    auto& table = const_cast<conn_table&>(_conns);
    for (uint32_t slot = 0; slot < table.high_water(); ++slot) {
        const conn& c = table.at(slot);
        if (c.state != conn_state::free && c.state != conn_state::connecting) {
            out.record(c.out.cost_bytes());
        }
    }
}

std::size_t shard::queued_bytes(conn_handle h) const noexcept {
    const conn* c = const_cast<conn_table&>(_conns).get(h);
    return c != nullptr ? c->out.cost_bytes() : 0;
}

void shard::discard_queued(conn_handle h) noexcept {
    // Only while open: a closing connection's queue ends with its close frame, which must go.
    if (conn* c = _conns.get(h); c != nullptr && c->state == conn_state::open) {
        const uint32_t in_flight = c->send_in_flight ? c->batch->frames : 0u;
        const std::size_t before = c->out.cost_bytes();
        c->out.discard_unstarted(in_flight);
        _queued_total -= before - c->out.cost_bytes();
    }
}

void* shard::user(conn_handle h) noexcept {
    conn* c = _conns.get(h);
    return c != nullptr && c->state == conn_state::open ? c->user : nullptr;
}

void shard::send_to_shard(shard_id to, mesh_message msg) noexcept {
    if (_mesh_closed) [[unlikely]] {
        // Tearing down after the last drain (a handler's destructor): nobody would pop it.
        mesh_handlers::discard(msg);
        return;
    }
    _port.send(unsigned(to), msg);
}

void shard::run_timers() noexcept {
    _timers.advance(_now_ms, [this](uint32_t id) {
        if (id == shard_timer_id()) {
            if (!_stopping) {
                _handler->on_shard_timer();
            }
            return;
        }
        conn& c = _conns.at(id / conn_timer_count);
        const conn_handle h = _conns.handle(c);
        const auto which = static_cast<conn_timer>(id % conn_timer_count);
        switch (c.state) {
        case conn_state::connecting:
            // The connect's start or deadline (the handler's timers wait until it opens).
            RINGCAST_DEBUG_ASSERT(which == conn_timer::liveness);
            on_connect_timer(c);
            break;
        case conn_state::open:
            _handler->on_timer(h, c.user, which);
            break;
        case conn_state::draining:
        case conn_state::lingering:
            // The close timeout (close() disarmed every other timer): the peer neither
            // drained our output nor closed its side. Torn down as by close_mode::now; what
            // it never read stays in the kernel's socket, and its next write is answered with
            // a reset.
            RINGCAST_DEBUG_ASSERT(which == conn_timer::liveness);
            ++_counters.close_timeouts;
            begin_teardown(c);
            break;
        case conn_state::closing:
            RINGCAST_DEBUG_ASSERT(which == conn_timer::liveness);
            on_teardown_overdue(c);
            break;
        case conn_state::free:
            break;
        }
    });
}

void shard::rearm_receives() noexcept {
    for (const uint32_t slot : _rearm) {
        conn& c = _conns.at(slot);
        c.in_rearm_list = false;
        const bool readable = c.state == conn_state::open || c.state == conn_state::draining ||
                              c.state == conn_state::lingering;
        if (readable && !c.recv_armed && !c.recv_paused) {
            prep_recv(c);
            ++_counters.recv_rearms;
        }
    }
    _rearm.clear();
}

void shard::flush_sends() noexcept {
    if (_config.linger_us > 0 && !_stopping && _now_us < _dirty_since_us + _config.linger_us) {
        // --linger-us: let more frames join this batch (one sendmsg for all of them).
        return;
    }
    for (const uint32_t slot : _dirty) {
        conn& c = _conns.at(slot);
        c.in_dirty_list = false;
        const bool sending = c.state == conn_state::open || c.state == conn_state::draining;
        if (sending && !c.send_in_flight && !c.out.empty()) {
            prep_send(c);
        }
    }
    _dirty.clear();
    if (_accept_paused && !_stopping && _conns.live() < _conns.capacity()) {
        _accept_paused = false;
        arm_accepts();
    }
}

void shard::enforce_output_budget() noexcept {
    if (_queued_total <= _config.output_budget_bytes || _stopping) [[likely]] {
        return;
    }
    // The shard's output is over its budget: the connections holding the most are asked to
    // close (a WebSocket gets 1008 with its unsent output dropped), largest first, until the
    // total is back under 7/8 of the budget, so one pass frees real room instead of
    // trimming one connection per pass. A full scan, but only while over budget.
    std::vector<std::pair<std::size_t, uint32_t>> holders;
    for (uint32_t slot = 0; slot < _conns.high_water(); ++slot) {
        const conn& c = _conns.at(slot);
        if (c.state == conn_state::open && c.user != nullptr && !c.out.empty()) {
            holders.emplace_back(c.out.cost_bytes(), slot);
        }
    }
    std::sort(holders.begin(), holders.end(), std::greater<>());
    const std::size_t target = _config.output_budget_bytes / 8 * 7;
    for (const auto& [cost, slot] : holders) {
        if (_queued_total <= target) {
            break;
        }
        conn& c = _conns.at(slot);
        ++_counters.budget_closes;
        _handler->on_output_budget(_conns.handle(c), c.user);
        if (c.state == conn_state::open) {
            // The handler did not close it: do it for the handler, so the budget holds.
            begin_teardown(c);
        }
    }
}

void shard::follow_drain() noexcept {
    if (_drain.phase != drain_phase::closing) [[likely]] {
        // Acquire: pairs with the main thread's release store of the phase, after it stored
        // the window and the instant (stop_token).
        const drain_phase now = _stop.drain.load(std::memory_order_acquire);
        if (now == _drain.phase) [[likely]] {
            return;
        }
        _drain.phase = now;
        if (now != drain_phase::closing) {
            return;
        }
        _drain.closing_since_ms = _stop.drain_since_ms.load(std::memory_order_relaxed);
        _drain.window_ms = _stop.drain_window_ms.load(std::memory_order_relaxed);
        _drain.total = 0;
        for (uint32_t slot = 0; slot < _conns.high_water(); ++slot) {
            _drain.total += drainable(slot) ? 1 : 0;
        }
    }
    if (!_stopping) {
        close_for_drain();
    }
}

bool shard::drainable(uint32_t slot) noexcept {
    const conn& c = _conns.at(slot);
    return c.state == conn_state::open && c.user != nullptr &&
           _admitted[slot].use != slot_use::outbound &&
           _listeners[_admitted[slot].listener_index].config->role == listener::main;
}

void shard::close_for_drain() noexcept {
    // Paced by count, not by slot: after churn the live connections sit anywhere below the
    // high-water mark, and an even walk of the slots would bunch their closes. The walk
    // itself is one pass over the table in all. Connections that leave on their own before
    // the walk reaches them only make it end sooner.
    const uint64_t elapsed =
        _now_ms > _drain.closing_since_ms ? _now_ms - _drain.closing_since_ms : 0;
    const bool all = _drain.window_ms == 0 || elapsed >= _drain.window_ms;
    const uint64_t due =
        all ? UINT64_MAX
            : (uint64_t(_drain.total) * elapsed + _drain.window_ms - 1) / _drain.window_ms;
    while (_drain.offered < due && _drain.cursor < _conns.high_water()) {
        const uint32_t slot = _drain.cursor++;
        if (!drainable(slot)) {
            continue;
        }
        ++_drain.offered;
        conn& c = _conns.at(slot);
        if (_handler->on_drain(_conns.handle(c), c.user)) {
            ++_counters.drain_closes;
        }
    }
}

void shard::ask_drain() noexcept {
    // Blocked in every thread: the main thread takes it from its signalfd.
    (void)::kill(::getpid(), drain_signal);
}

void shard::begin_stop() noexcept {
    _stopping = true;
    _stop_deadline_ms = _now_ms + _config.shutdown_timeout_ms;
    cancel_accepts();
    for (uint32_t slot = 0; slot < _conns.high_water(); ++slot) {
        conn& c = _conns.at(slot);
        if (c.state == conn_state::open && c.user != nullptr) {
            _handler->on_shutdown(_conns.handle(c), c.user);
        } else if (c.state == conn_state::connecting) {
            end_connect(c, connect_end::stopping);
        }
    }
}

bool shard::finished() noexcept {
    if (!_stopping) {
        return false;
    }
    if (_now_ms >= _stop_deadline_ms) {
        // Goodbyes took too long: drop whoever is left, then wait for their final CQEs.
        for (uint32_t slot = 0; slot < _conns.high_water(); ++slot) {
            conn& c = _conns.at(slot);
            if (c.state != conn_state::free && c.state != conn_state::closing) {
                begin_teardown(c);
            }
        }
        // A last resort so a lost completion can never hang the process: give up once the
        // final CQEs stop coming for a second (a busy host still gets to finish), and in
        // any case ten seconds past the deadline.
        const bool stalled = _now_ms >= _last_completion_ms + final_cqe_stall_ms;
        if ((_now_ms >= _stop_deadline_ms + final_cqe_stall_ms && stalled) ||
            _now_ms >= _stop_deadline_ms + final_cqe_cap_ms) {
            return true;
        }
    }
    return _conns.live() == 0 && std::all_of(_listeners.begin(), _listeners.end(),
                                             [](const listener_state& l) { return l.armed == 0; });
}

// --- conn_io ------------------------------------------------------------------------------

void shard::push_output(conn& c, frame_ref f) noexcept {
    _queued_total += f->size() + send_queue::frame_overhead_bytes;
    c.out.push(std::move(f));
    mark_dirty(c);
}

void shard::send_raw(conn& c, frame_ref f) noexcept {
    push_output(c, std::move(f));
}

void shard::send(conn_handle h, frame_ref f) noexcept {
    conn* c = _conns.get(h);
    if (c == nullptr || c->state != conn_state::open) {
        return;
    }
    push_output(*c, std::move(f));
    if (c->out.cost_bytes() > _config.read_pause_bytes && !c->recv_paused) {
        // The peer is not reading what we send: stop reading what it sends until the
        // backlog drains (docs/architecture.md "Budgets"), so its input cannot grow our output without bound.
        c->recv_paused = true;
        ++_counters.read_pauses;
        if (c->recv_armed) {
            prep_cancel_recv(*c);
        }
    }
}

void shard::close(conn_handle h, close_mode mode) noexcept {
    conn* c = _conns.get(h);
    if (c != nullptr && c->state == conn_state::connecting) {
        end_connect(*c, connect_end::abandoned); // nothing to flush in either mode
        return;
    }
    if (c == nullptr || c->state != conn_state::open) {
        return;
    }
    if (mode == close_mode::now) {
        begin_teardown(*c);
        return;
    }
    c->state = conn_state::draining;
    cancel_timers(h.slot);
    _timers.schedule(timer_id(h.slot, conn_timer::liveness), _now_ms + _config.close_timeout_ms);
    if (!c->send_in_flight && c->out.empty()) {
        begin_lingering(*c);
    }
}

void shard::set_timer(conn_handle h, conn_timer which, uint64_t deadline_ms) noexcept {
    conn* c = _conns.get(h);
    if (c != nullptr && c->state == conn_state::open) {
        _timers.schedule(timer_id(h.slot, which), deadline_ms);
    }
}

void shard::cancel_timer(conn_handle h, conn_timer which) noexcept {
    conn* c = _conns.get(h);
    if (c != nullptr && c->state == conn_state::open) {
        _timers.cancel(timer_id(h.slot, which));
    }
}

void shard::set_shard_timer(uint64_t deadline_ms) noexcept {
    _timers.schedule(shard_timer_id(), deadline_ms);
}

void shard::cancel_timers(uint32_t slot) noexcept {
    for (uint32_t which = 0; which < conn_timer_count; ++which) {
        _timers.cancel(slot * conn_timer_count + which);
    }
}

// --- life cycle ---------------------------------------------------------------------------

void shard::mark_dirty(conn& c) noexcept {
    if (!c.in_dirty_list) {
        if (_dirty.empty()) {
            _dirty_since_us = _now_us;
        }
        c.in_dirty_list = true;
        _dirty.push_back(_conns.handle(c).slot);
    }
}

void shard::request_rearm(conn& c) noexcept {
    if (!c.in_rearm_list) {
        c.in_rearm_list = true;
        _rearm.push_back(_conns.handle(c).slot);
    }
}

void shard::begin_lingering(conn& c) noexcept {
    // Everything is sent: FIN our side, keep reading (and discarding) until the peer's EOF
    // so the kernel does not answer its last bytes with a reset that could destroy our
    // close frame in flight. The close timeout set in close() still bounds this.
    c.state = conn_state::lingering;
    prep_shutdown(c);
    c.recv_paused = false;
    if (!c.recv_armed) {
        request_rearm(c);
    }
}

void shard::begin_teardown(conn& c) noexcept {
    if (c.state == conn_state::closing || c.state == conn_state::free) {
        return;
    }
    c.state = conn_state::closing;
    const uint32_t slot = _conns.handle(c).slot;
    cancel_timers(slot);
    if ((c.recv_armed || c.send_in_flight || c.connect_in_flight) && !c.cancel_sent) {
        prep_cancel(c);
    }
    maybe_release(c);
    if (c.state == conn_state::closing) {
        // Ops still outstanding: their final CQEs normally follow within microseconds. The
        // liveness timer is a backstop in case one never does (on_teardown_overdue).
        _timers.schedule(timer_id(slot, conn_timer::liveness), _now_ms + teardown_backstop_ms());
    }
}

uint32_t shard::teardown_backstop_ms() const noexcept {
    // At least a second: --close-timeout-ms may be 0, and a teardown's CQEs may take a few
    // loop passes on a busy shard; the backstop must never fire on a teardown in progress.
    return std::max<uint32_t>(_config.close_timeout_ms, 1000);
}

void shard::on_teardown_overdue(conn& c) noexcept {
    // A cancel does not stop an op already running in an io-wq worker (-EALREADY, which
    // on_cancel ignores): a send blocked there on a peer that never reads would hold the
    // slot for ever. Shutting the socket down both ways ends such a send (EPIPE) and a
    // receive (EOF); the cancels are sent again for anything else, and the backstop stays
    // armed until the slot is released.
    ++_counters.teardown_overdue;
    RINGCAST_LOG_EVERY(log::level::warn, "teardown_overdue", 1, 10000)
        .field("recv", c.recv_armed)
        .field("send", c.send_in_flight)
        .field("shutdown", c.shutdown_in_flight)
        .field("connect", c.connect_in_flight)
        .msg("shard %u: a connection's operations had not finished %u ms after its teardown "
             "began; shutting its socket down",
             unsigned(_id), unsigned(teardown_backstop_ms()));
    if (!c.shutdown_in_flight && !c.connect_in_flight) {
        prep_shutdown(c, SHUT_RDWR);
    }
    prep_cancel(c);
    _timers.schedule(timer_id(_conns.handle(c).slot, conn_timer::liveness),
                     _now_ms + teardown_backstop_ms());
}

void shard::maybe_release(conn& c) noexcept {
    if (c.state != conn_state::closing || c.recv_armed || c.send_in_flight ||
        c.shutdown_in_flight || c.connect_in_flight) {
        return;
    }
    // Every op on the descriptor has posted its final CQE: nothing can touch the slot now.
    const conn_handle h = _conns.handle(c);
    _timers.cancel(timer_id(h.slot, conn_timer::liveness)); // the backstop (begin_teardown)
    void* user = c.user;
    _queued_total -= c.out.cost_bytes();
    if (_admitted[h.slot].use == slot_use::outbound) {
        release_outbound(c);
    } else {
        prep_close(c.file_index);
        ++_counters.closed;
    }
    forget_admission(h.slot);
    _conns.release(c);
    if (user != nullptr) { // refused connections never reached the handler
        _handler->on_closed(h, user);
    }
}

send_batch* shard::take_batch() {
    if (_free_batches.empty()) {
        _batch_pool.push_back(std::make_unique<send_batch>());
        return _batch_pool.back().get();
    }
    send_batch* b = _free_batches.back();
    _free_batches.pop_back();
    return b;
}

void shard::give_batch(send_batch* b) noexcept {
    _free_batches.push_back(b);
}

// --- SQE builders -------------------------------------------------------------------------

void shard::arm_accepts() noexcept {
    for (uint32_t l = 0; l < _listeners.size(); ++l) {
        for (uint32_t index = 0; index < accepts_per_listener; ++index) {
            if (!_listeners[l].buffers[index].armed) {
                prep_accept(l, index);
            }
        }
    }
}

void shard::prep_accept(uint32_t listener_index, uint32_t index) noexcept {
    listener_state& l = _listeners[listener_index];
    accept_buffer& b = l.buffers[index];
    b.len = sizeof(b.addr);
    io_uring_sqe* sqe = _ring.get_sqe();
    // Single-shot, so the kernel writes this connection's peer address into this buffer
    // (a multishot accept would reuse one buffer for every connection it takes before we
    // read it). Into the shard's sparse descriptor table at a slot the kernel picks: no
    // process fd per connection (RLIMIT_NOFILE is not the cap; the table size is). The
    // field is set directly because liburing 2.3 and later disagree on how the helper
    // encodes "pick a slot".
    io_uring_prep_accept(sqe, l.fd, reinterpret_cast<sockaddr*>(&b.addr), &b.len, 0);
    sqe->file_index = IORING_FILE_INDEX_ALLOC;
    io_uring_sqe_set_data64(sqe, encode(op::accept, {listener_index, index}));
    b.armed = true;
    ++l.armed;
}

void shard::cancel_accepts() noexcept {
    for (uint32_t w = 0; w < _listeners.size(); ++w) {
        for (uint32_t index = 0; index < accepts_per_listener; ++index) {
            if (_listeners[w].buffers[index].armed) {
                io_uring_sqe* sqe = _ring.get_sqe();
                io_uring_prep_cancel64(sqe, encode(op::accept, {w, index}), 0);
                io_uring_sqe_set_data64(sqe, encode(op::cancel, {}));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            }
        }
    }
}

void shard::prep_recv(conn& c) noexcept {
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_recv_multishot(sqe, static_cast<int>(c.file_index), nullptr, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = buf_ring::group_id;
    io_uring_sqe_set_data64(sqe, encode(op::recv, _conns.handle(c)));
    c.recv_armed = true;
}

void shard::prep_send(conn& c) noexcept {
    send_batch* b = take_batch();
    const send_queue::gathered g = c.out.gather(b->iov, max_iov_per_send, max_send_bytes);
    b->frames = g.frames;
    b->msg = msghdr{};
    b->msg.msg_iov = b->iov;
    b->msg.msg_iovlen = g.iovs;
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_sendmsg(sqe, static_cast<int>(c.file_index), &b->msg, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, encode(op::send, _conns.handle(c)));
    c.batch = b;
    c.send_in_flight = true;
    ++_counters.sends;
}

void shard::prep_shutdown(conn& c, int how) noexcept {
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_shutdown(sqe, static_cast<int>(c.file_index), how);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, encode(op::shutdown, _conns.handle(c)));
    c.shutdown_in_flight = true;
}

void shard::prep_cancel(conn& c) noexcept {
    // Every op still outstanding on this descriptor (the multishot recv holds its own file
    // reference, so closing alone would not stop it; docs/architecture.md "Teardown and cancellation"), each cancelled by
    // its user_data. Not by descriptor: IORING_ASYNC_CANCEL_FD walks every armed poll of the
    // ring, so closing n connections cost O(n²) (measured: SIGTERM with 19 900 held
    // connections on one shard took ~12 s in io_cancel_req_match; docs/decisions.md).
    // Each cancelled op still posts its final CQE, which maybe_release() waits for.
    const conn_handle h = _conns.handle(c);
    if (c.recv_armed) {
        prep_cancel_op(encode(op::recv, h), h);
    }
    if (c.send_in_flight) {
        prep_cancel_op(encode(op::send, h), h);
    }
    if (c.connect_in_flight) {
        prep_cancel_op(encode(op::connect, h), h);
    }
    // A SHUT_WR in flight is not cancelled: it runs on an io-wq worker, cannot block, and
    // posts its CQE on its own. Graceful closes hit this all the time (the peer's EOF
    // arrives before our shutdown's CQE), so a cancel here would be one wasted kernel
    // lookup per close.
    c.cancel_sent = true;
}

void shard::prep_cancel_op(uint64_t target, conn_handle h) noexcept {
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, encode(op::cancel, h));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void shard::prep_cancel_recv(conn& c) noexcept {
    const conn_handle h = _conns.handle(c);
    prep_cancel_op(encode(op::recv, h), h);
}

void shard::prep_doorbell(unsigned target) noexcept {
    // MSG_RING posts a CQE (op::wake) into the target's ring, which ends its wait; our own
    // CQE is skipped unless the doorbell fails (docs/architecture.md "MSG_RING doorbells").
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_msg_ring(sqe, _mesh.doorbell(target), 0, encode(op::wake, {}), 0);
    io_uring_sqe_set_data64(sqe, encode(op::wake, {}));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void shard::prep_close(uint32_t file_index) noexcept {
    io_uring_sqe* sqe = _ring.get_sqe();
    io_uring_prep_close_direct(sqe, file_index);
    io_uring_sqe_set_data64(sqe, encode(op::close, {}));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

} // namespace ringcast::core
