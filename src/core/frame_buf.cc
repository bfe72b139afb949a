// Frames: one allocation holds the 24-byte header and the own bytes (see core.h `frame`).
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

frame::~frame() {
    if (_body != nullptr) {
        frame_ref::adopt(_body); // releases the reference this frame held
    }
}

frame_ref make_spliced_frame(std::size_t own_size, std::size_t split, frame_ref body) {
    RINGCAST_ASSERT(split <= own_size && body && body->body() == nullptr);
    RINGCAST_ASSERT(own_size + body->size() <= std::numeric_limits<uint32_t>::max());
    auto r = make_frame(own_size);
    r->_split = static_cast<uint32_t>(split);
    r->_body = body.leak();
    return r;
}

unsigned frame_pieces(const frame& f, std::size_t skip, frame_piece (&out)[3]) noexcept {
    const frame* body = f.body();
    if (body == nullptr) {
        out[0] = {f.data() + skip, f.own_size() - skip};
        return 1;
    }
    const frame_piece all[3] = {{f.data(), f.split()},
                                {body->data(), body->own_size()},
                                {f.data() + f.split(), f.own_size() - f.split()}};
    unsigned n = 0;
    for (const frame_piece& p : all) {
        if (skip >= p.size) {
            skip -= p.size;
            continue;
        }
        out[n++] = {p.data + skip, p.size - skip};
        skip = 0;
    }
    return n;
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
