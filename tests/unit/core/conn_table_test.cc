#include "conn_table.h"
#include "op.h"

#include <catch2/catch.hpp>

using namespace ringcast;
using core::conn_table;

TEST_CASE("conn table refuses a stale handle after the slot is reused", "[core][conn_table]") {
    conn_table t(2);
    core::conn* a = t.allocate();
    REQUIRE(a != nullptr);
    const conn_handle old = t.handle(*a);
    CHECK(t.get(old) == a);
    t.release(*a);
    CHECK(t.get(old) == nullptr);
    core::conn* b = t.allocate();
    REQUIRE(b == a); // same slot, next tenant
    CHECK(t.get(old) == nullptr);
    CHECK(t.get(t.handle(*b)) == b);
}

TEST_CASE("conn table stops at its capacity and counts live slots", "[core][conn_table]") {
    conn_table t(3);
    core::conn* c[3];
    for (auto& slot : c) {
        slot = t.allocate();
        REQUIRE(slot != nullptr);
    }
    CHECK(t.allocate() == nullptr);
    CHECK(t.live() == 3);
    t.release(*c[1]);
    CHECK(t.live() == 2);
    CHECK(t.allocate() == c[1]);
}

TEST_CASE("completion tags round-trip op, slot and generation", "[core][op]") {
    const conn_handle h{123456, 0xabcdef};
    const auto d = core::decode(core::encode(core::op::send, h));
    CHECK(d.o == core::op::send);
    CHECK(d.h == h);
    // Generations wrap at 24 bits, the width the tag keeps.
    const auto wrapped = core::decode(core::encode(core::op::recv, conn_handle{7, 0x1000001}));
    CHECK(wrapped.h.generation == 1);
}
