// The log writer (include/ringcast/log.h): the thread's buffers, the three formats, the
// per-site limiter, the one write(2) per line.
#include <ringcast/log.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace ringcast::log {

namespace {

std::atomic<uint8_t> threshold{uint8_t(level::info)};
std::atomic<uint8_t> chosen_format{uint8_t(format::text)};
std::atomic<bool> access_on{false};

/// One thread's line under construction. Fields are encoded for the format as they come;
/// the message is kept raw and escaped when the line is put together, since it comes
/// before the fields in the line but may be given after them.
struct thread_buffer {
    char fields[line_max_bytes / 2];
    std::size_t fields_size = 0;
    char message[msg_max_bytes];
    std::size_t message_size = 0;
    char out[line_max_bytes];
    int shard = -1;
    bool busy = false;
    uint64_t suppressed = 0;
};
// Constant-initialised: no guard on each access, no allocation.
thread_local thread_buffer here;

void write_stderr(std::string_view text) noexcept {
    for (;;) {
        const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
        if (n >= 0 || errno != EINTR) {
            return; // a short write or a full disk: nothing better to do with a log line
        }
    }
}

uint64_t coarse_monotonic_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

int64_t realtime_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

detail::hooks active{write_stderr, coarse_monotonic_ms, realtime_ms};

/// "2026-12-06T08:00:00.123Z" (UTC, milliseconds).
void put_timestamp(detail::buffer& out, int64_t unix_ms) noexcept {
    const time_t seconds = static_cast<time_t>(unix_ms / 1000);
    tm parts{};
    gmtime_r(&seconds, &parts);
    char text[32];
    const int n = std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                                parts.tm_hour, parts.tm_min, parts.tm_sec,
                                static_cast<int>(unix_ms % 1000));
    out.put(std::string_view(text, n > 0 ? std::size_t(n) : 0));
}

/// Length of the valid UTF-8 sequence at `s[i]` (1-4), or 0 when it is invalid
/// (RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char lead = b(0);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
        n = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        n = 3;
        lo = lead == 0xe0 ? 0xa0 : 0x80;
        hi = lead == 0xed ? 0x9f : 0xbf;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        n = 4;
        lo = lead == 0xf0 ? 0x90 : 0x80;
        hi = lead == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (i + n > s.size() || b(1) < lo || b(1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/// The body of a JSON string (no quotes), as put_json_string describes.
void put_json_body(detail::buffer& out, std::string_view value, std::size_t max_bytes) noexcept {
    std::size_t i = 0;
    while (i < value.size()) {
        const auto ch = static_cast<unsigned char>(value[i]);
        const std::size_t n = utf8_length(value, i);
        // Room for the longest escape (6 bytes) plus "..." and the closing quote.
        if (i + (n == 0 ? 1 : n) > max_bytes || out.capacity - out.size < 6 + 4) {
            out.put("...");
            return;
        }
        if (n == 0) {
            out.put("\\ufffd");
            ++i;
            continue;
        }
        if (n > 1) {
            out.put(value.substr(i, n));
            i += n;
            continue;
        }
        switch (ch) {
        case '"':
            out.put("\\\"");
            break;
        case '\\':
            out.put("\\\\");
            break;
        case '\n':
            out.put("\\n");
            break;
        case '\r':
            out.put("\\r");
            break;
        case '\t':
            out.put("\\t");
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                char esc[8];
                std::snprintf(esc, sizeof(esc), "\\u%04x", unsigned(ch));
                out.put(esc);
            } else {
                out.put(static_cast<char>(ch));
            }
        }
        ++i;
    }
}

bool logfmt_bare(std::string_view value) noexcept {
    if (value.empty()) {
        return false;
    }
    for (const char c : value) {
        const auto ch = static_cast<unsigned char>(c);
        if (ch <= 0x20 || ch >= 0x7f || ch == '=' || ch == '"' || ch == '\\') {
            return false;
        }
    }
    return true;
}

void put_number(detail::buffer& out, const char* fmt, auto value) noexcept {
    char text[24];
    const int n = std::snprintf(text, sizeof(text), fmt, value);
    out.put(std::string_view(text, n > 0 ? std::size_t(n) : 0));
}

/// Writes one whole line from the thread's buffers: head, message, fields, newline, in one
/// write. The head and the message get what the fields and the line's end leave, so a
/// message too long for the line is what is cut (put_json_body's "...").
void emit(level l, std::string_view event) noexcept {
    const format f = current_format();
    const std::string_view message(here.message, here.message_size);
    const std::string_view fields(here.fields, here.fields_size);
    detail::buffer out{here.out, sizeof(here.out) - fields.size() - 2}; // 2: '}' and '\n'
    switch (f) {
    case format::text:
        out.put("ringcastd: ");
        detail::put_text(out, message, msg_max_bytes);
        break;
    case format::json:
        out.put("{\"ts\":\"");
        put_timestamp(out, active.unix_ms());
        out.put("\",\"level\":\"");
        out.put(name_of(l));
        out.put('"');
        if (here.shard >= 0) {
            out.put(",\"shard\":");
            put_number(out, "%d", here.shard);
        }
        out.put(",\"event\":");
        detail::put_json_string(out, event, value_max_bytes);
        out.put(",\"msg\":");
        detail::put_json_string(out, message, msg_max_bytes);
        break;
    case format::logfmt:
        out.put("ts=");
        put_timestamp(out, active.unix_ms());
        out.put(" level=");
        out.put(name_of(l));
        if (here.shard >= 0) {
            out.put(" shard=");
            put_number(out, "%d", here.shard);
        }
        out.put(" event=");
        detail::put_logfmt_value(out, event, value_max_bytes);
        out.put(" msg=");
        detail::put_logfmt_value(out, message, msg_max_bytes);
        break;
    }
    out.capacity = sizeof(here.out);
    out.put(fields);
    if (f == format::json) {
        out.put('}');
    }
    out.put('\n');
    active.write(std::string_view(out.data, out.size));
}

void put_field_key(detail::buffer& out, format f, std::string_view key) noexcept {
    switch (f) {
    case format::text:
        return;
    case format::json:
        out.put(",\"");
        out.put(key);
        out.put("\":");
        return;
    case format::logfmt:
        out.put(' ');
        out.put(key);
        out.put('=');
        return;
    }
}

} // namespace

std::optional<level> parse_level(std::string_view name) noexcept {
    for (const level l : {level::error, level::warn, level::info, level::debug}) {
        if (name == name_of(l)) {
            return l;
        }
    }
    return std::nullopt;
}

std::string_view name_of(level l) noexcept {
    switch (l) {
    case level::error:
        return "error";
    case level::warn:
        return "warn";
    case level::info:
        return "info";
    case level::debug:
        return "debug";
    }
    return "info";
}

std::optional<format> parse_format(std::string_view name) noexcept {
    if (name == "text") {
        return format::text;
    }
    if (name == "json") {
        return format::json;
    }
    if (name == "logfmt") {
        return format::logfmt;
    }
    return std::nullopt;
}

void set_level(level l) noexcept {
    threshold.store(uint8_t(l), std::memory_order_relaxed); // pairs with enabled()'s load
}

level current_level() noexcept {
    return level(threshold.load(std::memory_order_relaxed)); // pairs with set_level()
}

void set_format(format f) noexcept {
    chosen_format.store(uint8_t(f), std::memory_order_relaxed); // pairs with current_format()
}

format current_format() noexcept {
    return format(chosen_format.load(std::memory_order_relaxed)); // pairs with set_format()
}

void set_access_log(bool on) noexcept {
    access_on.store(on, std::memory_order_relaxed); // pairs with access_log()'s load
}

bool access_log() noexcept {
    return access_on.load(std::memory_order_relaxed); // pairs with set_access_log()
}

bool enabled(level l) noexcept {
    return uint8_t(l) <= threshold.load(std::memory_order_relaxed); // pairs with set_level()
}

void set_thread_shard(unsigned id) noexcept {
    here.shard = static_cast<int>(id);
}

uint64_t suppressed_here() noexcept {
    return here.suppressed;
}

site::verdict site::admit(uint64_t now_ms) noexcept {
    if (!_started || now_ms >= _window_start_ms + _limits.interval_ms) {
        _started = true;
        _window_start_ms = now_ms;
        _printed = 1;
        const uint64_t before = _suppressed;
        _suppressed = 0;
        return {true, before};
    }
    if (_printed < _limits.lines) {
        ++_printed;
        return {true, 0};
    }
    ++_suppressed;
    return {false, 0};
}

line::line(level l, std::string_view event, site* where) noexcept : _level(l), _event(event) {
    if (!enabled(l) || here.busy) {
        return;
    }
    uint64_t suppressed_before = 0;
    if (where != nullptr) {
        const site::verdict v = where->admit(active.monotonic_ms());
        if (!v.print) {
            ++here.suppressed;
            return;
        }
        suppressed_before = v.suppressed_before;
    }
    here.busy = true;
    _open = true;
    here.fields_size = 0;
    here.message_size = 0;
    if (suppressed_before != 0) {
        // The summary of this site's last window, before its next line.
        unsigned_field("suppressed", suppressed_before);
        field("site", event);
        msg("%llu similar lines suppressed (%.*s)",
            static_cast<unsigned long long>(suppressed_before), int(event.size()), event.data());
        emit(l, "log_suppressed");
        here.fields_size = 0;
        here.message_size = 0;
    }
}

line::~line() {
    if (!_open) {
        return;
    }
    emit(_level, _event);
    here.busy = false;
}

line& line::field(std::string_view key, std::string_view value) noexcept {
    const format f = current_format();
    if (!_open || f == format::text) {
        return *this;
    }
    detail::buffer out{here.fields, sizeof(here.fields), here.fields_size};
    put_field_key(out, f, key);
    switch (f) {
    case format::text:
        break;
    case format::json:
        detail::put_json_string(out, value, value_max_bytes);
        break;
    case format::logfmt:
        detail::put_logfmt_value(out, value, value_max_bytes);
        break;
    }
    if (!out.overflowed) {
        here.fields_size = out.size; // else the field is left out whole
    }
    return *this;
}

line& line::raw_field(std::string_view key, std::string_view value) noexcept {
    const format f = current_format();
    if (!_open || f == format::text) {
        return *this;
    }
    detail::buffer out{here.fields, sizeof(here.fields), here.fields_size};
    put_field_key(out, f, key);
    out.put(value);
    if (!out.overflowed) {
        here.fields_size = out.size;
    }
    return *this;
}

line& line::signed_field(std::string_view key, int64_t value) noexcept {
    char text[24];
    const int n = std::snprintf(text, sizeof(text), "%lld", static_cast<long long>(value));
    return raw_field(key, std::string_view(text, n > 0 ? std::size_t(n) : 0));
}

line& line::unsigned_field(std::string_view key, uint64_t value) noexcept {
    char text[24];
    const int n =
        std::snprintf(text, sizeof(text), "%llu", static_cast<unsigned long long>(value));
    return raw_field(key, std::string_view(text, n > 0 ? std::size_t(n) : 0));
}

line& line::msg(const char* fmt, ...) noexcept {
    if (!_open) {
        return *this;
    }
    va_list args;
    va_start(args, fmt);
    const int n = std::vsnprintf(here.message, sizeof(here.message), fmt, args);
    va_end(args);
    here.message_size = n < 0 ? 0 : std::min<std::size_t>(std::size_t(n), sizeof(here.message) - 1);
    return *this;
}

namespace detail {

void buffer::put(char ch) noexcept {
    if (size < capacity) {
        data[size++] = ch;
    } else {
        overflowed = true;
    }
}

void buffer::put(std::string_view text) noexcept {
    for (const char ch : text) {
        put(ch);
    }
}

void put_json_string(buffer& out, std::string_view value, std::size_t max_bytes) noexcept {
    out.put('"');
    put_json_body(out, value, max_bytes);
    out.put('"');
}

void put_logfmt_value(buffer& out, std::string_view value, std::size_t max_bytes) noexcept {
    if (logfmt_bare(value) && value.size() <= max_bytes &&
        value.size() <= out.capacity - out.size) {
        out.put(value);
        return;
    }
    put_json_string(out, value, max_bytes);
}

void put_text(buffer& out, std::string_view value, std::size_t max_bytes) noexcept {
    const std::size_t n = std::min(value.size(), max_bytes);
    for (std::size_t i = 0; i < n; ++i) {
        if (out.capacity - out.size < 4 + 3) { // the longest escape, then "..."
            out.put("...");
            return;
        }
        const auto ch = static_cast<unsigned char>(value[i]);
        if (ch < 0x20 || ch == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof(esc), "\\x%02x", unsigned(ch));
            out.put(esc);
        } else {
            out.put(static_cast<char>(ch));
        }
    }
    if (n < value.size()) {
        out.put("...");
    }
}

void set_hooks(hooks h) noexcept {
    active.write = h.write != nullptr ? h.write : write_stderr;
    active.monotonic_ms = h.monotonic_ms != nullptr ? h.monotonic_ms : coarse_monotonic_ms;
    active.unix_ms = h.unix_ms != nullptr ? h.unix_ms : realtime_ms;
}

} // namespace detail

} // namespace ringcast::log
