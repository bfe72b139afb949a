// Work in progress: replaced before this lands.
#include "engine_types.h"

namespace ringcast::pubsub {

void engine::acknowledge(conn_handle h, session& s, const command& cmd) {
    send_reply(h, s, reply_error(cmd.has_id, cmd.id, 501, "not implemented yet"));
}
} // namespace ringcast::pubsub
