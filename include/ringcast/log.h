// The log: every line ringcastd writes to stderr (docs/operations.md "Logs"). Part of the
// core library, the bottom layer, so every module and every shard may log.
//
// A line has a level (error, warn, info, debug), a stable event name ("address_refused"),
// a human message and typed fields, and is written in one of three formats:
//
//   text    ringcastd: shard 1: refusing connections from 10.0.0.7: over ...   (msg only)
//   json    {"ts":"2026-12-06T08:00:00.123Z","level":"warn","shard":1,
//            "event":"address_refused","msg":"shard 1: refusing ...","peer":"10.0.0.7"}
//   logfmt  ts=2026-12-06T08:00:00.123Z level=warn shard=1 event=address_refused
//           msg="shard 1: refusing ..." peer=10.0.0.7
//
// (json and logfmt are one line each; wrapped here.) "shard" is the shard the line was
// written on; the main thread's lines have none.
//
// What it must never do, since shards log from their loops:
//   * take a lock, or allocate: a line is built in a thread-local buffer (thread_buffer)
//     and leaves in one write(2) of at most line_max_bytes, PIPE_BUF, so the lines of
//     several threads never interleave on a pipe (the journal's stream, a test's pipe);
//   * let untrusted bytes (a peer address, a path) break a line: every string is escaped
//     for the format (JSON escapes, logfmt quoting, control bytes as \xNN in text), invalid
//     UTF-8 becomes U+FFFD, and each value is capped at value_max_bytes;
//   * fill a disk: a call site logs at most site_limits::lines per interval per thread,
//     the rest are counted (suppressed_here(), log_suppressed in /api/stats) and reported
//     in one summary line when the site logs again after the interval.
//
// How a call site reads:
//
//   RINGCAST_LOG(log::level::warn, "address_refused")
//       .field("peer", peer.text())
//       .msg("shard %u: refusing connections from %s", id, peer.text().c_str());
//
// Nothing after the macro is evaluated when the level is off or the site is over its
// limit (the arguments of a suppressed line cost nothing); the line is written when the
// statement ends. RINGCAST_LOG_EVERY(level, event, lines, interval_ms) sets the site's own
// limit.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringcast::log {

/// Most severe first: a line is written when its level is at or above the threshold
/// (set_level).
enum class level : uint8_t {
    error, ///< the operator must act: a listener, a ring, a descriptor table failed
    warn,  ///< resource exhaustion, refusals, a configuration that does less than asked
    info,  ///< start-up, reload, drain, shutdown, access log
    debug, ///< expected peer behaviour an operator looks at only while debugging
};

enum class format : uint8_t {
    text,   ///< "ringcastd: " + the message: the human lines (the default)
    json,   ///< one JSON object per line
    logfmt, ///< key=value pairs, values quoted when they must be
};

/// "error", "warn", "info", "debug"; nullopt for anything else.
std::optional<level> parse_level(std::string_view name) noexcept;
std::string_view name_of(level l) noexcept;
/// "text", "json", "logfmt"; nullopt for anything else.
std::optional<format> parse_format(std::string_view name) noexcept;

/// The process-wide threshold, format and access-log switch. Each is a relaxed atomic: a
/// store (main thread: start-up, SIGHUP reload) pairs with the relaxed loads in
/// enabled(), current_format() and access_log() on every thread. Nothing else is
/// published with them, so a shard that sees the old value for a few more lines is all
/// the ordering can cost.
void set_level(level l) noexcept;
level current_level() noexcept;
void set_format(format f) noexcept;
format current_format() noexcept;
/// --access-log: gateways write one line per WebSocket handshake (docs/operations.md).
void set_access_log(bool on) noexcept;
bool access_log() noexcept;

/// True when a line of level `l` would be written (before the site's limit).
bool enabled(level l) noexcept;

/// Names this thread's lines with shard `id` ("shard":id); called once by each shard
/// thread before its loop. Threads that never call it (main) write no shard.
void set_thread_shard(unsigned id) noexcept;
/// Lines this thread suppressed over their site's limit, since it started. Read by the
/// shard itself for its counters (core::shard_counters::log_suppressed): no atomics.
uint64_t suppressed_here() noexcept;

/// The budget of one call site: `lines` per `interval_ms`, per thread.
struct site_limits {
    uint32_t lines;
    uint64_t interval_ms;
};
/// 10 lines per 10 s: a burst of a few distinct problems is written whole, while a flood
/// of one (a client retrying a refused handshake in a loop) costs at most one line a
/// second per site per shard: ~200 B/s, under 20 MB a day with 2 shards.
inline constexpr site_limits default_site_limits{10, 10000};

/// The limiter of one call site on one thread: a fixed window of `limits.interval_ms`
/// starting at the first line, `limits.lines` admitted in it, the rest counted. The
/// first line of a later window carries the count of the ones suppressed before it.
///
///    admit ─► window open? ─no─► new window, print (with the count so far) ─┐
///                 │yes                                                     │
///                 ▼                                                        │
///      printed < lines? ─yes─► print ────────────────────────────────────┤
///                 │no                                                      ▼
///                 └──────► suppressed += 1 (nothing written)            verdict
///
/// Constant-initialised (a static thread_local at the call site needs no guard); owned
/// by one thread.
class site {
public:
    constexpr explicit site(site_limits limits = default_site_limits) noexcept
        : _limits(limits) {}

    struct verdict {
        bool print = false;
        /// Lines suppressed in earlier windows, reported with this one (print only).
        uint64_t suppressed_before = 0;
    };
    /// `now_ms` from a monotonic clock; never decreasing between calls.
    verdict admit(uint64_t now_ms) noexcept;

private:
    site_limits _limits;
    uint64_t _window_start_ms = 0;
    uint64_t _suppressed = 0;
    uint32_t _printed = 0;
    bool _started = false;
};

/// One line being built; written by the destructor when open. Made by RINGCAST_LOG (or
/// directly, with a null site for a line without a limit). Not copyable, not movable: it
/// lives for one statement. Builds in the thread's buffer, so only one line per thread may
/// be open at a time; a line made while another is open on the same thread is dropped.
class line {
public:
    /// Open when `l` is enabled and `where` (null: unlimited) admits a line now. When the
    /// site had suppressed lines, a "log_suppressed" summary line is written first.
    line(level l, std::string_view event, site* where) noexcept;
    ~line();
    line(const line&) = delete;
    line& operator=(const line&) = delete;

    explicit operator bool() const noexcept { return _open; }

    /// Adds a field (ignored in the text format, whose message says it all). Keys are the
    /// caller's constants: [a-z_]+, never escaped. A field that does not fit the line any
    /// more is left out.
    line& field(std::string_view key, std::string_view value) noexcept;
    line& field(std::string_view key, const char* value) noexcept {
        return field(key, std::string_view(value == nullptr ? "" : value));
    }
    template <std::integral T> line& field(std::string_view key, T value) noexcept {
        if constexpr (std::same_as<T, bool>) {
            return raw_field(key, value ? "true" : "false");
        } else if constexpr (std::signed_integral<T>) {
            return signed_field(key, static_cast<int64_t>(value));
        } else {
            return unsigned_field(key, static_cast<uint64_t>(value));
        }
    }
    /// The human message, printf-style, cut at msg_max_bytes. The last call wins.
    line& msg(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

private:
    line& signed_field(std::string_view key, int64_t value) noexcept;
    line& unsigned_field(std::string_view key, uint64_t value) noexcept;
    /// `value` written as it is (a number, true/false): no quotes, no escaping.
    line& raw_field(std::string_view key, std::string_view value) noexcept;

    level _level;
    std::string_view _event;
    bool _open = false;
};

/// Bounds of one line, in bytes.
/// PIPE_BUF (Linux: 4096): a write(2) of at most this much to a pipe is atomic.
inline constexpr std::size_t line_max_bytes = 4096;
/// The message before escaping: a long config error fits; a runaway one is cut.
inline constexpr std::size_t msg_max_bytes = 1024;
/// One field value before escaping: an IPv6 peer with port is 47 bytes, a path is cut
/// here. Escaping may grow it (at most 6 bytes per input byte), the line bound holds.
inline constexpr std::size_t value_max_bytes = 256;

namespace detail {

/// A bounded byte buffer over caller storage: puts past the end are dropped (and
/// `overflowed` set), never written.
struct buffer {
    char* data;
    std::size_t capacity;
    std::size_t size = 0;
    bool overflowed = false;

    void put(char ch) noexcept;
    void put(std::string_view text) noexcept;
};

/// `value` as a JSON string, quotes included: ", \ and control bytes escaped, invalid
/// UTF-8 as \ufffd, cut after `max_bytes` input bytes at a character boundary (then
/// "..." marks the cut inside the quotes).
void put_json_string(buffer& out, std::string_view value, std::size_t max_bytes) noexcept;
/// `value` as a logfmt value: bare when non-empty and free of space, '=', '"', '\' and
/// bytes outside printable ASCII; otherwise quoted with the JSON escapes (so UTF-8 stays
/// readable, control bytes and invalid UTF-8 do not). Cut as put_json_string.
void put_logfmt_value(buffer& out, std::string_view value, std::size_t max_bytes) noexcept;
/// The text format's message: bytes below 0x20 and 0x7f as \xNN, the rest as given.
void put_text(buffer& out, std::string_view value, std::size_t max_bytes) noexcept;

/// What the writer is given; tests replace both (set_hooks) to capture lines and drive
/// the limiter's clock. Defaults: write(2) to stderr, CLOCK_MONOTONIC_COARSE and
/// CLOCK_REALTIME.
struct hooks {
    void (*write)(std::string_view line) noexcept;
    uint64_t (*monotonic_ms)() noexcept;
    int64_t (*unix_ms)() noexcept;
};
/// Installs `h` (nullptr fields: the defaults). Before any thread logs (tests only).
void set_hooks(hooks h) noexcept;

} // namespace detail

} // namespace ringcast::log

/// The limiter of the call site this expands at: one per site (the lambda's type is unique)
/// and per thread.
#define RINGCAST_LOG_SITE(limits_)                                                         \
    ([]() noexcept -> ::ringcast::log::site& {                                             \
        static thread_local ::ringcast::log::site ringcast_log_site_{limits_};             \
        return ringcast_log_site_;                                                         \
    }())

/// A line at `level_` for `event_` under its call site's limit; see the header comment.
/// The if/else shape keeps an `else` after the statement bound to the caller's `if`.
#define RINGCAST_LOG_EVERY(level_, event_, lines_, interval_ms_)                           \
    if (::ringcast::log::line ringcast_log_line_{                                          \
            (level_), (event_),                                                            \
            &RINGCAST_LOG_SITE((::ringcast::log::site_limits{(lines_), (interval_ms_)}))}; \
        !ringcast_log_line_) {                                                             \
    } else                                                                                 \
        ringcast_log_line_

#define RINGCAST_LOG(level_, event_)                                                       \
    RINGCAST_LOG_EVERY(level_, event_, ::ringcast::log::default_site_limits.lines,         \
                       ::ringcast::log::default_site_limits.interval_ms)
