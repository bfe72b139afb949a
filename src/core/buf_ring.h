// The shard's provided-buffer ring: one pool of receive buffers shared by every connection
// of the shard. The kernel picks a buffer only when data arrives, so an idle connection
// holds no receive memory (docs/architecture.md "Provided buffers and ENOBUFS").
//
//   kernel owns ──recv CQE (bid)──► we own ──parse, copy leftovers──► recycle(bid) ──┐
//        ▲                                                                            │
//        └──────────────────── publish() makes recycled buffers visible ◄────────────┘
//
// Buffers are lent for the duration of one on_data() call and recycled right after, so the
// pool only has to cover the completions of one loop iteration. Owned by one shard.
#pragma once

#include <ringcast/core.h>

#include <liburing.h>

#include <cstddef>
#include <span>
#include <string>

namespace ringcast::core {

class buf_ring {
public:
    /// 4 KiB buffers: a page, fits any client command or control frame in one completion
    /// while large messages arrive in few pieces.
    static constexpr std::size_t buffer_bytes = 4096;
    /// 1024 buffers (4 MiB per shard): docs/architecture.md "Provided buffers and ENOBUFS": measured zero ENOBUFS for 9 000
    /// busy connections with 256 buffers when waits stay small; 4x that covers bursts.
    static constexpr unsigned buffer_count = 1024;
    static constexpr uint16_t group_id = 0;

    buf_ring() = default;
    buf_ring(const buf_ring&) = delete;
    buf_ring& operator=(const buf_ring&) = delete;
    ~buf_ring();

    result<void, std::string> init(io_uring* ring);

    /// The bytes of buffer `bid` as filled by a completion of `len` bytes.
    std::span<std::byte> lend(uint16_t bid, std::size_t len) noexcept {
        return {_buffers + std::size_t(bid) * buffer_bytes, len};
    }
    /// Gives buffer `bid` back; visible to the kernel after publish().
    void recycle(uint16_t bid) noexcept;
    /// Makes every recycled buffer visible to the kernel (one store-release of the tail).
    void publish() noexcept;

private:
    io_uring* _ring = nullptr;
    io_uring_buf_ring* _br = nullptr;
    std::byte* _buffers = nullptr;
    std::size_t _ring_bytes = 0;
    int _pending = 0;
};

} // namespace ringcast::core
