// Completion tags: every SQE's user_data carries the op, the connection slot and the slot's
// generation, so a completion for a connection that has since closed (and whose slot was
// reused) is recognised as stale and ignored. Every op appears once here and once in
// dispatch.cc's switch, which has no default (-Werror=switch).
#pragma once

#include <ringcast/core.h>

#include <cstdint>

namespace ringcast::core {

enum class op : uint8_t {
    accept = 1, ///< single-shot accept on a listener (slot: listener, generation: buffer)
    connect,    ///< connect of an outbound connection on its direct descriptor (outbound.cc)
    recv,       ///< multishot recv with buffer select
    send,       ///< one batched sendmsg
    shutdown,   ///< SHUT_WR after the last queued frame (close_mode::after_flush)
    cancel,     ///< cancel of a connection's outstanding ops
    close,      ///< close_direct of the connection's descriptor slot
    wake,       ///< MSG_RING doorbell from another thread
};

//  63      56 55             32 31                 0
// ┌──────────┬─────────────────┬────────────────────┐
// │    op    │ generation (24) │     slot (32)      │
// └──────────┴─────────────────┴────────────────────┘
inline constexpr uint32_t generation_mask = 0xffffff;

constexpr uint64_t encode(op o, conn_handle h) noexcept {
    return uint64_t(o) << 56 | uint64_t(h.generation & generation_mask) << 32 | h.slot;
}

struct decoded {
    op o;
    conn_handle h;
};

constexpr decoded decode(uint64_t user_data) noexcept {
    return {static_cast<op>(user_data >> 56),
            conn_handle{static_cast<uint32_t>(user_data),
                        static_cast<uint32_t>(user_data >> 32) & generation_mask}};
}

} // namespace ringcast::core
