// What a /ws upgrade presents to authenticate (include/ringcast/net.h presented_token) and
// how a refused token is counted (classify_token_refusal). Pure functions over the request
// and the verifier's reasons; serve_pubsub (handlers.cc) decides with them.
//
//   Authorization: Bearer X ──► X  (the header wins)
//   /ws?token=X             ──► X
//   neither                 ──► "" ──► 401 "token required" (when JWT keys are configured)
#include <ringcast/net.h>

#include <array>
#include <string_view>

namespace ringcast::net {

std::string_view presented_token(const http::request& req) noexcept {
    constexpr std::string_view scheme = "bearer ";
    const std::string_view value = req.header_value("authorization");
    if (value.size() > scheme.size()) {
        bool bearer = true;
        for (std::size_t i = 0; i < scheme.size(); ++i) {
            // RFC 9110 §11.1: the scheme is case-insensitive.
            const char c = value[i];
            bearer = bearer && (c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c) == scheme[i];
        }
        if (bearer) {
            return value.substr(scheme.size());
        }
    }
    return req.query_param("token");
}

token_refusal classify_token_refusal(std::string_view reason) noexcept {
    constexpr std::array<std::string_view, 3> expired = {"token expired", "token not yet valid",
                                                         "token issued in the future"};
    constexpr std::array<std::string_view, 5> claims = {"wrong issuer", "wrong audience",
                                                        "missing sub", "missing exp",
                                                        "sub is not a valid user id"};
    if (reason == "token required") {
        return token_refusal::missing;
    }
    for (const std::string_view r : expired) {
        if (reason == r) {
            return token_refusal::expired;
        }
    }
    for (const std::string_view r : claims) {
        if (reason == r) {
            return token_refusal::claims;
        }
    }
    return token_refusal::invalid;
}

} // namespace ringcast::net
