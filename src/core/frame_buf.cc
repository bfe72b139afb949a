// Frames: one allocation holds the 8-byte header and the wire bytes (see core.h `frame`).
#include <ringcast/core.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace ringcast::core {

frame_ref make_frame(std::size_t size) {
    RINGCAST_ASSERT(size <= std::numeric_limits<uint32_t>::max());
    void* memory = std::malloc(sizeof(frame) + size);
    if (memory == nullptr) {
        throw std::bad_alloc();
    }
    auto* f = ::new (memory) frame();
    f->_size = static_cast<uint32_t>(size);
    frame_ref r;
    r._frame = f;
    return r;
}

frame_ref make_frame(std::span<const std::byte> bytes) {
    auto r = make_frame(bytes.size());
    if (!bytes.empty()) {
        std::memcpy(r->mutable_data(), bytes.data(), bytes.size());
    }
    return r;
}

frame_ref make_frame(std::string_view text) {
    return make_frame(std::as_bytes(std::span(text.data(), text.size())));
}

void frame_ref::release() noexcept {
    if (_frame == nullptr) {
        return;
    }
    // acq_rel: the release half orders this holder's reads of the bytes before the
    // decrement; the acquire half makes the last holder see every other holder's reads done
    // before it frees the memory.
    const auto before = _frame->_refs.fetch_sub(1, std::memory_order_acq_rel);
    RINGCAST_ASSERT(before != 0);
    if (before == 1) {
        _frame->~frame();
        std::free(_frame);
    }
    _frame = nullptr;
}

} // namespace ringcast::core
