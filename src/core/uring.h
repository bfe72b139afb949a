// One shard's io_uring: set up on the shard's thread with SINGLE_ISSUER | DEFER_TASKRUN
// (completions run only inside our own io_uring_enter), registered ring fd, a sparse
// direct-descriptor table.
// Owned by one shard; every call happens on that shard's thread (the kernel enforces it:
// -EEXIST from any other task).
#pragma once

#include <ringcast/core.h>

#include <liburing.h>

#include <string>

namespace ringcast::core {

class uring {
public:
    uring() = default;
    uring(const uring&) = delete;
    uring& operator=(const uring&) = delete;
    ~uring();

    /// Creates the ring (`sq_entries`, CQ four times larger) and a sparse table of
    /// `file_slots` direct descriptors, of which the kernel allocates (accept with
    /// IORING_FILE_INDEX_ALLOC) only the first `file_slots - owner_slots`: the top
    /// `owner_slots` are the owner's to fill with install_file(). The error is a sentence
    /// for the operator.
    result<void, std::string> init(unsigned sq_entries, unsigned file_slots,
                                   unsigned owner_slots);

    /// Puts process descriptor `fd` into direct-descriptor slot `index`, replacing nothing
    /// the owner still uses; the table takes its own reference, so the caller closes `fd`.
    /// Synchronous (one io_uring_register): the slot is usable by the next SQE. 0 or -errno.
    int install_file(unsigned index, int fd) noexcept;
    /// Empties slot `index`, releasing the table's reference, synchronously: `index` may be
    /// installed again at once (a close_direct SQE would run later, after such a reuse).
    /// No operation may still use the slot. 0 or -errno.
    int remove_file(unsigned index) noexcept;

    /// A free SQE; when the SQ is full, submits what is queued first. Never null.
    io_uring_sqe* get_sqe() noexcept;

    /// Submits everything queued and waits for at least one completion or `timeout_us`.
    /// Returns -errno on failure (-ETIME and -EINTR are normal).
    int submit_and_wait(uint64_t timeout_us) noexcept;

    /// Calls `f(const io_uring_cqe&)` for every ready completion and marks them seen.
    template <typename F> unsigned reap(F&& f) noexcept {
        unsigned head;
        unsigned count = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&_ring, head, cqe) {
            f(*cqe);
            ++count;
        }
        io_uring_cq_advance(&_ring, count);
        return count;
    }

    /// True when the kernel had to hold completions back because the CQ was full
    /// (IORING_FEAT_NODROP keeps them; they are flushed by the next wait).
    bool cq_overflowed() const noexcept;

    int ring_fd() const noexcept { return _ring.ring_fd; }
    io_uring* raw() noexcept { return &_ring; }

private:
    io_uring _ring{};
    bool _ready = false;
};

} // namespace ringcast::core
