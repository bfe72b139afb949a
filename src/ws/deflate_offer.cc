// permessage-deflate negotiation (RFC 7692 §5, §7.1): reading the client's
// Sec-WebSocket-Extensions and writing our answer.
//
//   header ──► list of extensions (RFC 6455 §9.1 grammar, commas with optional spaces,
//   │          empty elements allowed) ──► each "permessage-deflate" offer in order:
//   │             parameters known, unrepeated, valid? ──► the first such offer is the agreement
//   └── any syntax error anywhere ──► malformed: nothing is accepted
//
// Declining is never an error: the upgrade goes on without compression (RFC 6455 §9.1 lets
// a server answer with none of the offered extensions).
#include <ringcast/ws.h>

#include <optional>

namespace ringcast::ws {

namespace {

// RFC 9110 §5.6.2 tchar.
constexpr bool is_token_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// A parameter value after unquoting. Values longer than this are never valid for
// permessage-deflate; they are still parsed (for syntax) but kept as "too long".
constexpr std::size_t max_value_chars = 8;

struct param_value {
    bool present = false;
    bool too_long = false;
    std::size_t size = 0;
    char text[max_value_chars] = {};
    std::string_view view() const noexcept { return {text, size}; }
};

/// Window bits as RFC 7692 §7.1.2.1 spells them: "8".."15", no leading zero, no sign.
std::optional<uint8_t> window_bits(const param_value& v) noexcept {
    const std::string_view s = v.view();
    if (v.too_long || s.empty() || s.size() > 2 || s[0] == '0') {
        return std::nullopt;
    }
    unsigned n = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        n = n * 10 + unsigned(c - '0');
    }
    if (n < 8 || n > 15) {
        return std::nullopt;
    }
    return static_cast<uint8_t>(n);
}

/// A cursor over the header with the grammar's pieces.
class reader {
public:
    explicit reader(std::string_view text) noexcept : _s(text) {}

    bool done() const noexcept { return _i >= _s.size(); }
    char peek() const noexcept { return done() ? '\0' : _s[_i]; }
    void skip_ows() noexcept {
        while (!done() && (_s[_i] == ' ' || _s[_i] == '\t')) {
            ++_i;
        }
    }
    bool eat(char c) noexcept {
        if (peek() == c && !done()) {
            ++_i;
            return true;
        }
        return false;
    }
    std::string_view token() noexcept {
        const std::size_t start = _i;
        while (!done() && is_token_char(_s[_i])) {
            ++_i;
        }
        return _s.substr(start, _i - start);
    }
    /// token / quoted-string (RFC 9110 §5.6.4); RFC 6455 §9.1: the unquoted value must
    /// itself be a token. False on a syntax error.
    bool value(param_value& out) noexcept {
        out.present = true;
        const auto keep = [&out](char c) noexcept {
            if (out.size < max_value_chars) {
                out.text[out.size++] = c;
            } else {
                out.too_long = true;
            }
        };
        if (!eat('"')) {
            const std::string_view t = token();
            for (const char c : t) {
                keep(c);
            }
            return !t.empty();
        }
        bool any = false;
        while (!done()) {
            char c = _s[_i++];
            if (c == '"') {
                return any;
            }
            if (c == '\\') {
                if (done()) {
                    return false;
                }
                c = _s[_i++];
            }
            if (!is_token_char(c)) {
                return false;
            }
            keep(c);
            any = true;
        }
        return false; // no closing quote
    }

private:
    std::string_view _s;
    std::size_t _i = 0;
};

enum class param_kind : uint8_t {
    server_no_context_takeover,
    client_no_context_takeover,
    server_max_window_bits,
    client_max_window_bits,
    unknown,
};

param_kind kind_of(std::string_view name) noexcept {
    if (iequals(name, "server_no_context_takeover")) {
        return param_kind::server_no_context_takeover;
    }
    if (iequals(name, "client_no_context_takeover")) {
        return param_kind::client_no_context_takeover;
    }
    if (iequals(name, "server_max_window_bits")) {
        return param_kind::server_max_window_bits;
    }
    if (iequals(name, "client_max_window_bits")) {
        return param_kind::client_max_window_bits;
    }
    return param_kind::unknown;
}

/// Applies one parameter of a permessage-deflate offer; false when the offer cannot be
/// accepted (RFC 7692 §7.1: unknown, repeated or invalid parameters decline it).
bool apply(param_kind kind, const param_value& v, unsigned& seen, deflate_agreement& a) noexcept {
    const unsigned bit = 1u << static_cast<unsigned>(kind);
    if ((seen & bit) != 0) {
        return false;
    }
    seen |= bit;
    switch (kind) {
    case param_kind::server_no_context_takeover:
        return !v.present; // we never keep context anyway (§7.1.1.1)
    case param_kind::client_no_context_takeover:
        a.client_no_context_takeover = true;
        return !v.present;
    case param_kind::server_max_window_bits: {
        const auto bits = window_bits(v);
        if (!bits) {
            return false; // §7.1.2.1: a value is required
        }
        a.server_max_window_bits = *bits;
        a.server_window_named = true;
        return true;
    }
    case param_kind::client_max_window_bits:
        if (!v.present) {
            return true; // the client could limit its window; we do not ask it to
        }
        if (const auto bits = window_bits(v)) {
            a.client_max_window_bits = *bits;
            a.client_window_named = true;
            return true;
        }
        return false;
    case param_kind::unknown:
        return false;
    }
    return false;
}

} // namespace

deflate_negotiation negotiate_deflate(std::string_view header_value) noexcept {
    reader r(header_value);
    deflate_negotiation out;
    bool offered = false;
    bool accepted = false;
    for (;;) {
        r.skip_ows();
        if (r.done()) {
            break;
        }
        if (r.eat(',')) {
            continue; // an empty list element (RFC 9110 §5.6.1)
        }
        const std::string_view name = r.token();
        if (name.empty()) {
            return {deflate_verdict::malformed, {}};
        }
        const bool deflate_offer = iequals(name, "permessage-deflate");
        offered |= deflate_offer;
        bool usable = deflate_offer && !accepted;
        unsigned seen = 0;
        deflate_agreement a;
        r.skip_ows();
        while (r.eat(';')) {
            r.skip_ows();
            const std::string_view param = r.token();
            if (param.empty()) {
                return {deflate_verdict::malformed, {}};
            }
            r.skip_ows();
            param_value v;
            if (r.eat('=')) {
                r.skip_ows();
                if (!r.value(v)) {
                    return {deflate_verdict::malformed, {}};
                }
                r.skip_ows();
            }
            if (usable) {
                usable = apply(kind_of(param), v, seen, a);
            }
        }
        if (!r.done() && !r.eat(',')) {
            return {deflate_verdict::malformed, {}};
        }
        if (usable) {
            accepted = true;
            out.agreement = a;
        }
    }
    if (accepted) {
        out.verdict = deflate_verdict::accepted;
    } else {
        out.verdict = offered ? deflate_verdict::unsupported : deflate_verdict::not_offered;
    }
    return out;
}

std::string deflate_response_value(const deflate_agreement& a) {
    std::string out = "permessage-deflate; server_no_context_takeover";
    if (a.client_no_context_takeover) {
        out += "; client_no_context_takeover";
    }
    if (a.server_window_named) {
        out += "; server_max_window_bits=" + std::to_string(a.server_max_window_bits);
    }
    if (a.client_window_named) {
        out += "; client_max_window_bits=" + std::to_string(a.client_max_window_bits);
    }
    return out;
}

} // namespace ringcast::ws
