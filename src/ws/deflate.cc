// permessage-deflate's compressor and decompressor (RFC 7692 §7.2), over zlib's raw deflate.
//
//   deflater: reset ─► deflate(pieces…, Z_SYNC_FLUSH) ─► strip 00 00 ff ff ─► RSV1 frame
//   inflater: [reset unless context takeover] ─► inflate(message + 00 00 ff ff) into a
//             buffer grown in steps up to max_bytes + 1 ─► past max_bytes: too_big
//
// zlib's allocations go through count_alloc/count_free, so an inflater knows the heap it
// holds (the shard's memory budget for context-takeover inflaters counts it).
#include <ringcast/ws.h>

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ringcast::ws {

namespace {

/// zlib's level 1..9. Level 1: compression runs once per message per shard on the shard's
/// thread, and on JSON envelopes level 6 makes output within 5 % of it up to 1 KB and 12-19 %
/// smaller beyond, at 2.8x the time on a 14 KB one (perf/RESULTS.md "permessage-deflate").
constexpr int deflate_level = 1;
/// zlib's default: 128 KiB of hash chains + 64 KiB window + 64 KiB of pending output.
constexpr int deflate_mem_level = 8;
/// The empty stored block every Z_SYNC_FLUSH ends with; RFC 7692 §7.2.1 strips it.
constexpr std::byte flush_tail[4] = {std::byte{0x00}, std::byte{0x00}, std::byte{0xff},
                                     std::byte{0xff}};
/// First output buffer of an inflate, and the smallest step it grows by.
constexpr std::size_t inflate_first_bytes = 4096;
/// What zlib's inflate_state takes on top of its window (7 160 bytes in zlib 1.2.13 on
/// x86-64, measured by tests/unit/ws/deflate_test.cc through held_bytes()), rounded up.
constexpr std::size_t inflate_state_bytes = 8192;
/// count_alloc's header: the block's size, kept so count_free can subtract it.
constexpr std::size_t alloc_header_bytes = alignof(std::max_align_t);

struct counted {
    std::size_t held = 0;
    inflate_memory* shard = nullptr;
};

void* count_alloc(void* opaque, unsigned items, unsigned size) {
    const std::size_t bytes = std::size_t(items) * size;
    auto* block = static_cast<std::byte*>(std::malloc(bytes + alloc_header_bytes));
    if (block == nullptr) {
        return nullptr;
    }
    std::memcpy(block, &bytes, sizeof(bytes));
    auto* c = static_cast<counted*>(opaque);
    c->held += bytes;
    if (c->shard != nullptr) {
        c->shard->held_bytes += bytes;
    }
    return block + alloc_header_bytes;
}

void count_free(void* opaque, void* address) {
    if (address == nullptr) {
        return;
    }
    auto* block = static_cast<std::byte*>(address) - alloc_header_bytes;
    std::size_t bytes = 0;
    std::memcpy(&bytes, block, sizeof(bytes));
    auto* c = static_cast<counted*>(opaque);
    c->held -= bytes;
    if (c->shard != nullptr) {
        c->shard->held_bytes -= bytes;
    }
    std::free(block);
}

unsigned to_uint(std::size_t n) noexcept {
    return static_cast<unsigned>(std::min<std::size_t>(n, std::numeric_limits<unsigned>::max()));
}

} // namespace

// --- deflater -------------------------------------------------------------------------------

struct deflater::state {
    z_stream z{};
    bool ready = false;
    std::vector<std::byte> scratch; // compress_frame's output before its header is known
};

deflater::deflater() : _z(std::make_unique<state>()) {
    _z->ready = deflateInit2(&_z->z, deflate_level, Z_DEFLATED, -15, deflate_mem_level,
                             Z_DEFAULT_STRATEGY) == Z_OK;
}

deflater::~deflater() {
    if (_z->ready) {
        deflateEnd(&_z->z);
    }
}

bool deflater::compress(std::span<const std::span<const std::byte>> pieces,
                        std::vector<std::byte>& out) {
    out.clear();
    if (!_z->ready || deflateReset(&_z->z) != Z_OK) {
        return false;
    }
    z_stream& z = _z->z;
    std::size_t total = 0;
    for (const auto& p : pieces) {
        total += p.size();
    }
    // deflateBound covers a Z_FINISH stream; a sync flush adds at most 5 bytes per call.
    out.resize(deflateBound(&z, static_cast<uLong>(total)) + 6 * (pieces.size() + 1));
    std::size_t produced = 0;
    for (std::size_t i = 0; i <= pieces.size(); ++i) {
        // One pass per piece with Z_NO_FLUSH, then an empty one with Z_SYNC_FLUSH.
        const bool last = i == pieces.size();
        std::span<const std::byte> in = last ? std::span<const std::byte>() : pieces[i];
        z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(in.data()));
        z.avail_in = to_uint(in.size());
        do {
            if (produced == out.size()) {
                out.resize(out.size() * 2);
            }
            z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            z.avail_out = to_uint(out.size() - produced);
            const int rc = deflate(&z, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
            produced = out.size() - z.avail_out;
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                return false;
            }
        } while (z.avail_in != 0 || z.avail_out == 0);
    }
    if (produced < sizeof(flush_tail) ||
        std::memcmp(out.data() + produced - sizeof(flush_tail), flush_tail, sizeof(flush_tail)) !=
            0) {
        return false; // cannot happen after a completed sync flush
    }
    out.resize(produced - sizeof(flush_tail));
    return true;
}

core::frame_ref deflater::compress_frame(opcode op,
                                         std::span<const std::span<const std::byte>> pieces) {
    std::vector<std::byte>& body = _z->scratch;
    if (!compress(pieces, body)) {
        return {};
    }
    const std::size_t header = frame_header_size(body.size());
    auto f = core::make_frame(header + body.size());
    write_frame_header(f->mutable_data(), op, body.size());
    f->mutable_data()[0] |= std::byte{0x40}; // RSV1: a compressed message (RFC 7692 §6)
    std::memcpy(f->mutable_data() + header, body.data(), body.size());
    if (body.capacity() > (std::size_t{1} << 20)) {
        std::vector<std::byte>().swap(body); // one huge message keeps no megabytes around
    }
    return f;
}

// --- inflater -------------------------------------------------------------------------------

struct inflater::state {
    z_stream z{};
    counted memory;
    bool ready = false;
    bool context_takeover = false;
    uint8_t window_bits = 15;
};

std::size_t inflater_cost_bytes(uint8_t window_bits) noexcept {
    const unsigned bits = std::clamp<unsigned>(window_bits, 9, 15);
    return inflate_state_bytes + (std::size_t{1} << bits);
}

inflater::inflater(uint8_t window_bits, bool context_takeover, inflate_memory* memory)
    : _z(std::make_unique<state>()) {
    _z->context_takeover = context_takeover;
    _z->window_bits = static_cast<uint8_t>(std::clamp<unsigned>(window_bits, 9, 15));
    _z->memory.shard = memory;
    _z->z.zalloc = count_alloc;
    _z->z.zfree = count_free;
    _z->z.opaque = &_z->memory;
    _z->ready = inflateInit2(&_z->z, -int(_z->window_bits)) == Z_OK;
}

inflater::~inflater() {
    if (_z->ready) {
        inflateEnd(&_z->z);
    }
}

std::size_t inflater::held_bytes() const noexcept {
    return _z->memory.held;
}

inflate_status inflater::inflate(std::span<const std::byte> compressed, std::size_t max_bytes,
                                 std::vector<std::byte>& out) noexcept {
    out.clear();
    if (!_z->ready) {
        return inflate_status::no_memory;
    }
    z_stream& z = _z->z;
    if (!_z->context_takeover && inflateReset(&z) != Z_OK) {
        return inflate_status::no_memory;
    }
    z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(compressed.data()));
    z.avail_in = to_uint(compressed.size());
    bool tail_fed = false;
    std::size_t produced = 0;
    for (;;) {
        if (z.avail_in == 0 && !tail_fed) {
            z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(flush_tail));
            z.avail_in = sizeof(flush_tail);
            tail_fed = true;
        }
        if (produced == out.size()) {
            if (out.size() > max_bytes) {
                return inflate_status::too_big;
            }
            // Grow to twice, at most one byte past the limit: that byte proves a bomb.
            const std::size_t next =
                std::min(max_bytes + 1, std::max(inflate_first_bytes, out.size() * 2));
            try {
                out.reserve(next); // exactly: resize alone may double the capacity
                out.resize(next);
            } catch (...) {
                return inflate_status::no_memory;
            }
        }
        z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
        z.avail_out = to_uint(out.size() - produced);
        // Z_BLOCK stops at block boundaries, so data_type tells whether the message ended
        // on one (a cut message ends inside a block and is invalid).
        const int rc = ::inflate(&z, Z_BLOCK);
        produced = out.size() - z.avail_out;
        if (produced > max_bytes) {
            return inflate_status::too_big;
        }
        switch (rc) {
        case Z_OK:
        case Z_BUF_ERROR:
            if (z.avail_in == 0 && tail_fed && z.avail_out != 0) {
                // Everything read and room left: the stream waits for more input. It must
                // be between blocks, as the sync-flush tail leaves it.
                if ((z.data_type & 128) == 0) {
                    return inflate_status::invalid;
                }
                out.resize(produced);
                return inflate_status::ok;
            }
            if (rc == Z_BUF_ERROR && z.avail_out != 0) {
                return inflate_status::invalid; // no progress with input and room: stuck
            }
            continue;
        case Z_STREAM_END: {
            // A final block (BFINAL): allowed (§7.2.3.3); nothing but our tail may follow.
            if (!tail_fed && z.avail_in != 0) {
                return inflate_status::invalid;
            }
            if (_z->context_takeover) {
                // The next message continues the window: carry it over the reset. The copy
                // is allocated here, inside a noexcept function: out of memory is an answer
                // (1011), not std::terminate.
                std::vector<Bytef> window;
                try {
                    window.resize(std::size_t{1} << _z->window_bits);
                } catch (...) {
                    return inflate_status::no_memory;
                }
                uInt n = 0;
                if (inflateGetDictionary(&z, window.data(), &n) != Z_OK ||
                    inflateReset(&z) != Z_OK ||
                    (n != 0 && inflateSetDictionary(&z, window.data(), n) != Z_OK)) {
                    return inflate_status::invalid;
                }
            }
            out.resize(produced);
            return inflate_status::ok;
        }
        case Z_MEM_ERROR:
            return inflate_status::no_memory;
        default: // Z_DATA_ERROR, Z_NEED_DICT (a raw stream never asks), Z_STREAM_ERROR
            return inflate_status::invalid;
        }
    }
}

} // namespace ringcast::ws
