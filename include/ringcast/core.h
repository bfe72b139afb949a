// ringcast core — the vocabulary every module shares.
//
// What it owns: the small value types that cross module boundaries (result<T>, handles,
// ids) and the always-on invariant check. The shard runtime itself (io_uring loop,
// buffer ring, connection slots, send queues, timers) is private to src/core and is reached
// through include/ringcast/runtime.h.
//
// Never: allocate, throw or block. Everything here is usable on the data path.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

/// Always-on invariant check: continuing after a broken invariant (ring index, slot
/// generation, refcount underflow) would corrupt state, so it aborts with the location.
#define RINGCAST_ASSERT(cond)                                                                  \
    do {                                                                                       \
        if (!(cond)) [[unlikely]] {                                                            \
            ::ringcast::detail::assert_failed(#cond, __FILE__, __LINE__);                      \
        }                                                                                      \
    } while (0)

#ifdef NDEBUG
#define RINGCAST_DEBUG_ASSERT(cond) ((void)0)
#else
#define RINGCAST_DEBUG_ASSERT(cond) RINGCAST_ASSERT(cond)
#endif

namespace ringcast {

namespace detail {
[[noreturn, gnu::cold]] inline void assert_failed(const char* what, const char* file,
                                                  int line) noexcept {
    std::fprintf(stderr, "ringcast: invariant broken: %s at %s:%d\n", what, file, line);
    std::abort();
}
} // namespace detail

/// The error side of a result<T>, spelled like std::unexpected.
template <typename E>
struct unexpected {
    E error;
};
template <typename E>
unexpected(E) -> unexpected<E>;

/// A value or an error, shaped like C++23 std::expected so it can become an alias when the
/// toolchain moves past g++ 12 (whose <expected> needs -std=c++2b). No exceptions: value()
/// on an error is an invariant violation.
template <typename T, typename E = std::error_code>
class [[nodiscard]] result {
public:
    using value_type = T;
    using error_type = E;

    template <typename U = T>
        requires std::is_constructible_v<T, U&&>
    result(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) // NOLINT: implicit by design
        : _has_value(true) {
        ::new (&_value) T(std::forward<U>(v));
    }
    result(unexpected<E> e) noexcept : _has_value(false) { ::new (&_error) E(std::move(e.error)); }

    result(const result& o) : _has_value(o._has_value) {
        if (_has_value) {
            ::new (&_value) T(o._value);
        } else {
            ::new (&_error) E(o._error);
        }
    }
    result(result&& o) noexcept : _has_value(o._has_value) {
        if (_has_value) {
            ::new (&_value) T(std::move(o._value));
        } else {
            ::new (&_error) E(std::move(o._error));
        }
    }
    result& operator=(result o) noexcept {
        this->~result();
        ::new (this) result(std::move(o));
        return *this;
    }
    ~result() {
        if (_has_value) {
            _value.~T();
        } else {
            _error.~E();
        }
    }

    bool has_value() const noexcept { return _has_value; }
    explicit operator bool() const noexcept { return _has_value; }

    T& value() & noexcept {
        RINGCAST_ASSERT(_has_value);
        return _value;
    }
    const T& value() const& noexcept {
        RINGCAST_ASSERT(_has_value);
        return _value;
    }
    T&& value() && noexcept {
        RINGCAST_ASSERT(_has_value);
        return std::move(_value);
    }
    const E& error() const noexcept {
        RINGCAST_ASSERT(!_has_value);
        return _error;
    }
    template <typename U>
    T value_or(U&& fallback) const& {
        return _has_value ? _value : static_cast<T>(std::forward<U>(fallback));
    }

    T& operator*() & noexcept { return value(); }
    const T& operator*() const& noexcept { return value(); }
    T* operator->() noexcept { return &value(); }
    const T* operator->() const noexcept { return &value(); }

private:
    union {
        T _value;
        E _error;
    };
    bool _has_value;
};

/// result<void>: success or an error.
template <typename E>
class [[nodiscard]] result<void, E> {
public:
    result() noexcept : _has_value(true) {}
    result(unexpected<E> e) noexcept : _error(std::move(e.error)), _has_value(false) {}

    bool has_value() const noexcept { return _has_value; }
    explicit operator bool() const noexcept { return _has_value; }
    void value() const noexcept { RINGCAST_ASSERT(_has_value); }
    const E& error() const noexcept {
        RINGCAST_ASSERT(!_has_value);
        return _error;
    }

private:
    E _error{};
    bool _has_value;
};

/// Builds the error side of a result from a positive errno value.
inline unexpected<std::error_code> errno_error(int err) noexcept {
    return unexpected{std::error_code(err, std::system_category())};
}

/// Index of a shard: 0 .. shards-1. Shard i runs on the i-th CPU of the affinity mask.
enum class shard_id : uint16_t {};

/// A connection slot on its shard plus the slot's generation when the handle was taken.
/// A handle whose generation no longer matches the slot's refers to a closed connection:
/// every use checks it, so a stale completion or timer can never touch a reused slot.
struct conn_handle {
    uint32_t slot = 0;
    uint32_t generation = 0;
    friend bool operator==(conn_handle, conn_handle) = default;
};

} // namespace ringcast
