// The URL and retry pieces every broker link shares (include/ringcast/core.h: service_url,
// reconnect_backoff): the Redis engine (src/engine) and the AMQP bridge (src/amqp) read
// their URLs and pace their reconnects with these, so both refuse the same malformed
// authority with the same sentence and back off alike.
#include <ringcast/core.h>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace ringcast::core {

reconnect_backoff::reconnect_backoff(uint32_t base_ms, uint32_t cap_ms, uint64_t seed) noexcept
    : _base_ms(base_ms), _cap_ms(cap_ms), _rng(seed != 0 ? seed : 0x9E3779B97F4A7C15ull) {}

uint32_t reconnect_backoff::next_ms() noexcept {
    const uint32_t shift = std::min<uint32_t>(_attempt, 16);
    const uint64_t full = std::min<uint64_t>(uint64_t{_base_ms} << shift, _cap_ms);
    ++_attempt;
    _rng ^= _rng << 13; // xorshift64
    _rng ^= _rng >> 7;
    _rng ^= _rng << 17;
    const uint64_t half = full / 2;
    return static_cast<uint32_t>(half + _rng % (full - half + 1));
}

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

std::string sentence(std::string_view what, std::string_view rest) {
    std::string out = "the ";
    out += what;
    out += rest;
    return out;
}

} // namespace

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

result<service_url, std::string> parse_service_url(std::string_view rest, std::string_view what,
                                                   uint16_t default_port) {
    service_url out;
    out.port = default_port;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        out.path = std::string(rest.substr(slash + 1));
        out.has_path = true;
        rest = rest.substr(0, slash);
    }
    // The last '@' ends the credentials: a password may hold an unescaped '@'.
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view auth = rest.substr(0, at);
        rest = rest.substr(at + 1);
        out.has_userinfo = true;
        const std::size_t colon = auth.find(':');
        out.has_colon = colon != std::string_view::npos;
        const std::string_view user = auth.substr(0, colon);
        const std::string_view pass = out.has_colon ? auth.substr(colon + 1) : std::string_view{};
        if (!percent_decode(user, out.user) || !percent_decode(pass, out.password)) {
            return unexpected{sentence(what, " has a bad %-escape in its user or password")};
        }
    }
    std::string_view host = rest;
    const bool bracketed = !rest.empty() && rest.front() == '[';
    if (bracketed) {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            return unexpected{sentence(what, " has an unclosed [ in its host")};
        }
        host = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return unexpected{sentence(what, " has text after its [host]")};
        }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        rest = rest.substr(colon);
    } else {
        rest = {};
    }
    if (host.empty()) {
        return unexpected{sentence(what, " has no host")};
    }
    // ':' and '%' (a zone id) only in brackets: unbracketed, "redis://::1" would be read as
    // host "::" and port 1.
    const bool host_chars = std::all_of(host.begin(), host.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
               c == '_' || (bracketed && (c == ':' || c == '%'));
    });
    if (!host_chars) {
        return unexpected{sentence(what, "'s host may hold only letters, digits and . - _ "
                                         "(or an IPv6 address in [ ])")};
    }
    if (!rest.empty()) { // ":port"
        const std::string_view digits = rest.substr(1);
        unsigned port = 0;
        const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() ||
            port == 0 || port > 65535) {
            return unexpected{sentence(what, "'s port must be 1-65535")};
        }
        out.port = static_cast<uint16_t>(port);
    }
    out.host = std::string(host);
    return out;
}

result<peer_address, std::string> resolve_host(const std::string& host, uint16_t port,
                                               std::string_view what) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
        rc != 0 || found == nullptr) {
        return unexpected{"cannot resolve the " + std::string(what) + " '" + host + "': " +
                          gai_strerror(rc)};
    }
    peer_address address;
    if (found->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
        address.family = ip_family::v4;
        std::memcpy(address.bytes.data(), &in->sin_addr, 4);
    } else {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(found->ai_addr);
        address.family = ip_family::v6;
        std::memcpy(address.bytes.data(), &in6->sin6_addr, 16);
    }
    address.port = port;
    freeaddrinfo(found);
    return address;
}

std::string host_and_port(const std::string& host, uint16_t port) {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

} // namespace ringcast::core
