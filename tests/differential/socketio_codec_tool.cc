// socketio_codec_tool — the Socket.IO codec on stdin/stdout, for the differential test
// against npm's engine.io-parser and socket.io-parser (socketio_js.js). One command per
// line, one answer per line. A field is "x" + the hex of its bytes, or "-" for absent.
//
//   eio x<packet>                    -> ok <type> x<data>               | err <reason>
//   payload x<body>                  -> ok <type>,<t|b>,x<data> ...     | err <reason>
//   sio x<text> [x<attachment> ...]  -> ok <json description>            | wait <n> | err <reason>
//   enc_connect <nsp> <sid> <pid|->  enc_error <nsp> <message> <data|->  enc_disconnect <nsp>
//   enc_event <nsp> <event> <args> <id|-> <offset|->   enc_ack <nsp> <id> <args>
//   enc_fanout <nsp> <event> <data> <offset|->         (ids are decimal, not hex)
//   enc_payload <type>,<t|b>,x<data> ...               enc_open <sid> <0|1> <pi> <pt> <mp>
//                                    -> ok x<encoded>
//
// The description of a decoded Socket.IO packet is one JSON line: type, nsp, id (or null),
// attachments, data (the raw JSON text as a string, or null), event, args (raw text as a
// string), bin (hex of each attachment).
#include <ringcast/socketio.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace ringcast::socketio;

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        out += digits[u >> 4];
        out += digits[u & 15];
    }
    return out;
}

int nibble(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    std::cerr << "bad hex\n";
    std::exit(2);
}

std::optional<std::string> field(const std::string& f) {
    if (f == "-") {
        return std::nullopt;
    }
    if (f.empty() || f[0] != 'x' || f.size() % 2 != 1) {
        std::cerr << "bad field " << f << "\n";
        std::exit(2);
    }
    std::string out;
    for (std::size_t i = 1; i < f.size(); i += 2) {
        out += static_cast<char>(nibble(f[i]) << 4 | nibble(f[i + 1]));
    }
    return out;
}

std::string need(const std::vector<std::string>& words, std::size_t i) {
    if (i >= words.size()) {
        std::cerr << "missing field\n";
        std::exit(2);
    }
    auto f = field(words[i]);
    return f ? *f : std::string();
}

std::optional<std::string> maybe(const std::vector<std::string>& words, std::size_t i) {
    if (i >= words.size()) {
        std::cerr << "missing field\n";
        std::exit(2);
    }
    return field(words[i]);
}

std::optional<uint64_t> maybe_id(const std::vector<std::string>& words, std::size_t i) {
    if (i >= words.size() || words[i] == "-") {
        return std::nullopt;
    }
    return std::stoull(words[i]);
}

eio_outgoing outgoing(const std::string& word, std::string& storage) {
    // <type>,<t|b>,x<hex>
    const auto comma = word.find(',');
    const int type = std::stoi(word.substr(0, comma));
    const char enc = word[comma + 1];
    storage = *field(word.substr(comma + 3));
    return {static_cast<eio_type>(type), enc == 'b' ? eio_encoding::binary : eio_encoding::text,
            storage};
}

std::string describe_packet(const sio_packet& p, std::span<const std::string> attachments) {
    std::string out = "{\"type\":";
    out += std::to_string(static_cast<int>(p.type));
    out += ",\"nsp\":";
    append_json_string(out, p.nsp);
    out += ",\"id\":";
    out += p.ack_id ? std::to_string(*p.ack_id) : "null";
    out += ",\"attachments\":" + std::to_string(p.attachments);
    out += ",\"data\":";
    if (p.data.empty()) {
        out += "null";
    } else {
        append_json_string(out, p.data);
    }
    out += ",\"event\":";
    append_json_string(out, p.event);
    out += ",\"args\":";
    append_json_string(out, p.args);
    out += ",\"bin\":[";
    for (std::size_t i = 0; i < attachments.size(); ++i) {
        out += (i == 0 ? "\"" : ",\"") + hex(attachments[i]) + "\"";
    }
    out += "]}";
    return out;
}

std::string run(const std::vector<std::string>& w) {
    const std::string& cmd = w[0];
    if (cmd == "eio") {
        const std::string in = need(w, 1);
        auto p = decode_eio_text(in);
        if (!p) {
            return "err " + std::string(describe(p.error()));
        }
        return "ok " + std::to_string(static_cast<int>(p->type)) + " x" + hex(p->data);
    }
    if (cmd == "payload") {
        const std::string in = need(w, 1);
        auto packets = decode_payload(in);
        if (!packets) {
            return "err " + std::string(describe(packets.error()));
        }
        std::string out = "ok";
        for (const eio_packet& p : *packets) {
            out += " " + std::to_string(static_cast<int>(p.type)) +
                   (p.encoding == eio_encoding::binary ? ",b,x" : ",t,x") + hex(p.data());
        }
        return out;
    }
    if (cmd == "sio") {
        sio_decoder decoder;
        const std::string text = need(w, 1);
        auto r = decoder.feed_text(text);
        for (std::size_t i = 2; r && i < w.size(); ++i) {
            const std::string bytes = need(w, i);
            r = decoder.feed_binary(bytes);
        }
        if (!r) {
            return "err " + std::string(describe(r.error()));
        }
        switch (*r) {
        case sio_decoder::status::awaiting_attachments:
            return "wait " + std::to_string(decoder.awaiting());
        case sio_decoder::status::ready:
            return "ok " + describe_packet(decoder.packet(), decoder.attachments());
        }
    }
    std::string out;
    if (cmd == "enc_connect") {
        out = encode_connect(need(w, 1), need(w, 2), maybe(w, 3));
    } else if (cmd == "enc_error") {
        out = encode_connect_error(need(w, 1), need(w, 2), maybe(w, 3));
    } else if (cmd == "enc_disconnect") {
        out = encode_disconnect(need(w, 1));
    } else if (cmd == "enc_event") {
        out = encode_event(need(w, 1), need(w, 2), need(w, 3), maybe_id(w, 4), maybe(w, 5));
    } else if (cmd == "enc_ack") {
        out = encode_ack(need(w, 1), std::stoull(w.at(2)), need(w, 3));
    } else if (cmd == "enc_fanout") {
        append_eio_event(out, need(w, 1), need(w, 2), need(w, 3), maybe(w, 4));
    } else if (cmd == "enc_payload") {
        std::vector<std::string> storage(w.size());
        std::vector<eio_outgoing> packets;
        for (std::size_t i = 1; i < w.size(); ++i) {
            packets.push_back(outgoing(w[i], storage[i]));
        }
        out = encode_payload(packets);
    } else if (cmd == "enc_open") {
        const std::string sid = need(w, 1);
        out = encode_open({.sid = sid,
                           .websocket_upgrade = w.at(2) == "1",
                           .ping_interval_ms = static_cast<uint32_t>(std::stoul(w.at(3))),
                           .ping_timeout_ms = static_cast<uint32_t>(std::stoul(w.at(4))),
                           .max_payload_bytes = static_cast<uint32_t>(std::stoul(w.at(5)))});
    } else {
        std::cerr << "unknown command " << cmd << "\n";
        std::exit(2);
    }
    return "ok x" + hex(out);
}

} // namespace

int main() {
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream words_in(line);
        std::vector<std::string> words;
        for (std::string word; words_in >> word;) {
            words.push_back(word);
        }
        if (words.empty()) {
            continue;
        }
        std::cout << run(words) << '\n';
    }
    return 0;
}
