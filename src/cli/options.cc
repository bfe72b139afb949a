// The command line of `ringcast`: the option table, argv and the environment. Contracts in
// options.h; every command and option is described in docs/cli.md, which mirrors usage().
#include "options.h"

#include <array>
#include <charconv>
#include <utility>

namespace ringcast::cli {

namespace {

using setter = result<void, std::string> (*)(invocation&, std::string_view);

/// Which commands an option belongs to: a bit per command; `every` for the global ones.
using command_mask = uint8_t;
constexpr command_mask bit(command c) noexcept { return command_mask(1u << unsigned(c)); }
constexpr command_mask every = 0xff;
constexpr command_mask http_commands =
    bit(command::pub) | bit(command::send) | bit(command::stats) | bit(command::online) |
    bit(command::presence);

/// One option: its name without "--", whether it takes a value, the commands it belongs
/// to, and what it sets (null for --help and --version, handled by the loop).
struct option_row {
    std::string_view name;
    bool takes_value;
    command_mask commands;
    setter set;
};

unexpected<std::string> error(std::string text) {
    return unexpected{std::move(text)};
}

/// A whole decimal number from 0 to `max`, nothing else (no sign, no spaces).
std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max) noexcept {
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > max) {
        return std::nullopt;
    }
    return value;
}

/// Seconds as a decimal number with at most 3 decimals ("2", "0.5"), in milliseconds.
std::optional<uint64_t> parse_seconds_ms(std::string_view text) noexcept {
    // A day: a longer --timeout is a typo, not a plan.
    constexpr uint64_t max_seconds = 86'400;
    const std::size_t dot = text.find('.');
    const auto whole = parse_uint(text.substr(0, dot), max_seconds);
    if (!whole) {
        return std::nullopt;
    }
    uint64_t ms = *whole * 1000;
    if (dot != std::string_view::npos) {
        std::string_view fraction = text.substr(dot + 1);
        if (fraction.empty() || fraction.size() > 3 || !parse_uint(fraction, 999)) {
            return std::nullopt;
        }
        uint64_t scale = 100;
        for (const char ch : fraction) {
            ms += uint64_t(ch - '0') * scale;
            scale /= 10;
        }
    }
    return ms;
}

result<void, std::string> not_empty(std::string_view flag, std::string_view value) {
    if (value.empty()) {
        return error("--" + std::string(flag) + " needs a non-empty value");
    }
    return {};
}

// Each setter checks the form of its value; the row's name is repeated in its sentences
// so the user sees the flag they typed.
const std::array option_table = {
    option_row{"help", false, every, nullptr},
    option_row{"version", false, every, nullptr},
    option_row{"url", true, every,
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   auto url = parse_server_url(v);
                   if (!url) {
                       return error("--url " + std::string(v) + ": " + url.error());
                   }
                   inv.server = std::move(*url);
                   return {};
               }},
    option_row{"token", true, bit(command::sub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.token = v;
                   return not_empty("token", v);
               }},
    option_row{"token-file", true, bit(command::sub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.token_file = v;
                   return not_empty("token-file", v);
               }},
    option_row{"api-key-file", true, http_commands,
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.api_key_file = v;
                   return not_empty("api-key-file", v);
               }},
    option_row{"key", true, http_commands,
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.key_name = v;
                   return not_empty("key", v);
               }},
    option_row{"user", true, bit(command::sub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.user = v;
                   return not_empty("user", v);
               }},
    option_row{"timeout", true, every,
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   const auto ms = parse_seconds_ms(v);
                   if (!ms || *ms == 0) {
                       return error("--timeout " + std::string(v) +
                                    ": give seconds, more than 0 and at most 86400, with at "
                                    "most 3 decimals (2, 0.5)");
                   }
                   inv.timeout_ms = *ms;
                   return {};
               }},
    option_row{"max-bytes", true, every,
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   const auto n = parse_uint(v, 1u << 30);
                   if (!n || *n < 1024) {
                       return error("--max-bytes " + std::string(v) +
                                    ": give a number of bytes from 1024 to 1073741824");
                   }
                   inv.max_bytes = std::size_t(*n);
                   return {};
               }},
    option_row{"count", true, bit(command::sub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   const auto n = parse_uint(v, uint64_t(1) << 53);
                   if (!n || *n == 0) {
                       return error("--count " + std::string(v) +
                                    ": give how many messages to wait for, 1 or more");
                   }
                   inv.count = *n;
                   return {};
               }},
    option_row{"recover", true, bit(command::sub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   // The epoch is a name without ':' (the server's are hex digits), so the
                   // last ':' splits.
                   const std::size_t colon = v.rfind(':');
                   const auto offset = colon == std::string_view::npos
                                           ? std::nullopt
                                           : parse_uint(v.substr(colon + 1), uint64_t(1) << 53);
                   if (colon == 0 || !offset) {
                       return error("--recover " + std::string(v) +
                                    ": give EPOCH:OFFSET, the epoch and the last offset "
                                    "received on the channel (e.g. 6b14c330001:17)");
                   }
                   inv.recover = recover_point{std::string(v.substr(0, colon)), *offset};
                   return {};
               }},
    option_row{"event", true, bit(command::pub) | bit(command::send),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.event = v;
                   return not_empty("event", v);
               }},
    option_row{"priority", true, bit(command::pub) | bit(command::send),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   const auto p = parse_uint(v, 4);
                   if (!p || *p == 0) {
                       return error("--priority " + std::string(v) +
                                    ": give 1 (highest) to 4 (first dropped)");
                   }
                   inv.priority = unsigned(*p);
                   return {};
               }},
    option_row{"user-id", true, bit(command::pub),
               [](invocation& inv, std::string_view v) -> result<void, std::string> {
                   inv.publish_user = v;
                   return not_empty("user-id", v);
               }},
    option_row{"raw", false,
               bit(command::stats) | bit(command::online) | bit(command::presence),
               [](invocation& inv, std::string_view) -> result<void, std::string> {
                   inv.raw = true;
                   return {};
               }},
};

const option_row* find_option(std::string_view name) noexcept {
    for (const option_row& row : option_table) {
        if (row.name == name) {
            return &row;
        }
    }
    return nullptr;
}

constexpr std::array command_names = {
    std::pair{command::sub, std::string_view("sub")},
    std::pair{command::pub, std::string_view("pub")},
    std::pair{command::send, std::string_view("send")},
    std::pair{command::stats, std::string_view("stats")},
    std::pair{command::online, std::string_view("online")},
    std::pair{command::presence, std::string_view("presence")},
};

std::optional<command> find_command(std::string_view name) noexcept {
    for (const auto& [c, text] : command_names) {
        if (text == name) {
            return c;
        }
    }
    return std::nullopt;
}

/// The commands an option belongs to, for "--count is an option of sub".
std::string commands_of(command_mask mask) {
    std::string out;
    for (const auto& [c, text] : command_names) {
        if ((mask & bit(c)) != 0) {
            out += (out.empty() ? "" : ", ") + std::string(text);
        }
    }
    return out;
}

/// Checks the positional arguments after the command and stores them.
result<void, std::string> take_positionals(invocation& inv,
                                           const std::vector<std::string_view>& words) {
    const std::string name(command_name(inv.cmd));
    auto want = [&](std::size_t n, std::string_view shape) -> result<void, std::string> {
        if (words.size() != n) {
            return error(name + " takes " + std::string(shape) + ", got " +
                         std::to_string(words.size()) + " argument" +
                         (words.size() == 1 ? "" : "s") + " (ringcast " + name + " --help)");
        }
        return {};
    };
    switch (inv.cmd) {
    case command::none:
        return {};
    case command::sub:
        if (words.empty()) {
            return error("sub takes one or more channels (ringcast sub --help)");
        }
        inv.channels.assign(words.begin(), words.end());
        if (inv.recover && inv.channels.size() != 1) {
            return error("--recover names a point in one channel's stream: give exactly one "
                         "channel with it");
        }
        return {};
    case command::pub:
    case command::send:
        if (auto r = want(2, inv.cmd == command::pub ? "CHANNEL JSON" : "USER JSON"); !r) {
            return r;
        }
        inv.target = words[0];
        inv.data = words[1];
        return {};
    case command::presence:
        if (auto r = want(1, "CHANNEL"); !r) {
            return r;
        }
        inv.target = words[0];
        return {};
    case command::stats:
    case command::online:
        return want(0, "no arguments");
    }
    return {};
}

/// Fills what the flags left unset from the environment and the defaults.
result<void, std::string> apply_environment(invocation& inv, bool url_given,
                                            const env_lookup& env) {
    auto get = [&](const char* name) -> std::string_view {
        const char* v = env ? env(name) : nullptr;
        return v == nullptr ? std::string_view() : std::string_view(v);
    };
    if (!url_given) {
        const std::string_view from_env = get("RINGCAST_URL");
        auto url = parse_server_url(from_env.empty() ? "ws://127.0.0.1:8080" : from_env);
        if (!url) {
            return error("the environment variable RINGCAST_URL (" + std::string(from_env) +
                         "): " + url.error());
        }
        inv.server = std::move(*url);
    }
    if (!inv.token.empty() && !inv.token_file.empty()) {
        return error("--token and --token-file both give the token: use one");
    }
    if (inv.token.empty() && inv.token_file.empty()) {
        inv.token = get("RINGCAST_TOKEN");
    }
    if (inv.api_key_file.empty()) {
        inv.api_key_text = get("RINGCAST_API_KEY");
    }
    if (inv.max_bytes == 0) {
        inv.max_bytes = default_max_bytes;
    }
    return {};
}

} // namespace

std::string_view command_name(command c) noexcept {
    for (const auto& [known, text] : command_names) {
        if (known == c) {
            return text;
        }
    }
    return "ringcast";
}

result<invocation, std::string> parse_arguments(const std::vector<std::string_view>& args,
                                                const env_lookup& env) {
    invocation inv;
    std::vector<std::string_view> words;
    std::vector<std::pair<const option_row*, std::string_view>> given;
    bool options_end = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (options_end || !(arg.starts_with("--") || arg == "-h")) {
            words.push_back(arg);
            continue;
        }
        if (arg == "--") {
            options_end = true;
            continue;
        }
        const std::string_view spelled = arg == "-h" ? "--help" : arg;
        const std::size_t eq = spelled.find('=');
        const std::string_view name = spelled.substr(2, eq == std::string_view::npos
                                                            ? std::string_view::npos
                                                            : eq - 2);
        const option_row* row = find_option(name);
        if (row == nullptr) {
            return error("unknown option --" + std::string(name) + " (ringcast --help)");
        }
        std::string_view value;
        if (eq != std::string_view::npos) {
            if (!row->takes_value) {
                return error("--" + std::string(name) + " takes no value");
            }
            value = spelled.substr(eq + 1);
        } else if (row->takes_value) {
            if (i + 1 == args.size()) {
                return error("--" + std::string(name) + " needs a value");
            }
            value = args[++i];
        }
        if (row->name == "help") {
            inv.help = true;
        } else if (row->name == "version") {
            inv.version = true;
        } else {
            given.emplace_back(row, value);
        }
    }

    if (!words.empty() && words.front() == "help") { // `ringcast help [COMMAND]`
        inv.help = true;
        words.erase(words.begin());
    }
    if (!words.empty()) {
        const auto c = find_command(words.front());
        if (!c) {
            return error("unknown command '" + std::string(words.front()) +
                         "' (commands: sub, pub, send, stats, online, presence)");
        }
        inv.cmd = *c;
        words.erase(words.begin());
    }
    if (inv.help || inv.version) {
        return inv;
    }
    if (inv.cmd == command::none) {
        return error("no command given (ringcast --help lists them)");
    }

    bool url_given = false;
    for (const auto& [row, value] : given) {
        if ((row->commands & bit(inv.cmd)) == 0) {
            return error("--" + std::string(row->name) + " is an option of " +
                         commands_of(row->commands) + ", not of " +
                         std::string(command_name(inv.cmd)));
        }
        if (auto r = row->set(inv, value); !r) {
            return unexpected{r.error()};
        }
        url_given = url_given || row->name == "url";
    }
    if (auto r = take_positionals(inv, words); !r) {
        return unexpected{r.error()};
    }
    if (auto r = apply_environment(inv, url_given, env); !r) {
        return unexpected{r.error()};
    }
    return inv;
}

} // namespace ringcast::cli
