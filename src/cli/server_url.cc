// parse_server_url: where the server is (contract in options.h).
#include "options.h"

#include <charconv>

namespace ringcast::cli {

namespace {

unexpected<std::string> error(std::string text) {
    return unexpected{std::move(text)};
}

} // namespace

result<server_url, std::string> parse_server_url(std::string_view text) {
    std::string_view rest;
    if (text.starts_with("ws://")) {
        rest = text.substr(5);
    } else if (text.starts_with("http://")) {
        rest = text.substr(7);
    } else if (text.starts_with("wss://") || text.starts_with("https://")) {
        return error("ringcast speaks no TLS; give the server's plain ws:// or http:// "
                     "address (for example on the host behind the TLS proxy)");
    } else {
        return error("give ws://HOST:PORT or http://HOST:PORT");
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return error("a server URL has no query or fragment: give ws://HOST:PORT");
    }
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        return error("credentials do not go in the URL: use --token-file or --api-key-file");
    }

    server_url url;
    url.host_header = authority;
    std::string_view port_text;
    if (authority.starts_with('[')) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos || close == 1) {
            return error("an IPv6 host goes in brackets: ws://[::1]:8080");
        }
        url.host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) {
            return error("after ']' only :PORT may follow");
        }
        port_text = after.empty() ? "" : after.substr(1);
        if (after == ":") {
            return error("the port after ':' is missing");
        }
    } else {
        const std::size_t colon = authority.find(':');
        url.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) {
                return error("the port after ':' is missing");
            }
        }
    }
    if (url.host.empty()) {
        return error("the host is missing: give ws://HOST:PORT");
    }
    if (!port_text.empty()) {
        unsigned port = 0;
        const auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
            port > 65535) {
            return error("port " + std::string(port_text) + " is not a number from 1 to 65535");
        }
        url.port = uint16_t(port);
    }

    while (path.ends_with('/')) {
        path.remove_suffix(1);
    }
    if (path.ends_with("/ws")) {
        path.remove_suffix(3); // the client URL of the same server
    }
    url.path_prefix = path;
    return url;
}

} // namespace ringcast::cli
