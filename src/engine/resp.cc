// RESP: requests written as arrays of bulk strings, replies read by hiredis's reader, and
// the redis:// URL. include/ringcast/redis.h has the contracts.
#include <ringcast/redis.h>

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <new>
#include <string>

namespace ringcast::redis {

void append_command(std::string& out, std::span<const std::string_view> args) {
    const auto number = [&](char kind, std::size_t n) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof(digits), n);
        out += kind;
        out.append(digits, r.ptr);
        out += "\r\n";
    };
    number('*', args.size());
    for (const std::string_view a : args) {
        number('$', a.size());
        out += a;
        out += "\r\n";
    }
}

void reply_deleter::operator()(redisReply* r) const noexcept {
    freeReplyObject(r);
}

reply_type type_of(const redisReply& r) noexcept {
    switch (r.type) {
    case REDIS_REPLY_STRING:
        return reply_type::string;
    case REDIS_REPLY_ARRAY:
        return reply_type::array;
    case REDIS_REPLY_INTEGER:
        return reply_type::integer;
    case REDIS_REPLY_STATUS:
        return reply_type::status;
    case REDIS_REPLY_ERROR:
        return reply_type::error;
    default:
        return reply_type::nil; // REDIS_REPLY_NIL: hiredis 0.14 knows no other type
    }
}

std::string_view text_of(const redisReply& r) noexcept {
    switch (type_of(r)) {
    case reply_type::string:
    case reply_type::status:
    case reply_type::error:
        return {r.str, r.len};
    case reply_type::array:
    case reply_type::integer:
    case reply_type::nil:
        break;
    }
    return {};
}

long long integer_of(const redisReply& r) noexcept {
    return type_of(r) == reply_type::integer ? r.integer : 0;
}

std::span<redisReply* const> elements_of(const redisReply& r) noexcept {
    if (type_of(r) != reply_type::array || r.element == nullptr) {
        return {};
    }
    return {r.element, r.elements};
}

namespace {

// hiredis builds a reply as it parses: a reply object per element, the bytes of every string,
// and an array's table of element pointers as soon as its header arrives, so the fourteen
// bytes "*2147483647\r\n" would ask for 16 GiB, and a reply streamed in element by element
// holds everything read so far although the reader buffers little of it. Each reader's
// reply objects are therefore made through these functions, which charge what hiredis is
// about to allocate to the reader's budget (its privdata) and refuse past the bound; a
// refusal makes hiredis stop with its out-of-memory error, which next() words.
struct reply_budget {
    redisReplyObjectFunctions* defaults; // hiredis's own, which allocate
    std::size_t max_bytes;
    std::size_t used_bytes = 0; // by the reply being built
    bool refused = false;

    bool charge(std::size_t bytes) noexcept {
        if (bytes > max_bytes - used_bytes) {
            refused = true;
            return false;
        }
        used_bytes += bytes;
        return true;
    }
};

reply_budget& budget_of(const redisReadTask* task) noexcept {
    return *static_cast<reply_budget*>(task->privdata);
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) {
    reply_budget& b = budget_of(task);
    return b.charge(sizeof(redisReply) + len + 1) ? b.defaults->createString(task, str, len)
                                                  : nullptr;
}

void* create_array(const redisReadTask* task, int elements) {
    reply_budget& b = budget_of(task);
    const std::size_t table = elements > 0 ? std::size_t(elements) * sizeof(redisReply*) : 0;
    return b.charge(sizeof(redisReply) + table) ? b.defaults->createArray(task, elements) : nullptr;
}

void* create_integer(const redisReadTask* task, long long value) {
    reply_budget& b = budget_of(task);
    return b.charge(sizeof(redisReply)) ? b.defaults->createInteger(task, value) : nullptr;
}

void* create_nil(const redisReadTask* task) {
    reply_budget& b = budget_of(task);
    return b.charge(sizeof(redisReply)) ? b.defaults->createNil(task) : nullptr;
}

redisReplyObjectFunctions bounded_functions{create_string, create_array, create_integer, create_nil,
                                            freeReplyObject};

/// A reader whose replies are charged to a budget of `max_bytes`; null when out of memory.
redisReader* make_reader(std::size_t max_bytes) noexcept {
    redisReader* r = redisReaderCreate();
    auto* budget = new (std::nothrow) reply_budget{};
    if (r == nullptr || budget == nullptr) {
        delete budget;
        if (r != nullptr) {
            redisReaderFree(r);
        }
        return nullptr;
    }
    budget->defaults = r->fn;
    budget->max_bytes = max_bytes;
    r->fn = &bounded_functions;
    r->privdata = budget;
    return r;
}

void free_reader(redisReader* r) noexcept {
    if (r != nullptr) {
        delete static_cast<reply_budget*>(r->privdata);
        redisReaderFree(r);
    }
}

} // namespace

reply_reader::reply_reader(std::size_t max_buffered_bytes)
    : _reader(make_reader(max_buffered_bytes)), _max(max_buffered_bytes) {}

reply_reader::~reply_reader() {
    free_reader(_reader);
}

bool reply_reader::feed(std::span<const std::byte> bytes) noexcept {
    if (_reader == nullptr || _reader->len - _reader->pos + bytes.size() > _max) {
        return false;
    }
    return redisReaderFeed(_reader, reinterpret_cast<const char*>(bytes.data()), bytes.size()) ==
           REDIS_OK;
}

reply_ptr reply_reader::next(std::string& error) noexcept {
    if (_reader == nullptr) {
        error = "out of memory";
        return nullptr;
    }
    auto& budget = *static_cast<reply_budget*>(_reader->privdata);
    void* out = nullptr;
    if (redisReaderGetReply(_reader, &out) != REDIS_OK) {
        if (budget.refused) {
            error =
                "a reply needs more than the reader's bound of " + std::to_string(_max) + " bytes";
        } else {
            error = _reader->errstr[0] != '\0' ? _reader->errstr : "protocol error";
        }
        return nullptr;
    }
    if (out != nullptr) {
        budget.used_bytes = 0; // the next reply starts with the whole bound
    }
    return reply_ptr(static_cast<redisReply*>(out));
}

void reply_reader::reset() noexcept {
    free_reader(_reader);
    _reader = make_reader(_max);
}

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
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

result<redis_url, std::string> parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        return unexpected{std::string("the Redis URL must start with redis:// (rediss:// and unix sockets are "
                     "not supported yet)")};
    }
    std::string_view rest = url.substr(scheme.size());
    redis_url out;
    std::string_view path;
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        path = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view auth = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const std::size_t colon = auth.find(':');
        const std::string_view user = colon == std::string_view::npos ? std::string_view{}
                                                                       : auth.substr(0, colon);
        const std::string_view pass =
            colon == std::string_view::npos ? auth : auth.substr(colon + 1);
        if (!percent_decode(user, out.username) || !percent_decode(pass, out.password)) {
            return unexpected{std::string("the Redis URL has a bad %-escape in its user or password")};
        }
    }
    std::string_view host = rest;
    const bool bracketed = !rest.empty() && rest.front() == '[';
    if (bracketed) {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            return unexpected{std::string("the Redis URL has an unclosed [ in its host")};
        }
        host = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return unexpected{std::string("the Redis URL has text after its [host]")};
        }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        rest = rest.substr(colon);
    } else {
        rest = {};
    }
    if (host.empty()) {
        return unexpected{std::string("the Redis URL has no host")};
    }
    // ':' and '%' (a zone id) only in brackets: unbracketed, "redis://::1" would be read as
    // host "::" and port 1.
    const bool host_chars = std::all_of(host.begin(), host.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
               c == '_' || (bracketed && (c == ':' || c == '%'));
    });
    if (!host_chars) {
        return unexpected{std::string("the Redis URL's host may hold only letters, digits and . - _ "
                                      "(or an IPv6 address in [ ])")};
    }
    if (!rest.empty()) { // ":port"
        const std::string_view digits = rest.substr(1);
        unsigned port = 0;
        const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() ||
            port == 0 || port > 65535) {
            return unexpected{std::string("the Redis URL's port must be 1-65535")};
        }
        out.port = static_cast<uint16_t>(port);
    }
    out.host = std::string(host);
    if (!path.empty()) {
        const auto r = std::from_chars(path.data(), path.data() + path.size(), out.db);
        if (r.ec != std::errc() || r.ptr != path.data() + path.size() || out.db > 1000000) {
            return unexpected{std::string("the Redis URL's path must be a database number (redis://host/0)")};
        }
    }
    return out;
}

result<redis_target, std::string> resolve_target(std::string_view url, std::string prefix) {
    auto parsed = parse_redis_url(url);
    if (!parsed) {
        return unexpected{parsed.error()};
    }
    redis_target t;
    const bool v6 = parsed->host.find(':') != std::string::npos;
    t.host = (v6 ? "[" + parsed->host + "]" : parsed->host) + ":" + std::to_string(parsed->port);
    t.username = parsed->username;
    t.password = parsed->password;
    t.db = parsed->db;
    t.prefix = std::move(prefix);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(parsed->host.c_str(), nullptr, &hints, &found);
        rc != 0 || found == nullptr) {
        return unexpected{"cannot resolve the Redis host '" + parsed->host + "': " + gai_strerror(rc)};
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

} // namespace ringcast::redis
