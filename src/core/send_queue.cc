#include "send_queue.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

namespace ringcast::core {

namespace {
/// First allocation: most connections have one or two frames queued at a time.
constexpr uint32_t initial_capacity = 4;
/// A drained ring larger than this is freed; smaller ones are kept for the next message.
constexpr uint32_t keep_capacity = 16;
} // namespace

send_queue::send_queue(send_queue&& o) noexcept
    : _items(std::exchange(o._items, nullptr)), _capacity(std::exchange(o._capacity, 0)),
      _head(std::exchange(o._head, 0)), _count(std::exchange(o._count, 0)),
      _head_offset(std::exchange(o._head_offset, 0)),
      _queued_bytes(std::exchange(o._queued_bytes, 0)) {}

send_queue& send_queue::operator=(send_queue&& o) noexcept {
    if (this != &o) {
        clear();
        std::swap(_items, o._items);
        std::swap(_capacity, o._capacity);
        std::swap(_head, o._head);
        std::swap(_count, o._count);
        std::swap(_head_offset, o._head_offset);
        std::swap(_queued_bytes, o._queued_bytes);
    }
    return *this;
}

void send_queue::grow() {
    const uint32_t capacity = _capacity == 0 ? initial_capacity : _capacity * 2;
    auto** items = static_cast<frame**>(std::malloc(sizeof(frame*) * capacity));
    if (items == nullptr) {
        throw std::bad_alloc();
    }
    for (uint32_t i = 0; i < _count; ++i) {
        items[i] = _items[(_head + i) & (_capacity - 1)];
    }
    std::free(_items);
    _items = items;
    _capacity = capacity;
    _head = 0;
}

void send_queue::push(frame_ref f) {
    if (_count == _capacity) {
        grow();
    }
    _queued_bytes += f->size();
    _items[(_head + _count) & (_capacity - 1)] = f.leak();
    ++_count;
}

send_queue::gathered send_queue::gather(iovec* iov, unsigned max_iov,
                                        std::size_t max_bytes) const noexcept {
    unsigned n = 0;
    unsigned frames = 0;
    std::size_t bytes = 0;
    for (uint32_t i = 0; i < _count; ++i) {
        const frame* f = _items[(_head + i) & (_capacity - 1)];
        const std::size_t skip = i == 0 ? _head_offset : 0;
        frame_piece pieces[3];
        const unsigned k = frame_pieces(*f, skip, pieces);
        const std::size_t len = f->size() - skip;
        // A frame goes whole or not at all, except the first, which always goes.
        if (n > 0 && (bytes + len > max_bytes || n + k > max_iov)) {
            break;
        }
        for (unsigned p = 0; p < k && n < max_iov; ++p) {
            iov[n].iov_base = const_cast<std::byte*>(pieces[p].data);
            iov[n].iov_len = pieces[p].size;
            ++n;
        }
        bytes += len;
        ++frames;
    }
    return {n, frames};
}

unsigned send_queue::consume(std::size_t bytes) noexcept {
    RINGCAST_ASSERT(bytes <= _queued_bytes);
    _queued_bytes -= bytes;
    unsigned done = 0;
    while (bytes > 0) {
        RINGCAST_ASSERT(_count > 0);
        frame* f = _items[_head];
        const std::size_t left = f->size() - _head_offset;
        if (bytes < left) {
            _head_offset += static_cast<uint32_t>(bytes);
            break;
        }
        bytes -= left;
        frame_ref::adopt(f); // releases the queue's reference
        _head = (_head + 1) & (_capacity - 1);
        _head_offset = 0;
        --_count;
        ++done;
    }
    if (_count == 0 && _capacity > keep_capacity) {
        std::free(std::exchange(_items, nullptr));
        _capacity = 0;
        _head = 0;
    }
    return done;
}

std::size_t send_queue::discard_unstarted(uint32_t in_flight) noexcept {
    const uint32_t keep = std::max<uint32_t>(in_flight, _head_offset > 0 ? 1 : 0);
    std::size_t dropped = 0;
    while (_count > keep) {
        const uint32_t last = (_head + _count - 1) & (_capacity - 1);
        dropped += _items[last]->size();
        frame_ref::adopt(_items[last]);
        --_count;
    }
    _queued_bytes -= dropped;
    return dropped;
}

void send_queue::clear() noexcept {
    for (uint32_t i = 0; i < _count; ++i) {
        frame_ref::adopt(_items[(_head + i) & (_capacity - 1)]);
    }
    std::free(std::exchange(_items, nullptr));
    _capacity = 0;
    _head = 0;
    _count = 0;
    _head_offset = 0;
    _queued_bytes = 0;
}

} // namespace ringcast::core
