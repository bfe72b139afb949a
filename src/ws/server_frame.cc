// Server frames as shareable core::frames: the one place a payload is framed for sending.
#include <ringcast/ws.h>

#include <cstring>

namespace ringcast::ws {

core::frame_ref make_server_frame(opcode op, std::span<const std::byte> payload) {
    const std::size_t header = frame_header_size(payload.size());
    auto f = core::make_frame(header + payload.size());
    write_frame_header(f->mutable_data(), op, payload.size());
    if (!payload.empty()) {
        std::memcpy(f->mutable_data() + header, payload.data(), payload.size());
    }
    return f;
}

core::frame_ref make_server_frame(opcode op, std::string_view text) {
    return make_server_frame(op, std::as_bytes(std::span(text.data(), text.size())));
}

core::frame_ref make_close_frame(close_code code, std::string_view reason) {
    std::array<std::byte, max_close_frame_bytes> wire{};
    const std::size_t n = write_close_frame(wire, code, reason);
    return core::make_frame(std::span<const std::byte>(wire.data(), n));
}

} // namespace ringcast::ws
