// packet.cc — decode_sio: one Socket.IO v5 packet from the text of an Engine.IO message.
//
//   <type>[<attachments>-][<nsp>,][<ack id>][<json>]
//     "5"     "2-"          "/chat,"  "17"    "[\"ev\",{\"_placeholder\":true,\"num\":0}]"
//
// The header is read byte by byte with every bound checked before it is passed; the JSON
// is validated completely by simdjson's DOM parser (why simdjson: docs/socketio.md
// "JSON"), then its shape is checked for the type, the event name taken unescaped from the
// DOM, and the arguments cut from the raw text with a scanner that may trust the grammar
// because the DOM parser has just proven it.
//
// Contracts are in include/ringcast/socketio.h.
#include <ringcast/socketio.h>

#include <simdjson.h>

#include <array>
#include <cstring>
#include <memory>
#include <string_view>

namespace ringcast::socketio {

namespace {

// Event names socket.io-parser refuses (RESERVED_EVENTS): the client's and the server's
// own lifecycle events, which a peer must not be able to fire.
constexpr std::array<std::string_view, 6> reserved_events = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

// One thread's JSON state: the padded copy simdjson reads (it reads up to
// SIMDJSON_PADDING bytes past the end) and the DOM parser, both grown to the largest input
// seen on the thread and reused.
struct json_state {
    std::unique_ptr<char[]> buf;
    std::size_t capacity = 0;
    simdjson::dom::parser parser;

    simdjson::error_code parse(std::string_view text, simdjson::dom::element& root) noexcept {
        if (text.size() > capacity) {
            const std::size_t want = text.size() < 4096 ? 4096 : text.size();
            buf.reset(new (std::nothrow) char[want + simdjson::SIMDJSON_PADDING]);
            if (!buf) {
                capacity = 0;
                return simdjson::MEMALLOC;
            }
            capacity = want;
        }
        std::memcpy(buf.get(), text.data(), text.size());
        std::memset(buf.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
        return parser.parse(buf.get(), text.size(), false).get(root);
    }
};

json_state& local_json() {
    thread_local json_state state;
    return state;
}

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Namespaces are names: no control bytes, valid UTF-8, no ',' (which ends them).
bool valid_namespace(std::string_view nsp) noexcept {
    for (const char c : nsp) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return false;
        }
    }
    return simdjson::validate_utf8(nsp.data(), nsp.size());
}

// Index just past the JSON string starting at text[i] == '"'. `text` is valid JSON, so
// the closing quote exists.
std::size_t skip_string(std::string_view text, std::size_t i) noexcept {
    ++i;
    while (i < text.size() && text[i] != '"') {
        i += text[i] == '\\' ? std::size_t{2} : std::size_t{1};
    }
    return i + 1;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// The raw text between the brackets of the valid JSON array `json`, after the first
// `skip_first` (0 or 1; the first element is then a string) elements. Trimmed.
std::string_view array_tail(std::string_view json, bool skip_first) noexcept {
    std::string_view inner = trim(json);
    inner = trim(inner.substr(1, inner.size() - 2)); // drop '[' and ']'
    if (!skip_first) {
        return inner;
    }
    const std::size_t after = skip_string(inner, 0);
    std::string_view rest = trim(inner.substr(after < inner.size() ? after : inner.size()));
    if (!rest.empty()) {
        rest.remove_prefix(1); // the ','
    }
    return trim(rest);
}

// JSON.parse semantics for an object's member: the last of duplicate names wins.
bool last_member(simdjson::dom::object obj, std::string_view name, simdjson::dom::element& out) {
    bool found = false;
    for (auto field : obj) {
        if (field.key == name) {
            out = field.value;
            found = true;
        }
    }
    return found;
}

// Every {"_placeholder":true,"num":N} below `e` has an integer N below `attachments`
// (socket.io-parser's reconstructPacket throws "illegal attachments" otherwise).
bool placeholders_valid(simdjson::dom::element e, std::size_t attachments) {
    switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
        for (auto child : simdjson::dom::array(e)) {
            if (!placeholders_valid(child, attachments)) {
                return false;
            }
        }
        return true;
    case simdjson::dom::element_type::OBJECT: {
        const simdjson::dom::object obj(e);
        simdjson::dom::element flag;
        if (last_member(obj, "_placeholder", flag) && flag.is_bool() && bool(flag)) {
            simdjson::dom::element num;
            if (!last_member(obj, "num", num)) {
                return false;
            }
            if (num.is_uint64()) {
                return uint64_t(num) < attachments;
            }
            return false;
        }
        for (auto field : obj) {
            if (!placeholders_valid(field.value, attachments)) {
                return false;
            }
        }
        return true;
    }
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
    case simdjson::dom::element_type::STRING:
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::NULL_VALUE:
        return true;
    }
    return true;
}

} // namespace

std::string_view describe(sio_error e) noexcept {
    switch (e) {
    case sio_error::empty_packet:
        return "empty Socket.IO packet";
    case sio_error::unknown_type:
        return "unknown Socket.IO packet type";
    case sio_error::bad_attachment_count:
        return "bad attachment count";
    case sio_error::too_many_attachments:
        return "too many attachments";
    case sio_error::namespace_too_long:
        return "namespace too long";
    case sio_error::bad_namespace:
        return "bad namespace";
    case sio_error::ack_id_too_long:
        return "ack id too long";
    case sio_error::bad_json:
        return "payload is not valid JSON";
    case sio_error::missing_payload:
        return "packet needs a payload";
    case sio_error::unexpected_payload:
        return "packet takes no payload";
    case sio_error::bad_payload:
        return "payload has the wrong shape for the packet type";
    case sio_error::reserved_event_name:
        return "reserved event name";
    case sio_error::bad_placeholder:
        return "binary placeholder does not name an attachment";
    case sio_error::unexpected_text:
        return "text packet while attachments are awaited";
    case sio_error::unexpected_binary:
        return "binary message when no attachment is awaited";
    case sio_error::attachments_too_large:
        return "attachments exceed the maximum size";
    case sio_error::packet_too_large:
        return "packet exceeds the maximum size";
    }
    return "unknown Socket.IO error";
}

result<sio_packet, sio_error> decode_sio(std::string_view text, const sio_limits& limits) {
    if (text.size() > limits.max_packet_bytes) {
        return unexpected{sio_error::packet_too_large};
    }
    if (text.empty()) {
        return unexpected{sio_error::empty_packet};
    }
    if (text[0] < '0' || text[0] > '6') {
        return unexpected{sio_error::unknown_type};
    }
    sio_packet p;
    p.type = static_cast<sio_type>(text[0] - '0');
    std::size_t i = 1;
    const bool binary = p.type == sio_type::binary_event || p.type == sio_type::binary_ack;
    if (binary) {
        const std::size_t start = i;
        std::size_t count = 0;
        while (i < text.size() && is_digit(text[i])) {
            if (count > limits.max_attachments) {
                return unexpected{sio_error::too_many_attachments};
            }
            count = count * 10 + static_cast<std::size_t>(text[i] - '0');
            ++i;
        }
        if (i == start || i == text.size() || text[i] != '-' || text[start] == '0') {
            return unexpected{sio_error::bad_attachment_count};
        }
        if (count > limits.max_attachments) {
            return unexpected{sio_error::too_many_attachments};
        }
        p.attachments = count;
        ++i; // '-'
    }
    if (i < text.size() && text[i] == '/') {
        const std::size_t start = i;
        while (i < text.size() && text[i] != ',') {
            if (i - start == limits.max_namespace_bytes) {
                return unexpected{sio_error::namespace_too_long};
            }
            ++i;
        }
        p.nsp = text.substr(start, i - start);
        if (!valid_namespace(p.nsp)) {
            return unexpected{sio_error::bad_namespace};
        }
        if (i < text.size()) {
            ++i; // ','
        }
    }
    if (i < text.size() && is_digit(text[i])) {
        const std::size_t start = i;
        uint64_t id = 0;
        while (i < text.size() && is_digit(text[i])) {
            if (i - start == limits.max_ack_id_digits) {
                return unexpected{sio_error::ack_id_too_long};
            }
            id = id * 10 + static_cast<uint64_t>(text[i] - '0');
            ++i;
        }
        p.ack_id = id;
    }
    p.data = text.substr(i);

    if (p.data.empty()) {
        switch (p.type) {
        case sio_type::connect:
        case sio_type::disconnect:
            return p;
        case sio_type::event:
        case sio_type::ack:
        case sio_type::connect_error:
        case sio_type::binary_event:
        case sio_type::binary_ack:
            return unexpected{sio_error::missing_payload};
        }
    }
    if (p.type == sio_type::disconnect) {
        return unexpected{sio_error::unexpected_payload};
    }
    // Every payload a type allows starts with one of these. Leading whitespace in
    // particular must not be JSON's: socket.io-parser reads it as ack id digits
    // (Number(" ") == " " in JavaScript), so "2 [..." is an ack id 0 there.
    if (p.data[0] != '[' && p.data[0] != '{' && p.data[0] != '"') {
        return unexpected{sio_error::bad_payload};
    }

    simdjson::dom::element root;
    if (local_json().parse(p.data, root) != simdjson::SUCCESS) {
        return unexpected{sio_error::bad_json};
    }
    const auto kind = root.type();
    switch (p.type) {
    case sio_type::connect:
        if (kind != simdjson::dom::element_type::OBJECT) {
            return unexpected{sio_error::bad_payload};
        }
        break;
    case sio_type::disconnect:
        return unexpected{sio_error::unexpected_payload};
    case sio_type::connect_error:
        if (kind != simdjson::dom::element_type::OBJECT &&
            kind != simdjson::dom::element_type::STRING) {
            return unexpected{sio_error::bad_payload};
        }
        break;
    case sio_type::event:
    case sio_type::binary_event: {
        if (kind != simdjson::dom::element_type::ARRAY) {
            return unexpected{sio_error::bad_payload};
        }
        const simdjson::dom::array args(root);
        if (args.size() == 0) {
            return unexpected{sio_error::bad_payload};
        }
        std::string_view name;
        if (args.at(0).get(name) != simdjson::SUCCESS) {
            return unexpected{sio_error::bad_payload};
        }
        for (const std::string_view reserved : reserved_events) {
            if (name == reserved) {
                return unexpected{sio_error::reserved_event_name};
            }
        }
        p.event.assign(name);
        p.args = array_tail(p.data, true);
        break;
    }
    case sio_type::ack:
    case sio_type::binary_ack:
        if (kind != simdjson::dom::element_type::ARRAY) {
            return unexpected{sio_error::bad_payload};
        }
        p.args = array_tail(p.data, false);
        break;
    }
    if (binary && !placeholders_valid(root, p.attachments)) {
        return unexpected{sio_error::bad_placeholder};
    }
    return p;
}

result<connect_auth, sio_error> parse_connect_auth(std::string_view data) {
    connect_auth auth;
    if (data.empty()) {
        return auth;
    }
    simdjson::dom::element root;
    if (local_json().parse(data, root) != simdjson::SUCCESS) {
        return unexpected{sio_error::bad_json};
    }
    simdjson::dom::object obj;
    if (root.get(obj) != simdjson::SUCCESS) {
        return unexpected{sio_error::bad_payload};
    }
    for (auto field : obj) {
        std::optional<std::string>* slot = field.key == "token"    ? &auth.token
                                           : field.key == "pid"    ? &auth.pid
                                           : field.key == "offset" ? &auth.offset
                                                                   : nullptr;
        if (slot == nullptr) {
            continue;
        }
        std::string_view value;
        if (slot->has_value() || field.value.get(value) != simdjson::SUCCESS) {
            return unexpected{sio_error::bad_payload};
        }
        slot->emplace(value);
    }
    return auth;
}

} // namespace ringcast::socketio
