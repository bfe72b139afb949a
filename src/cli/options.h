// The command line of `ringcast`, the command-line client (docs/cli.md): what the user
// typed, checked and turned into an `invocation`, before any file is read or socket
// opened. Pure: the environment comes in as a lookup function, so tests give their own.
// Private to src/cli.
#pragma once

#include <ringcast/core.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::cli {

/// Exit statuses, one meaning each, so a script can tell a refusal from a dead server.
inline constexpr int exit_ok = 0;
inline constexpr int exit_refused = 1;     ///< the server answered no (HTTP error, error reply, close)
inline constexpr int exit_usage = 2;       ///< bad arguments or input, nothing was sent
inline constexpr int exit_unreachable = 3; ///< no connection, or it broke mid-way
inline constexpr int exit_timeout = 4;     ///< --timeout passed before the command finished

/// Why a command could not finish: the exit status and a sentence for standard error.
struct failure {
    int exit_status = exit_refused;
    std::string message;
};

enum class command : uint8_t { none, sub, pub, send, stats, online, presence };

/// The command's name as typed ("sub"); "ringcast" for command::none.
std::string_view command_name(command c) noexcept;

/// Where the server is: `ws://HOST[:PORT][/PREFIX]` (or http://). `path_prefix` is empty or
/// starts with '/' and never ends with one; /ws and /api/... are appended to it.
struct server_url {
    std::string host;        ///< a name or an address; IPv6 without its brackets
    uint16_t port = 80;
    std::string host_header; ///< HOST[:PORT] as typed, for the Host header
    std::string path_prefix;
};

/// Reads a server URL. Accepts ws:// and http:// (the same server: /ws and /api/ share a
/// port), a host name, an IPv4 address or a bracketed IPv6 one, an optional port (default
/// 80) and an optional path prefix for a server mounted under a path behind a proxy; a
/// URL ending in /ws is the client URL of that server (the /ws is dropped). wss:// and
/// https:// are refused (the client speaks no TLS), as are queries, fragments and user
/// info. The error is a sentence naming what is wrong.
result<server_url, std::string> parse_server_url(std::string_view text);

/// `--recover EPOCH:OFFSET` (docs/protocol.md "Recovery").
struct recover_point {
    std::string epoch;
    uint64_t offset = 0;
};

/// Everything the command line and the environment said, checked for form only: names
/// and JSON are judged later (the JSON before sending, names by the server).
struct invocation {
    command cmd = command::none;
    bool help = false;    ///< print the usage of `cmd` (or the overview) and exit 0
    bool version = false;

    server_url server;
    std::string token;          ///< --token or RINGCAST_TOKEN
    std::string token_file;     ///< --token-file (read when the command runs)
    std::string api_key_file;   ///< --api-key-file (read when the command runs)
    std::string api_key_text;   ///< RINGCAST_API_KEY, used when no --api-key-file is given
    std::string key_name;       ///< --key: which named key of the file or variable
    std::string user;           ///< --user: ?user= for a server started with --insecure
    uint64_t timeout_ms = 0;    ///< --timeout; 0: the command's default
    std::size_t max_bytes = 0;  ///< --max-bytes: largest response or message

    // sub
    std::vector<std::string> channels;
    std::optional<recover_point> recover;
    uint64_t count = 0; ///< --count; 0: until closed

    // pub, send, presence: the channel or user; pub, send: the data (JSON text, or "-"
    // for standard input)
    std::string target;
    std::string data;
    std::string event;
    std::optional<unsigned> priority;
    std::string publish_user; ///< pub --user-id: the message's userId

    bool raw = false; ///< stats, online, presence: the body as sent, not indented
};

/// Largest HTTP response or WebSocket message by default: 64 MiB. /api/online of a
/// million users is about 40 MB; anything far larger is a wrong server, not an answer.
inline constexpr std::size_t default_max_bytes = 64u << 20;

/// Default deadline of an HTTP command (pub, send, stats, online, presence): 30 s.
inline constexpr uint64_t default_request_timeout_ms = 30'000;

/// Returns the value of an environment variable, or null when it is unset.
using env_lookup = std::function<const char*(const char*)>;

/// Parses argv (without the program name). Options are long (`--name VALUE` or
/// `--name=VALUE`) plus `-h`; they may stand before or after the command; an argument that
/// does not start with "--" is positional (so `-1` and `-` are data), and everything after
/// `--` is. Environment: RINGCAST_URL, RINGCAST_TOKEN, RINGCAST_API_KEY, each below its
/// flag. The error is a sentence for the user, without the usage text.
result<invocation, std::string> parse_arguments(const std::vector<std::string_view>& args,
                                                const env_lookup& env);

/// The usage text: the overview for command::none, else the command's own.
std::string usage(command c);

} // namespace ringcast::cli
