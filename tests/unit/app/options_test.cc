// The option table (src/app/options.h): every row's help, default and range, and what each
// type reads from text, refuses and shows.
#include "options.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <string_view>

using namespace ringcast;
using namespace ringcast::app;

namespace {

bool is_number(option_type type) {
    switch (type) {
    case option_type::integer:
    case option_type::bytes:
    case option_type::milliseconds:
    case option_type::microseconds:
        return true;
    case option_type::address:
    case option_type::path:
    case option_type::name_list:
    case option_type::network_list:
    case option_type::text:
    case option_type::entry_list:
    case option_type::toggle:
        return false;
    }
    return false;
}

const option& row(std::string_view name) {
    const option* opt = find_option(name);
    REQUIRE(opt != nullptr);
    return *opt;
}

/// set_option on a fresh config, named as on the command line; the error or the value read
/// back.
result<std::string, std::string> set_and_show(const option& opt, std::string_view value) {
    config cfg;
    if (auto ok = set_option(cfg, opt, flag_of(opt), value); !ok) {
        return unexpected{ok.error()};
    }
    auto shown = render_value(cfg, opt);
    if (!shown) {
        return unexpected{std::string("set, but shown as unset")};
    }
    return *shown;
}

} // namespace

TEST_CASE("every row has help, is found by its name and shows a value form unless a switch",
          "[app][options]") {
    REQUIRE(options().size() >= 30);
    for (const option& opt : options()) {
        INFO(opt.name);
        CHECK(find_option(opt.name) == &opt);
        CHECK(opt.help.size() >= 10);
        CHECK(flag_of(opt) == "--" + std::string(opt.name));
        CHECK(value_name(opt).empty() == (opt.type == option_type::toggle));
        // The default is rendered from the field; help that wrote one would repeat it.
        CHECK(opt.help.find("default") == std::string_view::npos);
    }
    CHECK(find_option("no-such-option") == nullptr);
    CHECK(find_option("--shards") == nullptr);
    CHECK(find_option("") == nullptr);
}

TEST_CASE("every default is a value its row takes, or the row says what leaving it out means",
          "[app][options]") {
    const config defaults;
    for (const option& opt : options()) {
        INFO(opt.name);
        const auto shown = render_value(defaults, opt);
        // A switch always has a value; one that defaults to on says so in when_unset
        // (--permessage-deflate), for --help.
        if (opt.when_unset.empty() || opt.type == option_type::toggle) {
            REQUIRE(shown.has_value());
            // Read back through set_option, which checks the range and the type's rules.
            auto again = set_and_show(opt, *shown);
            REQUIRE(again.has_value());
            CHECK(*again == *shown);
        } else {
            CHECK_FALSE(shown.has_value());
        }
    }
}

TEST_CASE("numbers: both ends of the range are taken, one past either end is refused",
          "[app][options]") {
    for (const option& opt : options()) {
        if (!is_number(opt.type)) {
            continue;
        }
        INFO(opt.name);
        const std::string range =
            "from " + std::to_string(opt.range.min) + " to " + std::to_string(opt.range.max);
        for (const uint64_t good : {opt.range.min, opt.range.max}) {
            auto shown = set_and_show(opt, std::to_string(good));
            REQUIRE(shown.has_value());
            CHECK(*shown == std::to_string(good));
        }
        std::vector<uint64_t> bad = {opt.range.max + 1};
        if (opt.range.min > 0) {
            bad.push_back(opt.range.min - 1);
        }
        for (const uint64_t value : bad) {
            auto refused = set_and_show(opt, std::to_string(value));
            REQUIRE_FALSE(refused.has_value());
            CHECK(refused.error() == flag_of(opt) + " = '" + std::to_string(value) +
                                         "' is not a whole number " + range);
        }
    }
}

TEST_CASE("numbers: text that is not a whole decimal number is refused naming the option",
          "[app][options]") {
    const option& shards = row("shards");
    for (const std::string_view text :
         {"abc", "", "1.5", "-1", "12abc", " 2", "2 ", "+2", "0x10", "99999999999999999999999"}) {
        INFO("'" << text << "'");
        auto refused = set_and_show(shards, text);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error() ==
              "--shards = '" + std::string(text) + "' is not a whole number from 1 to 1024");
    }
    // size_t fields read the same way.
    auto refused = set_and_show(row("max-message-bytes"), "16MiB");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().starts_with("--max-message-bytes = '16MiB' is not a whole number"));
}

TEST_CASE("a switch reads true or false in the usual spellings and nothing else",
          "[app][options]") {
    const option& insecure = row("insecure");
    for (const std::string_view on : {"true", "yes", "on", "1"}) {
        CHECK(set_and_show(insecure, on).value() == "true");
    }
    for (const std::string_view off : {"false", "no", "off", "0"}) {
        CHECK(set_and_show(insecure, off).value() == "false");
    }
    for (const std::string_view bad : {"", "TRUE", "2", "enable", "y"}) {
        INFO("'" << bad << "'");
        auto refused = set_and_show(insecure, bad);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().starts_with("--insecure = '" + std::string(bad) +
                                          "' is not a switch value"));
    }
}

TEST_CASE("an address is HOST:PORT with a numeric or resolvable host; errors name the option",
          "[app][options]") {
    CHECK(set_and_show(row("listen"), "127.0.0.1:0").value() == "127.0.0.1:0");
    CHECK(set_and_show(row("listen"), "[::1]:8080").value() == "[::1]:8080");
    CHECK(set_and_show(row("listen"), ":9000").value() == "0.0.0.0:9000");
    CHECK(set_and_show(row("api-listen"), "127.0.0.1:9001").value() == "127.0.0.1:9001");
    for (const std::string_view bad : {"", "abc", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:x"}) {
        INFO("'" << bad << "'");
        auto refused = set_and_show(row("api-listen"), bad);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().starts_with("--api-listen: "));
    }
}

TEST_CASE("--echo takes a path of its own, not one the server serves already", "[app][options]") {
    CHECK(set_and_show(row("echo"), "/echo").value() == "/echo");
    CHECK(set_and_show(row("echo"), "/a/b-c_d.e~f").value() == "/a/b-c_d.e~f");
    for (const std::string_view bad :
         {"", "echo", "/", "/ws", "/healthz", "/api/x", "/a b", "/ech?o"}) {
        INFO("'" << bad << "'");
        auto refused = set_and_show(row("echo"), bad);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().starts_with("--echo = '" + std::string(bad) +
                                          "' must be a path such as /echo"));
    }
}

TEST_CASE("--client-publish adds namespaces in order; a bad one is refused and adds none",
          "[app][options]") {
    const option& publish = row("client-publish");
    config cfg;
    REQUIRE(set_option(cfg, publish, "--client-publish", "chat,news").has_value());
    REQUIRE(set_option(cfg, publish, "--client-publish", "game.1,").has_value());
    REQUIRE(set_option(cfg, publish, "--client-publish", "").has_value());
    CHECK(render_value(cfg, publish).value() == "chat,news,game.1");
    CHECK(cfg.gateway.pubsub.client_publish_namespaces ==
          std::vector<std::string>{"chat", "news", "game.1"});

    for (const std::string_view bad : {"a:b", "bad ns", ",", "chat,,x", "x,a:b"}) {
        INFO("'" << bad << "'");
        auto refused = set_option(cfg, publish, "--client-publish", bad);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().find("is not a namespace name") != std::string::npos);
        CHECK(refused.error().starts_with("--client-publish: '"));
    }
    auto user = set_option(cfg, publish, "--client-publish", "chat2,user");
    REQUIRE_FALSE(user.has_value());
    CHECK(user.error() ==
          "--client-publish: the user namespace is server-only (per-user channels)");
    // Nothing of a refused value was added.
    CHECK(render_value(cfg, publish).value() == "chat,news,game.1");
}

TEST_CASE("--api-key-file refuses an empty path and keeps any other", "[app][options]") {
    auto refused = set_and_show(row("api-key-file"), "");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == "--api-key-file: empty path; give the file holding the key");
    CHECK(set_and_show(row("api-key-file"), "/run/creds/key").value() == "/run/creds/key");
}

TEST_CASE("set_option names the option the way its source spelled it", "[app][options]") {
    // What a config file or an environment variable (next issue) will pass.
    config cfg;
    auto refused = set_option(cfg, row("shards"), "RINGCAST_SHARDS", "0");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == "RINGCAST_SHARDS = '0' is not a whole number from 1 to 1024");
    auto address = set_option(cfg, row("listen"), "listen (ringcast.toml)", "nope");
    REQUIRE_FALSE(address.has_value());
    CHECK(address.error().starts_with("listen (ringcast.toml): "));
    REQUIRE(set_option(cfg, row("shards"), "shards", "4").has_value());
    CHECK(cfg.shards == 4);
}

TEST_CASE("config keys and environment variables derive from the name; commands have none",
          "[app][options]") {
    CHECK(config_key(row("max-connections")) == "max-connections");
    CHECK(env_name(row("max-connections")) == "RINGCAST_MAX_CONNECTIONS");
    CHECK(env_name(row("linger-us")) == "RINGCAST_LINGER_US");
    for (const std::string_view command : {"help", "version", "check-config"}) {
        INFO(command);
        CHECK(row(command).scope == option_scope::command);
        CHECK(config_key(row(command)).empty());
        CHECK(env_name(row(command)).empty());
    }
    std::set<std::string> variables;
    for (const option& opt : options()) {
        if (opt.scope != option_scope::setting) {
            continue;
        }
        INFO(opt.name);
        const std::string variable = env_name(opt);
        CHECK(variables.insert(variable).second);
        // The API key's own variable is not an option's: it holds the key, not a setting.
        CHECK(variable != api_key_env);
    }
}

TEST_CASE("--api-key-file's help and unset default name the API key's variable", "[app][options]") {
    // The variable is read by finish_config, not through the table: its name is written in
    // these texts by hand.
    CHECK(row("api-key-file").help.find(api_key_env) != std::string_view::npos);
    CHECK(row("api-key-file").when_unset.find(api_key_env) != std::string_view::npos);
}

TEST_CASE("--api-key is refused with what to use instead; other names are not refused",
          "[app][options]") {
    const std::string why = refusal("api-key");
    CHECK(why.find("--api-key-file") != std::string::npos);
    CHECK(why.find(api_key_env) != std::string::npos);
    CHECK(refusal("api-key-file").empty());
    CHECK(refusal("shards").empty());
    CHECK(refusal("").empty());
    CHECK(find_option("api-key") == nullptr);
}

TEST_CASE("--proxy-protocol-from adds networks in order; a bad list is refused and adds none",
          "[app][options]") {
    const option& from = row("proxy-protocol-from");
    CHECK(value_name(from) == "CIDR[,CIDR]");
    config cfg;
    CHECK_FALSE(render_value(cfg, from).has_value());
    REQUIRE(set_option(cfg, from, "--proxy-protocol-from", "10.0.0.0/8,127.0.0.1").has_value());
    REQUIRE(set_option(cfg, from, "--proxy-protocol-from", "2001:DB8::/32").has_value());
    CHECK(render_value(cfg, from) == "10.0.0.0/8,127.0.0.1/32,2001:db8::/32");
    REQUIRE(cfg.runtime.proxy_from.size() == 3);
    CHECK(cfg.runtime.proxy_from[1].bits == 32);
    for (const std::string_view bad :
         {"", ",", "10.0.0.0/8,", ",10.0.0.0/8", "10.0.0.0/8,,::1", "10.0.0.1/8", "10.0.0.0/33",
          "abc", "1.5", "-1", "10.0.0.0/8 ", "::1/129", "10.0.0.0/8,bad"}) {
        INFO("'" << bad << "'");
        auto refused = set_option(cfg, from, "--proxy-protocol-from", bad);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().starts_with("--proxy-protocol-from"));
    }
    CHECK(cfg.runtime.proxy_from.size() == 3);
    // What is shown reads back as the same list.
    config again;
    REQUIRE(set_option(again, from, "--proxy-protocol-from", *render_value(cfg, from)).has_value());
    CHECK(render_value(again, from) == render_value(cfg, from));
}
