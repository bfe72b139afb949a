// ringcastd's argv, finish_config's checks, and the texts generated from the option table:
// --help and --check-config's list of values.
#include "config.h"
#include "options.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

using namespace ringcast;
using namespace ringcast::app;

namespace {

/// parse_args on `words` after the program name, with the API key variable unset.
result<config, std::string> parse(std::initializer_list<std::string> words) {
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

/// parse() that must succeed.
config parse_ok(std::initializer_list<std::string> words) {
    auto parsed = parse(words);
    INFO((parsed.has_value() ? std::string() : parsed.error()));
    REQUIRE(parsed.has_value());
    return std::move(*parsed);
}

std::string parse_error(std::initializer_list<std::string> words) {
    auto parsed = parse(words);
    REQUIRE_FALSE(parsed.has_value());
    return parsed.error();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto end = text.find('\n', at);
        lines.push_back(text.substr(at, end - at));
        at = end == std::string::npos ? text.size() : end + 1;
    }
    return lines;
}

/// Columns of a line of UTF-8 text.
std::size_t columns(std::string_view text) {
    std::size_t n = 0;
    for (const char ch : text) {
        n += (static_cast<unsigned char>(ch) & 0xc0) != 0x80 ? 1 : 0;
    }
    return n;
}

/// "  --name VALUE" or "  --help, -h": how --help starts the entry of `opt`.
std::string help_head(const option& opt) {
    std::string head = "  " + flag_of(opt);
    if (!opt.alias.empty()) {
        head += ", " + std::string(opt.alias);
    }
    if (!value_name(opt).empty()) {
        head += " " + std::string(value_name(opt));
    }
    return head;
}

/// The --help entry of `opt`: its first line (which starts with "  --name") and the
/// continuation lines after it, joined by single spaces; empty when there is none.
std::string help_entry(const std::vector<std::string>& lines, const option& opt) {
    const std::string head = "  " + flag_of(opt);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        if (!line.starts_with(head) ||
            (line.size() > head.size() && line[head.size()] != ' ' && line[head.size()] != ',')) {
            continue;
        }
        std::string entry = line;
        for (std::size_t j = i + 1;
             j < lines.size() && lines[j].starts_with("    ") && !lines[j].starts_with("  --");
             ++j) {
            entry += " " + lines[j].substr(lines[j].find_first_not_of(' '));
        }
        return entry;
    }
    return {};
}

} // namespace

TEST_CASE("no arguments give every option its default and mark none as given", "[app][config]") {
    auto parsed = parse({});
    REQUIRE(parsed.has_value());
    const config defaults;
    for (const option& opt : options()) {
        INFO(opt.name);
        CHECK(render_value(*parsed, opt) == render_value(defaults, opt));
        CHECK_FALSE(given(*parsed, opt.name));
    }
    CHECK(parsed->gateway.api.keys.empty());
    CHECK(parsed->api_key_source.empty());
    CHECK_FALSE(parsed->gateway.separate_api);
}

TEST_CASE("a value follows its option or is joined to it with =", "[app][config]") {
    auto apart = parse({"--shards", "3", "--listen", "127.0.0.1:0", "--max-message-bytes", "4096"});
    REQUIRE(apart.has_value());
    auto joined = parse({"--shards=3", "--listen=127.0.0.1:0", "--max-message-bytes=4096"});
    REQUIRE(joined.has_value());
    for (const config* cfg : {&*apart, &*joined}) {
        CHECK(cfg->shards == 3);
        CHECK(cfg->listen.host == "127.0.0.1");
        CHECK(cfg->listen.port == 0);
        CHECK(cfg->gateway.ws_limits.max_message_bytes == 4096);
        CHECK(given(*cfg, "shards"));
        CHECK(given(*cfg, "listen"));
        CHECK_FALSE(given(*cfg, "max-connections"));
    }
    // "=" splits at the first '=' only: the rest is the value.
    auto path = parse({"--api-key-file=/tmp/a=b", "--api-key-file", "/x"});
    REQUIRE_FALSE(path.has_value());                       // the file does not exist...
    CHECK(path.error().find("'/x'") != std::string::npos); // ...and the last one counts
}

TEST_CASE("the last value of an option wins and the option is given once", "[app][config]") {
    auto parsed = parse({"--max-channels", "7", "--max-channels=9", "--max-channels", "8"});
    REQUIRE(parsed.has_value());
    CHECK(parsed->gateway.pubsub.max_channels_per_connection == 8);
    CHECK(parsed->given.size() == 1);
}

TEST_CASE("every option with a value, given last without one, says it needs one", "[app][config]") {
    for (const option& opt : options()) {
        if (opt.type == option_type::toggle) {
            continue;
        }
        INFO(opt.name);
        CHECK(parse_error({flag_of(opt)}) == flag_of(opt) + " needs a value (see --help)");
    }
}

TEST_CASE("an unknown option is refused naming the word as given", "[app][config]") {
    for (const std::string word : {"--nope", "--nope=3", "-x", "shards", "--", "---shards",
                                   "--Shards", "-shards", "-h=1", "--h"}) {
        INFO(word);
        CHECK(parse_error({"--shards", "2", word}) == "unknown option '" + word + "' (see --help)");
    }
}

TEST_CASE("a bad value stops parsing with the option's sentence", "[app][config]") {
    CHECK(parse_error({"--shards", "0"}) == "--shards = '0' is not a whole number from 1 to 1024");
    CHECK(parse_error({"--linger-us=100001"}) ==
          "--linger-us = '100001' is not a whole number from 0 to 100000");
    // A value is taken as it comes, even one that looks like an option.
    CHECK(parse_error({"--shards", "--check-config"}) ==
          "--shards = '--check-config' is not a whole number from 1 to 1024");
    CHECK(parse_error({"--handshake-timeout-ms", "0"})
              .starts_with("--handshake-timeout-ms = '0' is not a whole number from 1 to"));
}

TEST_CASE("--api-key is refused with or without a value, naming the safe ways", "[app][config]") {
    for (const std::initializer_list<std::string> words :
         {std::initializer_list<std::string>{"--api-key", "0123456789abcdef-KEY"},
          std::initializer_list<std::string>{"--api-key=0123456789abcdef-KEY"},
          std::initializer_list<std::string>{"--api-key"}}) {
        const std::string error = parse_error(words);
        CHECK(error.starts_with("--api-key is not accepted: "));
        CHECK(error.find("--api-key-file PATH") != std::string::npos);
        CHECK(error.find(api_key_env) != std::string::npos);
        CHECK(error.find("0123456789abcdef-KEY") == std::string::npos);
    }
}

TEST_CASE("a switch alone is on, =false turns it off; -h is --help", "[app][config]") {
    CHECK(parse_ok({"--insecure"}).gateway.insecure);
    CHECK_FALSE(parse_ok({"--insecure", "--insecure=false"}).gateway.insecure);
    CHECK(parse_ok({"--insecure=yes"}).gateway.insecure);
    // A switch does not take the next word as its value.
    CHECK(parse_error({"--insecure", "false"}) == "unknown option 'false' (see --help)");
    CHECK(parse_ok({"-h"}).show_help);
    CHECK(parse_ok({"--help"}).show_help);
    CHECK(parse_ok({"--version"}).show_version);
    CHECK(parse_ok({"--check-config"}).check_only);
    CHECK(parse_error({"--help=maybe"}).starts_with("--help = 'maybe' is not a switch value"));
}

TEST_CASE("--api-listen moves the API to its own listener", "[app][config]") {
    auto parsed = parse({"--api-listen", "127.0.0.1:0"});
    REQUIRE(parsed.has_value());
    REQUIRE(parsed->api_listen.has_value());
    CHECK(parsed->api_listen->host == "127.0.0.1");
    CHECK(parsed->gateway.separate_api);
}

TEST_CASE("combinations: no pong timeout with pings on", "[app][config]") {
    const std::string error = parse_error({"--pong-timeout-ms", "0"});
    CHECK(error.find("--pong-timeout-ms") != std::string::npos);
    CHECK(error.find("--ping-interval-ms 0") != std::string::npos);
    CHECK(parse_error({"--ping-interval-ms", "1", "--pong-timeout-ms", "0"}) == error);
    auto off = parse({"--ping-interval-ms", "0", "--pong-timeout-ms", "0"});
    REQUIRE(off.has_value());
    CHECK(off->gateway.pong_timeout_ms == 0);
}

TEST_CASE("the API key comes from the environment, and not from both places", "[app][config]") {
    setenv(api_key_env, "0123456789abcdef-KEY", 1);
    config from_env;
    REQUIRE(finish_config(from_env).has_value());
    REQUIRE(from_env.gateway.api.keys.size() == 1);
    CHECK(from_env.gateway.api.keys[0].secret == "0123456789abcdef-KEY");
    CHECK(from_env.gateway.api.keys[0].name == "default");
    CHECK(from_env.api_key_source == api_key_env);

    config both;
    both.api_key_file = "/some/file";
    auto refused = finish_config(both);
    unsetenv(api_key_env);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("one way only") != std::string::npos);
    CHECK(refused.error().find("--api-key-file") != std::string::npos);
}

TEST_CASE("--api-key-file holds named keys with scopes; errors name the line, never the secret",
          "[app][config]") {
    const std::string path = "/tmp/ringcast-config-test-keys-" + std::to_string(getpid());
    auto write = [&](const std::string& text) {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f != nullptr);
        std::fwrite(text.data(), 1, text.size(), f);
        std::fclose(f);
    };
    write("# keys\npub:publish:0123456789abcdef-PUB\nops:admin,publish:0123456789abcdef-OPS\n");
    config named;
    named.api_key_file = path;
    REQUIRE(finish_config(named).has_value());
    REQUIRE(named.gateway.api.keys.size() == 2);
    CHECK(named.gateway.api.keys[0].name == "pub");
    CHECK(named.gateway.api.keys[0].allows(admin::api_scope::publish));
    CHECK_FALSE(named.gateway.api.keys[0].allows(admin::api_scope::admin));
    CHECK(named.api_key_source == path);

    write("pub:publish:0123456789abcdef-PUB\nbad:root:0123456789abcdef-BAD\n");
    config bad;
    bad.api_key_file = path;
    auto refused = finish_config(bad);
    std::remove(path.c_str());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("line 2") != std::string::npos);
    CHECK(refused.error().find("publish, admin") != std::string::npos);
    CHECK(refused.error().find("0123456789abcdef") == std::string::npos);
}

TEST_CASE("--help lists every option once, with its value form", "[app][config][help]") {
    const std::string text = usage();
    REQUIRE(text.starts_with("usage: ringcastd [options]\n"));
    const auto lines = lines_of(text);
    for (const option& opt : options()) {
        INFO(opt.name);
        const std::string head = help_head(opt) + " ";
        int found = 0;
        for (const auto& line : lines) {
            found += line.starts_with(head) ? 1 : 0;
        }
        CHECK(found == 1);
        // The help text itself is there, wrapped or not.
        CHECK(help_entry(lines, opt).find(opt.help) != std::string::npos);
    }
}

TEST_CASE("the defaults --help shows are the defaults parsing gives", "[app][config][help]") {
    const auto lines = lines_of(usage());
    const config defaults;
    for (const option& opt : options()) {
        INFO(opt.name);
        const std::string entry = help_entry(lines, opt);
        REQUIRE_FALSE(entry.empty());
        if (!opt.when_unset.empty()) {
            CHECK(entry.ends_with("(default: " + std::string(opt.when_unset) + ")"));
            continue;
        }
        if (opt.type == option_type::toggle) {
            // Off unless given: no default shown (a switch that defaulted to on would say so).
            CHECK(render_value(defaults, opt) == "false");
            CHECK(entry.find("(default") == std::string::npos);
            continue;
        }
        const auto open = entry.rfind("(default ");
        REQUIRE(open != std::string::npos);
        REQUIRE(entry.ends_with(")"));
        const std::string shown = entry.substr(open + 9, entry.size() - 1 - (open + 9));
        CHECK(shown == render_value(defaults, opt));
        // Given back on the command line, the shown default is the parsed default.
        auto parsed = parse({flag_of(opt), shown});
        REQUIRE(parsed.has_value());
        CHECK(render_value(*parsed, opt) == render_value(defaults, opt));
    }
}

TEST_CASE("--help lines fit help_width; every description starts at one column",
          "[app][config][help]") {
    // The column: one space after the widest head.
    std::size_t column = 0;
    for (const option& opt : options()) {
        column = std::max(column, columns(help_head(opt)) + 1);
    }
    const auto lines = lines_of(usage());
    std::size_t entries = 0;
    for (const auto& line : lines) {
        INFO(line);
        CHECK(columns(line) <= help_width);
        CHECK_FALSE(line.ends_with(" "));
        if (!line.starts_with(" ")) {
            continue; // the usage line, blank lines, the closing note
        }
        // A head padded to the column, or a continuation: only spaces up to the column.
        REQUIRE(line.size() > column);
        CHECK(line[column - 1] == ' ');
        CHECK(line[column] != ' ');
        if (line.starts_with("  --")) {
            ++entries;
        } else {
            CHECK(line.find_first_not_of(' ') == column);
        }
    }
    CHECK(entries == options().size());
}

TEST_CASE("--check-config's list shows every setting's value, or that it is unset",
          "[app][config]") {
    auto parsed = parse({"--shards", "3", "--echo", "/echo", "--client-publish", "chat,news",
                         "--insecure", "--listen", "127.0.0.1:0"});
    REQUIRE(parsed.has_value());
    const auto lines = lines_of(effective_options(*parsed));
    std::size_t settings = 0;
    for (const option& opt : options()) {
        INFO(opt.name);
        const std::string head = "  " + flag_of(opt) + " ";
        const auto line = std::find_if(lines.begin(), lines.end(),
                                       [&](const std::string& l) { return l.starts_with(head); });
        if (opt.scope != option_scope::setting) {
            CHECK(line == lines.end());
            continue;
        }
        ++settings;
        REQUIRE(line != lines.end());
        const std::string value = line->substr(line->find_first_not_of(' ', head.size()));
        const auto shown = render_value(*parsed, opt);
        CHECK(value == (shown ? *shown : "not set: " + std::string(opt.when_unset)));
    }
    CHECK(lines.size() == settings);
    const std::string text = effective_options(*parsed);
    CHECK(text.find("  --shards ") != std::string::npos);
    CHECK(text.find(" 3\n") != std::string::npos);
    CHECK(text.find(" chat,news\n") != std::string::npos);
    CHECK(text.find(" not set: no cap beyond the per-shard one\n") != std::string::npos);
}
