// Reading argv through the option table, finishing the config once every value is in,
// and the two texts generated from the table: --help and --check-config's list.
#include "config.h"


#include "options.h"

#include <ringcast/amqp.h>
#include <ringcast/auth.h>
#include <ringcast/bridge.h>
#include <ringcast/redis.h>

#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>

namespace ringcast::app {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return cpus;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) {
            cpus.push_back(cpu);
        }
    }
    return cpus;
}

namespace {

/// The API keys from --api-key-file or RINGCAST_API_KEY (one of them); none when neither.
result<std::vector<admin::api_key>, std::string> read_api_keys(const std::string& path) {
    const char* env = std::getenv(api_key_env);
    if (!path.empty() && env != nullptr) {
        return unexpected{"--api-key-file = '" + path + "' and the environment variable " +
                          std::string(api_key_env) +
                          " are both set; give the API key one way only"};
    }
    if (env != nullptr) {
        return admin::parse_api_keys(env, std::string("the environment variable ") + api_key_env);
    }
    if (path.empty()) {
        return std::vector<admin::api_key>();
    }
    // Bounded: a key file is short lines (64 keys of a few hundred bytes); a larger file is
    // a mistake (a wrong path).
    constexpr std::size_t max_key_file_bytes = 64 * 1024;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return unexpected{"--api-key-file = '" + path + "' cannot be read: " +
                          std::strerror(errno) + " (it must name a file holding the API key)"};
    }
    std::string text(max_key_file_bytes + 1, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), f));
    std::fclose(f);
    if (text.size() > max_key_file_bytes) {
        return unexpected{"--api-key-file = '" + path + "' is larger than " +
                          std::to_string(max_key_file_bytes) +
                          " bytes; it must hold API keys, one per line"};
    }
    return admin::parse_api_keys(text, "--api-key-file = '" + path + "'");
}

/// --socketio-client-js: the file's bytes (the socket.io-client browser bundle, ~50 KB;
/// more than 4 MiB is a wrong path).
result<std::shared_ptr<const std::string>, std::string> read_client_js(const std::string& path) {
    if (path.empty()) {
        return std::shared_ptr<const std::string>();
    }
    constexpr std::size_t max_bytes = 4u << 20;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return unexpected{"--socketio-client-js = '" + path + "' cannot be read: " +
                          std::strerror(errno) +
                          " (it names socket.io-client's dist/socket.io.min.js)"};
    }
    std::string text(max_bytes + 1, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), f));
    std::fclose(f);
    if (text.size() > max_bytes || text.empty()) {
        return unexpected{"--socketio-client-js = '" + path + "' is " +
                          (text.empty() ? std::string("empty") : "larger than 4 MiB") +
                          "; it names socket.io-client's dist/socket.io.min.js"};
    }
    return std::make_shared<const std::string>(std::move(text));
}

/// The key set of --jwt-secret-file, --jwt-public-key and --jwks-file; null when none is
/// given (authentication off).
result<std::shared_ptr<const auth::key_set>, std::string> load_jwt_keys(const config& cfg) {
    if (cfg.jwt_secret_file.empty() && cfg.jwt_public_key_file.empty() && cfg.jwks_file.empty()) {
        return std::shared_ptr<const auth::key_set>();
    }
    auto keys = std::make_shared<auth::key_set>();
    using loader = result<void, std::string> (auth::key_set::*)(const std::string&);
    const std::tuple<const char*, const std::string*, loader> sources[] = {
        {"--jwt-secret-file", &cfg.jwt_secret_file, &auth::key_set::load_secret_file},
        {"--jwt-public-key", &cfg.jwt_public_key_file, &auth::key_set::load_public_key_file},
        {"--jwks-file", &cfg.jwks_file, &auth::key_set::load_jwks_file},
    };
    for (const auto& [flag, path, load] : sources) {
        if (path->empty()) {
            continue;
        }
        if (auto ok = ((*keys).*load)(*path); !ok) {
            return unexpected{std::string(flag) + ": " + ok.error()};
        }
    }
    if (keys->empty()) {
        return unexpected{std::string("the JWT key files given hold no signing key (a JWKS "
                                      "of \"use\":\"enc\" keys only?); tokens could never "
                                      "verify")};
    }
    return std::shared_ptr<const auth::key_set>(std::move(keys));
}

/// The option `arg` names on the command line ("--shards", or an alias such as "-h"), or null.
const option* command_line_option(std::string_view arg) noexcept {
    if (arg.starts_with("--")) {
        return find_option(arg.substr(2));
    }
    for (const option& opt : options()) {
        if (!opt.alias.empty() && opt.alias == arg) {
            return &opt;
        }
    }
    return nullptr;
}

/// Combinations of options that each source accepted one by one but that cannot run
/// together; the error names every option involved.
result<void, std::string> check_combinations(const config& cfg) {
    if (cfg.gateway.ping_interval_ms > 0 && cfg.gateway.pong_timeout_ms == 0) {
        return unexpected{std::string("--pong-timeout-ms = 0 with pings on would close every "
                                      "pinged client; use at least 1 or --ping-interval-ms 0")};
    }
    const bool jwt = !cfg.jwt_secret_file.empty() || !cfg.jwt_public_key_file.empty() ||
                     !cfg.jwks_file.empty();
    if (jwt && cfg.gateway.insecure) {
        return unexpected{std::string(
            "--insecure (user ids from ?user=, unchecked) cannot be combined with JWT keys "
            "(--jwt-secret-file, --jwt-public-key, --jwks-file): users come from tokens; "
            "drop --insecure")};
    }
    if (jwt && !cfg.gateway.pubsub.client_publish_namespaces.empty()) {
        return unexpected{"--client-publish " +
                          cfg.gateway.pubsub.client_publish_namespaces.front() +
                          " is for servers without JWT keys; with them the namespace rules "
                          "decide: --namespace " +
                          cfg.gateway.pubsub.client_publish_namespaces.front() + ":public,publish"};
    }
    for (const std::string& entry : cfg.namespaces) {
        // Access rules decide by a token's claims; channel features (history=, presence, ack) work alone.
        auto rule = auth::parse_namespace_rule(entry); // checked when set: cannot fail
        if (!jwt && rule && (rule->access_given || rule->publish)) {
            return unexpected{"--namespace needs JWT keys (--jwt-secret-file, --jwt-public-key "
                              "or --jwks-file) for public, private, role= and publish: they "
                              "decide by a token's claims; without keys give only "
                              "history=N, history-ttl=S, presence, ack (--namespace " + entry + ")"};
        }
    }
    if (!jwt && (!cfg.gateway.tokens.verify.issuer.empty() ||
                 !cfg.gateway.tokens.verify.audience.empty())) {
        return unexpected{std::string("--jwt-issuer and --jwt-audience need JWT keys "
                                      "(--jwt-secret-file, --jwt-public-key or --jwks-file)")};
    }
    return {};
}

/// Columns `text` takes on a terminal: one per UTF-8 character ("µ" and "→" are one each).
std::size_t columns(std::string_view text) noexcept {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) & 0xc0) != 0x80;
    }));
}

/// Appends `words` separated by spaces, the first at column `at` of the current line, and
/// wraps to a new line indented to `indent` before a word that would pass help_width. A
/// word is never split, so "(default 16777216)" stays on one line.
void append_wrapped(std::string& out, const std::vector<std::string>& words, std::size_t at,
                    std::size_t indent) {
    std::size_t column = at;
    bool line_empty = true;
    for (const std::string& word : words) {
        const std::size_t width = columns(word);
        if (!line_empty && column + 1 + width > help_width) {
            out += "\n" + std::string(indent, ' ');
            column = indent;
            line_empty = true;
        }
        if (!line_empty) {
            out += ' ';
            ++column;
        }
        out += word;
        column += width;
        line_empty = false;
    }
    out += '\n';
}

/// "  --name VALUE" or "  --help, -h": the left column of an option's --help entry.
std::string help_head(const option& opt) {
    std::string head = "  " + flag_of(opt);
    if (!opt.alias.empty()) {
        head += ", " + std::string(opt.alias);
    }
    if (const auto value = value_name(opt); !value.empty()) {
        head += " " + std::string(value);
    }
    return head;
}

/// How --help shows the default: "(default 2000)", "(default: none)" for an option without
/// a default value; empty for a switch that is off and for a command (given means on).
std::string default_clause(const option& opt) {
    if (!opt.when_unset.empty()) {
        return "(default: " + std::string(opt.when_unset) + ")";
    }
    const auto shown = render_value(config{}, opt);
    if (!shown) {
        // A default outside the row's range: a table bug tests/unit/app reports by name.
        return {};
    }
    switch (opt.type) {
    case option_type::toggle:
        return *shown == "true" ? "(default on)" : "";
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
    case option_type::address:
    case option_type::path:
    case option_type::name_list:
    case option_type::network_list:
    case option_type::text:
    case option_type::entry_list:
        return "(default " + *shown + ")";
    }
    return {};
}

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> words;
    while (!text.empty()) {
        const auto space = text.find(' ');
        if (space != 0) {
            words.emplace_back(text.substr(0, space));
        }
        text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    }
    return words;
}

} // namespace

result<void, std::string> read_command_line(config& cfg, int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        // "--name=VALUE": the value is joined to the option.
        std::optional<std::string_view> joined;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            joined = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        const option* opt = command_line_option(arg);
        if (opt == nullptr) {
            if (arg.starts_with("--")) {
                if (const std::string why = refusal(arg.substr(2)); !why.empty()) {
                    return unexpected{std::string(arg) + " is not accepted: " + why};
                }
            }
            return unexpected{"unknown option '" + std::string(argv[i]) + "' (see --help)"};
        }
        std::string_view value;
        if (joined) {
            value = *joined;
        } else if (opt->type == option_type::toggle) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return unexpected{std::string(arg) + " needs a value (see --help)"};
        }
        if (auto ok = set_option(cfg, *opt, arg, value); !ok) {
            return ok;
        }
        if (std::none_of(cfg.given.begin(), cfg.given.end(),
                         [&](const given_option& g) { return g.opt == opt; })) {
            cfg.given.push_back({opt, value_source::command_line});
        }
    }
    return {};
}

namespace {

/// --queue-bridge and --amqp-bridge: the Bull bridge (reading through --redis-url in the
/// consumer group --redis-prefix as this host, docs/bridges.md "Nodes") and the RabbitMQ
/// bridge (--amqp-url), both on shard 0, as one bridge set (the engine answers one
/// listener).
result<void, std::string> bridge_settings(config& cfg) {
    if (cfg.queue_bridges.empty() && cfg.amqp_bridges.empty()) {
        return {};
    }
    std::optional<std::pair<redis::redis_target, bridge::bull_config>> bull_settings;
    if (!cfg.queue_bridges.empty()) {
        bridge::bull_config bull;
        for (const std::string& entry : cfg.queue_bridges) {
            auto rule = bridge::parse_bull_rule(entry); // checked when set: cannot fail
            if (!rule) {
                return unexpected{"--queue-bridge " + rule.error()};
            }
            bull.rules.push_back(std::move(*rule));
        }
        bull.key_prefix = cfg.queue_bridge_prefix;
        bull.group = cfg.redis_prefix;
        char host[256] = {};
        if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
            bull.consumer = host;
        }
        auto target = redis::resolve_target(cfg.redis_url, cfg.redis_prefix);
        if (!target) {
            return unexpected{"--redis-url (for --queue-bridge): " + target.error()};
        }
        bull_settings.emplace(std::move(*target), std::move(bull));
    }
    std::optional<std::pair<amqp::amqp_target, bridge::amqp_config>> amqp_settings;
    if (!cfg.amqp_bridges.empty()) {
        bridge::amqp_config amqp;
        for (const std::string& entry : cfg.amqp_bridges) {
            auto rule = bridge::parse_amqp_rule(entry); // checked when set: cannot fail
            if (!rule) {
                return unexpected{"--amqp-bridge " + rule.error()};
            }
            amqp.rules.push_back(std::move(*rule));
        }
        amqp.prefix = cfg.amqp_queue_prefix;
        amqp.prefetch = cfg.amqp_prefetch;
        auto target = amqp::resolve_target(cfg.amqp_url);
        if (!target) {
            return unexpected{"--amqp-url (for --amqp-bridge): " + target.error()};
        }
        amqp_settings.emplace(std::move(*target), std::move(amqp));
    }
    cfg.gateway.make_bridges = [bull = std::move(bull_settings), amqp = std::move(amqp_settings)](
                                   core::conn_io& io, core::outbound_connector& connector,
                                   pubsub::engine& engine) -> std::unique_ptr<bridge::bridges> {
        if (io.id() != shard_id(0)) {
            return nullptr; // one reader per process: shard 0's
        }
        std::vector<std::unique_ptr<bridge::bridges>> members;
        if (bull) {
            const auto index = static_cast<uint32_t>(members.size());
            members.push_back(
                bridge::make_bull_bridge(io, connector, engine, bull->first, bull->second, index));
        }
        if (amqp) {
            const auto index = static_cast<uint32_t>(members.size());
            members.push_back(
                bridge::make_amqp_bridge(io, connector, engine, amqp->first, amqp->second, index));
        }
        return bridge::make_bridge_set(engine, std::move(members));
    };
    return {};
}

} // namespace

result<void, std::string> finish_config(config& cfg) {
    auto keys = read_api_keys(cfg.api_key_file);
    if (!keys) {
        return unexpected{keys.error()};
    }
    cfg.gateway.api.keys = std::move(*keys);
    cfg.api_key_source = !cfg.api_key_file.empty()        ? cfg.api_key_file
                         : !cfg.gateway.api.keys.empty() ? std::string(api_key_env)
                                                         : std::string();
    cfg.gateway.separate_api = cfg.api_listen.has_value();
    cfg.gateway.separate_metrics = cfg.metrics_listen.has_value();
    cfg.gateway.pubsub.socketio.recovery = cfg.gateway.socketio.recovery_ms > 0;
    auto client_js = read_client_js(cfg.socketio_client_js_file);
    if (!client_js) {
        return unexpected{client_js.error()};
    }
    cfg.gateway.socketio.client_js = std::move(*client_js);
    if (auto ok = check_combinations(cfg); !ok) {
        return ok;
    }
    auto jwt_keys = load_jwt_keys(cfg);
    if (!jwt_keys) {
        return unexpected{jwt_keys.error()};
    }
    cfg.gateway.tokens.keys = std::move(*jwt_keys);
    if (cfg.engine == "redis") {
        auto target = redis::resolve_target(cfg.redis_url, cfg.redis_prefix);
        if (!target) {
            return unexpected{"--redis-url: " + target.error()};
        }
        cfg.gateway.make_broker = [t = *target](core::conn_io& io,
                                                core::outbound_connector& connector) {
            return redis::make_broker(io, connector, t);
        };
    }
    if (auto bridges = bridge_settings(cfg); !bridges) {
        return bridges;
    }
    cfg.gateway.tokens.verify.leeway_s = cfg.jwt_leeway_s;
    auto table = std::make_shared<auth::namespace_table>();
    for (const std::string& entry : cfg.namespaces) {
        auto rule = auth::parse_namespace_rule(entry); // checked when set: cannot fail
        if (!rule) {
            return unexpected{"--namespace = '" + entry + "': " + rule.error()};
        }
        if (rule->history > 0 || rule->presence || rule->ack) {
            cfg.gateway.pubsub.channels.by_namespace.emplace_back(
                rule->name, pubsub::channel_policy{rule->history, rule->history_ttl_s,
                                                   rule->presence, rule->ack});
        }
        if (auto added = table->add(std::move(*rule)); !added) {
            return unexpected{"--namespace = '" + entry + "': " + added.error()};
        }
    }
    if (cfg.gateway.tokens.keys) {
        cfg.gateway.pubsub.namespaces = std::move(table);
    }
    return {};
}

result<config, std::string> parse_args(int argc, char** argv) {
    config cfg;
    if (auto read = read_command_line(cfg, argc, argv); !read) {
        return unexpected{read.error()};
    }
    if (cfg.show_help || cfg.show_version) {
        return cfg;
    }
    // Flag > environment > file > default: each later source sets only what the earlier
    // ones did not.
    std::vector<std::string> problems = read_environment(cfg);
    if (!cfg.config_file.empty()) {
        std::vector<std::string> in_file = read_config_file(cfg, cfg.config_file);
        problems.insert(problems.end(), in_file.begin(), in_file.end());
    }
    if (!problems.empty()) {
        std::string all;
        for (const std::string& p : problems) {
            all += (all.empty() ? "" : "\n") + p;
        }
        return unexpected{all};
    }
    if (auto finished = finish_config(cfg); !finished) {
        return unexpected{finished.error()};
    }
    return cfg;
}

bool given(const config& cfg, std::string_view name) {
    RINGCAST_ASSERT(find_option(name) != nullptr);
    return std::any_of(cfg.given.begin(), cfg.given.end(),
                       [name](const given_option& g) { return g.opt->name == name; });
}

std::string usage() {
    std::size_t indent = 0;
    for (const option& opt : options()) {
        indent = std::max(indent, columns(help_head(opt)) + 1);
    }
    std::string text = "usage: ringcastd [options]\n\n";
    for (const option& opt : options()) {
        const std::string head = help_head(opt);
        text += head;
        text += std::string(indent - columns(head), ' ');
        std::vector<std::string> words = split_words(opt.help);
        if (std::string clause = default_clause(opt); !clause.empty()) {
            words.push_back(std::move(clause));
        }
        append_wrapped(text, words, indent, indent);
    }
    text += '\n';
    append_wrapped(text,
                   split_words("A value follows its option (--shards 2) or is joined to it "
                               "(--shards=2); a switch alone is on (--insecure), "
                               "--insecure=false is off."),
                   0, 0);
    return text;
}

std::string effective_options(const config& cfg) {
    std::size_t indent = 0;
    for (const option& opt : options()) {
        indent = std::max(indent, 2 + flag_of(opt).size() + 1);
    }
    std::string text;
    for (const option& opt : options()) {
        switch (opt.scope) {
        case option_scope::setting:
            break;
        case option_scope::source:
        case option_scope::command:
            continue;
        }
        const std::string flag = flag_of(opt);
        text += "  " + flag + std::string(indent - 2 - flag.size(), ' ');
        const auto value = render_value(cfg, opt);
        text += value ? *value : "not set: " + std::string(opt.when_unset);
        text += '\n';
    }
    return text;
}

} // namespace ringcast::app
