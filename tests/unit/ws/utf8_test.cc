// ws UTF-8 validator: the RFC 3629 table, fail-fast at the first impossible byte, every
// split of a sequence, and an exhaustive comparison against a reference decoder.
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Feeds `s` in two pieces cut at `cut`; true when valid and complete.
bool valid_split(std::string_view s, std::size_t cut) {
    utf8_validator v;
    return v.feed(as_bytes(s.substr(0, cut))) && v.feed(as_bytes(s.substr(cut))) && v.complete();
}

// Reference: decode by the RFC 3629 definition (code point ranges, not byte ranges).
bool reference_valid(std::span<const uint8_t> s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const uint8_t b = s[i];
        std::size_t extra;
        uint32_t cp;
        uint32_t min;
        if (b < 0x80) {
            ++i;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            extra = 1, cp = b & 0x1fu, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            extra = 2, cp = b & 0x0fu, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            extra = 3, cp = b & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (i + extra >= s.size()) {
            return false;
        }
        for (std::size_t k = 1; k <= extra; ++k) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += extra + 1;
    }
    return true;
}

bool validator_accepts(std::span<const uint8_t> s) {
    return is_valid_utf8({reinterpret_cast<const std::byte*>(s.data()), s.size()});
}

} // namespace

TEST_CASE("utf8 validator follows the RFC 3629 table at every split", "[ws][utf8]") {
    const struct {
        const char* name;
        std::string text;
        bool valid;
    } table[] = {
        {"empty", "", true},
        {"ascii", "hello, world", true},
        {"two-byte", "\xc2\x80 \xdf\xbf", true},
        {"three-byte", "\xe0\xa0\x80 \xef\xbf\xbf \xe2\x82\xac", true},
        {"last before surrogates", "\xed\x9f\xbf", true},
        {"first after surrogates", "\xee\x80\x80", true},
        {"four-byte", "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", true},
        {"noncharacter U+FFFE is still valid", "\xef\xbf\xbe", true},
        {"NUL", std::string("\0", 1), true},
        {"lone continuation", "\x80", false},
        {"C0 overlong", "\xc0\xaf", false},
        {"C1 overlong", "\xc1\xbf", false},
        {"E0 overlong", "\xe0\x9f\xbf", false},
        {"F0 overlong", "\xf0\x8f\xbf\xbf", false},
        {"surrogate high", "\xed\xa0\x80", false},
        {"surrogate low", "\xed\xbf\xbf", false},
        {"above U+10FFFF", "\xf4\x90\x80\x80", false},
        {"F5 lead", "\xf5\x80\x80\x80", false},
        {"FF", "\xff", false},
        {"truncated two-byte", "\xc3", false},
        {"truncated four-byte", "\xf0\x9f\x98", false},
        {"lead then ascii", "\xe2\x28\xa1", false},
        {"too many continuations", "\xc3\xa9\x80", false},
        {"invalid after 8-byte ascii run", "abcdefghijklmnop\xc3\x28", false},
    };
    for (const auto& row : table) {
        SECTION(row.name) {
            CHECK(is_valid_utf8(as_bytes(row.text)) == row.valid);
            for (std::size_t cut = 0; cut <= row.text.size(); ++cut) {
                INFO("cut at " << cut);
                CHECK(valid_split(row.text, cut) == row.valid);
            }
        }
    }
}

TEST_CASE("utf8 validator fails on the first impossible byte", "[ws][utf8]") {
    utf8_validator v;
    CHECK(v.feed(as_bytes("plain ascii ")));
    CHECK(v.feed(as_bytes("\xf0\x9f")));
    CHECK_FALSE(v.complete());
    CHECK_FALSE(v.feed(as_bytes("\x28"))); // not a continuation: fails now, not at the end
    CHECK_FALSE(v.feed(as_bytes("fine")));  // and stays failed
    CHECK_FALSE(v.complete());
    v.reset();
    CHECK(v.feed(as_bytes("ok")));
    CHECK(v.complete());
}

TEST_CASE("utf8 validator finds a bad byte at every position of a long ASCII run",
          "[ws][utf8]") {
    for (std::size_t at = 0; at < 40; ++at) {
        std::string s(40, 'a');
        s[at] = '\xff';
        INFO("bad byte at " << at);
        CHECK_FALSE(is_valid_utf8(as_bytes(s)));
        s[at] = '\x7f';
        CHECK(is_valid_utf8(as_bytes(s)));
    }
}

TEST_CASE("utf8 validator agrees with a reference decoder on all short sequences",
          "[ws][utf8]") {
    // Every 1-, 2- and 3-byte sequence: 16.8 M checks, one assertion.
    std::size_t mismatches = 0;
    for (unsigned a = 0; a < 256; ++a) {
        const std::array<uint8_t, 1> one{uint8_t(a)};
        mismatches += validator_accepts(one) != reference_valid(one) ? 1 : 0;
        for (unsigned b = 0; b < 256; ++b) {
            const std::array<uint8_t, 2> two{uint8_t(a), uint8_t(b)};
            mismatches += validator_accepts(two) != reference_valid(two) ? 1 : 0;
        }
    }
    std::array<uint8_t, 3> three{};
    for (unsigned a = 0; a < 256; ++a) {
        for (unsigned b = 0; b < 256; ++b) {
            for (unsigned c = 0; c < 256; ++c) {
                three = {uint8_t(a), uint8_t(b), uint8_t(c)};
                mismatches += validator_accepts(three) != reference_valid(three) ? 1 : 0;
            }
        }
    }
    CHECK(mismatches == 0);
}

TEST_CASE("utf8 validator accepts every scalar value and rejects every surrogate",
          "[ws][utf8]") {
    std::size_t wrong = 0;
    for (uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
        std::vector<uint8_t> s;
        if (cp < 0x80) {
            s = {uint8_t(cp)};
        } else if (cp < 0x800) {
            s = {uint8_t(0xc0 | cp >> 6), uint8_t(0x80 | (cp & 0x3f))};
        } else if (cp < 0x10000) {
            s = {uint8_t(0xe0 | cp >> 12), uint8_t(0x80 | (cp >> 6 & 0x3f)),
                 uint8_t(0x80 | (cp & 0x3f))};
        } else {
            s = {uint8_t(0xf0 | cp >> 18), uint8_t(0x80 | (cp >> 12 & 0x3f)),
                 uint8_t(0x80 | (cp >> 6 & 0x3f)), uint8_t(0x80 | (cp & 0x3f))};
        }
        const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
        wrong += validator_accepts(s) == surrogate ? 1 : 0;
    }
    CHECK(wrong == 0);
}
