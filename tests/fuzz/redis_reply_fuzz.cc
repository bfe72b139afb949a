// libFuzzer target for redis::reply_reader (include/ringcast/redis.h), what a Redis link
// reads: hiredis's RESP2 reader behind a bound on the bytes it buffers and on the memory of
// the reply it builds. Built twice by tests/fuzz/meson.build: with -fsanitize=fuzzer as the
// fuzzer, and with replay_main.cc as the fuzz-corpus test.
//
// Input layout: byte 0 picks how the rest arrives (0 = one byte per read, else reads of up
// to (byte & 0x3f) + 1 bytes from a walk seeded by the byte); byte 1 the bound (64 bytes
// shifted left by byte % 12: 64 B to 128 KiB); bytes 2.. are what Redis sends.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - every reply is whole: arrays hold non-null elements, nest at most eight deep, and what
//     hiredis allocated for the reply (texts, element tables) stays within the bound;
//   - an error says why and is sticky: next() repeats it, feed() refuses;
//   - splitting never changes the outcome: reads of any sizes give the same replies and
//     error as the whole input in one read; only the buffered bound may cut a run short,
//     and then its replies are the first ones of the other run;
//   - a reply that is an array of strings, written back with append_command, reads back
//     the same;
//   - reset() gives a clean reader whatever came before.
#include "split_feed.h"

#include <ringcast/redis.h>

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace ringcast::redis;
using ringcast::fuzz::chunker;
using ringcast::fuzz::require;

std::span<const std::byte> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// The reply as a line ("[$a,:1,nil]"), checking its shape and adding up what hiredis
/// allocated for it into `bytes`: an object per element, each text with its terminating
/// zero, each array's table of element pointers.
std::string shown(const redisReply& r, int depth, std::size_t& bytes) {
    require(depth <= 9);
    bytes += sizeof(redisReply);
    switch (type_of(r)) {
    case reply_type::string:
        bytes += text_of(r).size() + 1;
        return "$" + std::string(text_of(r));
    case reply_type::status:
        bytes += text_of(r).size() + 1;
        return "+" + std::string(text_of(r));
    case reply_type::error:
        bytes += text_of(r).size() + 1;
        return "-" + std::string(text_of(r));
    case reply_type::integer:
        require(text_of(r).empty() && elements_of(r).empty());
        return ":" + std::to_string(integer_of(r));
    case reply_type::nil:
        require(text_of(r).empty() && elements_of(r).empty() && integer_of(r) == 0);
        return "nil";
    case reply_type::array:
        break;
    }
    require(text_of(r).empty() && integer_of(r) == 0);
    const auto elements = elements_of(r);
    bytes += elements.size() * sizeof(redisReply*);
    std::string out = "[";
    for (const redisReply* e : elements) {
        require(e != nullptr);
        out += out.size() > 1 ? "," : "";
        out += shown(*e, depth + 1, bytes);
    }
    return out + "]";
}

/// An array of strings written back as a request reads back as the same reply.
void check_round_trip(const redisReply& r, const std::string& line) {
    if (type_of(r) != reply_type::array) {
        return;
    }
    std::vector<std::string_view> args;
    for (const redisReply* e : elements_of(r)) {
        if (type_of(*e) != reply_type::string) {
            return;
        }
        args.push_back(text_of(*e));
    }
    std::string wire;
    append_command(wire, args);
    reply_reader again;
    std::string error;
    require(again.feed(bytes_of(wire)));
    const reply_ptr back = again.next(error);
    require(back != nullptr && error.empty());
    std::size_t bytes = 0;
    require(shown(*back, 1, bytes) == line);
    require(again.next(error) == nullptr && error.empty());
}

struct outcome {
    std::vector<std::string> replies;
    std::string error;
    bool refused = false; // feed() said no: over the buffered bound
};

outcome read_all(std::string_view bytes, std::size_t bound, uint8_t seed, bool whole) {
    reply_reader reader(bound);
    outcome o;
    chunker cut(seed);
    std::size_t at = 0;
    while (at < bytes.size() && o.error.empty() && !o.refused) {
        const std::size_t n = whole ? bytes.size() : cut.next(bytes.size() - at);
        if (!reader.feed(bytes_of(bytes.substr(at, n)))) {
            o.refused = true;
            break;
        }
        at += n;
        while (reply_ptr r = reader.next(o.error)) {
            require(o.error.empty());
            std::size_t held = 0;
            o.replies.push_back(shown(*r, 1, held));
            require(held <= bound);
            if (!whole) {
                check_round_trip(*r, o.replies.back());
            }
        }
    }
    if (!o.error.empty()) {
        std::string again;
        require(reader.next(again) == nullptr && again == o.error);
        require(!reader.feed(bytes_of("+OK\r\n")));
    }
    reader.reset();
    std::string error;
    require(reader.feed(bytes_of("+OK\r\n")));
    const reply_ptr ok = reader.next(error);
    require(ok != nullptr && error.empty() && type_of(*ok) == reply_type::status &&
            text_of(*ok) == "OK");
    return o;
}

bool starts_with(const std::vector<std::string>& all, const std::vector<std::string>& first) {
    return first.size() <= all.size() && std::equal(first.begin(), first.end(), all.begin());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const uint8_t seed = data[0];
    const std::size_t bound = std::size_t{64} << (data[1] % 12);
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const outcome whole = read_all(bytes, bound, seed, true);
    const outcome split = read_all(bytes, bound, seed, false);
    if (!whole.refused && !split.refused) {
        require(whole.replies == split.replies);
        require(whole.error == split.error);
    } else if (whole.refused) {
        require(whole.error.empty() && starts_with(split.replies, whole.replies));
    } else {
        require(split.error.empty() && starts_with(whole.replies, split.replies));
    }
    return 0;
}
