// The operator's endpoints that end connections: POST /api/disconnect {"userId","code",
// "reason"} closes every connection of a user, on every shard (a gather, gather.cc),
// answered {"ok":true,"connections":N}; POST /api/drain drains the whole process as SIGTERM
// does (docs/operations.md "Drain").
#include "endpoints.h"
#include "gather.h"

#include <ringcast/admin.h>
#include <ringcast/ws.h>

#include <simdjson.h>

namespace ringcast::admin {

std::optional<std::string> api::post_disconnect(const call& c) {
    // A small body, parsed whole with the DOM parser: validated completely, and the strings
    // copied out before the parser is reused.
    simdjson::dom::parser parser;
    simdjson::dom::object doc;
    if (parser.parse(c.req.body.data(), c.req.body.size()).get(doc) != simdjson::SUCCESS) {
        return http::make_error_response(400, "body must be a JSON object", c.ka);
    }
    std::string_view user;
    if (doc["userId"].get(user) != simdjson::SUCCESS || !pubsub::valid_user_id(user)) {
        return http::make_error_response(400, "userId must be a valid user id", c.ka);
    }
    int64_t code = 1000;
    if (auto field = doc["code"]; field.error() != simdjson::NO_SUCH_FIELD) {
        if (field.get(code) != simdjson::SUCCESS || code < 1000 || code > 4999 ||
            !ws::close_code_valid_on_wire(static_cast<uint16_t>(code))) {
            return http::make_error_response(400, "code must be a close code clients may receive",
                                             c.ka);
        }
    }
    std::string_view reason = "disconnected by the server";
    if (auto field = doc["reason"]; field.error() != simdjson::NO_SUCH_FIELD) {
        // 123: a close frame's payload is at most 125 bytes, 2 of them the code (RFC 6455
        // §5.5.1).
        if (field.get(reason) != simdjson::SUCCESS || reason.size() > 123) {
            return http::make_error_response(400, "reason must be a string of at most 123 bytes",
                                             c.ka);
        }
    }
    return gather(c, question::disconnect, std::string(user), static_cast<uint16_t>(code), {},
                  std::string(reason));
}

std::optional<std::string> api::post_drain(const call& c) {
    // The main thread runs the drain; this shard only asks. Asking again changes nothing,
    // so the answer says whether this request began it or found it under way.
    const bool begun = _io.drain() == core::drain_phase::serving;
    _io.ask_drain();
    return http::make_response(202, "application/json",
                               begun ? "{\"ok\":true,\"draining\":true}\n"
                                     : "{\"ok\":true,\"draining\":true,\"already\":true}\n",
                               c.ka);
}

} // namespace ringcast::admin
