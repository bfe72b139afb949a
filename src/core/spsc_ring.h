// Bounded lock-free single-producer single-consumer ring: the lane from one shard to another
// in the SPSC mesh (docs/architecture.md "Shards"). One thread only pushes, one thread only pops.
//
//      _head (consumer writes)                 _tail (producer writes)
//         │                                       │
//   ┌───┬─▼─┬───┬───┬───┬───┬───┬───┬───┬───┬───▼───┬───┐
//   │   │ a │ b │ c │ d │ e │ f │   │   │   │       │   │   slots[index & mask]
//   └───┴───┴───┴───┴───┴───┴───┴───┴───┴───┴───────┴───┘
//         └────── readable: tail - head ──────┘
//
// Indices grow without wrapping (64-bit) and are masked on access, so full is
// tail - head == capacity and empty is tail == head, with no slot wasted. Each side caches
// the other side's index and re-reads the shared atomic only when the cache says full
// (producer) or empty (consumer): in steady state a push or pop touches one shared line.
// The two indices live on separate cache lines so the sides do not false-share.
//
// Never blocks and never allocates after construction: a full ring makes push() return
// false and the producer keeps the item in its own overflow queue (core/mesh).
#pragma once

#include <ringcast/core.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace ringcast::core {

/// 64 bytes: the cache line size of every x86-64 and most arm64 parts we run on.
inline constexpr std::size_t cache_line_bytes = 64;

template <typename T> class spsc_ring {
public:
    /// `capacity` must be a power of two (the index is a mask).
    explicit spsc_ring(std::size_t capacity)
        : _slots(std::make_unique<std::optional<T>[]>(capacity)), _mask(capacity - 1) {
        RINGCAST_ASSERT(capacity >= 2 && (capacity & (capacity - 1)) == 0);
    }
    spsc_ring(const spsc_ring&) = delete;
    spsc_ring& operator=(const spsc_ring&) = delete;

    std::size_t capacity() const noexcept { return _mask + 1; }

    /// Producer only. False when the ring is full; `item` is left untouched then.
    bool push(T& item) noexcept {
        const uint64_t tail = _tail.load(std::memory_order_relaxed); // only we write _tail
        if (tail - _head_cache == capacity()) {
            // acquire: pairs with the release store of _head in pop(), so the consumer's
            // move out of the slot happens before we overwrite it.
            _head_cache = _head.load(std::memory_order_acquire);
            if (tail - _head_cache == capacity()) {
                return false;
            }
        }
        _slots[tail & _mask].emplace(std::move(item));
        // release: publishes the slot's contents; pairs with the acquire load of _tail in
        // pop() and in empty().
        _tail.store(tail + 1, std::memory_order_release);
        return true;
    }

    /// Consumer only. The oldest item, or nothing when the ring is empty.
    std::optional<T> pop() noexcept {
        const uint64_t head = _head.load(std::memory_order_relaxed); // only we write _head
        if (head == _tail_cache) {
            _tail_cache = _tail.load(std::memory_order_acquire); // pairs with push()'s release
            if (head == _tail_cache) {
                return std::nullopt;
            }
        }
        auto& slot = _slots[head & _mask];
        std::optional<T> item(std::move(slot));
        slot.reset();
        // release: our move out of the slot happens before the producer may reuse it;
        // pairs with the acquire load of _head in push().
        _head.store(head + 1, std::memory_order_release);
        return item;
    }

    /// Either side: true when nothing is readable at the moment of the call. The consumer
    /// uses it after announcing sleep (see mesh: the sleep protocol).
    bool empty() const noexcept {
        return _head.load(std::memory_order_acquire) == _tail.load(std::memory_order_acquire);
    }

private:
    std::unique_ptr<std::optional<T>[]> _slots;
    const uint64_t _mask;
    alignas(cache_line_bytes) std::atomic<uint64_t> _head{0}; // written by the consumer
    uint64_t _tail_cache = 0;                                 // consumer's view of _tail
    alignas(cache_line_bytes) std::atomic<uint64_t> _tail{0}; // written by the producer
    uint64_t _head_cache = 0;                                 // producer's view of _head
};

} // namespace ringcast::core
