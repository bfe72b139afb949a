// See protocol.h.
#include "protocol.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace ringcast::bench {

std::optional<wire_protocol> parse_protocol(std::string_view name) noexcept {
    if (name == "ringcast") {
        return wire_protocol::ringcast;
    }
    if (name == "ws") {
        return wire_protocol::ws;
    }
    if (name == "socketio") {
        return wire_protocol::socketio;
    }
    return std::nullopt;
}

std::string_view protocol_name(wire_protocol p) noexcept {
    switch (p) {
    case wire_protocol::ringcast:
        return "ringcast";
    case wire_protocol::ws:
        return "ws";
    case wire_protocol::socketio:
        return "socketio";
    }
    return "";
}

std::string substitute_channel(std::string_view text, std::string_view channel) {
    constexpr std::string_view key = "{channel}";
    std::string out;
    out.reserve(text.size() + channel.size());
    // Bounded by the text: each step consumes at least one character.
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t at = text.find(key, pos);
        if (at == std::string_view::npos) {
            out.append(text.substr(pos));
            break;
        }
        out.append(text.substr(pos, at - pos));
        out.append(channel);
        pos = at + key.size();
    }
    return out;
}

std::string with_query_param(std::string_view path, std::string_view name, std::string_view value) {
    std::string out;
    out.reserve(path.size() + name.size() + value.size() + 2);
    out.append(path);
    out += path.find('?') == std::string_view::npos ? '?' : '&';
    out.append(name);
    out += '=';
    out.append(value);
    return out;
}

namespace {

/// A compact JWT's alphabet: base64url (RFC 7515 §2) and the two dots.
bool jwt_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

} // namespace

bool read_token_file(const std::string& path, std::size_t max_tokens, std::vector<std::string>& out,
                     std::string& error) {
    FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) {
        error = "--token-file " + path + ": " + std::strerror(errno);
        return false;
    }
    out.clear();
    std::string text;
    char chunk[65536];
    // Bounded by the file: each read consumes bytes or ends the loop.
    for (;;) {
        const std::size_t got = std::fread(chunk, 1, sizeof chunk, f);
        text.append(chunk, got);
        if (got < sizeof chunk) {
            break;
        }
    }
    const bool read_error = std::ferror(f) != 0;
    std::fclose(f);
    if (read_error) {
        error = "--token-file " + path + ": read error";
        return false;
    }
    const std::string_view all = text;
    // Bounded by the text: each step consumes one line.
    for (std::size_t pos = 0, line = 1; pos < all.size(); ++line) {
        const std::size_t nl = all.find('\n', pos);
        std::string_view token = all.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
        pos = nl == std::string_view::npos ? all.size() : nl + 1;
        if (token.ends_with('\r')) {
            token.remove_suffix(1);
        }
        const auto where = [&] { return "--token-file " + path + " line " + std::to_string(line); };
        if (token.empty()) {
            error = where() + " is empty; the file has one JWT per line";
            return false;
        }
        if (token.size() > max_token_bytes) {
            error = where() + " is longer than " + std::to_string(max_token_bytes) + " bytes";
            return false;
        }
        if (!std::all_of(token.begin(), token.end(), jwt_char)) {
            error = where() + " is not a compact JWT (base64url characters and dots only)";
            return false;
        }
        if (out.size() == max_tokens) {
            error =
                "--token-file " + path + " has more than " + std::to_string(max_tokens) + " lines";
            return false;
        }
        out.emplace_back(token);
    }
    if (out.empty()) {
        error = "--token-file " + path + " is empty; it needs one JWT per line";
        return false;
    }
    return true;
}

int64_t number_after(std::string_view text, std::string_view key) noexcept {
    const void* at = memmem(text.data(), text.size(), key.data(), key.size());
    if (at == nullptr) {
        return -1;
    }
    const char* p = static_cast<const char*>(at) + key.size();
    uint64_t v = 0;
    const auto r = std::from_chars(p, text.data() + text.size(), v);
    return r.ptr == p ? -1 : int64_t(v);
}

int64_t envelope_offset(std::string_view text) noexcept {
    constexpr std::string_view key = "\"offset\":";
    const char* begin = text.data();
    const char* q = begin + text.size();
    // Bounded by the text: each step moves one character back.
    while (q > begin && (q[-1] == '}' || q[-1] == ' ' || q[-1] == '\n')) {
        --q;
    }
    const char* digits_end = q;
    while (q > begin && q[-1] >= '0' && q[-1] <= '9') {
        --q;
    }
    if (q == digits_end || std::size_t(q - begin) < key.size() ||
        std::memcmp(q - key.size(), key.data(), key.size()) != 0) {
        return number_after(text, key);
    }
    uint64_t v = 0;
    const auto r = std::from_chars(q, digits_end, v);
    return r.ptr == q ? -1 : int64_t(v);
}

std::string ack_command_prefix(std::string_view channel) {
    std::string out = "{\"op\":\"ack\",\"channel\":\"";
    out.append(channel);
    out += "\",\"offset\":";
    return out;
}

std::size_t write_ack_frame(std::byte* out, std::string_view prefix, uint64_t offset,
                            std::array<std::byte, 4> mask) noexcept {
    char digits[20];
    const auto r = std::to_chars(digits, digits + sizeof digits, offset);
    const auto ndigits = std::size_t(r.ptr - digits);
    const std::size_t len = prefix.size() + ndigits + 1;
    if (len > 125) {
        return 0;
    }
    out[0] = std::byte{0x81}; // FIN + text
    out[1] = std::byte(0x80 | len);
    std::memcpy(out + 2, mask.data(), 4);
    std::byte* payload = out + 6;
    std::memcpy(payload, prefix.data(), prefix.size());
    std::memcpy(payload + prefix.size(), digits, ndigits);
    payload[len - 1] = std::byte{'}'};
    ws::apply_mask(std::span<std::byte>(payload, len), mask);
    return 6 + len;
}

sio_kind classify_socketio(std::string_view text) noexcept {
    if (text.empty()) {
        return sio_kind::other;
    }
    switch (text[0]) {
    case '0':
        return sio_kind::open;
    case '1':
        return sio_kind::close;
    case '2':
        return sio_kind::ping;
    case '4':
        if (text.size() >= 2) {
            switch (text[1]) {
            case '0':
                return sio_kind::connected;
            case '2':
                return sio_kind::event;
            case '3':
                return sio_kind::ack;
            case '4':
                return sio_kind::connect_error;
            case '1':
                return sio_kind::close; // Socket.IO disconnect
            default:
                break;
            }
        }
        return sio_kind::other;
    default:
        return sio_kind::other;
    }
}

std::vector<std::byte> socketio_join_frame(client& cl, std::string_view event,
                                           std::string_view room, uint32_t ack_id) {
    std::string text = "42" + std::to_string(ack_id) + "[\"";
    text.append(event);
    text += "\",\"";
    text.append(room);
    text += "\"]";
    return ws::encode_client_frame(
        ws::opcode::text,
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()),
        cl.random_mask());
}

int socketio_ack_ok(std::string_view text, uint32_t ack_id) noexcept {
    if (!text.starts_with("43")) {
        return -1;
    }
    uint32_t id = 0;
    const char* begin = text.data() + 2;
    const char* end = text.data() + text.size();
    const auto r = std::from_chars(begin, end, id);
    if (r.ptr == begin || id != ack_id || r.ptr == end || *r.ptr != '[') {
        return -1; // another namespace's ACK ("43/nsp,id[") or another id
    }
    // The first argument is the server's answer object; ok:true must be its first field
    // or at least appear before the argument list ends (ringcast: {"ok":true,"channel":..}).
    const std::string_view args(r.ptr, std::size_t(end - r.ptr));
    return args.starts_with("[{\"ok\":true") ||
                   (args.find("\"ok\":true") != args.npos &&
                    args.find("\"ok\":false") == args.npos)
               ? 1
               : 0;
}

void socketio_frames::build(client& cl) {
    const auto frame = [&](std::string_view text) {
        return ws::encode_client_frame(
            ws::opcode::text,
            std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                       text.size()),
            cl.random_mask());
    };
    connect = frame("40");
    pong = frame("3");
}

protocol_layer::verdict protocol_layer::on_text(client& cl, uint32_t conn,
                                                std::string_view text) noexcept {
    if (_protocol != wire_protocol::socketio) {
        return verdict::delivery;
    }
    switch (classify_socketio(text)) {
    case sio_kind::event:
        return verdict::delivery;
    case sio_kind::open:
        // A full queue here means the connection is closing; the scenario sees the close.
        (void)cl.queue_data(conn, _frames.connect);
        return verdict::handled;
    case sio_kind::ping:
        (void)cl.queue_data(conn, _frames.pong);
        return verdict::handled;
    case sio_kind::connected:
        return verdict::ready;
    case sio_kind::ack:
        return verdict::ack;
    case sio_kind::connect_error:
    case sio_kind::close:
        return verdict::refused;
    case sio_kind::other:
        break;
    }
    return verdict::handled;
}

} // namespace ringcast::bench
