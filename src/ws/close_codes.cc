// The one table of close codes (RFC 6455 §7.4 plus ringcast's 4000-4999 range).
// docs/close-codes.md mirrors describe(); keep the two in step.
#include "ringcast/ws.h"

namespace ringcast::ws {

// No default: -Werror=switch makes a new enumerator without a description a build error.
std::string_view describe(close_code code) noexcept {
    switch (code) {
    case close_code::normal: return "normal closure";
    case close_code::going_away: return "going away";
    case close_code::protocol_error: return "protocol error";
    case close_code::unsupported_data: return "unsupported data";
    case close_code::no_status: return "no status code";
    case close_code::abnormal: return "abnormal closure";
    case close_code::invalid_payload: return "invalid payload data";
    case close_code::policy_violation: return "policy violation";
    case close_code::message_too_big: return "message too big";
    case close_code::mandatory_extension: return "mandatory extension missing";
    case close_code::internal_error: return "internal server error";
    case close_code::try_again_later: return "try again later";
    case close_code::token_expired: return "token expired";
    case close_code::forbidden: return "forbidden";
    case close_code::too_many_connections: return "too many connections";
    }
    return "unknown close code"; // a value cast from the wire that has no enumerator
}

std::size_t close_code_slot(uint16_t code) noexcept {
    for (std::size_t i = 0; i < close_code_other; ++i) {
        if (static_cast<uint16_t>(counted_close_codes[i]) == code) {
            return i;
        }
    }
    return close_code_other;
}

// Every enumerator is counted: describe()'s switch lists them all, this checks the list.
static_assert(close_code_other == 15, "a new close_code needs its place in counted_close_codes");

// RFC 6455 §7.4.1/§7.4.2: 1004 is reserved, 1005/1006/1015 must never be sent, 1000-2999
// beyond the IANA registrations (1012 service restart, 1013 try again later, 1014 bad
// gateway) are reserved; 3000-3999 are registered libraries/frameworks, 4000-4999 private.
bool close_code_valid_on_wire(uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

} // namespace ringcast::ws
