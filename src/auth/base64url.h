// base64url.h — strict base64url (RFC 4648 §5) for JWS segments and JWK members.
//
// Strict, because two spellings of one token must not both verify and a lenient decoder is
// a place where two parsers disagree: the alphabet is A-Z a-z 0-9 '-' '_' only, no padding,
// no whitespace, a length of 1 mod 4 is impossible, and the bits a final partial group
// leaves unused must be zero (RFC 4648 §3.5 canonical encoding). Private to src/auth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcast::auth::detail {

/// Bytes that `encoded_size` base64url characters decode to (no validation).
constexpr std::size_t base64url_decoded_size(std::size_t encoded_size) noexcept {
    return encoded_size / 4 * 3 + (encoded_size % 4 == 0 ? 0 : encoded_size % 4 - 1);
}

/// Decodes `in` into `out` (room for base64url_decoded_size(in.size()) bytes). Returns the
/// decoded length, or false when `in` is not strict base64url; `out` may then hold garbage.
bool base64url_decode(std::string_view in, uint8_t* out, std::size_t& out_size) noexcept;

/// Decodes into a string; false when `in` is not strict base64url.
bool base64url_decode(std::string_view in, std::string& out);

/// Encodes without padding (tests and tools build tokens with it).
std::string base64url_encode(std::string_view bytes);

} // namespace ringcast::auth::detail
