// RESP: requests written as arrays of bulk strings, replies read by hiredis's reader, and
// the redis:// URL. include/ringcast/redis.h has the contracts.
#include <ringcast/redis.h>

#include <hiredis/hiredis.h>

#include <algorithm>
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

result<redis_url, std::string> parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        return unexpected{std::string("the Redis URL must start with redis:// (rediss:// and unix sockets are "
                     "not supported yet)")};
    }
    redis_url out;
    auto parts = core::parse_service_url(url.substr(scheme.size()), "Redis URL", out.port);
    if (!parts) {
        return unexpected{parts.error()};
    }
    // One word before '@' is the password, as redis-cli -u reads it.
    out.username = parts->has_colon ? std::move(parts->user) : std::string{};
    out.password = parts->has_colon ? std::move(parts->password) : std::move(parts->user);
    out.host = std::move(parts->host);
    out.port = parts->port;
    const std::string_view path = parts->path;
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
    auto address = core::resolve_host(parsed->host, parsed->port, "Redis host");
    if (!address) {
        return unexpected{address.error()};
    }
    redis_target t;
    t.host = core::host_and_port(parsed->host, parsed->port);
    t.address = *address;
    t.username = parsed->username;
    t.password = parsed->password;
    t.db = parsed->db;
    t.prefix = std::move(prefix);
    return t;
}

} // namespace ringcast::redis
