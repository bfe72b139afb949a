// request_parser.cc — the incremental HTTP/1.1 request parser (RFC 9112) and the lookups on
// a parsed request.
//
// How bytes move through one request:
//
//   feed(data)
//     head phase: append at most max_header_bytes + 1 bytes in total, then scan only the
//                 new bytes (scan_head resumes at _scan_from: every byte is looked at once)
//       - per byte: CR must be followed by LF, no other control octet, request line and
//         head lengths checked against the limits before the line/head is finished
//       - at the request line's CRLF: the line is validated (fails fast on garbage, TLS,
//         and the HTTP/2 preface "PRI * HTTP/2.0")
//       - at each header line's CRLF: count against max_headers
//       - at the blank line: parse_head() splits the head into views and reads the
//         framing headers; bytes fed after the head are given back, not buffered
//     body phase: append the body bytes as they arrive, up to exactly Content-Length
//     complete:   consumed = bytes of this feed up to the end of the request
//
// Strictness, chosen and fixed here (the caller answers an error and closes):
//   - Line ends are CRLF only. A bare LF or a bare CR anywhere in the head is 400
//     (RFC 9112 §2.2 lets a recipient accept bare LF; we do not: lenient line ends are the
//     classic request-smuggling lever between a proxy and a backend).
//   - An empty line before the request line is 400 (the §2.2 allowance is for clients that
//     add CRLF after a POST body; none of ours do).
//   - The request line is exactly method SP target SP version (RFC 9112 §3): method a token,
//     version "HTTP/1.0" or "HTTP/1.1"; another well-formed "HTTP/x[.y]" is 505, anything
//     else 400.
//   - Target: origin-form ("/path?query"), or absolute-form "http[s]://authority/path"
//     which RFC 9112 §3.2.2 says a server MUST accept; we serve its path and query and
//     ignore the authority. Absolute-form with an empty path, asterisk-form and
//     authority-form are 400 (nothing here serves them).
//   - Header lines: no leading whitespace (obs-fold, RFC 9112 §5.2, and whitespace after
//     the start line, §2.2), a token name, no whitespace before ':' (§5.1). Values are
//     trimmed of OWS and may hold obs-text (0x80-0xFF); NUL and other controls are 400.
//   - Framing: Transfer-Encoding of any kind is 501 (chunked request bodies are not
//     supported; the backend API sends Content-Length). Content-Length must be 1*DIGIT;
//     duplicates must agree in value (else 400); above max_body_bytes is 413.
//   - More than one Host is 400 (RFC 9112 §3.2). A missing Host is tolerated here so that
//     plain HTTP/1.0 health checks work; check_upgrade() requires it for WebSocket.
//
// On error, consumed is 0 and the parser keeps nothing: answer the status and close.
//
// Memory: the buffer holds the bytes received, at most max_header_bytes + 1 while reading
// the head and head + Content-Length after it. Its capacity grows only when bytes arrive
// that do not fit (append()): to what they need or twice what is held, whichever is more,
// but never past what the current phase can hold. So after every feed(), held_bytes() <=
// max(2 × bytes held, max_header_bytes + 1). Content-Length only caps the growth and is
// never reserved up front: a client that announces 1 MiB and sends 16 bytes costs about
// its head, not 1 MiB, however long it then stalls (issue 10; perf/http_body_memory
// measures it on the running server). Doubling keeps the copying amortized O(bytes)
// however the body is split. Every reallocation re-points the request's views into the
// new buffer (rebind_views), so they never dangle. Error and reset() free the buffer.
// noexcept with bounded allocation: running out of memory terminates, as everywhere else
// on the data path.
#include "chars.h"

#include <ringcast/http.h>

#include <algorithm>

namespace ringcast::http {

namespace {

using detail::iequals;
using detail::is_ows;

/// The outcome of validating one piece of the head: status 0 means fine.
struct verdict {
    int status = 0;
    std::string_view reason;
};

constexpr verdict bad(std::string_view reason) noexcept {
    return {400, reason};
}

/// RFC 9110 §5.5: field values hold no CTL but HTAB, and the request line none at all, so
/// any other control octet (NUL, DEL, a TLS record's first byte) rejects the head at once.
/// CR is handled by the CRLF rule.
constexpr bool is_forbidden_control(char c) noexcept {
    const auto octet = static_cast<unsigned char>(c);
    return (octet < 0x20 && c != '\r' && c != '\t') || octet == 0x7f;
}

/// RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive). Sets `minor` for
/// 1.0 and 1.1; a version of that shape (or "HTTP/<digits>") that we do not speak is 505.
verdict parse_version(std::string_view version, int& minor) noexcept {
    if (version == "HTTP/1.1") {
        minor = 1;
        return {};
    }
    if (version == "HTTP/1.0") {
        minor = 0;
        return {};
    }
    constexpr std::string_view name = "HTTP/";
    if (version.substr(0, name.size()) != name) {
        return bad("invalid HTTP version");
    }
    version.remove_prefix(name.size());
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    const std::size_t dot = version.find('.');
    const std::string_view major = version.substr(0, dot);
    const std::string_view rest = dot == std::string_view::npos ? "0" : version.substr(dot + 1);
    if (major.empty() || rest.empty() || !std::all_of(major.begin(), major.end(), is_digit) ||
        !std::all_of(rest.begin(), rest.end(), is_digit)) {
        return bad("invalid HTTP version");
    }
    return {505, "only HTTP/1.0 and HTTP/1.1 are supported"};
}

/// Fills out.target/path/query. Accepts origin-form and absolute-form with a path (see the
/// file comment); every octet must be visible ASCII (RFC 3986 has no room for others).
verdict parse_target(std::string_view target, request& out) noexcept {
    if (target.empty()) {
        return bad("empty request target");
    }
    for (const char c : target) {
        const auto octet = static_cast<unsigned char>(c);
        if (octet <= 0x20 || octet >= 0x7f) {
            return bad("invalid character in request target");
        }
    }
    std::string_view origin = target;
    if (target.front() != '/') {
        if (detail::istarts_with(target, "http://")) {
            origin.remove_prefix(7);
        } else if (detail::istarts_with(target, "https://")) {
            origin.remove_prefix(8);
        } else {
            return bad("request target must start with '/'");
        }
        const std::size_t slash = origin.find('/');
        const std::size_t authority_end = origin.find_first_of("/?#");
        if (slash == std::string_view::npos || slash == 0 || authority_end != slash) {
            return bad("absolute-form request target needs a host and a path");
        }
        origin.remove_prefix(slash);
    }
    const std::size_t question = origin.find('?');
    out.target = target;
    out.path = origin.substr(0, question);
    out.query =
        question == std::string_view::npos ? std::string_view{} : origin.substr(question + 1);
    return {};
}

/// RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single spaces.
/// The version is checked first so the HTTP/2 preface gets 505 rather than 400.
verdict parse_request_line(std::string_view line, request& out) noexcept {
    const std::size_t first = line.find(' ');
    const std::size_t last = line.rfind(' ');
    if (line.empty() || first == std::string_view::npos || first == last) {
        return bad("malformed request line");
    }
    if (const verdict v = parse_version(line.substr(last + 1), out.version_minor); v.status) {
        return v;
    }
    out.method = line.substr(0, first);
    if (!detail::is_token(out.method)) {
        return bad("invalid method");
    }
    return parse_target(line.substr(first + 1, last - first - 1), out);
}

/// One field line, already free of CR, LF and control octets other than HTAB (scan_head).
verdict parse_field_line(std::string_view line, header& out) noexcept {
    if (is_ows(line.front())) {
        return bad("obsolete line folding is not allowed");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        return bad("header line without ':'");
    }
    const std::string_view name = line.substr(0, colon);
    if (!name.empty() && is_ows(name.back())) {
        return bad("whitespace before ':' in header");
    }
    if (!detail::is_token(name)) {
        return bad("invalid header name");
    }
    out.name = name;
    out.value = detail::trim_ows(line.substr(colon + 1));
    return {};
}

/// RFC 9110 §8.6: Content-Length = 1*DIGIT. Values above `max` are 413 without overflow,
/// however many digits they have.
verdict parse_content_length(std::string_view value, std::size_t max, std::size_t& out) noexcept {
    if (value.empty()) {
        return bad("invalid Content-Length");
    }
    std::size_t n = 0;
    bool too_large = false;
    for (const char c : value) {
        if (c < '0' || c > '9') {
            return bad("invalid Content-Length");
        }
        const auto digit = static_cast<std::size_t>(c - '0');
        if (too_large || max < digit || n > (max - digit) / 10) {
            too_large = true;
        } else {
            n = n * 10 + digit;
        }
    }
    if (too_large) {
        return {413, "request body too large"};
    }
    out = n;
    return {};
}

/// The same bytes at the same offset in another buffer. Views are either null (never set:
/// an absent query, the body before complete) or lie inside [from, from + size], so the
/// subtraction is between pointers into one live array.
std::string_view rebased(std::string_view view, const char* from, const char* to) noexcept {
    if (view.data() == nullptr) {
        return view;
    }
    return {to + (view.data() - from), view.size()};
}

} // namespace

// --- request ---------------------------------------------------------------------------

std::string_view request::header_value(std::string_view name) const noexcept {
    for (const header& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

bool request::has_header(std::string_view name) const noexcept {
    return std::any_of(headers.begin(), headers.end(),
                       [name](const header& h) { return iequals(h.name, name); });
}

bool request::header_has_token(std::string_view name, std::string_view token) const noexcept {
    return std::any_of(headers.begin(), headers.end(), [&](const header& h) {
        return iequals(h.name, name) && detail::list_has_token(h.value, token);
    });
}

// RFC 9112 §9.3: persistent by default in 1.1; in 1.0 only with "keep-alive".
bool request::keep_alive() const noexcept {
    if (header_has_token("connection", "close")) {
        return false;
    }
    return version_minor >= 1 || header_has_token("connection", "keep-alive");
}

// The first "name=value" or bare "name" among the '&'-separated pairs; names compare
// byte for byte, as sent.
std::string_view request::query_param(std::string_view name) const noexcept {
    std::string_view rest = query;
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        }
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    return {};
}

// --- request_parser --------------------------------------------------------------------

request_parser::request_parser(request_limits limits) : _limits(limits) {}

feed_result request_parser::feed(std::string_view data) noexcept {
    if (_final.status != parse_status::need_more) {
        feed_result sticky = _final;
        sticky.consumed = 0;
        return sticky;
    }
    std::size_t consumed = 0;
    if (_head_bytes == 0) {
        // The buffer holds at most max_header_bytes here (scan_head fails on the byte past
        // it), so this takes at most one byte over the limit: enough to see the overflow.
        const std::size_t before = _buffer.size();
        const std::size_t room = _limits.max_header_bytes - before;
        const std::size_t take = data.size() <= room ? data.size() : room + 1;
        append(data.substr(0, take), _limits.max_header_bytes + 1);
        if (const feed_result r = scan_head(); r.status == parse_status::error) {
            return r;
        }
        if (_head_bytes == 0) {
            return {parse_status::need_more, take, 0, {}};
        }
        // Bytes after the head go back to `data`: they are the body or the next request.
        _buffer.resize(_head_bytes);
        consumed = _head_bytes - before;
        data.remove_prefix(consumed);
        if (const feed_result r = parse_head(); r.status == parse_status::error) {
            return r;
        }
    }
    // The body grows with what arrives; Content-Length only says where it ends.
    const std::size_t want = _head_bytes + _body_bytes - _buffer.size();
    const std::size_t take = std::min(want, data.size());
    append(data.substr(0, take), _head_bytes + _body_bytes);
    consumed += take;
    if (take < want) {
        return {parse_status::need_more, consumed, 0, {}};
    }
    _request.body = std::string_view(_buffer.data() + _head_bytes, _body_bytes);
    _final = {parse_status::complete, 0, 0, {}};
    return {parse_status::complete, consumed, 0, {}};
}

// Appends `bytes`; `limit` (>= the new size) is the most the buffer can hold in this phase.
// When they do not fit, the new capacity is max(new size, min(2 × old size, limit)):
// geometric, so the copies sum to O(final size), and never more than twice what is held
// after the append nor more than the phase can use. The old buffer is still alive while the
// views are moved over, so rebinding is plain offset arithmetic, no re-parse.
void request_parser::append(std::string_view bytes, std::size_t limit) noexcept {
    const std::size_t size = _buffer.size();
    const std::size_t needed = size + bytes.size();
    if (needed > _buffer.capacity()) {
        std::vector<char> bigger;
        bigger.reserve(std::max(needed, std::min(2 * size, limit)));
        bigger.assign(_buffer.begin(), _buffer.end());
        rebind_views(_buffer.data(), bigger.data());
        _buffer.swap(bigger);
    }
    _buffer.insert(_buffer.end(), bytes.begin(), bytes.end());
}

// Points every view of _request (set by scan_head's request line and by parse_head) at the
// same offset in the buffer that replaces the current one.
void request_parser::rebind_views(const char* from, const char* to) noexcept {
    request& r = _request;
    for (std::string_view* view : {&r.method, &r.target, &r.path, &r.query, &r.body}) {
        *view = rebased(*view, from, to);
    }
    for (header& h : r.headers) {
        h.name = rebased(h.name, from, to);
        h.value = rebased(h.value, from, to);
    }
}

// Scans the bytes not scanned yet for the end of the head, enforcing the per-byte rules and
// the limits. Sets _head_bytes when the blank line is found; returns an error or need_more.
feed_result request_parser::scan_head() noexcept {
    const char* buf = _buffer.data();
    const std::size_t end = _buffer.size();
    for (std::size_t i = _scan_from; i < end; ++i) {
        if (i >= _limits.max_header_bytes) {
            return fail(431, "request header section too large");
        }
        const char c = buf[i];
        const bool after_cr = i > 0 && buf[i - 1] == '\r';
        if (c == '\n') {
            if (!after_cr) {
                return fail(400, "line ending is not CRLF");
            }
            const std::size_t line_end = i - 1;
            if (_line_start == 0) {
                const std::string_view line(buf, line_end);
                if (const verdict v = parse_request_line(line, _request); v.status) {
                    return fail(v.status, v.reason);
                }
            } else if (line_end == _line_start) {
                _head_bytes = i + 1;
                _scan_from = i + 1;
                return {};
            } else if (++_header_lines > _limits.max_headers) {
                return fail(431, "too many header fields");
            }
            _line_start = i + 1;
        } else if (after_cr) {
            return fail(400, "CR not followed by LF");
        } else if (is_forbidden_control(c)) {
            return fail(400, "control character in request head");
        } else if (_line_start == 0 && c != '\r' && i >= _limits.max_request_line_bytes) {
            return fail(414, "request line too long");
        }
    }
    _scan_from = end;
    return {};
}

// Splits the complete head (validated line by line by scan_head) into _request and reads
// the framing headers. Rebinds the request line scan_head parsed (same bytes, same result).
feed_result request_parser::parse_head() noexcept {
    const std::string_view head(_buffer.data(), _head_bytes);
    std::size_t eol = head.find("\r\n");
    if (const verdict v = parse_request_line(head.substr(0, eol), _request); v.status) {
        return fail(v.status, v.reason);
    }
    _request.headers.clear();
    _request.headers.reserve(_header_lines);
    bool have_length = false;
    std::size_t length = 0;
    std::size_t hosts = 0;
    for (std::size_t pos = eol + 2; (eol = head.find("\r\n", pos)) != pos; pos = eol + 2) {
        header field;
        if (const verdict v = parse_field_line(head.substr(pos, eol - pos), field); v.status) {
            return fail(v.status, v.reason);
        }
        _request.headers.push_back(field);
        if (iequals(field.name, "content-length")) {
            std::size_t value = 0;
            const verdict v = parse_content_length(field.value, _limits.max_body_bytes, value);
            if (v.status) {
                return fail(v.status, v.reason);
            }
            if (have_length && value != length) {
                return fail(400, "conflicting Content-Length headers");
            }
            have_length = true;
            length = value;
        } else if (iequals(field.name, "transfer-encoding")) {
            return fail(501, "Transfer-Encoding is not supported; send Content-Length");
        } else if (iequals(field.name, "host") && ++hosts > 1) {
            return fail(400, "more than one Host header");
        }
    }
    _body_bytes = length;
    return {};
}

feed_result request_parser::fail(int status, std::string_view reason) noexcept {
    std::vector<char>().swap(_buffer); // a refused request keeps no memory
    _request = request{};
    _final = {parse_status::error, 0, status, reason};
    return _final;
}

void request_parser::reset() noexcept {
    std::vector<char>().swap(_buffer);
    _request = request{};
    _scan_from = 0;
    _line_start = 0;
    _header_lines = 0;
    _head_bytes = 0;
    _body_bytes = 0;
    _final = {};
}

} // namespace ringcast::http
