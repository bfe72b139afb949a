// libFuzzer target for http::request_parser (and check_upgrade / the response writers it
// feeds). Built twice by tests/fuzz/meson.build: with -fsanitize=fuzzer as the fuzzer, and
// with replay_main.cc as the fuzz-corpus test of every build.
//
// Input layout: byte 0 picks how the rest is cut into feeds (0 = one byte per feed, else a
// pseudo-random walk of chunks up to (byte & 0x3f) + 1 bytes, seeded by the byte); bytes 1..
// are the connection's stream: pipelined requests, parsed one after another with reset().
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - consumed <= bytes fed; need_more consumes everything fed;
//   - buffered_bytes() <= max_header_bytes + max_body_bytes after every feed, 0 after
//     an error or reset();
//   - held_bytes() <= max(2 × buffered_bytes(), max_header_bytes + 1) after every feed
//     (memory follows the bytes received, never Content-Length), 0 after an error or
//     reset();
//   - on complete, every view of the request lies inside the parser's buffer, the head
//     starts it and the body ends it;
//   - an error is sticky and has a status from the documented set and a reason;
//   - the chunked run and a run feeding the whole rest at once produce the same sequence of
//     outcomes (requests, statuses, consumed offsets): splitting never changes the parse;
//   - check_upgrade / upgrade_response / make_error_response never crash, and a 101 has a
//     28-character accept.
#include "split_feed.h"

#include <ringcast/http.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace ringcast::http;

/// Small limits so inputs of a few hundred bytes reach every limit. The body limit is above
/// max_header_bytes + 1 so that a body reserved from Content-Length instead of grown as it
/// arrives breaks the held_bytes() bound (a 1 KiB announcement needs no 1 KiB input).
constexpr request_limits fuzz_limits{64, 256, 8, 1024};

/// Stops the whole stream after this many requests: enough for pipelining, bounded time.
constexpr int max_requests_per_input = 16;

using ringcast::fuzz::chunker;
using ringcast::fuzz::require;

bool inside(std::string_view view, const char* base, std::size_t size) {
    return view.empty() || (view.data() >= base && view.data() + view.size() <= base + size);
}

/// Checks a complete request against the parser's buffer and exercises everything that reads
/// a request. Returns its summary for the split-equivalence check.
std::string check_complete(const request_parser& parser) {
    const request& req = parser.get();
    const char* base = req.method.data();
    const std::size_t size = parser.buffered_bytes();
    require(!req.method.empty() && size > 0);
    require(inside(req.target, base, size) && inside(req.path, base, size) &&
            inside(req.query, base, size) && inside(req.body, base, size));
    require(req.headers.size() <= fuzz_limits.max_headers);
    require(size - req.body.size() <= fuzz_limits.max_header_bytes);
    require(req.body.size() <= fuzz_limits.max_body_bytes);
    require(req.body.empty() || req.body.data() + req.body.size() == base + size);
    require(!req.path.empty() && req.path.front() == '/');
    std::string summary = "C|" + std::string(req.method) + "|" + std::string(req.target) + "|" +
                          std::string(req.path) + "|" + std::string(req.query) + "|" +
                          std::to_string(req.version_minor);
    for (const header& h : req.headers) {
        require(inside(h.name, base, size) && inside(h.value, base, size));
        summary += "|" + std::string(h.name) + ":" + std::string(h.value);
    }
    summary += "|" + std::string(req.body);

    (void)req.keep_alive();
    (void)req.query_param("token");
    (void)req.header_has_token("connection", "upgrade");
    const upgrade_check upgrade = check_upgrade(req);
    if (upgrade.status == 101) {
        const std::string response = upgrade_response(req);
        require(response.size() == 129); // fixed text + 28 accept characters
    } else {
        require(!upgrade.reason.empty());
        (void)make_error_response(upgrade.status, upgrade.reason, keep_alive::no);
    }
    return summary;
}

/// Parses `stream` as one connection's bytes: whole = everything left in each feed, else
/// chunks from the seed's walk. Returns one outcome per request, ending at the first error.
std::vector<std::string> run(std::string_view stream, uint8_t seed, bool whole) {
    std::vector<std::string> outcomes;
    request_parser parser(fuzz_limits);
    chunker cuts(seed);
    std::size_t offset = 0;
    int requests = 0;
    while (offset < stream.size() && requests < max_requests_per_input) {
        const std::size_t left = stream.size() - offset;
        const std::size_t fed = whole ? left : cuts.next(left);
        const feed_result r = parser.feed(stream.substr(offset, fed));
        require(r.consumed <= fed);
        require(parser.buffered_bytes() <=
                fuzz_limits.max_header_bytes + fuzz_limits.max_body_bytes);
        require(parser.held_bytes() <=
                std::max(2 * parser.buffered_bytes(), fuzz_limits.max_header_bytes + 1));
        offset += r.consumed;
        if (r.status == parse_status::need_more) {
            require(r.consumed == fed);
            continue;
        }
        if (r.status == parse_status::error) {
            const int s = r.http_status;
            require(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
            require(!r.reason.empty() && parser.buffered_bytes() == 0 &&
                    parser.held_bytes() == 0);
            require(parser.feed("GET / HTTP/1.1\r\n\r\n").status == parse_status::error);
            (void)make_error_response(s, r.reason, keep_alive::no);
            outcomes.push_back("E|" + std::to_string(s) + "|" + std::string(r.reason));
            break; // the server answers and closes
        }
        outcomes.push_back(check_complete(parser) + "|@" + std::to_string(offset));
        parser.reset();
        require(parser.buffered_bytes() == 0 && parser.held_bytes() == 0);
        ++requests;
    }
    return outcomes;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::vector<std::string> chunked = run(stream, data[0], false);
    const std::vector<std::string> whole = run(stream, data[0], true);
    require(chunked == whole);
    return 0;
}
