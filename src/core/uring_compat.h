// What liburing 2.3 (Debian bookworm, ~kernel 6.1 uapi) lacks and ringcast uses on newer
// kernels. One place; each item names the kernel that added it. Values come from current
// uapi headers (include/uapi/linux/io_uring.h of the kernel named). Every use is detected
// at run time.
#pragma once

#include <liburing.h>

// 6.3: IORING_FEAT_REG_REG_RING — register calls through the registered ring fd.
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13)
#endif

// 6.12: IORING_FEAT_MIN_TIMEOUT — min_wait_usec in io_uring_getevents_arg (2.3 calls it pad).
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
