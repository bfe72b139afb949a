// decoder.cc — sio_decoder: a connection's Socket.IO packets, with binary attachments
// collected after the packet that announces them (state diagram in the header).
//
// The packet's text is copied into the decoder so its views stay valid while the
// attachments arrive in later messages; attachments are copied as they come, bounded in
// count by the header (itself bounded by sio_limits::max_attachments) and in total bytes by
// sio_limits::max_attachment_bytes.
#include <ringcast/socketio.h>

namespace ringcast::socketio {

void sio_decoder::reset() noexcept {
    _text.clear();
    _packet = sio_packet{};
    _attachments.clear();
    _awaiting = 0;
    _attachment_bytes = 0;
}

result<sio_decoder::status, sio_error> sio_decoder::feed_text(std::string_view text) {
    if (_awaiting != 0) {
        reset();
        return unexpected{sio_error::unexpected_text};
    }
    reset();
    if (text.size() > _limits.max_packet_bytes) {
        return unexpected{sio_error::packet_too_large};
    }
    _text.assign(text.begin(), text.end());
    auto decoded = decode_sio(std::string_view(_text.data(), _text.size()), _limits);
    if (!decoded) {
        reset();
        return unexpected{decoded.error()};
    }
    _packet = std::move(decoded.value());
    _awaiting = _packet.attachments;
    if (_awaiting != 0) {
        _attachments.reserve(_awaiting);
        return status::awaiting_attachments;
    }
    return status::ready;
}

result<sio_decoder::status, sio_error> sio_decoder::feed_binary(std::string_view bytes) {
    if (_awaiting == 0) {
        reset();
        return unexpected{sio_error::unexpected_binary};
    }
    if (bytes.size() > _limits.max_attachment_bytes - _attachment_bytes) {
        reset();
        return unexpected{sio_error::attachments_too_large};
    }
    _attachment_bytes += bytes.size();
    _attachments.emplace_back(bytes);
    --_awaiting;
    return _awaiting == 0 ? status::ready : status::awaiting_attachments;
}

} // namespace ringcast::socketio
