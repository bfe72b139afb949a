// Private to src/pubsub: the envelope's fixed text between its values, in field order
// (docs/protocol.md "Server → client"). envelope.cc writes it; socketio_wire.cc reads an
// envelope frame back by it (names need no escaping, so a name ends at the next quote).
#pragma once

#include <string_view>

namespace ringcast::pubsub::envelope_text {

inline constexpr std::string_view open_id = "{\"id\":\"";
inline constexpr std::string_view before_event = "\",\"event\":\"";
inline constexpr std::string_view before_channel = "\",\"channel\":\"";
inline constexpr std::string_view before_data = "\",\"data\":";
inline constexpr std::string_view before_priority = ",\"priority\":";
inline constexpr std::string_view before_timestamp = ",\"timestamp\":";
inline constexpr std::string_view before_user_id = ",\"userId\":";
inline constexpr std::string_view before_offset = ",\"offset\":";
inline constexpr std::string_view close_object = "}";

} // namespace ringcast::pubsub::envelope_text
