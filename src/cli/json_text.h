// JSON as the command-line client handles it: checked before it is sent, quoted into the
// bodies it builds, printed one line per message or indented for a person, and the few
// fields it reads from the server's answers. Text in, text out; private to src/cli.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringcast::cli {

/// Why `text` is not one valid JSON value (RFC 8259, simdjson's reading of it), or
/// nullopt when it is.
std::optional<std::string> json_problem(std::string_view text);

/// `text` as a JSON string literal, quotes included: '"', '\\' and control bytes escaped,
/// everything else (UTF-8 included) as it is.
std::string json_quote(std::string_view text);

/// Valid JSON on one line: line breaks become spaces. They can only be whitespace between
/// tokens (a JSON string holds no raw control byte), so the value is unchanged.
std::string one_line(std::string_view json);

/// Valid JSON indented by two spaces per level, one member or element per line; empty
/// objects and arrays stay `{}` and `[]`. Numbers and strings are copied byte for byte.
/// No trailing line break.
std::string indent_json(std::string_view json);

/// A reply to a command on /ws (docs/protocol.md "Client → server"), the fields ringcast
/// looks at.
struct ws_reply {
    std::optional<uint64_t> id; ///< nullopt for "id":null
    bool ok = false;
    int64_t error_code = 0;     ///< when !ok
    std::string error_message;  ///< when !ok
    std::string epoch;          ///< subscribe
    std::optional<uint64_t> offset;
    std::optional<bool> recovered;
};

/// Reads a reply frame ({"op":"reply",...}); nullopt when it is not one or not JSON.
std::optional<ws_reply> read_reply(std::string_view text);

/// What a text frame from /ws is: a message of a channel (the envelope), a reply to a
/// command, or another server event ({"op":"presence"}, {"op":"notice"}).
enum class frame_kind : uint8_t { message, reply, event };

/// Envelopes start with {"id": as ringcastd writes them and are not parsed again; any
/// other frame is parsed for its "op" (whitespace anywhere is fine).
frame_kind classify_frame(std::string_view text);

/// The message of an API error body, {"error":{"code":N,"message":"..."}}; nullopt when the
/// body has another shape.
std::optional<std::string> api_error_message(std::string_view body);

} // namespace ringcast::cli
