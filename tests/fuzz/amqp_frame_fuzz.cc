// libFuzzer target for what an AMQP link reads from a broker (include/ringcast/amqp.h):
// amqp::frame_splitter cutting the byte stream into frames, then each method frame through
// codec::decode_method and each content header through codec::decode_header — ringcast's
// checks in front of librabbitmq's decoders. Built twice by tests/fuzz/meson.build: with
// -fsanitize=fuzzer as the fuzzer, and with replay_main.cc as the fuzz-corpus test.
//
// Input layout: byte 0 picks how the rest arrives (0 = one byte per read, else reads of up
// to (byte & 0x3f) + 1 bytes from a walk seeded by the byte); byte 1 the frame-max
// (frame_min_bytes shifted left by byte % 6: 4 KiB to 128 KiB); bytes 2.. are what the
// broker sends.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - every frame is within frame-max, of a known type, a heartbeat only on channel 0;
//   - splitting never changes the outcome: reads of any sizes give the same frames and the
//     same error as the whole input in one read; an error is sticky;
//   - the splitter never holds more than frame-max plus one read;
//   - a decoded method is one is_server_method names, with a struct; a decoded header has
//     properties; decoding never crashes, recurses past max_table_depth or leaks (ASan).
#include "split_feed.h"

#include <ringcast/amqp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace ringcast::amqp;
using ringcast::fuzz::chunker;
using ringcast::fuzz::require;

struct outcome {
    std::vector<std::string> frames; // type, channel, payload, and what decoding said
    std::string error;
};

std::string decoded(codec& c, const frame& f) {
    std::string_view why;
    switch (f.type) {
    case frame_type::method: {
        uint32_t id = 0;
        void* args = nullptr;
        if (!c.decode_method(f.payload, id, args, why)) {
            require(!why.empty());
            return "!" + std::string(why);
        }
        require(args != nullptr && is_server_method(id));
        c.recycle();
        return "m" + std::to_string(id);
    }
    case frame_type::header: {
        uint64_t size = 0;
        const amqp_basic_properties_t* p = nullptr;
        if (!c.decode_header(f.payload, size, p, why)) {
            require(!why.empty());
            return "!" + std::string(why);
        }
        require(p != nullptr);
        const std::string out = "h" + std::to_string(size) + "/" + std::to_string(p->_flags);
        c.recycle_content();
        return out;
    }
    case frame_type::body:
        return "b";
    case frame_type::heartbeat:
        require(f.channel == 0);
        return "hb";
    }
    require(false);
    return {};
}

outcome read_all(std::string_view bytes, uint32_t max, uint8_t seed, bool whole) {
    frame_splitter s(max);
    s.set_max_frame_bytes(max);
    codec c;
    outcome o;
    chunker cut(seed);
    std::size_t at = 0;
    while (at < bytes.size() && o.error.empty()) {
        const std::size_t n = whole ? bytes.size() : cut.next(bytes.size() - at);
        s.feed({reinterpret_cast<const std::byte*>(bytes.data() + at), n});
        at += n;
        require(whole || s.buffered() <= max + 64);
        frame f;
        std::string_view why;
        while (true) {
            const split_status st = s.next(f, why);
            if (st == split_status::need_more) {
                break;
            }
            if (st == split_status::error) {
                require(!why.empty());
                o.error = why;
                std::string_view again;
                require(s.next(f, again) == split_status::error && again == why);
                break;
            }
            require(f.payload.size() + frame_overhead_bytes <= max);
            o.frames.push_back(std::to_string(int(f.type)) + ":" + std::to_string(f.channel) +
                               ":" + std::string(reinterpret_cast<const char*>(f.payload.data()),
                                                 f.payload.size()) +
                               ":" + decoded(c, f));
        }
    }
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const uint8_t seed = data[0];
    const uint32_t max = frame_min_bytes << (data[1] % 6);
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const outcome whole = read_all(bytes, max, seed, true);
    const outcome split = read_all(bytes, max, seed, false);
    require(whole.frames == split.frames);
    require(whole.error == split.error);
    return 0;
}
