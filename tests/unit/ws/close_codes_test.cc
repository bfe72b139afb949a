// ws close codes: the wire-validity ranges of RFC 6455 §7.4 and the one description table.
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <set>
#include <string>

using namespace ringcast::ws;

TEST_CASE("close codes valid on the wire are exactly 1000-1003, 1007-1014, 3000-4999",
          "[ws][close]") {
    std::size_t wrong = 0;
    for (uint32_t code = 0; code <= 0xffff; ++code) {
        const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                              (code >= 3000 && code <= 4999);
        wrong += close_code_valid_on_wire(static_cast<uint16_t>(code)) != expected ? 1 : 0;
    }
    CHECK(wrong == 0);
    CHECK_FALSE(close_code_valid_on_wire(1004));
    CHECK_FALSE(close_code_valid_on_wire(1005));
    CHECK_FALSE(close_code_valid_on_wire(1006));
    CHECK_FALSE(close_code_valid_on_wire(1015));
    CHECK(close_code_valid_on_wire(static_cast<uint16_t>(close_code::too_many_connections)));
}

TEST_CASE("every close code has its own description", "[ws][close]") {
    const close_code all[] = {
        close_code::normal,           close_code::going_away,
        close_code::protocol_error,   close_code::unsupported_data,
        close_code::no_status,        close_code::abnormal,
        close_code::invalid_payload,  close_code::policy_violation,
        close_code::message_too_big,  close_code::mandatory_extension,
        close_code::internal_error,   close_code::try_again_later,
        close_code::token_expired,    close_code::forbidden,
        close_code::too_many_connections,
    };
    std::set<std::string_view> seen;
    for (close_code code : all) {
        const std::string_view text = describe(code);
        INFO("code " << static_cast<int>(code));
        CHECK_FALSE(text.empty());
        CHECK(text.size() <= 123); // usable as a close reason as is
        CHECK(seen.insert(text).second);
    }
    CHECK(describe(static_cast<close_code>(1234)) == "unknown close code");
}

TEST_CASE("closes are counted by code: each listed code its own slot, the rest as other",
          "[ws][close]") {
    std::set<std::size_t> slots;
    for (const close_code c : counted_close_codes) {
        slots.insert(close_code_slot(static_cast<uint16_t>(c)));
    }
    CHECK(slots.size() == std::size(counted_close_codes));
    CHECK(close_code_slot(3000) == close_code_other);
    CHECK(close_code_slot(4999) == close_code_other);
    CHECK(close_code_slot(1012) == close_code_other);

    close_counts counts;
    counts.close_sent(close_code::policy_violation);
    counts.close_sent(close_code::policy_violation);
    counts.close_received(1000);
    counts.close_received(4321);
    CHECK(counts.sent[close_code_slot(1008)] == 2);
    CHECK(counts.received[close_code_slot(1000)] == 1);
    CHECK(counts.received[close_code_other] == 1);
    close_counts more;
    more.close_received(1000);
    counts.merge(more);
    CHECK(counts.received[close_code_slot(1000)] == 2);
    CHECK(counts.sent[close_code_slot(1000)] == 0);
}
