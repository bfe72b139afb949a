// core::histogram (include/ringcast/core.h), the type behind the publish-to-send and
// queue-depth histograms of /metrics and /api/stats: which bucket a value lands in (the
// bound itself is in, Prometheus' `le`), merging shards, and a record path that never
// allocates. Tested here, beside its renderer (stats_test.cc), in the single-threaded
// executable that counts allocations.
#include "../net/alloc_count.h"

#include <ringcast/core.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>

using namespace ringcast;

namespace {

constexpr uint64_t three_bounds[] = {10, 100, 1000};
using small_histogram = core::histogram<three_bounds>;

} // namespace

TEST_CASE("a value equal to a bound counts in that bound's bucket, above the last in the last",
          "[admin][histogram]") {
    small_histogram h;
    for (const uint64_t v : {0u, 10u, 11u, 100u, 101u, 1000u, 1001u, 5000000u}) {
        h.record(v);
    }
    CHECK(h.counts[0] == 2); // 0, 10
    CHECK(h.counts[1] == 2); // 11, 100
    CHECK(h.counts[2] == 2); // 101, 1000
    CHECK(h.counts[3] == 2); // 1001, 5000000
    CHECK(h.count == 8);
    CHECK(h.sum == 0 + 10 + 11 + 100 + 101 + 1000 + 1001 + 5000000);
    STATIC_REQUIRE(small_histogram::buckets == 4);
}

TEST_CASE("merging shards adds bucket by bucket, with count and sum", "[admin][histogram]") {
    small_histogram a;
    small_histogram b;
    a.record(5);
    a.record(50);
    b.record(50);
    b.record(5000);
    a.merge(b);
    CHECK(a.counts[0] == 1);
    CHECK(a.counts[1] == 2);
    CHECK(a.counts[2] == 0);
    CHECK(a.counts[3] == 1);
    CHECK(a.count == 4);
    CHECK(a.sum == 5105);
}

TEST_CASE("the latency and queue-depth bounds rise strictly", "[admin][histogram]") {
    for (std::size_t i = 1; i < std::size(core::latency_bounds_us); ++i) {
        CHECK(core::latency_bounds_us[i - 1] < core::latency_bounds_us[i]);
    }
    for (std::size_t i = 1; i < std::size(core::queue_depth_bounds_bytes); ++i) {
        CHECK(core::queue_depth_bounds_bytes[i - 1] < core::queue_depth_bounds_bytes[i]);
    }
    CHECK(core::latency_bounds_us[0] == 10);
    CHECK(core::latency_bounds_us[std::size(core::latency_bounds_us) - 1] == 2500000);
}

TEST_CASE("recording and merging allocate nothing (they sit on the delivery path)",
          "[admin][histogram]") {
    core::latency_histogram h;
    core::latency_histogram other;
    const std::size_t before = test::allocations();
    for (uint64_t v = 0; v < 100000; v += 7) {
        h.record(v);
    }
    other.merge(h);
    CHECK(test::allocations() == before);
    CHECK(other.count == h.count);
}
