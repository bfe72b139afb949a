// libFuzzer target for cli::response_reader (src/cli/http_client.h), the command-line
// client's reader of what a server answers. Built twice by tests/fuzz/meson.build: with
// -fsanitize=fuzzer as the fuzzer, and with replay_main.cc as the fuzz-corpus test.
//
// Input layout: byte 0 picks how the rest arrives (0 = one byte per read, else reads of up
// to (byte & 0x3f) + 1 bytes from a walk seeded by the byte); byte 1 the body limit (its
// value × 64 bytes); bytes 2.. are what the server sends, then the connection ends.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - an error is sticky and says why; complete stays complete;
//   - a complete response has a status from 100 to 999, a body within the limit, and a
//     head (everything before the body and leftover) within max_response_head_bytes;
//   - bytes are neither lost nor invented: head + body + leftover is the input, for a
//     response complete before the end (a body read to the end has no leftover);
//   - splitting never changes the outcome: reads of any sizes give the same status, error,
//     status code, headers, body and leftover as the whole input in one read.
#include "http_client.h"
#include "split_feed.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace ringcast::cli;
using ringcast::fuzz::chunker;
using ringcast::fuzz::require;

struct outcome {
    response_reader::status status;
    std::string error;
    int code = 0;
    std::size_t headers = 0;
    std::string body;
    std::string leftover;
    bool operator==(const outcome&) const = default;
};

outcome read_all(std::string_view bytes, std::size_t max_body, uint8_t seed, bool whole) {
    response_reader r(max_body);
    response_reader::status s = response_reader::status::need_more;
    chunker cut(seed);
    std::size_t at = 0;
    bool saw_error = false;
    bool saw_complete = false;
    while (at < bytes.size()) {
        const std::size_t n = whole ? bytes.size() : cut.next(bytes.size() - at);
        s = r.feed(bytes.substr(at, n));
        at += n;
        if (saw_error) {
            require(s == response_reader::status::error);
        }
        if (saw_complete) {
            require(s == response_reader::status::complete);
        }
        saw_error = s == response_reader::status::error;
        saw_complete = s == response_reader::status::complete;
    }
    s = r.finish();
    outcome o{s, r.error(), 0, 0, {}, std::string(r.leftover())};
    if (s == response_reader::status::error) {
        require(!r.error().empty());
        return o;
    }
    require(s == response_reader::status::complete);
    const http_response& resp = r.get();
    o.code = resp.status;
    o.headers = resp.headers.size();
    o.body = resp.body;
    require(resp.status >= 100 && resp.status <= 999);
    require(resp.body.size() <= max_body);
    require(o.body.size() + o.leftover.size() <= bytes.size());
    const std::size_t head = bytes.size() - o.body.size() - o.leftover.size();
    require(head <= max_response_head_bytes);
    require(bytes.substr(head, o.body.size()) == o.body);
    require(bytes.substr(head + o.body.size()) == o.leftover);
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const uint8_t seed = data[0];
    const std::size_t max_body = std::size_t(data[1]) * 64;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const outcome whole = read_all(bytes, max_body, seed, true);
    const outcome split = read_all(bytes, max_body, seed, false);
    require(whole == split);
    return 0;
}
