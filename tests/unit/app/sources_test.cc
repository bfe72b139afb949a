// The sources besides argv (src/app/sources.cc): the TOML config file and RINGCAST_*
// variables, their precedence (flag > environment > file > default), every problem said
// with its place, and --print-config's text read back as a config file giving the same
// settings.
#include "config.h"
#include "options.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using namespace ringcast;
using namespace ringcast::app;

namespace {

/// A config file holding `text`, removed with the object.
struct temp_file {
    std::string path;
    explicit temp_file(const std::string& text) {
        char name[] = "/tmp/ringcast-config-XXXXXX";
        const int fd = mkstemp(name);
        REQUIRE(fd >= 0);
        close(fd);
        path = name;
        std::ofstream(path) << text;
    }
    ~temp_file() { unlink(path.c_str()); }
};

result<config, std::string> parse(std::vector<std::string> words) {
    unsetenv(api_key_env);
    std::vector<std::string> args{"ringcastd"};
    args.insert(args.end(), words.begin(), words.end());
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    return parse_args(static_cast<int>(args.size()), argv.data());
}

config parse_ok(std::vector<std::string> words) {
    auto parsed = parse(std::move(words));
    INFO((parsed.has_value() ? std::string() : parsed.error()));
    REQUIRE(parsed.has_value());
    return std::move(*parsed);
}

std::string value_of(const config& cfg, std::string_view name) {
    const auto v = render_value(cfg, *find_option(name));
    return v ? *v : "(unset)";
}

value_source source_of(const config& cfg, std::string_view name) {
    for (const given_option& g : cfg.given) {
        if (g.opt->name == name) {
            return g.from;
        }
    }
    return value_source::default_value;
}

} // namespace

TEST_CASE("config file: keys are options, flags and variables win over it", "[app][sources]") {
    temp_file file(R"(# a comment
shards = 3
max-channels = 20
insecure = true
allowed-origins = ["https://a.example", "https://b.example"]
client-publish = "chat,news"

[namespace.room]
history = 50
history-ttl = 60
presence = true
ack = true
)");
    unsetenv("RINGCAST_MAX_CHANNELS");
    config cfg = parse_ok({"--config", file.path});
    CHECK(value_of(cfg, "shards") == "3");
    CHECK(value_of(cfg, "max-channels") == "20");
    CHECK(value_of(cfg, "insecure") == "true");
    CHECK(value_of(cfg, "allowed-origins") == "https://a.example,https://b.example");
    CHECK(value_of(cfg, "client-publish") == "chat,news");
    REQUIRE(cfg.namespaces.size() == 1);
    CHECK(cfg.namespaces[0].starts_with("room:"));
    REQUIRE(cfg.gateway.pubsub.channels.by_namespace.size() == 1);
    const pubsub::channel_policy room = cfg.gateway.pubsub.channels.by_namespace[0].second;
    CHECK(room.count == 50);
    CHECK(room.ttl_s == 60);
    CHECK(room.presence);
    CHECK(room.ack);
    CHECK(source_of(cfg, "shards") == value_source::file);
    CHECK(source_of(cfg, "ping-interval-ms") == value_source::default_value);

    setenv("RINGCAST_MAX_CHANNELS", "30", 1);
    setenv("RINGCAST_SHARDS", "4", 1);
    cfg = parse_ok({"--config", file.path, "--shards", "2"});
    CHECK(value_of(cfg, "shards") == "2"); // flag > environment > file
    CHECK(source_of(cfg, "shards") == value_source::command_line);
    CHECK(value_of(cfg, "max-channels") == "30"); // environment > file
    CHECK(source_of(cfg, "max-channels") == value_source::environment);
    // A list from a higher source replaces the file's whole.
    cfg = parse_ok({"--config", file.path, "--allowed-origins", "https://c.example"});
    CHECK(value_of(cfg, "allowed-origins") == "https://c.example");
    unsetenv("RINGCAST_MAX_CHANNELS");
    unsetenv("RINGCAST_SHARDS");
}

TEST_CASE("config file: every problem, in file order, with its line", "[app][sources]") {
    temp_file file(R"(shards = "two"
max-conections = 5
help = true
ping-interval-ms = 1.5
listen = ["127.0.0.1:1", "127.0.0.1:2"]
namespace = "chat:history=5"
config = "/etc/other.toml"
)");
    auto parsed = parse({"--config", file.path});
    REQUIRE_FALSE(parsed.has_value());
    const std::string& e = parsed.error();
    const std::string at = file.path + ":";
    const std::vector<std::string> expected = {
        at + "1: shards = 'two' is not a whole number",
        at + "2: unknown key 'max-conections'",
        at + "3: 'help' is for the command line only",
        at + "4: ping-interval-ms cannot be a number with a fraction",
        at + "5: listen takes one value, not an array",
        at + "6: namespace must be tables: [namespace.NAME]",
        at + "7: 'config' is for the command line only",
    };
    std::size_t from = 0;
    for (const std::string& want : expected) {
        INFO(e);
        const std::size_t found = e.find(want, from);
        CHECK(found != std::string::npos);
        if (found != std::string::npos) {
            from = found; // in this order
        }
    }
    temp_file tables("[namespace.chat]\nhistory = 5\ncolour = \"red\"\n[namespace.room]\n"
                     "access = \"secret\"\nroles = []\npresence = 1\n");
    const std::string ns = parse({"--config", tables.path}).error();
    INFO(ns);
    CHECK(ns.find(tables.path + ":3: [namespace.chat] unknown key 'colour'") != std::string::npos);
    CHECK(ns.find(tables.path + ":5: [namespace.room] access: must be") != std::string::npos);
    CHECK(ns.find(tables.path + ":6: [namespace.room] roles: must be an array") !=
          std::string::npos);
    CHECK(ns.find(tables.path + ":7: [namespace.room] presence: must be true or false") !=
          std::string::npos);
    temp_file syntax("shards = \n");
    const std::string bad = parse({"--config", syntax.path}).error();
    CHECK(bad.starts_with(syntax.path + ":1:"));
    CHECK(parse({"--config", "/nonexistent/ringcast.toml"}).error().starts_with(
        "--config /nonexistent/ringcast.toml: "));
    temp_file secret("api-key = \"abc\"\n");
    CHECK(parse({"--config", secret.path}).error().find("--api-key-file") != std::string::npos);
}

TEST_CASE("environment: RINGCAST_<OPTION>, lists one per line, unknown ones warned of",
          "[app][sources]") {
    setenv("RINGCAST_NAMESPACE", "chat:history=5\nroom:presence", 1);
    setenv("RINGCAST_INSECURE", "yes", 1);
    config cfg = parse_ok({});
    CHECK(cfg.namespaces == std::vector<std::string>{"chat:history=5", "room:presence"});
    CHECK(value_of(cfg, "insecure") == "true");
    CHECK(source_of(cfg, "namespace") == value_source::environment);
    setenv("RINGCAST_MAX_CONECTIONS", "5", 1);
    const config warned = parse_ok({});
    REQUIRE(warned.warnings.size() == 1);
    CHECK(warned.warnings[0].find("RINGCAST_MAX_CONECTIONS is no option") != std::string::npos);
    unsetenv("RINGCAST_MAX_CONECTIONS");
    setenv("RINGCAST_URL", "ws://127.0.0.1:8080", 1); // the client's (docs/cli.md)
    setenv("RINGCAST_TOKEN", "eyJ", 1);
    CHECK(parse_ok({}).warnings.empty());
    unsetenv("RINGCAST_URL");
    unsetenv("RINGCAST_TOKEN");
    setenv("RINGCAST_SHARDS", "0", 1);
    CHECK(parse({}).error().find("the environment variable RINGCAST_SHARDS") != std::string::npos);
    unsetenv("RINGCAST_SHARDS");
    unsetenv("RINGCAST_NAMESPACE");
    unsetenv("RINGCAST_INSECURE");
}

TEST_CASE("--print-config is a config file giving the same settings", "[app][sources]") {
    temp_file first(R"(shards = 2
listen = "127.0.0.1:0"
max-connections-per-user = 3
allowed-origins = ["https://a.example"]
client-publish = ["chat", "news"]
ack-timeout-ms = 2500
echo = "/echo"

[namespace.room]
history = 10
presence = true
)");
    const config before = parse_ok({"--config", first.path});
    const std::string printed = print_config(before);
    temp_file second(printed);
    const config after = parse_ok({"--config", second.path});
    for (const option& opt : options()) {
        if (opt.scope != option_scope::setting) {
            continue;
        }
        INFO(opt.name << "\n" << printed);
        CHECK(render_value(after, opt) == render_value(before, opt));
    }
    CHECK(after.namespaces.size() == 1);
    CHECK(printed.find("[namespace.room]") != std::string::npos);
    CHECK(printed.find("shards = 2  # config file") != std::string::npos);
    CHECK(printed.find("max-channels = 50  # default") != std::string::npos);
}

TEST_CASE("reloadable options are settings, and the mode-setting ones are not among them",
          "[app][sources]") {
    std::size_t live = 0;
    for (const option& opt : options()) {
        if (reloadable(opt)) {
            ++live;
            CHECK(opt.scope == option_scope::setting);
        }
    }
    CHECK(live == 29); // src/app/options.cc reloadable's list, every name a real option
    for (const char* fixed : {"listen", "api-listen", "shards", "insecure", "max-connections",
                              "history-budget-bytes", "max-idle-channels", "echo"}) {
        INFO(fixed);
        CHECK_FALSE(reloadable(*find_option(fixed)));
    }
}
