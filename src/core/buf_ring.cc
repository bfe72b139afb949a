#include "buf_ring.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace ringcast::core {

buf_ring::~buf_ring() {
    if (_br != nullptr) {
        io_uring_unregister_buf_ring(_ring, group_id);
        munmap(_br, _ring_bytes);
    }
    std::free(_buffers);
}

result<void, std::string> buf_ring::init(io_uring* ring) {
    _ring = ring;
    _ring_bytes = buffer_count * sizeof(io_uring_buf);
    void* mem =
        mmap(nullptr, _ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        return unexpected{std::string("mmap of the provided-buffer ring failed: ") +
                          std::strerror(errno)};
    }
    _br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(_br);
    reg.ring_entries = buffer_count;
    reg.bgid = group_id;
    if (const int rc = io_uring_register_buf_ring(ring, &reg, 0); rc < 0) {
        munmap(_br, _ring_bytes);
        _br = nullptr;
        std::string why = std::string("registering the provided-buffer ring failed: ") +
                          std::strerror(-rc);
        // The ring's pages are pinned and charged to RLIMIT_MEMLOCK unless the process
        // has CAP_IPC_LOCK: ~550 KiB per shard, so the common 8 MiB runs out at ~15 shards.
        why += rc == -ENOMEM ? " (locked memory: raise RLIMIT_MEMLOCK, LimitMEMLOCK= in the "
                               "systemd unit; see tuning/README.md)"
                             : " (needs Linux 5.19 or newer)";
        return unexpected{why};
    }
    _buffers = static_cast<std::byte*>(std::aligned_alloc(4096, buffer_count * buffer_bytes));
    if (_buffers == nullptr) {
        return unexpected{std::string("allocating receive buffers failed")};
    }
    io_uring_buf_ring_init(_br);
    const int mask = io_uring_buf_ring_mask(buffer_count);
    for (unsigned i = 0; i < buffer_count; ++i) {
        io_uring_buf_ring_add(_br, _buffers + std::size_t(i) * buffer_bytes, buffer_bytes,
                              static_cast<unsigned short>(i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(_br, static_cast<int>(buffer_count));
    return {};
}

void buf_ring::recycle(uint16_t bid) noexcept {
    io_uring_buf_ring_add(_br, _buffers + std::size_t(bid) * buffer_bytes, buffer_bytes, bid,
                          io_uring_buf_ring_mask(buffer_count), _pending);
    ++_pending;
}

void buf_ring::publish() noexcept {
    if (_pending > 0) {
        io_uring_buf_ring_advance(_br, _pending);
        _pending = 0;
    }
}

} // namespace ringcast::core
