// ringcastd's settings: what the option table (options.h) reads values into, how argv is
// read, and what is decided once every value is in (the API key, combinations of options).
//
//   argv ──► read_command_line ──► finish_config ──► config (handed to core and net)
//              (one option at a      (API key read,
//               time: set_option)     cross-option checks)
//
// The next issue adds a config file and environment variables: each becomes one more
// reader between config{} and finish_config, setting options by name with set_option.
#pragma once

#include <ringcast/core.h>
#include <ringcast/net.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::app {

struct option;

/// Where an option's value came from, highest precedence first.
enum class value_source : uint8_t { command_line, environment, file, default_value };

/// An option a source set.
struct given_option {
    const option* opt;
    value_source from;
};

/// The environment variable ringcastd reads the backend API key from (or --api-key-file).
inline constexpr const char* api_key_env = "RINGCAST_API_KEY";

/// Every setting of one ringcastd run. A default-constructed config holds every option's
/// default: the initialisers here and in the module structs it embeds are the only place a
/// default is written (options.h reads them from here). Filled at start-up on the main
/// thread; afterwards read only.
struct config {
    net::endpoint listen{"127.0.0.1", 8080};
    /// --api-listen: the backend API on its own address; empty: on the main listener.
    std::optional<net::endpoint> api_listen;
    /// --metrics-listen: GET /metrics (and /healthz) on an address of its own; empty: /metrics
    /// is on the API's listener.
    std::optional<net::endpoint> metrics_listen;
    /// 0 (not a value --shards takes): one shard per CPU of the affinity mask.
    unsigned shards = 0;
    /// The drain on SIGTERM or POST /api/drain (docs/operations.md "Drain"): how long
    /// /readyz and the agent check say "draining" before sessions are closed, and the
    /// window the closes are spread over. Both 0: every session closed at once, as before
    /// there was a drain (a balancer-less host; tests).
    uint32_t drain_delay_ms = 0;
    uint32_t drain_seconds = 0;
    /// The log (docs/operations.md "Logs"): --log-level and --log-format as given (checked
    /// by the option rows: log::parse_level / parse_format read them), --access-log.
    std::string log_level = "info";
    std::string log_format = "text";
    bool access_log = false;
    /// --agent-check-listen: HAProxy's agent-check port, answered by the main thread.
    std::optional<net::endpoint> agent_check_listen;
    core::runtime_config runtime;
    net::gateway_config gateway;
    /// --api-key-file as given; empty: none (the key may still come from api_key_env).
    std::string api_key_file;
    /// --socketio-client-js as given; empty: none. finish_config reads it into
    /// gateway.socketio.client_js.
    std::string socketio_client_js_file;
    /// --jwt-secret-file, --jwt-public-key, --jwks-file as given; empty: none. finish_config
    /// loads every one given into gateway.tokens.keys (authentication is on when any is).
    std::string jwt_secret_file;
    std::string jwt_public_key_file;
    std::string jwks_file;
    /// --jwt-leeway-s; finish_config copies it into gateway.tokens.verify.
    uint32_t jwt_leeway_s = 30;
    /// --namespace entries as given; finish_config builds gateway.pubsub.namespaces.
    std::vector<std::string> namespaces;
    /// Where the API key came from (the --api-key-file path or the variable's name), for
    /// the start-up line; empty: no key. Set by finish_config.
    std::string api_key_source;
    /// --engine: "embedded" (one node, the default) or "redis" (docs/scaling.md), with
    /// --redis-url and --redis-prefix; finish_config resolves them into
    /// gateway.make_broker.
    std::string engine = "embedded";
    std::string redis_url = "redis://127.0.0.1:6379";
    std::string redis_prefix = "ringcast";
    /// --queue-bridge rules as given (QUEUE:EVENT:CHANNEL) and --queue-bridge-prefix: the
    /// Bull bridge (docs/bridges.md), on --redis-url; finish_config builds
    /// gateway.make_bridges from them. No rule: no bridge.
    std::vector<std::string> queue_bridges;
    std::string queue_bridge_prefix = "bull";
    /// --amqp-url, --amqp-bridge rules as given (EXCHANGE:BINDING_KEY:CHANNEL),
    /// --amqp-prefetch and --amqp-queue-prefix: the RabbitMQ bridge (docs/bridges.md);
    /// finish_config adds it to gateway.make_bridges. No rule: no bridge.
    std::string amqp_url = "amqp://127.0.0.1:5672";
    std::vector<std::string> amqp_bridges;
    uint32_t amqp_prefetch = 256;
    std::string amqp_queue_prefix = "ringcast";
    /// --config: the TOML file to read (docs/operations.md "Configuration"); empty: none.
    std::string config_file;
    bool check_only = false;
    bool print_only = false;
    bool show_help = false;
    bool show_version = false;
    /// The options a source set, each once, with the source that won; every other option
    /// holds its default.
    std::vector<given_option> given;
    /// What a source had that is not wrong enough to refuse (a RINGCAST_ variable that is
    /// no option): said at start, one sentence each.
    std::vector<std::string> warnings;
};

/// Reads argv into `cfg`: "--name VALUE", "--name=VALUE", a switch alone ("--insecure"),
/// an alias ("-h"). Later values of an option replace earlier ones (a list option adds to
/// its list). The error is a sentence naming the flag, the value and what is accepted: an
/// unknown option, a refused one (--api-key), a missing or bad value. Stops at the first.
result<void, std::string> read_command_line(config& cfg, int argc, char** argv);

/// Completes `cfg` once every source was read: reads the API key (--api-key-file or
/// api_key_env, never both) and the JWT keys (each error a sentence naming the option and
/// the file), builds the namespace table, derives the settings several options decide
/// together, and checks the combinations of options that each source accepted one by one
/// (--insecure or --client-publish with JWT keys, --namespace without them). The error
/// names the options involved.
result<void, std::string> finish_config(config& cfg);

/// Sets from RINGCAST_<OPTION> variables (options.h env_name; a list option one value per
/// line) every option `cfg` was not given yet, marking them given from the environment.
/// Returns every problem, one sentence each (a bad value; RINGCAST_API_KEY is
/// finish_config's); a RINGCAST_ variable that is no option goes to cfg.warnings.
std::vector<std::string> read_environment(config& cfg);

/// Sets from the TOML file at `path` every option `cfg` was not given yet: keys are the
/// options' names, values strings, whole numbers, booleans or (list options) arrays of
/// them; namespaces are [namespace.NAME] tables (access, roles, publish, history,
/// history-ttl, presence, ack). Returns every problem, each a sentence starting
/// "PATH:LINE: " (a syntax error, an unknown key, a key for the command line only, a bad
/// value), or naming the file when it cannot be read.
std::vector<std::string> read_config_file(config& cfg, const std::string& path);

/// The effective configuration as a config file (--print-config): every setting with its
/// value and where it came from, unset ones commented out, namespaces as tables. Holds no
/// secret: the API key's source is an option (a path), the key itself never is.
std::string print_config(const config& cfg);

/// The command line, then the environment and the --config file for what it did not set,
/// then finish_config, on a default config. The error lists every problem of the
/// environment and the file, one per line.
result<config, std::string> parse_args(int argc, char** argv);

/// Whether an option named `name` (as in the table: "max-connections") was set by a source
/// rather than left at its default. `name` must be a row of the table.
bool given(const config& cfg, std::string_view name);

/// The --help text, generated from the option table: every row with its value's form,
/// its help and its default, wrapped at help_width columns.
std::string usage();
inline constexpr std::size_t help_width = 92;

/// What --check-config prints after its verdict: one line per setting (commands left out)
/// with the value `cfg` holds, or "not set" and what that means.
std::string effective_options(const config& cfg);

/// CPUs this process may run on (sched_getaffinity), in order.
std::vector<int> allowed_cpus();

} // namespace ringcast::app
