// usage(): the --help text of ringcast and of each command. docs/cli.md says the same at
// more length; change both together.
#include "options.h"

namespace ringcast::cli {

namespace {

constexpr std::string_view overview = R"(usage: ringcast [OPTIONS] COMMAND [ARGS]

A command-line client for ringcastd: subscribe, publish and ask the backend API.

commands:
  sub CHANNEL...          subscribe on /ws and print each message as one JSON line
  pub CHANNEL JSON        publish (POST /api/publish); JSON '-' reads standard input
  send USER JSON          send to every connection of a user (POST /api/send)
  stats                   the server's counters (GET /api/stats)
  online                  the users online (GET /api/online)
  presence CHANNEL        who is subscribed to a presence channel (GET /api/presence/CHANNEL)
  help [COMMAND]          this text, or a command's

options for every command:
  --url URL               the server: ws://HOST:PORT or http://HOST:PORT (RINGCAST_URL;
                          default ws://127.0.0.1:8080)
  --timeout S             give up after S seconds (sub: stop listening; others: default 30)
  --max-bytes N           largest response or message accepted (default 67108864)
  -h, --help              usage; with a command, the command's
  --version               the version

credentials (never put a secret in a flag others can read: prefer the files):
  --token-file F          sub: a JWT for /ws, sent as Authorization: Bearer
  --token T               sub: the same, from the command line (RINGCAST_TOKEN)
  --user ID               sub: ?user=ID, for a server started with --insecure
  --api-key-file F        pub, send, stats, online, presence: an API key file, in the
                          server's format (RINGCAST_API_KEY); sent as Authorization: Bearer
  --key NAME              which key of that file (default: the first with the scope needed)

exit status: 0 done, 1 the server refused or closed, 2 bad arguments, 3 no connection,
4 timed out. Errors and the server's reasons go to standard error.
)";

constexpr std::string_view sub_usage = R"(usage: ringcast sub [OPTIONS] CHANNEL [CHANNEL...]

Opens a WebSocket to /ws, subscribes to each CHANNEL and prints every message the server
sends (envelopes, presence events, notices) to standard output, one JSON line each, as the
server sent it (line breaks between JSON tokens become spaces). Subscribe replies and the
close go to standard error. Answers pings; Ctrl-C closes with 1000.

options:
  --count N               exit 0 after N messages (presence events and notices not counted)
  --timeout S             stop after S seconds: exit 0, or 4 when --count was not reached
  --recover EPOCH:OFFSET  resume one channel after the last offset received
                          (docs/protocol.md "Recovery")
  --token-file F, --token T, --user ID   who to be (ringcast --help)
  --url URL, --max-bytes N

exit status: 0 after --count messages, --timeout or Ctrl-C; 1 a refused subscribe or
handshake, or a close by the server; 3 no connection; 4 --timeout before --count.
)";

constexpr std::string_view pub_usage = R"(usage: ringcast pub [OPTIONS] CHANNEL JSON

Publishes JSON (any JSON value; '-' reads it from standard input) on CHANNEL through
POST /api/publish and prints the server's answer, {"ok":true,"offset":N}. JSON that does
not parse is refused before anything is sent.

options:
  --event E               the message's event (default "message")
  --priority P            1 (highest) to 4 (first dropped); default 3
  --user-id U             the message's userId (default null)
  --api-key-file F, --key NAME, --url URL, --timeout S
)";

constexpr std::string_view send_usage = R"(usage: ringcast send [OPTIONS] USER JSON

Sends JSON ('-': standard input) to every connection of USER through POST /api/send (it is
published on user:USER) and prints the server's answer.

options:
  --event E               the message's event (default "message")
  --priority P            1 (highest; needs the user's ack) to 4; default 3
  --api-key-file F, --key NAME, --url URL, --timeout S
)";

constexpr std::string_view stats_usage = R"(usage: ringcast stats [--raw] [OPTIONS]

Prints GET /api/stats, indented: {"total":{...},"shards":[{...},...]}. --raw prints the
body as the server sent it, one line.

options: --raw, --api-key-file F, --key NAME, --url URL, --timeout S
)";

constexpr std::string_view online_usage = R"(usage: ringcast online [--raw] [OPTIONS]

Prints GET /api/online, indented: {"users":[{"userId":"7","connections":2}],"count":1}.
--raw prints the body as the server sent it, one line.

options: --raw, --api-key-file F, --key NAME, --url URL, --timeout S
)";

constexpr std::string_view presence_usage = R"(usage: ringcast presence [--raw] [OPTIONS] CHANNEL

Prints GET /api/presence/CHANNEL, indented: the users subscribed to a channel of a
namespace marked presence, with their connections. --raw prints the body as sent.

options: --raw, --api-key-file F, --key NAME, --url URL, --timeout S
)";

} // namespace

std::string usage(command c) {
    switch (c) {
    case command::none:
        return std::string(overview);
    case command::sub:
        return std::string(sub_usage);
    case command::pub:
        return std::string(pub_usage);
    case command::send:
        return std::string(send_usage);
    case command::stats:
        return std::string(stats_usage);
    case command::online:
        return std::string(online_usage);
    case command::presence:
        return std::string(presence_usage);
    }
    return std::string(overview);
}

} // namespace ringcast::cli
