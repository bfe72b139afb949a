// API keys: reading them (parse_api_keys) and the one place secrets are compared
// (keys_equal). Contracts in include/ringcast/admin.h.
#include <ringcast/admin.h>

#include <algorithm>
#include <cstddef>
#include <string>

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

const api_key* bearer_key(const http::request& req, const std::vector<api_key>& keys) noexcept {
    const api_key* found = nullptr;
    for (const api_key& k : keys) {
        // No early exit: every key is compared whichever one matches.
        if (bearer_matches(req, k.secret) && found == nullptr) {
            found = &k;
        }
    }
    return found;
}

std::string_view scope_name(api_scope s) noexcept {
    switch (s) {
    case api_scope::publish:
        return "publish";
    case api_scope::admin:
        return "admin";
    }
    return "?";
}

namespace {

/// 16: shorter secrets are guessable; visible ASCII: the secret travels in an HTTP header
/// ("Authorization: Bearer SECRET"), where spaces and control bytes do not survive.
constexpr std::size_t min_secret_bytes = 16;
constexpr std::size_t max_name_bytes = 64;

bool visible_ascii(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
}

bool valid_name(std::string_view s) noexcept {
    return !s.empty() && s.size() <= max_name_bytes &&
           std::all_of(s.begin(), s.end(), [](char ch) {
               return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
           });
}

/// The secret's problem in words, or empty when it is acceptable. Never quotes it.
std::string secret_problem(std::string_view secret) {
    if (secret.size() >= min_secret_bytes && visible_ascii(secret)) {
        return {};
    }
    return "the secret must be 16 or more visible ASCII characters (no spaces or control "
           "characters); it holds " +
           std::to_string(secret.size()) + " characters" +
           (visible_ascii(secret) ? std::string() : std::string(", not all of them visible"));
}

/// SCOPE[,SCOPE...] as a bit set, or 0 when a scope is unknown or none is given.
uint8_t parse_scopes(std::string_view list) noexcept {
    uint8_t bits = 0;
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view one = list.substr(0, comma);
        bool known = false;
        for (unsigned i = 0; i < api_scope_count; ++i) {
            if (one == scope_name(api_scope(i))) {
                bits = uint8_t(bits | (1u << i));
                known = true;
            }
        }
        if (!known) {
            return 0;
        }
        if (comma == std::string_view::npos) {
            return bits;
        }
        list.remove_prefix(comma + 1);
    }
}

std::string_view without_line_break(std::string_view line) noexcept {
    if (line.ends_with('\r')) {
        line.remove_suffix(1);
    }
    return line;
}

} // namespace

result<std::vector<api_key>, std::string> parse_api_keys(std::string_view text,
                                                         std::string_view source) {
    const std::string where(source);
    std::vector<api_key> keys;
    // The single-key form: the whole text one secret (a trailing line break allowed).
    std::string_view whole = text;
    if (whole.ends_with('\n')) {
        whole.remove_suffix(1);
    }
    whole = without_line_break(whole);
    if (whole.find(':') == std::string_view::npos && whole.find('\n') == std::string_view::npos) {
        if (const std::string problem = secret_problem(whole); !problem.empty()) {
            return unexpected{where + " must hold the API key (one line) or lines of "
                                      "NAME:SCOPE[,SCOPE]:SECRET; " +
                              problem};
        }
        uint8_t every = 0;
        for (unsigned i = 0; i < api_scope_count; ++i) {
            every = uint8_t(every | (1u << i));
        }
        keys.push_back(api_key{"default", every, std::string(whole)});
        return keys;
    }
    unsigned line_no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = without_line_break(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const std::string at = where + " line " + std::to_string(line_no);
        const std::size_t c1 = line.find(':');
        const std::size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) {
            return unexpected{at + ": expected NAME:SCOPE[,SCOPE]:SECRET"};
        }
        const std::string_view name = line.substr(0, c1);
        const std::string_view scopes = line.substr(c1 + 1, c2 - c1 - 1);
        const std::string_view secret = line.substr(c2 + 1);
        if (!valid_name(name)) {
            return unexpected{at + ": the name must be 1-64 characters from A-Z a-z 0-9 _ . -"};
        }
        const uint8_t bits = parse_scopes(scopes);
        if (bits == 0) {
            return unexpected{at + " (key '" + std::string(name) +
                              "'): scopes are a comma-separated list of publish, admin"};
        }
        if (const std::string problem = secret_problem(secret); !problem.empty()) {
            return unexpected{at + " (key '" + std::string(name) + "'): " + problem};
        }
        for (const api_key& k : keys) {
            if (k.name == name) {
                return unexpected{at + ": the name '" + std::string(name) + "' is used twice"};
            }
            if (k.secret == secret) {
                return unexpected{at + " (key '" + std::string(name) +
                                  "'): the same secret as key '" + k.name + "'"};
            }
        }
        if (keys.size() == max_api_keys) {
            return unexpected{where + " holds more than " + std::to_string(max_api_keys) +
                              " keys"};
        }
        keys.push_back(api_key{std::string(name), bits, std::string(secret)});
    }
    if (keys.empty()) {
        return unexpected{where + " holds no key (lines of NAME:SCOPE[,SCOPE]:SECRET)"};
    }
    return keys;
}

} // namespace ringcast::admin
