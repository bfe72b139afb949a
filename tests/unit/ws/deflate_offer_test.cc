// ws::negotiate_deflate and deflate_response_value: every parameter, every way an offer is
// declined, every syntax error, and the first-acceptable-offer rule (RFC 7692 §5, §7.1).
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <string>

using namespace ringcast::ws;

namespace {

deflate_verdict verdict(std::string_view header) {
    return negotiate_deflate(header).verdict;
}

} // namespace

TEST_CASE("a bare permessage-deflate offer is accepted with 15-bit windows", "[ws][deflate]") {
    const auto n = negotiate_deflate("permessage-deflate");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK(n.agreement.server_max_window_bits == 15);
    CHECK(n.agreement.client_max_window_bits == 15);
    CHECK_FALSE(n.agreement.client_no_context_takeover);
    CHECK(deflate_response_value(n.agreement) == "permessage-deflate; server_no_context_takeover");
}

TEST_CASE("the offers of Python websockets, Node ws and browsers are accepted",
          "[ws][deflate]") {
    // websockets 10 (Debian 12): client_max_window_bits without a value.
    auto n = negotiate_deflate("permessage-deflate; client_max_window_bits");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK_FALSE(n.agreement.client_window_named);
    CHECK(deflate_response_value(n.agreement) == "permessage-deflate; server_no_context_takeover");
    // Node ws 8 with perMessageDeflate: true.
    n = negotiate_deflate("permessage-deflate; client_max_window_bits");
    CHECK(n.verdict == deflate_verdict::accepted);
    // Chromium and Firefox.
    n = negotiate_deflate("permessage-deflate; client_max_window_bits");
    CHECK(n.verdict == deflate_verdict::accepted);
}

TEST_CASE("every parameter is read and echoed", "[ws][deflate]") {
    const auto n = negotiate_deflate("permessage-deflate; server_no_context_takeover; "
                                     "client_no_context_takeover; server_max_window_bits=10; "
                                     "client_max_window_bits=9");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK(n.agreement.client_no_context_takeover);
    CHECK(n.agreement.server_max_window_bits == 10);
    CHECK(n.agreement.client_max_window_bits == 9);
    CHECK(deflate_response_value(n.agreement) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "server_max_window_bits=10; client_max_window_bits=9");
}

TEST_CASE("quoted values, case and spaces around separators are accepted", "[ws][deflate]") {
    const auto n = negotiate_deflate(
        "  PerMessage-Deflate ;\tSERVER_MAX_WINDOW_BITS = \"12\" ; client_max_window_bits=\"1\\5\"");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK(n.agreement.server_max_window_bits == 12);
    CHECK(n.agreement.client_max_window_bits == 15);
    CHECK(n.agreement.client_window_named);
}

TEST_CASE("window bits outside 8-15 or misspelt decline the offer", "[ws][deflate]") {
    for (const char* bad : {"7", "16", "08", "0", "-9", "+9", "9a", "150", "1000000000"}) {
        CAPTURE(bad);
        CHECK(verdict(std::string("permessage-deflate; server_max_window_bits=") + bad) ==
              deflate_verdict::unsupported);
        CHECK(verdict(std::string("permessage-deflate; client_max_window_bits=") + bad) ==
              deflate_verdict::unsupported);
    }
    CHECK(verdict("permessage-deflate; server_max_window_bits=8") == deflate_verdict::accepted);
    CHECK(verdict("permessage-deflate; server_max_window_bits=15") == deflate_verdict::accepted);
}

TEST_CASE("server_max_window_bits needs a value; the takeover flags take none", "[ws][deflate]") {
    CHECK(verdict("permessage-deflate; server_max_window_bits") == deflate_verdict::unsupported);
    CHECK(verdict("permessage-deflate; server_no_context_takeover=1") ==
          deflate_verdict::unsupported);
    CHECK(verdict("permessage-deflate; client_no_context_takeover=\"x\"") ==
          deflate_verdict::unsupported);
}

TEST_CASE("unknown and repeated parameters decline the offer", "[ws][deflate]") {
    CHECK(verdict("permessage-deflate; x_whatever") == deflate_verdict::unsupported);
    CHECK(verdict("permessage-deflate; client_no_context_takeover; client_no_context_takeover") ==
          deflate_verdict::unsupported);
    CHECK(verdict("permessage-deflate; server_max_window_bits=9; server_max_window_bits=10") ==
          deflate_verdict::unsupported);
    CHECK(verdict("permessage-deflate; client_max_window_bits; client_max_window_bits=9") ==
          deflate_verdict::unsupported);
}

TEST_CASE("the first acceptable offer wins; later ones are only parsed", "[ws][deflate]") {
    auto n = negotiate_deflate("permessage-deflate; server_max_window_bits=20, "
                               "permessage-deflate; server_max_window_bits=11, "
                               "permessage-deflate; server_max_window_bits=12");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK(n.agreement.server_max_window_bits == 11);
    // Across joined header fields and among other extensions.
    n = negotiate_deflate("x-webkit-deflate-frame; no_context_takeover, foo;bar=\"baz\", "
                          "permessage-deflate; client_no_context_takeover");
    REQUIRE(n.verdict == deflate_verdict::accepted);
    CHECK(n.agreement.client_no_context_takeover);
}

TEST_CASE("headers without a permessage-deflate offer are not_offered", "[ws][deflate]") {
    CHECK(verdict("") == deflate_verdict::not_offered);
    CHECK(verdict("   ") == deflate_verdict::not_offered);
    CHECK(verdict(", ,") == deflate_verdict::not_offered);
    CHECK(verdict("x-webkit-deflate-frame") == deflate_verdict::not_offered);
    CHECK(verdict("permessage-deflate-x") == deflate_verdict::not_offered);
}

TEST_CASE("a malformed header declines everything, even a good offer before the error",
          "[ws][deflate]") {
    for (const char* bad : {
             "permessage-deflate; client_max_window_bits=\"10",   // unterminated quote
             "permessage-deflate; client_max_window_bits=",       // no value
             "permessage-deflate; client_max_window_bits=\"\"",   // empty quoted value
             "permessage-deflate; =10",                           // no parameter name
             "permessage-deflate;",                               // empty parameter
             "permessage-deflate, ;x",                            // no extension name
             "permessage-deflate x",                              // junk after the name
             "permessage-deflate; a=b c",                         // junk after a value
             "permessage-deflate; a=\"b c\"",                     // quoted non-token
             "permessage-deflate; a=\"b\\",                       // escape at the end
             "permessage-deflate; a=@",                           // not a token
             "permessage-deflate, \"quoted\"",                    // quoted extension name
             "permessage-deflate\x01",                            // control character
         }) {
        CAPTURE(bad);
        CHECK(verdict(bad) == deflate_verdict::malformed);
    }
}

TEST_CASE("every prefix of a valid header parses without harm", "[ws][deflate][cut]") {
    const std::string full = "foo; a=\"x\\y\", permessage-deflate; client_no_context_takeover; "
                             "server_max_window_bits=\"10\"; client_max_window_bits";
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
        const auto n = negotiate_deflate(std::string_view(full).substr(0, cut));
        if (n.verdict == deflate_verdict::accepted) {
            CHECK(n.agreement.server_max_window_bits >= 8);
            CHECK(n.agreement.server_max_window_bits <= 15);
        }
    }
    CHECK(verdict(full) == deflate_verdict::accepted);
}

TEST_CASE("deflate_fits: a message no longer than the client's window always fits",
          "[ws][deflate]") {
    CHECK(deflate_fits(1u << 20, 15));
    CHECK(deflate_fits(512, 9));
    CHECK_FALSE(deflate_fits(513, 9));
    CHECK(deflate_fits(256, 8));
    CHECK_FALSE(deflate_fits(257, 8));
}
