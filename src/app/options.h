// The option table: every option ringcastd takes, one row each, and the only place an
// option is declared. argv parsing, the config file, environment variables, --help,
// --check-config and --print-config read it. Private to src/app.
//
//   row ─┬─ name        "max-connections": --max-connections on the command line, the key
//        │              max-connections in a config file, RINGCAST_MAX_CONNECTIONS in the
//        │              environment (config_key, env_name)
//        ├─ type        how a value is read and shown (option_type)
//        ├─ field       where the value lives in app::config; the default is that field in a
//        │              default-constructed config, so it is written once, where the field
//        │              is declared (config.h or the module's struct)
//        ├─ range       numbers: the values a source may give
//        ├─ check       paths and names: what the type alone does not refuse
//        ├─ when_unset  for an option without a default value: what leaving it out means
//        ├─ help        one or two sentences for --help, without the default
//        ├─ scope       a setting, or a command (--help) that only the command line takes
//        └─ alias       another spelling on the command line ("-h")
//
// Adding an option is adding a row (options.cc); a static_assert there refuses a row whose
// field does not fit its type or range, and tests/unit/app checks the rest (help, defaults
// within range, --help listing).
#pragma once

#include "config.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ringcast::app {

/// How a value is read from text, checked and shown. Numbers are whole decimal numbers
/// within the row's range; the unit types say what the number counts, and the option's
/// name ends in it (-bytes, -ms, -us).
enum class option_type : uint8_t {
    integer,      ///< a count or a rate
    bytes,        ///< a size in bytes
    milliseconds, ///< a duration in ms
    microseconds, ///< a duration in µs
    address,      ///< HOST:PORT, the host resolved when the value is set (net::parse_endpoint)
    path,         ///< a path, checked by the row's check
    name_list,    ///< comma-separated names, each checked by the row's check; adds to the list
    network_list, ///< comma-separated networks (parse_address_prefix); adds to the list
    text,         ///< a non-empty string, checked by the row's check (--jwt-issuer)
    entry_list,   ///< one entry per use, commas included, checked; adds to the list
    toggle,       ///< a switch: on when given alone; from text true/false (yes/no, on/off, 1/0)
};

/// Where an option may be given.
enum class option_scope : uint8_t {
    setting, ///< how the server runs: a flag, a config-file key and a RINGCAST_ variable
    source,  ///< where the other settings are (--config): the command line only
    command, ///< what ringcastd does instead of serving (--help): the command line only
};

/// Where an option's value lives: a function returning the field of a config, so rows can
/// reach into nested structs. Each option_type takes the field types listed in
/// field_fits_type (options.cc).
template <typename T> using field_of = T& (*)(config&);
using option_field = std::variant<field_of<uint32_t>, field_of<std::size_t>, field_of<bool>,
                                  field_of<std::string>, field_of<std::vector<std::string>>,
                                  field_of<net::endpoint>, field_of<std::optional<net::endpoint>>,
                                  field_of<std::vector<address_prefix>>>;

/// The values a number option accepts, both ends included.
struct value_range {
    uint64_t min = 0;
    uint64_t max = 0;
};

/// Refuses a path or one name of a list that its type accepts; the error is a sentence
/// naming `given_as` (how the source spelled the option) and the value.
using value_check = result<void, std::string> (*)(std::string_view given_as,
                                                  std::string_view value);

/// One row of the table. Plain constant data; rows live in static storage for the whole run.
struct option {
    /// Lower-case words joined by '-'; unique in the table.
    std::string_view name;
    option_type type = option_type::integer;
    option_field field;
    /// Number types only.
    value_range range{};
    /// path and name_list only (each name); null: any value of the type.
    value_check check = nullptr;
    /// Empty: the option has a default, its field in config{}. Otherwise the option has no
    /// default value (its field in config{} is nothing a source can give: 0 below the range,
    /// an empty string, list or address) and this says what leaving it out means.
    std::string_view when_unset{};
    /// For --help: what the option does, in the words of an operator; no default in it.
    std::string_view help;
    option_scope scope = option_scope::setting;
    /// Another spelling on the command line ("-h"); empty: none.
    std::string_view alias{};
    /// How --help shows the value when the type's own form says too little
    /// ("NAME:RULE[,RULE]"); empty: value_name's form for the type.
    std::string_view metavar{};
};

/// Every row, in --help order.
std::span<const option> options() noexcept;

/// The row called `name` ("shards", not "--shards"), or null.
const option* find_option(std::string_view name) noexcept;

/// Why a name that is no option is refused with a reason rather than as unknown (an API key
/// given as a value, "api-key": anyone can read it): a sentence naming what to use
/// instead; empty when `name` is not such a name.
std::string refusal(std::string_view name);

/// Whether a reload (SIGHUP) applies a new value of `opt` to the running server; the
/// others need a restart (listeners, shards, sizes the shards were built with, modes).
/// docs/operations.md "Reload" lists them.
bool reloadable(const option& opt) noexcept;

/// The option on the command line: "--" + name.
std::string flag_of(const option& opt);
/// The key in a config file: the name; empty for a command or a source.
std::string_view config_key(const option& opt) noexcept;
/// The environment variable: "RINGCAST_" + the name in upper case with '_' for '-'
/// ("RINGCAST_MAX_CONNECTIONS"); empty for a command or a source.
std::string env_name(const option& opt);
/// How --help shows the value: the row's metavar, else "N", "HOST:PORT", "PATH",
/// "NS[,NS]", "CIDR[,CIDR]", "TEXT", "ENTRY"; empty for a toggle.
std::string_view value_name(const option& opt) noexcept;

/// Sets `opt` in `cfg` from `value`, the text one source gave (an argv word; a config-file
/// value or an environment variable in the next issue). `given_as` names the option the
/// way that source spelled it ("--shards"), for the error: a sentence naming it, the value
/// and what is accepted. `cfg` is unchanged on error.
result<void, std::string> set_option(config& cfg, const option& opt, std::string_view given_as,
                                     std::string_view value);

/// The value `cfg` holds for `opt`, as set_option would read it back (the same value);
/// nullopt when it holds none (the option is unset: see when_unset).
std::optional<std::string> render_value(const config& cfg, const option& opt);

} // namespace ringcast::app
