// src/engine/resp.cc through include/ringcast/redis.h: the redis:// URL, resolving it,
// requests written as RESP arrays, and the reply reader over hiredis.
#include <ringcast/redis.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

using namespace ringcast;
using namespace ringcast::redis;
using namespace std::string_literals;
using Catch::Matchers::Contains;

namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// One reply as a line a test can compare: "+OK", "-ERR x", ":42", "$hello", "nil",
/// "[$a,:1]". Binary bytes are kept as they are.
std::string shown(const redisReply& r) {
    switch (type_of(r)) {
    case reply_type::string:
        return "$" + std::string(text_of(r));
    case reply_type::status:
        return "+" + std::string(text_of(r));
    case reply_type::error:
        return "-" + std::string(text_of(r));
    case reply_type::integer:
        return ":" + std::to_string(integer_of(r));
    case reply_type::nil:
        return "nil";
    case reply_type::array:
        break;
    }
    std::string out = "[";
    for (const redisReply* e : elements_of(r)) {
        out += out.size() > 1 ? "," : "";
        out += shown(*e);
    }
    return out + "]";
}

/// What a reader made of a stream: the replies in order, then the error if one stopped it.
struct outcome {
    std::vector<std::string> replies;
    std::string error;
};

/// Feeds `wire` in reads of `read_bytes` (0: all at once), taking every reply after each
/// read, as the link does.
outcome read_stream(std::string_view wire, std::size_t read_bytes = 0,
                    std::size_t max_buffered_bytes = std::size_t{256} << 20) {
    reply_reader reader(max_buffered_bytes);
    outcome out;
    const std::size_t step = read_bytes == 0 ? wire.size() : read_bytes;
    for (std::size_t at = 0; at < wire.size() && out.error.empty(); at += step) {
        REQUIRE(reader.feed(bytes_of(wire.substr(at, step))));
        while (reply_ptr r = reader.next(out.error)) {
            out.replies.push_back(shown(*r));
        }
    }
    return out;
}

/// Every kind of RESP2 reply, binary bytes and empty values included.
const std::string mixed_wire = "+OK\r\n"
                               "-ERR wrong number of arguments\r\n"
                               ":42\r\n"
                               ":-7\r\n"
                               "$5\r\nhello\r\n"
                               "$0\r\n\r\n"
                               "$-1\r\n"
                               "*-1\r\n"
                               "*0\r\n"
                               "$4\r\n\0\r\n\xff\r\n"s
                               "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n";
const std::vector<std::string> mixed_replies{"+OK",
                                             "-ERR wrong number of arguments",
                                             ":42",
                                             ":-7",
                                             "$hello",
                                             "$",
                                             "nil",
                                             "nil",
                                             "[]",
                                             "$\0\r\n\xff"s,
                                             "[$a,[:1,nil],+x]"};

std::string url_error(std::string_view url) {
    auto parsed = parse_redis_url(url);
    REQUIRE_FALSE(parsed);
    return parsed.error();
}

redis_url url_parts(std::string_view url) {
    auto parsed = parse_redis_url(url);
    if (!parsed) {
        FAIL(parsed.error());
    }
    return *parsed;
}

} // namespace

// ---- parse_redis_url ------------------------------------------------------------------------

TEST_CASE("a bare host takes port 6379, database 0 and no credentials", "[engine][url]") {
    const redis_url u = url_parts("redis://cache.internal");
    CHECK(u.host == "cache.internal");
    CHECK(u.port == 6379);
    CHECK(u.db == 0);
    CHECK(u.username.empty());
    CHECK(u.password.empty());
    CHECK(url_parts("redis://cache.internal/").db == 0);
}

TEST_CASE("host, port and database are taken apart", "[engine][url]") {
    const redis_url u = url_parts("redis://redis-1.example_net:7001/12");
    CHECK(u.host == "redis-1.example_net");
    CHECK(u.port == 7001);
    CHECK(u.db == 12);
    CHECK(url_parts("redis://h:1").port == 1);
    CHECK(url_parts("redis://h:65535").port == 65535);
}

TEST_CASE("user and password are read and percent-decoded", "[engine][url]") {
    const redis_url u = url_parts("redis://app%3Aone:p%40ss%2Fw%2frd%25@127.0.0.1:6380/3");
    CHECK(u.username == "app:one");
    CHECK(u.password == "p@ss/w/rd%");
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 6380);
    CHECK(u.db == 3);
}

TEST_CASE("the password may contain an unescaped @: the last @ ends the credentials",
          "[engine][url]") {
    const redis_url u = url_parts("redis://ops:a@b@host");
    CHECK(u.username == "ops");
    CHECK(u.password == "a@b");
    CHECK(u.host == "host");
}

TEST_CASE("':password@' is a password without a user", "[engine][url]") {
    const redis_url u = url_parts("redis://:s3cret@host:6390");
    CHECK(u.username.empty());
    CHECK(u.password == "s3cret");
    CHECK(u.port == 6390);
}

TEST_CASE("credentials without a colon are the password, as redis-cli -u reads them",
          "[engine][url]") {
    const redis_url u = url_parts("redis://s3cret@host");
    CHECK(u.username.empty());
    CHECK(u.password == "s3cret");
}

TEST_CASE("an IPv6 address in brackets, with and without a port", "[engine][url]") {
    const redis_url with_port = url_parts("redis://u:p@[2001:db8::7]:6390/2");
    CHECK(with_port.host == "2001:db8::7");
    CHECK(with_port.port == 6390);
    CHECK(with_port.db == 2);
    CHECK(with_port.password == "p");
    const redis_url bare = url_parts("redis://[::1]");
    CHECK(bare.host == "::1");
    CHECK(bare.port == 6379);
    CHECK(url_parts("redis://[::1]/4").db == 4);
}

TEST_CASE("a URL not starting with redis:// is refused with what is supported",
          "[engine][url][errors]") {
    for (const char* url : {"cache.internal:6379", "", "redis:/host", "REDIS://host", "http://host",
                            "unix:///run/redis.sock"}) {
        INFO(url);
        CHECK_THAT(url_error(url), Contains("must start with redis://"));
    }
    CHECK_THAT(url_error("rediss://host:6380"), Contains("rediss:// and unix sockets"));
}

TEST_CASE("a URL without a host is refused", "[engine][url][errors]") {
    for (const char* url : {"redis://", "redis:///0", "redis://:6379", "redis://user:pw@",
                            "redis://user:pw@:6379/1", "redis://[]", "redis://[]:6379"}) {
        INFO(url);
        CHECK(url_error(url) == "the Redis URL has no host");
    }
}

TEST_CASE("a port outside 1-65535 or not a number is refused", "[engine][url][errors]") {
    for (const char* url :
         {"redis://host:0", "redis://host:65536", "redis://host:99999999999", "redis://host:abc",
          "redis://host:", "redis://host:-1", "redis://host:+80", "redis://host:80x",
          "redis://host: 80", "redis://[::1]:", "redis://[::1]:0", "redis://[::1]:70000"}) {
        INFO(url);
        CHECK(url_error(url) == "the Redis URL's port must be 1-65535");
    }
}

TEST_CASE("a path that is not a database number is refused", "[engine][url][errors]") {
    for (const char* url : {"redis://host/abc", "redis://host/-1", "redis://host/+1",
                            "redis://host/1/2", "redis://host/1x", "redis://host/0?timeout=1",
                            "redis://host/1000001", "redis://host/99999999999"}) {
        INFO(url);
        CHECK_THAT(url_error(url), Contains("path must be a database number"));
    }
    CHECK(url_parts("redis://host/1000000").db == 1000000);
}

TEST_CASE("a bad %-escape in user or password is refused", "[engine][url][errors]") {
    for (const char* url : {"redis://:pa%zzss@host", "redis://:pass%@host", "redis://:pass%4@host",
                            "redis://us%g0er:pw@host", "redis://u%:pw@host"}) {
        INFO(url);
        CHECK(url_error(url) == "the Redis URL has a bad %-escape in its user or password");
    }
}

TEST_CASE("an unclosed [ and text after [host] are refused", "[engine][url][errors]") {
    CHECK(url_error("redis://[::1") == "the Redis URL has an unclosed [ in its host");
    CHECK(url_error("redis://[::1:6379/0") == "the Redis URL has an unclosed [ in its host");
    CHECK(url_error("redis://[::1]6379") == "the Redis URL has text after its [host]");
    CHECK(url_error("redis://[::1]x:6379") == "the Redis URL has text after its [host]");
}

TEST_CASE("a host with characters no host has is refused", "[engine][url][errors]") {
    for (const char* url : {"redis://ho st", "redis://host;rm", "redis://h*st:6379",
                            "redis://[::1 ]", "redis://hö.st", "redis://host?x=1"}) {
        INFO(url);
        CHECK_THAT(url_error(url), Contains("host may hold only letters, digits"));
    }
}

TEST_CASE("an IPv6 address or zone id outside brackets is refused, not read as host and port",
          "[engine][url][errors]") {
    for (const char* url : {"redis://::1", "redis://::1:6379", "redis://2001:db8::7:6379/0",
                            "redis://fe80::1%eth0", "redis://host%eth0", "redis://a:b:6379"}) {
        INFO(url);
        CHECK_THAT(url_error(url), Contains("(or an IPv6 address in [ ])"));
    }
    CHECK(url_parts("redis://[fe80::1%eth0]:6380").host == "fe80::1%eth0");
}

// ---- resolve_target -------------------------------------------------------------------------

TEST_CASE("an IPv4 literal resolves to its bytes, port, credentials and prefix",
          "[engine][resolve]") {
    auto t = resolve_target("redis://app:pw@127.0.0.1:7000/3", "tenant-a");
    REQUIRE(t);
    CHECK(t->address.family == ip_family::v4);
    CHECK(t->address.port == 7000);
    CHECK(t->address.bytes[0] == 127);
    CHECK(t->address.bytes[1] == 0);
    CHECK(t->address.bytes[2] == 0);
    CHECK(t->address.bytes[3] == 1);
    CHECK(t->host == "127.0.0.1:7000");
    CHECK(t->username == "app");
    CHECK(t->password == "pw");
    CHECK(t->db == 3);
    CHECK(t->prefix == "tenant-a");
}

TEST_CASE("an IPv6 literal in brackets resolves to its sixteen bytes", "[engine][resolve]") {
    auto t = resolve_target("redis://[::1]", "ringcast");
    REQUIRE(t);
    CHECK(t->address.family == ip_family::v6);
    CHECK(t->address.port == 6379);
    std::array<uint8_t, 16> loopback{};
    loopback[15] = 1;
    CHECK(t->address.bytes == loopback);
    CHECK(t->address.loopback());
    CHECK(t->host == "[::1]:6379"); // what the logs print: the port cannot be taken for a group
}

TEST_CASE("an unresolvable host is named in the error, the password never",
          "[engine][resolve][errors]") {
    // .invalid never resolves (RFC 6761 §6.4).
    auto t = resolve_target("redis://ops:hunter2secret@no-such-host.invalid:6379/0", "p");
    REQUIRE_FALSE(t);
    CHECK_THAT(t.error(), Contains("'no-such-host.invalid'"));
    CHECK_THAT(t.error(), !Contains("hunter2secret"));
}

TEST_CASE("a URL the parser refuses is refused by resolve_target with the same sentence",
          "[engine][resolve][errors]") {
    auto t = resolve_target("redis://:hunter2secret@host:0", "p");
    REQUIRE_FALSE(t);
    CHECK(t.error() == "the Redis URL's port must be 1-65535");
}

// ---- append_command -------------------------------------------------------------------------

TEST_CASE("a request is an array of bulk strings, byte for byte", "[engine][resp]") {
    std::string out;
    const std::array<std::string_view, 1> ping{"PING"};
    append_command(out, ping);
    CHECK(out == "*1\r\n$4\r\nPING\r\n");

    out.clear();
    const std::array<std::string_view, 3> set_empty{"SET", "k", ""};
    append_command(out, set_empty);
    CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");

    out.clear();
    append_command(out, {});
    CHECK(out == "*0\r\n");
}

TEST_CASE("arguments are written as bytes, with no escaping", "[engine][resp]") {
    std::string out;
    const std::string binary = "\0\r\n\xff$*"s;
    const std::string long_value(1000, 'v');
    const std::array<std::string_view, 3> args{"PUBLISH", binary, long_value};
    append_command(out, args);
    CHECK(out == "*3\r\n$7\r\nPUBLISH\r\n$6\r\n" + binary + "\r\n$1000\r\n" + long_value + "\r\n");
}

TEST_CASE("commands append after what the buffer holds, pipelined", "[engine][resp]") {
    std::string out = "*1\r\n$4\r\nPING\r\n";
    const std::array<std::string_view, 2> get{"GET", "a"};
    const std::array<std::string_view, 2> subscribe{"SUBSCRIBE", "ringcast:c"};
    append_command(out, get);
    append_command(out, subscribe);
    CHECK(out == "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                 "*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\nringcast:c\r\n");
}

TEST_CASE("a written request reads back as the same arguments", "[engine][resp]") {
    std::string out;
    const std::string binary = "a\r\nb\0c"s;
    const std::array<std::string_view, 4> args{"EVALSHA", "", binary, "0"};
    append_command(out, args);
    const outcome o = read_stream(out);
    REQUIRE(o.error.empty());
    REQUIRE(o.replies.size() == 1);
    CHECK(o.replies[0] == "[$EVALSHA,$,$" + binary + ",$0]");
}

// ---- reply_reader ---------------------------------------------------------------------------

TEST_CASE("every reply type is read with its value", "[engine][reader]") {
    const outcome o = read_stream(mixed_wire);
    CHECK(o.error.empty());
    CHECK(o.replies == mixed_replies);
}

TEST_CASE("replies cut at every byte read the same as whole", "[engine][reader]") {
    for (std::size_t cut = 1; cut < mixed_wire.size(); ++cut) {
        SECTION("cut at " + std::to_string(cut)) {
            reply_reader reader;
            std::string error;
            std::vector<std::string> replies;
            REQUIRE(reader.feed(bytes_of(std::string_view(mixed_wire).substr(0, cut))));
            while (reply_ptr r = reader.next(error)) {
                replies.push_back(shown(*r));
            }
            REQUIRE(reader.feed(bytes_of(std::string_view(mixed_wire).substr(cut))));
            while (reply_ptr r = reader.next(error)) {
                replies.push_back(shown(*r));
            }
            CHECK(error.empty());
            CHECK(replies == mixed_replies);
        }
    }
}

TEST_CASE("replies fed one byte at a time read the same as whole", "[engine][reader]") {
    const outcome o = read_stream(mixed_wire, 1);
    CHECK(o.error.empty());
    CHECK(o.replies == mixed_replies);
}

TEST_CASE("next gives nothing, and no error, until a reply is complete", "[engine][reader]") {
    reply_reader reader;
    std::string error;
    CHECK(reader.next(error) == nullptr);
    REQUIRE(reader.feed(bytes_of("*2\r\n$3\r\nfoo\r\n")));
    CHECK(reader.next(error) == nullptr);
    REQUIRE(reader.feed(bytes_of(":")));
    CHECK(reader.next(error) == nullptr);
    REQUIRE(reader.feed(bytes_of("9\r\n")));
    reply_ptr r = reader.next(error);
    REQUIRE(r != nullptr);
    CHECK(shown(*r) == "[$foo,:9]");
    CHECK(reader.next(error) == nullptr);
    CHECK(error.empty());
}

TEST_CASE("integers at the edges of 64 bits", "[engine][reader]") {
    const outcome o = read_stream(":0\r\n:9223372036854775807\r\n:-9223372036854775808\r\n");
    CHECK(o.error.empty());
    CHECK(o.replies ==
          std::vector<std::string>{":0", ":9223372036854775807", ":-9223372036854775808"});
}

TEST_CASE("the accessors answer empty for a reply of another type", "[engine][reader]") {
    reply_reader reader;
    std::string error;
    REQUIRE(reader.feed(bytes_of(":5\r\n$2\r\nab\r\n*1\r\n:1\r\n$-1\r\n")));
    const reply_ptr integer = reader.next(error);
    const reply_ptr string = reader.next(error);
    const reply_ptr array = reader.next(error);
    const reply_ptr nil = reader.next(error);
    REQUIRE(integer);
    REQUIRE(string);
    REQUIRE(array);
    REQUIRE(nil);
    CHECK(text_of(*integer).empty());
    CHECK(elements_of(*integer).empty());
    CHECK(integer_of(*string) == 0);
    CHECK(elements_of(*string).empty());
    CHECK(text_of(*array).empty());
    CHECK(integer_of(*array) == 0);
    CHECK(type_of(*nil) == reply_type::nil);
    CHECK(text_of(*nil).empty());
    CHECK(integer_of(*nil) == 0);
    CHECK(elements_of(*nil).empty());
}

TEST_CASE("arrays nest eight deep; a ninth level is a protocol error", "[engine][reader]") {
    std::string eight;
    for (int i = 0; i < 8; ++i) {
        eight += "*1\r\n";
    }
    const outcome ok = read_stream(eight + ":1\r\n");
    REQUIRE(ok.error.empty());
    CHECK(ok.replies == std::vector<std::string>{"[[[[[[[[:1]]]]]]]]"});

    const outcome deep = read_stream("*1\r\n" + eight + ":1\r\n");
    CHECK(deep.replies.empty());
    CHECK_THAT(deep.error, Contains("nested"));
}

TEST_CASE("a stream that is not RESP sets the error and gives no reply", "[engine][reader]") {
    const auto [wire, says] = GENERATE(table<std::string, std::string>({
        {"x\r\n", "Protocol error, got \"x\" as reply type byte"},
        {"HTTP/1.1 400 Bad Request\r\n", "Protocol error, got \"H\" as reply type byte"},
        {":12a\r\n", "Bad integer value"},
        {":\r\n", "Bad integer value"},
        {"$abc\r\n", "Bad bulk string length"},
        {"$-2\r\n", "Bulk string length out of range"},
        {"*-2\r\n", "Multi-bulk length out of range"},
        {"*2147483648\r\n", "Multi-bulk length out of range"},
    }));
    INFO(wire);
    reply_reader reader;
    std::string error;
    REQUIRE(reader.feed(bytes_of("+before\r\n" + wire + "+after\r\n")));
    const reply_ptr before = reader.next(error);
    REQUIRE(before);
    CHECK(shown(*before) == "+before");
    CHECK(reader.next(error) == nullptr);
    CHECK(error == says);

    SECTION("the error stays: nothing more is read or accepted") {
        std::string again;
        CHECK(reader.next(again) == nullptr);
        CHECK(again == says);
        CHECK_FALSE(reader.feed(bytes_of("+OK\r\n")));
    }
    SECTION("reset() starts a clean stream") {
        reader.reset();
        REQUIRE(reader.feed(bytes_of("+OK\r\n")));
        std::string after;
        const reply_ptr ok = reader.next(after);
        REQUIRE(ok);
        CHECK(shown(*ok) == "+OK");
        CHECK(after.empty());
    }
}

TEST_CASE("an unfinished bulk is refused past the bound; what was consumed does not count",
          "[engine][reader][limits]") {
    reply_reader reader(256);
    std::string error;
    // 158 bytes of complete reply, three times: 474 bytes read, never more than 158 held.
    const std::string bulk = "$150\r\n" + std::string(150, 'a') + "\r\n";
    for (int i = 0; i < 3; ++i) {
        REQUIRE(reader.feed(bytes_of(bulk)));
        const reply_ptr r = reader.next(error);
        REQUIRE(r);
        CHECK(text_of(*r) == std::string(150, 'a'));
    }
    // An unfinished bulk of a million bytes: held up to the bound exactly, then refused.
    REQUIRE(reader.feed(bytes_of("$1000000\r\n")));
    REQUIRE(reader.feed(bytes_of(std::string(246, 'b'))));
    CHECK_FALSE(reader.feed(bytes_of("b")));
    CHECK(reader.next(error) == nullptr);
    CHECK(error.empty());
}

TEST_CASE("reset() drops a half-read reply", "[engine][reader]") {
    reply_reader reader;
    std::string error;
    REQUIRE(reader.feed(bytes_of("*2\r\n$5\r\nhel")));
    CHECK(reader.next(error) == nullptr);
    reader.reset();
    REQUIRE(reader.feed(bytes_of("+OK\r\n")));
    const reply_ptr r = reader.next(error);
    REQUIRE(r);
    CHECK(shown(*r) == "+OK");
    CHECK(error.empty());
}

TEST_CASE("reset() frees the bound for a new connection", "[engine][reader][limits]") {
    reply_reader reader(64);
    std::string error;
    REQUIRE(reader.feed(bytes_of("$100\r\n" + std::string(58, 'x'))));
    CHECK_FALSE(reader.feed(bytes_of("x")));
    reader.reset();
    REQUIRE(reader.feed(bytes_of("$5\r\nhello\r\n")));
    const reply_ptr r = reader.next(error);
    REQUIRE(r);
    CHECK(shown(*r) == "$hello");
}

// hiredis allocates an array's table of element pointers when its header arrives, and keeps
// every element of the reply being built: the bound covers that memory too.

TEST_CASE("an array header asking for more than the bound is refused, not allocated",
          "[engine][reader][limits]") {
    SECTION("the default bound, and a header asking for 16 GiB") {
        const outcome o = read_stream("*2147483647\r\n");
        CHECK(o.replies.empty());
        CHECK(o.error == "a reply needs more than the reader's bound of 268435456 bytes");
    }
    SECTION("a bound of 1 MiB, and a header asking for 8 MB") {
        const outcome o = read_stream("*1000000\r\n", 0, std::size_t{1} << 20);
        CHECK(o.replies.empty());
        CHECK(o.error == "a reply needs more than the reader's bound of 1048576 bytes");
    }
    SECTION("nested tables that fit one by one but not together") {
        const outcome o = read_stream("*2\r\n*6000\r\n*6000\r\n", 0, 65536);
        CHECK(o.replies.empty());
        CHECK_THAT(o.error, Contains("bound of 65536 bytes"));
    }
}

TEST_CASE("a reply streamed element by element is refused once it holds more than the bound",
          "[engine][reader][limits]") {
    // 32 KB on the wire, never more than 64 KiB buffered; 8,000 reply objects built.
    std::string wire = "*8000\r\n";
    for (int i = 0; i < 8000; ++i) {
        wire += ":1\r\n";
    }
    reply_reader reader(65536);
    std::string error;
    REQUIRE(reader.feed(bytes_of(wire)));
    CHECK(reader.next(error) == nullptr);
    CHECK(error == "a reply needs more than the reader's bound of 65536 bytes");

    SECTION("the refusal stays") {
        std::string again;
        CHECK(reader.next(again) == nullptr);
        CHECK(again == error);
    }
    SECTION("reset() starts again with the whole bound") {
        reader.reset();
        REQUIRE(reader.feed(bytes_of("*2\r\n:1\r\n:2\r\n")));
        std::string after;
        const reply_ptr r = reader.next(after);
        REQUIRE(r);
        CHECK(shown(*r) == "[:1,:2]");
        CHECK(after.empty());
    }
}

TEST_CASE("the bound is per reply: replies together may hold more", "[engine][reader][limits]") {
    std::string reply = "*500\r\n";
    for (int i = 0; i < 500; ++i) {
        reply += "$1\r\nx\r\n";
    }
    reply_reader reader(65536);
    std::string error;
    for (int i = 0; i < 20; ++i) {
        INFO("reply " << i);
        REQUIRE(reader.feed(bytes_of(reply)));
        const reply_ptr r = reader.next(error);
        REQUIRE(r);
        CHECK(elements_of(*r).size() == 500);
        CHECK(error.empty());
    }
}
