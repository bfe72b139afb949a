// --amqp-url (include/ringcast/amqp.h): amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST] as
// RabbitMQ's URI spec reads it, and the host resolved at start-up.
#include <ringcast/amqp.h>

namespace ringcast::amqp {

result<amqp_url, std::string> parse_amqp_url(std::string_view url) {
    constexpr std::string_view scheme = "amqp://";
    if (url.starts_with("amqps://")) {
        return unexpected{std::string("amqps:// (TLS) is not supported yet: use amqp:// to a "
                                      "broker on a trusted network or loopback")};
    }
    if (!url.starts_with(scheme)) {
        return unexpected{std::string("the AMQP URL must start with amqp://")};
    }
    const std::string_view rest = url.substr(scheme.size());
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    const std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (authority.find_first_of("?#") != std::string_view::npos ||
        path.find_first_of("?#/") != std::string_view::npos) {
        return unexpected{std::string("the AMQP URL has a query, a fragment or a vhost with a "
                                      "'/' (write it %2f)")};
    }
    amqp_url out;
    auto parts = core::parse_service_url(rest, "AMQP URL", out.port);
    if (!parts) {
        return unexpected{parts.error()};
    }
    if (parts->has_userinfo) {
        if (parts->user.empty()) {
            return unexpected{std::string("the AMQP URL has an '@' but no user before it")};
        }
        out.username = std::move(parts->user);
        out.password = std::move(parts->password);
    }
    out.host = std::move(parts->host);
    out.port = parts->port;
    if (!path.empty() && !core::percent_decode(path, out.vhost)) {
        return unexpected{std::string("the AMQP URL has a bad %-escape in its vhost")};
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
    auto address = core::resolve_host(parsed->host, parsed->port, "AMQP host");
    if (!address) {
        return unexpected{address.error()};
    }
    amqp_target t;
    t.host = core::host_and_port(parsed->host, parsed->port);
    t.address = *address;
    t.username = parsed->username;
    t.password = parsed->password;
    t.vhost = parsed->vhost;
    return t;
}

} // namespace ringcast::amqp
