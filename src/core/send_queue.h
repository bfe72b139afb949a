// Per-connection output: references to framed messages waiting for the socket.
//
//   push(ref) ──► [ f0 | f1 | f2 | ... ] ──gather()──► iovec batch ──sendmsg──► consume(n)
//                  ▲ head, _head_offset bytes of f0 already sent
//
// A ring of frame pointers (each owning one reference) that grows by doubling and is freed
// when it drains past a small size, so an idle connection keeps at most 16 pointers
// (128 B) and usually none. Never copies payload bytes. Owned by the connection's shard.
#pragma once

#include <ringcast/core.h>

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace ringcast::core {

class send_queue {
public:
    send_queue() noexcept = default;
    send_queue(const send_queue&) = delete;
    send_queue& operator=(const send_queue&) = delete;
    send_queue(send_queue&& o) noexcept;
    send_queue& operator=(send_queue&& o) noexcept;
    ~send_queue() { clear(); }

    /// Appends a reference. Allocates only when the ring must grow.
    void push(frame_ref f);

    bool empty() const noexcept { return _count == 0; }
    std::size_t frames() const noexcept { return _count; }
    /// Bytes still to send, counting only the unsent part of the first frame.
    std::size_t queued_bytes() const noexcept { return _queued_bytes; }
    /// What the queue costs in memory accounting: the bytes still to send plus
    /// frame_overhead_bytes per queued frame, so ten thousand 30-byte replies count as the
    /// ~1 MB they hold, not 300 KB (the budgets count replies with their overhead: docs/architecture.md "Budgets").
    std::size_t cost_bytes() const noexcept { return _queued_bytes + _count * frame_overhead_bytes; }

    /// What one queued frame holds besides its wire bytes: the 24-byte frame header, the
    /// allocator's chunk header and rounding (16-24 B with glibc) and the queue's pointer.
    static constexpr std::size_t frame_overhead_bytes = 64;

    struct gathered {
        unsigned iovs;   ///< entries of `iov` filled
        unsigned frames; ///< frames they cover (a spliced frame takes up to three entries)
    };
    /// Describes queued frames in `iov` (at most `max_iov` entries and `max_bytes` bytes,
    /// but always at least the first frame whole); the queue is unchanged. A frame is
    /// described whole or not at all, so `frames` is what an in-flight send points into.
    gathered gather(iovec* iov, unsigned max_iov, std::size_t max_bytes) const noexcept;

    /// `bytes` left the socket: releases fully sent frames and advances into the next.
    /// Returns how many frames were completed.
    unsigned consume(std::size_t bytes) noexcept;

    /// Releases queued frames from the back, keeping the first `in_flight` frames (an
    /// in-flight sendmsg points into them) and a partly sent first frame (its tail must
    /// still go out to keep the byte stream framed). Returns the bytes dropped.
    std::size_t discard_unstarted(uint32_t in_flight) noexcept;

    /// Releases every queued reference and the ring itself.
    void clear() noexcept;

private:
    void grow();

    frame** _items = nullptr;
    uint32_t _capacity = 0; // power of two, or 0
    uint32_t _head = 0;
    uint32_t _count = 0;
    uint32_t _head_offset = 0; // bytes of the first frame already sent
    std::size_t _queued_bytes = 0;
};

} // namespace ringcast::core
