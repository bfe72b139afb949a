// --allowed-origins: which pages a browser may open a WebSocket from. Contracts in
// include/ringcast/net.h (check_origin_pattern, origin_allowed).
#include <ringcast/net.h>

#include <cstddef>
#include <string>

namespace ringcast::net {

namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

/// An origin or pattern split as scheme "://" host [":" port]; ok false when it is not
/// that shape (a path, userinfo, an empty part).
struct origin_parts {
    bool ok = false;
    std::string_view scheme; ///< empty for the scheme-less "*.domain" pattern
    std::string_view host;
    std::string_view port; ///< without the ':'; empty when absent
};

bool host_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '*' || c == '[' || c == ']' || c == ':';
}

origin_parts split(std::string_view text, bool scheme_optional) noexcept {
    origin_parts out;
    const std::size_t sep = text.find("://");
    std::string_view rest = text;
    if (sep != std::string_view::npos) {
        out.scheme = text.substr(0, sep);
        rest = text.substr(sep + 3);
        if (out.scheme.empty()) {
            return out;
        }
        for (char c : out.scheme) {
            const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            if (!alpha && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') {
                return out;
            }
        }
    } else if (!scheme_optional) {
        return out;
    }
    for (char c : rest) {
        if (!host_char(c)) {
            return out; // a path, a query, userinfo, a space
        }
    }
    // The port follows the last ':' outside an IPv6 literal's brackets.
    const std::size_t bracket = rest.rfind(']');
    const std::size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        out.port = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
        if (out.port.empty()) {
            return out;
        }
        for (char c : out.port) {
            if (c < '0' || c > '9') {
                return out;
            }
        }
    }
    out.host = rest;
    out.ok = !out.host.empty();
    return out;
}

bool is_wildcard_host(std::string_view host) noexcept {
    return host.size() > 2 && host.starts_with("*.") &&
           host.substr(2).find('*') == std::string_view::npos;
}

bool matches(const origin_parts& o, std::string_view pattern) noexcept {
    if (pattern == "null") {
        return o.scheme.empty() && o.host == "null";
    }
    const origin_parts p = split(pattern, true);
    if (!p.ok) {
        return false;
    }
    if (p.scheme.empty()) {
        // "*.domain": any scheme, any port.
        const std::string_view suffix = p.host.substr(1); // ".domain"
        return o.host.size() > suffix.size() &&
               equal_ignoring_case(o.host.substr(o.host.size() - suffix.size()), suffix);
    }
    if (!equal_ignoring_case(o.scheme, p.scheme) || o.port != p.port) {
        return false;
    }
    if (is_wildcard_host(p.host)) {
        const std::string_view suffix = p.host.substr(1);
        return o.host.size() > suffix.size() &&
               equal_ignoring_case(o.host.substr(o.host.size() - suffix.size()), suffix);
    }
    return equal_ignoring_case(o.host, p.host);
}

} // namespace

result<void, std::string> check_origin_pattern(std::string_view pattern) {
    const std::string quoted = "'" + std::string(pattern) + "'";
    if (pattern == "null") {
        return {};
    }
    if (pattern == "*") {
        return unexpected{std::string("--allowed-origins: '*' would allow every origin; leave "
                                      "--allowed-origins unset for that")};
    }
    const origin_parts p = split(pattern, true);
    const bool host_ok = p.ok && (p.host.find('*') == std::string_view::npos || is_wildcard_host(p.host));
    if (!host_ok || (p.scheme.empty() && (!is_wildcard_host(p.host) || !p.port.empty()))) {
        return unexpected{"--allowed-origins: " + quoted +
                          " is not an origin pattern: scheme://host[:port], "
                          "scheme://*.domain[:port], *.domain or null (no path, no trailing /)"};
    }
    return {};
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) noexcept {
    if (allowed.empty() || origin.empty()) {
        return true;
    }
    origin_parts o;
    if (origin == "null") {
        o.ok = true;
        o.host = "null";
    } else {
        o = split(origin, false);
        if (!o.ok || o.host.find('*') != std::string_view::npos) {
            return false;
        }
    }
    for (const std::string& pattern : allowed) {
        if (matches(o, pattern)) {
            return true;
        }
    }
    return false;
}

} // namespace ringcast::net
