// The log's formats, escaping, per-site limiter and level filter (include/ringcast/log.h).
// Lines are captured through detail::set_hooks; the clocks are driven, never slept on.
#include <ringcast/log.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace ringcast;

namespace {

std::vector<std::string> captured;
uint64_t fake_now_ms = 0;

void capture(std::string_view line) noexcept {
    captured.emplace_back(line);
}
uint64_t fake_monotonic() noexcept {
    return fake_now_ms;
}
int64_t fixed_unix_ms() noexcept {
    return 1796457600123; // 2026-12-05T08:00:00.123Z
}

/// Captures the lines written while it lives, in `f` at threshold `l`; restores the
/// defaults after.
struct capturing {
    explicit capturing(log::format f, log::level l = log::level::debug) {
        captured.clear();
        fake_now_ms = 1000;
        log::detail::set_hooks({capture, fake_monotonic, fixed_unix_ms});
        log::set_format(f);
        log::set_level(l);
    }
    ~capturing() {
        log::detail::set_hooks({nullptr, nullptr, nullptr});
        log::set_format(log::format::text);
        log::set_level(log::level::info);
    }
};

std::string json(std::string_view value, std::size_t max = log::value_max_bytes) {
    char storage[2048];
    log::detail::buffer out{storage, sizeof(storage)};
    log::detail::put_json_string(out, value, max);
    return std::string(out.data, out.size);
}

std::string logfmt(std::string_view value) {
    char storage[2048];
    log::detail::buffer out{storage, sizeof(storage)};
    log::detail::put_logfmt_value(out, value, log::value_max_bytes);
    return std::string(out.data, out.size);
}

/// One line from one call site, as the code writes them.
void refuse(const char* peer) {
    RINGCAST_LOG(log::level::warn, "test_refused").field("peer", peer).msg("refusing %s", peer);
}

} // namespace

TEST_CASE("json strings escape quotes, backslashes and control bytes", "[core][log]") {
    CHECK(json("plain") == "\"plain\"");
    CHECK(json("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(json("line\nbreak\r\ttab") == "\"line\\nbreak\\r\\ttab\"");
    CHECK(json(std::string_view("nul\0bel\a", 8)) == "\"nul\\u0000bel\\u0007\"");
    CHECK(json("del\x7f") == "\"del\\u007f\"");
}

TEST_CASE("json strings keep valid UTF-8 and replace invalid bytes", "[core][log]") {
    CHECK(json("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") ==
          "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    CHECK(json("bad\xff") == "\"bad\\ufffd\"");
    CHECK(json("overlong\xc0\xaf") == "\"overlong\\ufffd\\ufffd\"");
    CHECK(json("surrogate\xed\xa0\x80") == "\"surrogate\\ufffd\\ufffd\\ufffd\"");
    CHECK(json("cut\xe2\x82") == "\"cut\\ufffd\\ufffd\"");
}

TEST_CASE("json strings are cut at the cap on a character boundary", "[core][log]") {
    CHECK(json(std::string(300, 'a')) == "\"" + std::string(256, 'a') + "...\"");
    // A two-byte character straddling the cap is left out whole.
    CHECK(json("ab\xc3\xa9", 3) == "\"ab...\"");
}

TEST_CASE("logfmt values are bare when they can be and quoted otherwise", "[core][log]") {
    CHECK(logfmt("10.0.0.7:4242") == "10.0.0.7:4242");
    CHECK(logfmt("") == "\"\"");
    CHECK(logfmt("two words") == "\"two words\"");
    CHECK(logfmt("k=v") == "\"k=v\"");
    CHECK(logfmt("say \"hi\"") == "\"say \\\"hi\\\"\"");
    CHECK(logfmt("new\nline") == "\"new\\nline\"");
    CHECK(logfmt("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
}

TEST_CASE("a json line carries ts, level, shard, event, msg and the fields", "[core][log]") {
    capturing on(log::format::json);
    log::set_thread_shard(1);
    RINGCAST_LOG(log::level::warn, "address_refused")
        .field("peer", "10.0.0.7")
        .field("limit", 5u)
        .field("delta", -2)
        .field("tls", false)
        .msg("shard %u: refusing \"%s\"", 1u, "10.0.0.7");
    REQUIRE(captured.size() == 1);
    CHECK(captured[0] ==
          "{\"ts\":\"2026-12-05T08:00:00.123Z\",\"level\":\"warn\",\"shard\":1,"
          "\"event\":\"address_refused\",\"msg\":\"shard 1: refusing \\\"10.0.0.7\\\"\","
          "\"peer\":\"10.0.0.7\",\"limit\":5,\"delta\":-2,\"tls\":false}\n");
}

TEST_CASE("a logfmt line quotes what needs it", "[core][log]") {
    capturing on(log::format::logfmt);
    log::set_thread_shard(0);
    RINGCAST_LOG(log::level::info, "access").field("path", "/ws").field("user", "a b").msg(
        "access: GET /ws 101");
    REQUIRE(captured.size() == 1);
    CHECK(captured[0] == "ts=2026-12-05T08:00:00.123Z level=info shard=0 event=access "
                         "msg=\"access: GET /ws 101\" path=/ws user=\"a b\"\n");
}

TEST_CASE("the text format is the message alone, control bytes made visible", "[core][log]") {
    capturing on(log::format::text);
    RINGCAST_LOG(log::level::warn, "x").field("ignored", "yes").msg("bad\npath");
    REQUIRE(captured.size() == 1);
    CHECK(captured[0] == "ringcastd: bad\\x0apath\n");
}

TEST_CASE("a long message is cut and the line stays one line under PIPE_BUF", "[core][log]") {
    capturing on(log::format::json);
    const std::string control(2000, '\x01'); // 6 bytes each once escaped
    RINGCAST_LOG(log::level::warn, "long").field("peer", "p").msg("%s", control.c_str());
    REQUIRE(captured.size() == 1);
    const std::string& l = captured[0];
    CHECK(l.size() <= log::line_max_bytes);
    CHECK(l.back() == '\n');
    CHECK(l.find('\n') == l.size() - 1);
    CHECK(l.ends_with("...\",\"peer\":\"p\"}\n"));
}

TEST_CASE("lines below the threshold are not written, and cost no limit", "[core][log]") {
    capturing on(log::format::text, log::level::warn);
    CHECK(log::enabled(log::level::error));
    CHECK(log::enabled(log::level::warn));
    CHECK_FALSE(log::enabled(log::level::info));
    const uint64_t before = log::suppressed_here();
    bool evaluated = false;
    RINGCAST_LOG(log::level::info, "hidden").msg("%d", (evaluated = true) ? 1 : 0);
    RINGCAST_LOG(log::level::debug, "hidden").msg("debug");
    RINGCAST_LOG(log::level::warn, "shown").msg("shown");
    CHECK_FALSE(evaluated);
    REQUIRE(captured.size() == 1);
    CHECK(captured[0] == "ringcastd: shown\n");
    CHECK(log::suppressed_here() == before);
    log::set_level(log::level::debug);
    RINGCAST_LOG(log::level::debug, "now").msg("debug on");
    CHECK(captured.size() == 2);
}

TEST_CASE("a site writes its budget, counts the rest, and summarises them later",
          "[core][log]") {
    capturing on(log::format::json);
    const uint64_t before = log::suppressed_here();
    for (int i = 0; i < 1000; ++i) {
        refuse("10.0.0.7");
    }
    CHECK(captured.size() == log::default_site_limits.lines);
    CHECK(log::suppressed_here() - before == 1000 - log::default_site_limits.lines);
    // Still inside the window: nothing more.
    fake_now_ms += log::default_site_limits.interval_ms - 1;
    refuse("10.0.0.7");
    CHECK(captured.size() == log::default_site_limits.lines);
    // A new window: the summary, then the line.
    fake_now_ms += 1;
    refuse("10.0.0.8");
    REQUIRE(captured.size() == log::default_site_limits.lines + 2);
    const std::string& summary = captured[captured.size() - 2];
    CHECK(summary.find("\"event\":\"log_suppressed\"") != std::string::npos);
    CHECK(summary.find("\"msg\":\"991 similar lines suppressed (test_refused)\"") !=
          std::string::npos);
    CHECK(summary.find("\"suppressed\":991,\"site\":\"test_refused\"") != std::string::npos);
    CHECK(captured.back().find("refusing 10.0.0.8") != std::string::npos);
}

TEST_CASE("the limiter admits its lines per window and reports once", "[core][log]") {
    log::site s(log::site_limits{2, 100});
    CHECK(s.admit(0).print);
    CHECK(s.admit(10).print);
    CHECK_FALSE(s.admit(20).print);
    CHECK_FALSE(s.admit(99).print);
    const auto next = s.admit(100);
    CHECK(next.print);
    CHECK(next.suppressed_before == 2);
    CHECK(s.admit(150).suppressed_before == 0);
    CHECK_FALSE(s.admit(199).print);
    // A long quiet spell: one new window, the count of the last one.
    const auto later = s.admit(100000);
    CHECK(later.print);
    CHECK(later.suppressed_before == 1);
}

TEST_CASE("two call sites have their own budgets", "[core][log]") {
    capturing on(log::format::text);
    for (int i = 0; i < 50; ++i) {
        RINGCAST_LOG(log::level::warn, "a").msg("a");
        RINGCAST_LOG_EVERY(log::level::warn, "b", 1, 10000).msg("b");
    }
    CHECK(captured.size() == log::default_site_limits.lines + 1);
}

TEST_CASE("level and format names parse both ways", "[core][log]") {
    for (const auto l : {log::level::error, log::level::warn, log::level::info, log::level::debug}) {
        CHECK(log::parse_level(log::name_of(l)) == l);
    }
    CHECK_FALSE(log::parse_level("warning"));
    CHECK(log::parse_format("json") == log::format::json);
    CHECK(log::parse_format("logfmt") == log::format::logfmt);
    CHECK(log::parse_format("text") == log::format::text);
    CHECK_FALSE(log::parse_format("JSON"));
}
