#include "uring.h"

#include "uring_compat.h"

#include <cerrno>
#include <cstring>

namespace ringcast::core {

uring::~uring() {
    if (_ready) {
        io_uring_queue_exit(&_ring);
    }
}

result<void, std::string> uring::init(unsigned sq_entries, unsigned file_slots,
                                      unsigned owner_slots) {
    io_uring_params params{};
    // SINGLE_ISSUER | DEFER_TASKRUN: completions run only inside our own io_uring_enter,
    // in batches, on this thread (docs/architecture.md "Ring setup"). SUBMIT_ALL: one bad SQE does not
    // strand the rest of a batch. CQ 4x SQ: multishot recv and accept post many CQEs per
    // SQE, and a full CQ silently ends multishots (docs/architecture.md "CQ overflow").
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                   IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    params.cq_entries = sq_entries * 4;
    if (const int rc = io_uring_queue_init_params(sq_entries, &_ring, &params); rc < 0) {
        std::string why = "io_uring_setup failed: " + std::string(std::strerror(-rc));
        if (rc == -EPERM) {
            why += " (io_uring is disabled: check /proc/sys/kernel/io_uring_disabled and the "
                   "container's seccomp profile)";
        } else if (rc == -EINVAL) {
            why += " (ringcast needs Linux 6.1 or newer for DEFER_TASKRUN)";
        } else if (rc == -ENOMEM) {
            why += " (locked memory: raise RLIMIT_MEMLOCK, LimitMEMLOCK= in the systemd unit; "
                   "see tuning/README.md)";
        }
        return unexpected{why};
    }
    _ready = true;
    constexpr unsigned required =
        IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL | IORING_FEAT_EXT_ARG | IORING_FEAT_CQE_SKIP;
    if ((params.features & required) != required) {
        return unexpected{std::string("this kernel's io_uring lacks NODROP, FAST_POLL, EXT_ARG "
                                      "or CQE_SKIP; ringcast needs Linux 6.1 or newer")};
    }
    // Saves an fdget/fdput per enter in a threaded process (docs/architecture.md "Registered ring fd"); optional.
    (void)io_uring_register_ring_fd(&_ring);
    if (const int rc = io_uring_register_files_sparse(&_ring, file_slots); rc < 0) {
        return unexpected{"registering " + std::to_string(file_slots) +
                          " direct descriptors failed: " + std::strerror(-rc) +
                          " (the table counts against RLIMIT_NOFILE; lower "
                          "--max-connections or raise the limit)"};
    }
    if (owner_slots > 0) {
        RINGCAST_ASSERT(owner_slots < file_slots);
        // Linux 6.0: IORING_FILE_INDEX_ALLOC picks only below the owner's slots.
        if (const int rc = io_uring_register_file_alloc_range(&_ring, 0, file_slots - owner_slots);
            rc < 0) {
            return unexpected{"keeping " + std::to_string(owner_slots) +
                              " direct descriptors for outbound connections failed: " +
                              std::strerror(-rc) + " (ringcast needs Linux 6.1 or newer)"};
        }
    }
    return {};
}

int uring::install_file(unsigned index, int fd) noexcept {
    const int rc = io_uring_register_files_update(&_ring, index, &fd, 1);
    return rc == 1 ? 0 : rc < 0 ? rc : -EIO;
}

int uring::remove_file(unsigned index) noexcept {
    int none = -1;
    const int rc = io_uring_register_files_update(&_ring, index, &none, 1);
    return rc == 1 ? 0 : rc < 0 ? rc : -EIO;
}

io_uring_sqe* uring::get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    while (sqe == nullptr)
        [[unlikely]] {
            // SQ full: push the queued SQEs to the kernel now; completions stay queued.
            io_uring_submit(&_ring);
            sqe = io_uring_get_sqe(&_ring);
        }
    return sqe;
}

int uring::submit_and_wait(uint64_t timeout_us) noexcept {
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(timeout_us / 1000000);
    ts.tv_nsec = static_cast<long long>(timeout_us % 1000000) * 1000;
    io_uring_cqe* cqe = nullptr;
    return io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr);
}

bool uring::cq_overflowed() const noexcept {
    return (IO_URING_READ_ONCE(*_ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0;
}

} // namespace ringcast::core
