// Private to src/pubsub: what a Socket.IO connection (docs/socketio.md) receives instead of
// the frames this engine writes for /ws.
//
// A session that speaks Socket.IO (session::speak_socketio) gets every frame fan-out,
// recovery and shard broadcasts would send it re-framed here: a channel message's envelope
// becomes the Engine.IO message `42/ns,["<event>",<data>]`, its data spliced as it was
// published (never parsed again); any other server text (a presence event) becomes
// `42/ns,["<op>",<the object>]`. fan-out makes that frame once per message per shard and
// shares it, like the plain one:
//
//   deliver_local(f) ─► /ws subscriber ─────────────► f (or its compressed variant)
//                   └─► Socket.IO subscriber ──────► socketio_frame(f) (made once) ─► its
//                                                     compressed variant (made once)
//
// Pure functions of their arguments; any thread.
#pragma once

#include <ringcast/core.h>
#include <ringcast/pubsub.h>

#include <string>
#include <string_view>

namespace ringcast::pubsub {

/// `plain`, a text frame this engine framed for /ws (frame_message: an envelope; or a
/// presence event, any `{"op":…}` object), as the one WebSocket text frame a Socket.IO
/// client gets for it: `42<nsp>,["<event>",<data>]`, the nsp chosen for `channel` (the
/// envelope's own channel when `channel` is empty). Null for a frame that is not text.
/// An event name Socket.IO reserves (connect, connect_error, disconnect, disconnecting,
/// newListener, removeListener: socket.io-client would close with "parse error") goes out
/// as "ringcast:<name>".
/// `tag`, when not empty, is appended as the last argument (the delivery tag connection
/// state recovery hands back: `42<nsp>,["<event>",<data>,"<tag>"]`).
core::frame_ref socketio_frame(const core::frame_ref& plain, std::string_view channel,
                               const socketio_config& cfg, std::string_view tag = {});

/// Messages of one shard's delivery log for Socket.IO recovery (fanout::log_socketio):
/// 24 bytes each, 1.5 MiB per shard, made at the first tagged message. At 10,000 Socket.IO
/// deliveries a second per shard it reaches back 6.5 s; a client away longer than the log
/// reaches recovers only rooms that had no message since it joined or since its last.
inline constexpr std::size_t socketio_log_entries = 65536;

} // namespace ringcast::pubsub
