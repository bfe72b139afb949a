// strict_json.h — simdjson's DOM parser plus the checks it does not make, for the JOSE
// header, the JWT payload and JWK sets.
//
// simdjson already refuses what RFC 8259 forbids (bad UTF-8, lone surrogates, trailing
// bytes after the value, numbers beyond 64 bits or a double's range). It keeps duplicate
// member names, which RFC 7515 §4 and RFC 7519 §4 say a parser must reject or take the
// last of; taking any one of them is how two parsers come to disagree about a token's
// "alg" or "sub", so we reject. Duplicates are compared after unescaping ("a" and "\u0061"
// are one name). Nesting deeper than max_json_depth is refused too: no claim needs it.
// Private to src/auth.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ringcast::auth::detail {

constexpr std::size_t max_json_depth = 32;

/// Parses `size` bytes at `text`, which must be followed by simdjson::SIMDJSON_PADDING
/// readable bytes, and checks the document: true with `root` set when it is valid JSON
/// with no duplicate member name in any object and no deeper nesting than max_json_depth.
/// `names` is scratch space reused between calls. `root` points into `parser`.
bool parse_strict(simdjson::dom::parser& parser, const uint8_t* text, std::size_t size,
                  std::vector<std::string_view>& names, simdjson::dom::element& root) noexcept;

} // namespace ringcast::auth::detail
