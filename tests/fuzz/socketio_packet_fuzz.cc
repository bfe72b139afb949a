// libFuzzer target for the Socket.IO codec (include/ringcast/socketio.h). Built twice by
// tests/fuzz/meson.build: with -fsanitize=fuzzer as the fuzzer, and with replay_main.cc as
// the fuzz-corpus test of every build.
//
// Input layout: byte 0 picks the entry (low two bits); the rest is what a client sends:
//   0: one Engine.IO text packet and the Socket.IO packet in its data (decode_eio_text,
//      decode_sio);
//   1: a long-polling body (decode_payload with small limits), whose message packets go
//      through one sio_decoder (text ones as packets, binary ones as attachments);
//   2, 3: a WebSocket message sequence, records split at 0x1F: the first is a text packet,
//      the others are fed as attachments — or as text when they start with 0x1D.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - no input throws, reads outside itself (ASan) or fails without a named reason;
//   - an accepted Engine.IO packet or payload re-encodes to exactly the input (the decoder
//     accepts only the canonical form, base64 included), within the record bound;
//   - an accepted Socket.IO packet: every view lies inside the decoded text (the namespace
//     may be the default "/"), the data is one valid JSON value of the shape its type
//     needs, the event name and args rebuild a JSON array equal in length to the data's,
//     the ack id has at most max_ack_id_digits digits, the attachment count is within
//     max_attachments; and EVENT, ACK, DISCONNECT re-encode with our encoders to packets
//     that decode to the same fields; a CONNECT payload's auth fields read or are refused
//     as bad_payload (never bad_json: the payload was validated);
//   - the decoder delivers a binary packet only with exactly its announced attachments,
//     within max_attachment_bytes.
#include "split_feed.h"

#include <ringcast/socketio.h>

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace ringcast::socketio;
using ringcast::fuzz::require;

const sio_limits limits{.max_packet_bytes = 4096,
                        .max_namespace_bytes = 32,
                        .max_ack_id_digits = 6,
                        .max_attachments = 4,
                        .max_attachment_bytes = 256};

bool inside(std::string_view view, std::string_view text) {
    return view.empty() ||
           (view.data() >= text.data() && view.data() + view.size() <= text.data() + text.size());
}

bool parse_json(std::string_view text, simdjson::dom::element& root) {
    static simdjson::dom::parser parser;
    static simdjson::padded_string copy;
    copy = simdjson::padded_string(text);
    return parser.parse(copy).get(root) == simdjson::SUCCESS;
}

std::size_t json_array_size(std::string_view text) {
    simdjson::dom::element root;
    require(parse_json(text, root));
    simdjson::dom::array array;
    require(root.get(array) == simdjson::SUCCESS);
    return array.size();
}

void check_packet(const sio_packet& p, std::string_view text) {
    require(inside(p.data, text) && inside(p.args, text));
    require(p.nsp == "/" || inside(p.nsp, text));
    require(!p.nsp.empty() && p.nsp[0] == '/' && p.nsp.find(',') == std::string_view::npos);
    require(p.nsp.size() <= limits.max_namespace_bytes);
    require(p.attachments <= limits.max_attachments);
    const bool binary = p.type == sio_type::binary_event || p.type == sio_type::binary_ack;
    require(binary == (p.attachments != 0));
    if (p.ack_id) {
        require(std::to_string(*p.ack_id).size() <= limits.max_ack_id_digits);
    }
    simdjson::dom::element root;
    if (p.data.empty()) {
        require(p.type == sio_type::connect || p.type == sio_type::disconnect);
        return;
    }
    require(parse_json(p.data, root));
    const auto kind = root.type();
    std::size_t elements = 0;
    switch (p.type) {
    case sio_type::connect: {
        require(kind == simdjson::dom::element_type::OBJECT);
        auto auth = parse_connect_auth(p.data);
        require(auth.has_value() || auth.error() == sio_error::bad_payload);
        return;
    }
    case sio_type::disconnect:
        require(false);
        return;
    case sio_type::connect_error:
        require(kind == simdjson::dom::element_type::OBJECT ||
                kind == simdjson::dom::element_type::STRING);
        return;
    case sio_type::event:
    case sio_type::binary_event: {
        require(kind == simdjson::dom::element_type::ARRAY);
        elements = json_array_size(p.data);
        std::string rebuilt = "[";
        append_json_string(rebuilt, p.event);
        if (!p.args.empty()) {
            rebuilt += ',';
            rebuilt += p.args;
        }
        rebuilt += ']';
        require(json_array_size(rebuilt) == elements);
        if (p.type == sio_type::event) {
            const std::string again = encode_event(p.nsp, p.event, p.args, p.ack_id);
            auto back = decode_sio(again, limits);
            require(back.has_value());
            require(back->nsp == p.nsp && back->event == p.event && back->args == p.args &&
                    back->ack_id == p.ack_id);
        }
        return;
    }
    case sio_type::ack:
    case sio_type::binary_ack: {
        require(kind == simdjson::dom::element_type::ARRAY);
        elements = json_array_size(p.data);
        require(json_array_size("[" + std::string(p.args) + "]") == elements);
        if (p.type == sio_type::ack && p.ack_id) {
            const std::string again = encode_ack(p.nsp, *p.ack_id, p.args);
            auto back = decode_sio(again, limits);
            require(back.has_value());
            require(back->nsp == p.nsp && back->args == p.args && back->ack_id == p.ack_id);
        }
        return;
    }
    }
}

void check_disconnect_round_trip(const sio_packet& p) {
    if (p.type != sio_type::disconnect) {
        return;
    }
    const std::string again = encode_disconnect(p.nsp);
    auto back = decode_sio(again, limits);
    require(back.has_value() && back->type == sio_type::disconnect && back->nsp == p.nsp);
}

// Feeds one decoder and checks what it delivers.
class decoder_check {
public:
    void text(std::string_view message) {
        auto r = _decoder.feed_text(message);
        if (!r) {
            require(!describe(r.error()).empty());
            require(_decoder.awaiting() == 0);
            return;
        }
        after(*r);
    }
    void binary(std::string_view bytes) {
        auto r = _decoder.feed_binary(bytes);
        if (!r) {
            require(!describe(r.error()).empty());
            require(_decoder.awaiting() == 0);
            return;
        }
        after(*r);
    }

private:
    void after(sio_decoder::status s) {
        switch (s) {
        case sio_decoder::status::awaiting_attachments:
            require(_decoder.awaiting() != 0);
            require(_decoder.awaiting() + _decoder.attachments().size() ==
                    _decoder.packet().attachments);
            return;
        case sio_decoder::status::ready: {
            require(_decoder.awaiting() == 0);
            require(_decoder.attachments().size() == _decoder.packet().attachments);
            std::size_t bytes = 0;
            for (const std::string& a : _decoder.attachments()) {
                bytes += a.size();
            }
            require(bytes <= limits.max_attachment_bytes);
            check_disconnect_round_trip(_decoder.packet());
            return;
        }
        }
    }

    sio_decoder _decoder{limits};
};

void one_packet(std::string_view input) {
    auto eio = decode_eio_text(input);
    if (!eio) {
        require(!describe(eio.error()).empty());
    } else {
        require(encode_eio_text(eio->type, eio->data) == input);
    }
    // The Socket.IO layer on the whole input too, so the fuzzer need not find the '4'.
    const std::string text(input); // own buffer: ASan sees any overread
    auto p = decode_sio(text, limits);
    if (!p) {
        require(!describe(p.error()).empty());
        return;
    }
    check_packet(*p, text);
    check_disconnect_round_trip(*p);
}

void payload(std::string_view body) {
    const eio_limits eio{.max_payload_bytes = 2048, .max_packets_per_payload = 8};
    auto packets = decode_payload(body, eio);
    if (!packets) {
        require(!describe(packets.error()).empty());
        return;
    }
    require(!packets->empty() && packets->size() <= eio.max_packets_per_payload);
    std::vector<eio_outgoing> out;
    decoder_check check;
    for (const eio_packet& p : *packets) {
        require(p.encoding == eio_encoding::text || p.type == eio_type::message);
        if (p.encoding == eio_encoding::text) {
            require(inside(p.text, body));
        }
        out.push_back({p.type, p.encoding, p.data()});
        if (p.type == eio_type::message) {
            if (p.encoding == eio_encoding::binary) {
                check.binary(p.data());
            } else {
                check.text(p.data());
            }
        }
    }
    require(encode_payload(out) == body);
}

void message_sequence(std::string_view input) {
    decoder_check check;
    std::size_t start = 0;
    bool first = true;
    while (start <= input.size()) {
        const std::size_t end = input.find('\x1f', start);
        const std::string record(input.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (first || (!record.empty() && record[0] == '\x1d')) {
            check.text(first ? std::string_view(record) : std::string_view(record).substr(1));
        } else {
            check.binary(record);
        }
        first = false;
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] & 3) {
    case 0:
        one_packet(rest);
        break;
    case 1:
        payload(rest);
        break;
    default:
        message_sequence(rest);
        break;
    }
    return 0;
}
