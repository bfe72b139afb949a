// The one place secrets are compared (include/ringcast/admin.h keys_equal).
#include <ringcast/admin.h>

#include <cstddef>

namespace ringcast::admin {

bool keys_equal(std::string_view presented, std::string_view expected) noexcept {
    // Every byte of `expected` is read and folded into `diff` whatever came before, and a
    // length mismatch is folded in too: the loop's time depends on the lengths only.
    unsigned diff = static_cast<unsigned>(presented.size() != expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        // Past the end of `presented` compare against 0; its length is the caller's own.
        const unsigned p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0u;
        diff |= p ^ static_cast<unsigned char>(expected[i]);
        // Keeps the compiler from turning the loop into one that stops at the first
        // difference (it may not reason about `diff` across this point).
        __asm__ volatile("" : "+r"(diff));
    }
    return diff == 0;
}

bool bearer_matches(const http::request& req, std::string_view key) noexcept {
    if (key.empty()) {
        return false;
    }
    constexpr std::string_view scheme = "bearer ";
    const std::string_view value = req.header_value("authorization");
    if (value.size() < scheme.size()) {
        return false;
    }
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        // RFC 9110 §11.1: the scheme is case-insensitive.
        const char c = value[i];
        if ((c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c) != scheme[i]) {
            return false;
        }
    }
    return keys_equal(value.substr(scheme.size()), key);
}

} // namespace ringcast::admin
