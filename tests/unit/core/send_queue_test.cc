#include "send_queue.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using namespace ringcast;
using core::send_queue;

namespace {
core::frame_ref text_frame(const std::string& s) {
    return core::make_frame(std::string_view(s));
}

/// A frame whose wire bytes are head + body + tail, the body spliced in by reference.
core::frame_ref spliced(const std::string& head, const core::frame_ref& body,
                        const std::string& tail) {
    auto f = core::make_spliced_frame(head.size() + tail.size(), head.size(), body);
    std::memcpy(f->mutable_data(), head.data(), head.size());
    std::memcpy(f->mutable_data() + head.size(), tail.data(), tail.size());
    return f;
}

std::string gathered(const send_queue& q, unsigned max_iov = 64, std::size_t max_bytes = 1 << 20) {
    iovec iov[64];
    const unsigned n = q.gather(iov, max_iov, max_bytes).iovs;
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    }
    return out;
}
} // namespace

TEST_CASE("send queue gathers queued frames in order", "[core][send_queue]") {
    send_queue q;
    q.push(text_frame("abc"));
    q.push(text_frame("de"));
    q.push(text_frame("f"));
    CHECK(q.frames() == 3);
    CHECK(q.queued_bytes() == 6);
    CHECK(gathered(q) == "abcdef");
}

TEST_CASE("send queue resumes a partially sent frame where the socket stopped",
          "[core][send_queue]") {
    send_queue q;
    q.push(text_frame("hello"));
    q.push(text_frame("world"));
    for (std::size_t sent = 0; sent <= 10; ++sent) {
        SECTION("after " + std::to_string(sent) + " bytes") {
            const unsigned done = q.consume(sent);
            CHECK(done == (sent >= 10 ? 2u : sent >= 5 ? 1u : 0u));
            CHECK(q.queued_bytes() == 10 - sent);
            CHECK(gathered(q) == std::string("helloworld").substr(sent));
            CHECK(q.empty() == (sent == 10));
        }
    }
}

TEST_CASE("send queue caps a batch by iovec count and bytes but always takes the first frame",
          "[core][send_queue]") {
    send_queue q;
    for (int i = 0; i < 10; ++i) {
        q.push(text_frame(std::string(100, char('a' + i))));
    }
    iovec iov[64];
    CHECK(q.gather(iov, 3, 1 << 20).frames == 3);
    CHECK(q.gather(iov, 64, 250).frames == 2);
    CHECK(q.gather(iov, 64, 10).frames == 1);
}

TEST_CASE("send queue grows past its first allocation and wraps around", "[core][send_queue]") {
    send_queue q;
    std::string expected;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 7; ++i) {
            const std::string s(1, char('A' + (round * 7 + i) % 26));
            q.push(text_frame(s));
            expected += s;
        }
        q.consume(3);
        expected.erase(0, 3);
        CHECK(gathered(q) == expected);
    }
}

TEST_CASE("send queue releases its references, so a shared frame outlives only its holders",
          "[core][send_queue]") {
    auto shared = text_frame("payload");
    {
        send_queue a;
        send_queue b;
        a.push(shared);
        b.push(shared);
        a.consume(7);
        CHECK(gathered(b) == "payload");
    }
    // Both queues gone: ours is the last reference and the bytes are intact.
    CHECK(std::string_view(reinterpret_cast<const char*>(shared->data()), shared->size()) ==
          "payload");
}

TEST_CASE("send queue discard keeps frames an in-flight send points into and a partly sent head",
          "[core][send_queue]") {
    send_queue q;
    for (const char* s : {"aaaa", "bbbb", "cccc", "dddd"}) {
        q.push(text_frame(s));
    }
    SECTION("nothing in flight, nothing sent: everything goes") {
        CHECK(q.discard_unstarted(0) == 16);
        CHECK(q.empty());
    }
    SECTION("two frames in flight stay") {
        CHECK(q.discard_unstarted(2) == 8);
        CHECK(gathered(q) == "aaaabbbb");
    }
    SECTION("a partly sent first frame stays whole") {
        q.consume(2);
        CHECK(q.discard_unstarted(0) == 12);
        CHECK(gathered(q) == "aa");
        CHECK(q.queued_bytes() == 2);
    }
}

TEST_CASE("send queue sends a spliced frame as its head, the shared body and its tail",
          "[core][send_queue]") {
    const auto body = text_frame("BODY");
    send_queue q;
    q.push(text_frame("x"));
    q.push(spliced("<h1>", body, "</h1>"));
    q.push(spliced("", body, "!"));
    CHECK(q.queued_bytes() == 1 + 13 + 5);
    CHECK(gathered(q) == "x<h1>BODY</h1>BODY!");
    iovec iov[64];
    const auto g = q.gather(iov, 64, 1 << 20);
    CHECK(g.frames == 3);
    CHECK(g.iovs == 1 + 3 + 2); // an empty head gives no iovec
    for (std::size_t sent = 0; sent <= 19; ++sent) {
        SECTION("after " + std::to_string(sent) + " bytes") {
            send_queue r;
            r.push(spliced("<h1>", body, "</h1>"));
            r.push(spliced("", body, "!"));
            r.consume(sent > 18 ? 18 : sent);
            CHECK(gathered(r) == std::string("<h1>BODY</h1>BODY!").substr(sent > 18 ? 18 : sent));
        }
    }
}

TEST_CASE("send queue never splits a spliced frame across the iovec cap", "[core][send_queue]") {
    const auto body = text_frame("B");
    send_queue q;
    q.push(text_frame("a"));
    q.push(spliced("h", body, "t"));
    iovec iov[64];
    const auto g = q.gather(iov, 3, 1 << 20);
    CHECK(g.frames == 1); // the spliced frame needs 3 entries, only 2 are left
    CHECK(g.iovs == 1);
}

TEST_CASE("send queue cost counts a per-frame overhead beside the bytes", "[core][send_queue]") {
    send_queue q;
    for (int i = 0; i < 100; ++i) {
        q.push(text_frame("ok"));
    }
    CHECK(q.queued_bytes() == 200);
    CHECK(q.cost_bytes() == 200 + 100 * send_queue::frame_overhead_bytes);
    q.consume(4);
    CHECK(q.cost_bytes() == 196 + 98 * send_queue::frame_overhead_bytes);
}
