// --amqp-url (include/ringcast/amqp.h): amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST] as
// RabbitMQ's URI spec reads it, and the host resolved at start-up.
#include <ringcast/amqp.h>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace ringcast::amqp {

namespace {

int hex_value(char ch) noexcept {
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) {
            return false;
        }
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

} // namespace

result<amqp_url, std::string> parse_amqp_url(std::string_view url) {
    constexpr std::string_view scheme = "amqp://";
    if (url.starts_with("amqps://")) {
        return unexpected{std::string("amqps:// (TLS) is not supported yet: use amqp:// to a "
                                      "broker on a trusted network or loopback")};
    }
    if (!url.starts_with(scheme)) {
        return unexpected{std::string("the AMQP URL must start with amqp://")};
    }
    std::string_view rest = url.substr(scheme.size());
    amqp_url out;
    std::string_view path;
    bool has_path = false;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        path = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
        has_path = true;
    }
    if (rest.find_first_of("?#") != std::string_view::npos ||
        path.find_first_of("?#/") != std::string_view::npos) {
        return unexpected{std::string("the AMQP URL has a query, a fragment or a vhost with a "
                                      "'/' (write it %2f)")};
    }
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view auth = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const std::size_t colon = auth.find(':');
        const std::string_view user = auth.substr(0, colon);
        const std::string_view pass =
            colon == std::string_view::npos ? std::string_view{} : auth.substr(colon + 1);
        if (!percent_decode(user, out.username) || !percent_decode(pass, out.password)) {
            return unexpected{std::string("the AMQP URL has a bad %-escape in its user or password")};
        }
        if (out.username.empty()) {
            return unexpected{std::string("the AMQP URL has an '@' but no user before it")};
        }
    }
    std::string_view host = rest;
    std::string_view port_text;
    if (!rest.empty() && rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            return unexpected{std::string("the AMQP URL has an unclosed [ in its host")};
        }
        host = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return unexpected{std::string("the AMQP URL has text after its [host]")};
        }
        port_text = rest.empty() ? std::string_view{} : rest.substr(1);
        if (!rest.empty() && port_text.empty()) {
            return unexpected{std::string("the AMQP URL has a ':' but no port")};
        }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port_text = rest.substr(colon + 1);
        if (port_text.empty()) {
            return unexpected{std::string("the AMQP URL has a ':' but no port")};
        }
    }
    if (host.empty()) {
        return unexpected{std::string("the AMQP URL has no host")};
    }
    for (const char ch : host) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' ||
                        ch == '_';
        if (!ok) {
            return unexpected{"the AMQP URL's host '" + std::string(host) +
                              "' is not a host name or address"};
        }
    }
    out.host = std::string(host);
    if (!port_text.empty()) {
        unsigned port = 0;
        const auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
            port > 65535) {
            return unexpected{"the AMQP URL's port '" + std::string(port_text) +
                              "' is not a number from 1 to 65535"};
        }
        out.port = static_cast<uint16_t>(port);
    }
    if (has_path && !path.empty()) {
        if (!percent_decode(path, out.vhost)) {
            return unexpected{std::string("the AMQP URL has a bad %-escape in its vhost")};
        }
    }
    // Short strings on the wire (Connection.Open's vhost, PLAIN's parts travel in a long
    // string but RabbitMQ bounds names alike).
    if (out.vhost.size() > 255 || out.username.size() > 255 || out.password.size() > 255) {
        return unexpected{std::string("the AMQP URL's user, password or vhost is longer than "
                                      "255 bytes")};
    }
    return out;
}

result<amqp_target, std::string> resolve_target(std::string_view url) {
    auto parsed = parse_amqp_url(url);
    if (!parsed) {
        return unexpected{parsed.error()};
    }
    amqp_target t;
    const bool v6 = parsed->host.find(':') != std::string::npos;
    t.host = (v6 ? "[" + parsed->host + "]" : parsed->host) + ":" + std::to_string(parsed->port);
    t.username = parsed->username;
    t.password = parsed->password;
    t.vhost = parsed->vhost;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(parsed->host.c_str(), nullptr, &hints, &found);
        rc != 0 || found == nullptr) {
        return unexpected{"cannot resolve the AMQP host '" + parsed->host + "': " +
                          gai_strerror(rc)};
    }
    const addrinfo* first = found;
    if (first->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(first->ai_addr);
        t.address.family = ip_family::v4;
        std::memcpy(t.address.bytes.data(), &in->sin_addr, 4);
    } else {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(first->ai_addr);
        t.address.family = ip_family::v6;
        std::memcpy(t.address.bytes.data(), &in6->sin6_addr, 16);
    }
    t.address.port = parsed->port;
    freeaddrinfo(found);
    return t;
}

} // namespace ringcast::amqp
