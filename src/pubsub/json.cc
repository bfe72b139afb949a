// simdjson glue for the protocol parsers; the validation strategy is in json.h.
#include "json.h"

#include <cstring>
#include <new>

namespace ringcast::pubsub::json {

namespace {

// RFC 8259 §2: insignificant whitespace is space, tab, line feed and carriage return.
constexpr bool is_json_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_json_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_json_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Steps past a scalar whose token has already been checked. On-demand skips a value that
// was never read by counting brackets only, so it would step over a stray ':' or '}' right
// after the value (found by the fuzzer: {"x":"c":"e1"},"id":2} was taken for an object);
// a typed read advances exactly one token, and the next field or element step then checks
// for ',' and the closing bracket strictly.
bool consume_scalar(od::value& v, char first) noexcept {
    switch (first) {
    case '"': {
        od::raw_json_string ignored;
        return v.get_raw_json_string().get(ignored) == simdjson::SUCCESS;
    }
    case 't':
    case 'f': {
        bool ignored = false;
        return v.get_bool().get(ignored) == simdjson::SUCCESS;
    }
    case 'n': {
        bool is_null = false;
        return v.is_null().get(is_null) == simdjson::SUCCESS && is_null;
    }
    default: {
        od::number ignored;
        return v.get_number().get(ignored) == simdjson::SUCCESS;
    }
    }
}

} // namespace

simdjson::error_code thread_state::open(std::string_view text, od::document& doc) noexcept {
    if (!_buf || text.size() > _capacity) {
        // Grow geometrically so a thread that sees slowly growing messages reallocates
        // O(log n) times; never shrinks (see json.h "Padding").
        std::size_t want = _capacity == 0 ? 1024 : _capacity;
        while (want < text.size()) {
            want *= 2;
        }
        std::unique_ptr<char[]> grown(new (std::nothrow) char[want + simdjson::SIMDJSON_PADDING]);
        if (!grown) {
            return simdjson::MEMALLOC;
        }
        _buf = std::move(grown);
        _capacity = want;
    }
    if (!text.empty()) { // an empty view may hold a null pointer, which memcpy may not get
        std::memcpy(_buf.get(), text.data(), text.size());
    }
    // simdjson never interprets the padding, but zeroing it keeps the bytes deterministic
    // (and MemorySanitizer quiet).
    std::memset(_buf.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
    _input = text.data();
    return _ondemand.iterate(_buf.get(), text.size(), _capacity + simdjson::SIMDJSON_PADDING)
        .get(doc);
}

bool thread_state::valid_json(std::string_view copy) noexcept {
    // The span lies inside the padded buffer, so the bytes after it (the rest of the
    // message, then the padding) satisfy the DOM parser's padding contract without a copy.
    simdjson::dom::element ignored;
    return _dom.parse(copy.data(), copy.size(), false).get(ignored) == simdjson::SUCCESS;
}

thread_state& local() noexcept {
    static thread_local thread_state state;
    return state;
}

bool read_name(od::value& v, std::string_view& out) noexcept {
    const std::string_view token = v.raw_json_token();
    if (token.empty() || token[0] != '"') {
        return false;
    }
    // Stage 1 has already checked that the string is terminated and has no raw control
    // characters; the token ends at its closing quote plus any whitespace.
    for (std::size_t i = 1; i < token.size(); ++i) {
        if (token[i] == '"') {
            out = token.substr(1, i - 1);
            return consume_scalar(v, '"');
        }
        if (token[i] == '\\') {
            return false;
        }
    }
    return false;
}

bool read_uint(od::value& v, uint64_t max, uint64_t& out) noexcept {
    const std::string_view token = trim(v.raw_json_token());
    // RFC 8259 §6: int = zero / ( digit1-9 *DIGIT ); a fraction or exponent makes the
    // number a non-integer literal here even when its value is whole ("1.0", "1e3").
    if (token.empty() || token.size() > 20 || (token[0] == '0' && token.size() > 1)) {
        return false;
    }
    uint64_t value = 0;
    for (const char c : token) {
        if (c < '0' || c > '9') {
            return false;
        }
        const auto digit = static_cast<uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            return false;
        }
        value = value * 10 + digit;
    }
    if (value > max) {
        return false;
    }
    out = value;
    return consume_scalar(v, '0');
}

bool read_raw(thread_state& state, od::value& v, std::string_view& out) noexcept {
    od::json_type type;
    if (v.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    std::string_view raw;
    if (type == od::json_type::object) {
        od::object object;
        if (v.get_object().get(object) != simdjson::SUCCESS ||
            object.raw_json().get(raw) != simdjson::SUCCESS) {
            return false;
        }
    } else if (type == od::json_type::array) {
        od::array array;
        if (v.get_array().get(array) != simdjson::SUCCESS ||
            array.raw_json().get(raw) != simdjson::SUCCESS) {
            return false;
        }
    } else {
        raw = trim(v.raw_json_token());
        // Validated by the DOM parser first, so the typed read only has to advance.
        if (raw.empty() || !state.valid_json(raw) || !consume_scalar(v, raw[0])) {
            return false;
        }
        out = raw;
        return true;
    }
    // A container was consumed by bracket counting; the DOM parser then proves the span is
    // exactly one valid value, so its last bracket really closes it.
    raw = trim(raw);
    if (raw.empty() || !state.valid_json(raw)) {
        return false;
    }
    out = raw;
    return true;
}

bool at_end(od::document& doc) noexcept {
    const char* ignored = nullptr;
    return doc.current_location().get(ignored) == simdjson::OUT_OF_BOUNDS;
}

} // namespace ringcast::pubsub::json
