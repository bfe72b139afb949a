// RFC 6455 §5.2 frame headers and complete frames. The server frames a message once
// (unmasked, §5.1); encode_client_frame exists for tests, fuzz seeds and load generators.
#include "ringcast/ws.h"

#include <algorithm>
#include <cstring>

namespace ringcast::ws {

namespace {

// Largest payload of the 7-bit and 16-bit length forms (§5.2: 126 and 127 are markers).
constexpr uint64_t max_short_length = 125;
constexpr uint64_t max_medium_length = 0xffff;
// Code (2 bytes) + reason must fit a control frame payload (§5.5: at most 125 bytes).
constexpr std::size_t max_close_reason_bytes = 123;

constexpr std::byte byte_of(uint64_t value) noexcept {
    return static_cast<std::byte>(value & 0xff);
}

} // namespace

std::size_t frame_header_size(uint64_t payload_bytes, bool masked) noexcept {
    const std::size_t mask_bytes = masked ? 4 : 0;
    if (payload_bytes <= max_short_length) {
        return 2 + mask_bytes;
    }
    if (payload_bytes <= max_medium_length) {
        return 4 + mask_bytes;
    }
    return 10 + mask_bytes;
}

std::size_t write_frame_header(std::byte* out, opcode op, uint64_t payload_bytes,
                               fin final_frame,
                               const std::array<std::byte, 4>* mask_key) noexcept {
    const std::byte mask_bit = mask_key != nullptr ? std::byte{0x80} : std::byte{0};
    out[0] = (final_frame == fin::yes ? std::byte{0x80} : std::byte{0}) |
             static_cast<std::byte>(op);
    std::size_t n = 2;
    if (payload_bytes <= max_short_length) {
        out[1] = mask_bit | byte_of(payload_bytes);
    } else if (payload_bytes <= max_medium_length) {
        out[1] = mask_bit | std::byte{126};
        out[2] = byte_of(payload_bytes >> 8);
        out[3] = byte_of(payload_bytes);
        n = 4;
    } else {
        out[1] = mask_bit | std::byte{127};
        for (std::size_t i = 0; i < 8; ++i) {
            out[2 + i] = byte_of(payload_bytes >> (56 - 8 * i));
        }
        n = 10;
    }
    if (mask_key != nullptr) {
        std::memcpy(out + n, mask_key->data(), mask_key->size());
        n += mask_key->size();
    }
    return n;
}

std::vector<std::byte> encode_frame(opcode op, std::span<const std::byte> payload,
                                    fin final_frame) {
    std::vector<std::byte> frame(frame_header_size(payload.size()) + payload.size());
    const std::size_t header = write_frame_header(frame.data(), op, payload.size(), final_frame);
    std::copy(payload.begin(), payload.end(), frame.begin() + static_cast<std::ptrdiff_t>(header));
    return frame;
}

std::vector<std::byte> encode_client_frame(opcode op, std::span<const std::byte> payload,
                                           std::array<std::byte, 4> mask_key,
                                           fin final_frame) {
    std::vector<std::byte> frame(frame_header_size(payload.size(), true) + payload.size());
    const std::size_t header =
        write_frame_header(frame.data(), op, payload.size(), final_frame, &mask_key);
    std::copy(payload.begin(), payload.end(), frame.begin() + static_cast<std::ptrdiff_t>(header));
    apply_mask(std::span(frame).subspan(header), mask_key);
    return frame;
}

// RFC 6455 §7.4.1: 1005 and 1006 must never appear in a close frame, so they (and any
// code not valid on the wire) produce a close frame without a body. The reason is cut back
// to a character boundary so the peer never sees a truncated character (§5.5.1 requires
// valid UTF-8). An `out` shorter than max_close_frame_bytes shortens the reason further;
// one shorter than an empty close frame gets nothing written.
std::size_t write_close_frame(std::span<std::byte> out, close_code code,
                              std::string_view reason) noexcept {
    const auto wire_code = static_cast<uint16_t>(code);
    if (!close_code_valid_on_wire(wire_code)) {
        if (out.size() < 2) {
            return 0;
        }
        return write_frame_header(out.data(), opcode::close, 0);
    }
    if (out.size() < 4) {
        return 0;
    }
    std::size_t cut = std::min({reason.size(), max_close_reason_bytes, out.size() - 4});
    if (cut < reason.size()) {
        while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xc0) == 0x80) {
            --cut;
        }
    }
    std::size_t n = write_frame_header(out.data(), opcode::close, 2 + cut);
    out[n++] = byte_of(wire_code >> 8);
    out[n++] = byte_of(wire_code);
    if (cut > 0) { // an empty string_view may carry a null pointer: no memcpy from it
        std::memcpy(out.data() + n, reason.data(), cut);
    }
    return n + cut;
}

} // namespace ringcast::ws
