// The command line of ringcast (src/cli/options.cc): commands, options before and after
// the command, the environment below the flags, and errors as sentences.
#include "options.h"

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace ringcast::cli;

namespace {

struct fake_env {
    std::map<std::string, std::string> vars;
    env_lookup lookup() const {
        return [this](const char* name) -> const char* {
            const auto it = vars.find(name);
            return it == vars.end() ? nullptr : it->second.c_str();
        };
    }
};

auto parse(std::vector<std::string_view> args, const fake_env& env = {}) {
    return parse_arguments(args, env.lookup());
}

std::string error_of(std::vector<std::string_view> args, const fake_env& env = {}) {
    auto r = parse(std::move(args), env);
    REQUIRE_FALSE(r);
    return r.error();
}

} // namespace

TEST_CASE("sub takes channels and options on either side of the command", "[cli][options]") {
    auto r = parse({"--url", "ws://h:9", "sub", "a", "--count", "3", "b", "--user=7"});
    REQUIRE(r);
    CHECK(r->cmd == command::sub);
    CHECK(r->channels == std::vector<std::string>{"a", "b"});
    CHECK(r->count == 3);
    CHECK(r->user == "7");
    CHECK(r->server.host == "h");
    CHECK(r->server.port == 9);
    CHECK(r->max_bytes == default_max_bytes);
}

TEST_CASE("pub takes a channel and JSON that may look like an option", "[cli][options]") {
    auto r = parse({"pub", "ch", "-1", "--event", "e", "--priority", "2", "--user-id", "u"});
    REQUIRE(r);
    CHECK(r->target == "ch");
    CHECK(r->data == "-1");
    CHECK(r->event == "e");
    CHECK(r->priority == 2u);
    CHECK(r->publish_user == "u");

    auto dashdash = parse({"pub", "--", "ch", "--weird"});
    REQUIRE(dashdash);
    CHECK(dashdash->data == "--weird");

    auto from_stdin = parse({"send", "7", "-"});
    REQUIRE(from_stdin);
    CHECK(from_stdin->cmd == command::send);
    CHECK(from_stdin->target == "7");
    CHECK(from_stdin->data == "-");
}

TEST_CASE("each command checks its number of arguments", "[cli][options]") {
    CHECK(error_of({"sub"}).find("one or more channels") != std::string::npos);
    CHECK(error_of({"pub", "ch"}).find("pub takes CHANNEL JSON, got 1 argument") !=
          std::string::npos);
    CHECK(error_of({"stats", "x"}).find("no arguments") != std::string::npos);
    CHECK(error_of({"presence"}).find("CHANNEL") != std::string::npos);
    CHECK(parse({"online"}));
    CHECK(parse({"presence", "room:1", "--raw"})->raw);
}

TEST_CASE("options are refused outside their commands and with bad values", "[cli][options]") {
    CHECK(error_of({"pub", "c", "1", "--count", "2"}) ==
          "--count is an option of sub, not of pub");
    CHECK(error_of({"sub", "c", "--api-key-file", "f"}).find("not of sub") != std::string::npos);
    CHECK(error_of({"sub", "c", "--count", "0"}).find("--count 0") == 0);
    CHECK(error_of({"sub", "c", "--count", "x"}).find("--count x") == 0);
    CHECK(error_of({"pub", "c", "1", "--priority", "5"}).find("1 (highest) to 4") !=
          std::string::npos);
    CHECK(error_of({"sub", "c", "--timeout", "1.2345"}).find("--timeout") == 0);
    CHECK(error_of({"sub", "c", "--timeout", "0"}).find("--timeout") == 0);
    CHECK(error_of({"sub", "c", "--max-bytes", "10"}).find("1024") != std::string::npos);
    CHECK(error_of({"sub", "c", "--nope"}) == "unknown option --nope (ringcast --help)");
    CHECK(error_of({"sub", "c", "--count"}) == "--count needs a value");
    CHECK(error_of({"stats", "--raw=yes"}) == "--raw takes no value");
    CHECK(error_of({"frobnicate"}).find("unknown command 'frobnicate'") == 0);
    CHECK(error_of({}) == "no command given (ringcast --help lists them)");
    CHECK(error_of({"sub", "c", "--token", "t", "--token-file", "f"}).find("use one") !=
          std::string::npos);
}

TEST_CASE("--timeout takes seconds with up to three decimals", "[cli][options]") {
    CHECK(parse({"sub", "c", "--timeout", "2"})->timeout_ms == 2000);
    CHECK(parse({"sub", "c", "--timeout", "0.5"})->timeout_ms == 500);
    CHECK(parse({"sub", "c", "--timeout", "1.25"})->timeout_ms == 1250);
    CHECK(parse({"sub", "c", "--timeout", "0.001"})->timeout_ms == 1);
}

TEST_CASE("--recover takes EPOCH:OFFSET for exactly one channel", "[cli][options]") {
    auto r = parse({"sub", "chat:room", "--recover", "6b14c330001:17"});
    REQUIRE(r);
    REQUIRE(r->recover);
    CHECK(r->recover->epoch == "6b14c330001");
    CHECK(r->recover->offset == 17);
    CHECK(error_of({"sub", "a", "b", "--recover", "e:1"}).find("exactly one channel") !=
          std::string::npos);
    CHECK(error_of({"sub", "a", "--recover", "e"}).find("EPOCH:OFFSET") != std::string::npos);
    CHECK(error_of({"sub", "a", "--recover", ":3"}).find("EPOCH:OFFSET") != std::string::npos);
}

TEST_CASE("help and version win over everything else", "[cli][options]") {
    auto overall = parse({"--help"});
    REQUIRE(overall);
    CHECK(overall->help);
    CHECK(overall->cmd == command::none);
    auto sub_help = parse({"sub", "-h"}); // no channel: still help
    REQUIRE(sub_help);
    CHECK(sub_help->help);
    CHECK(sub_help->cmd == command::sub);
    auto help_pub = parse({"help", "pub"});
    REQUIRE(help_pub);
    CHECK(help_pub->help);
    CHECK(help_pub->cmd == command::pub);
    CHECK(parse({"--version"})->version);
    for (command c : {command::none, command::sub, command::pub, command::send, command::stats,
                      command::online, command::presence}) {
        CHECK(usage(c).starts_with("usage: ringcast"));
    }
}

TEST_CASE("the environment fills what the flags leave unset", "[cli][options]") {
    fake_env env;
    env.vars = {{"RINGCAST_URL", "http://10.0.0.5:8081"},
                {"RINGCAST_TOKEN", "tok"},
                {"RINGCAST_API_KEY", "k"}};
    auto sub = parse({"sub", "c"}, env);
    REQUIRE(sub);
    CHECK(sub->server.host == "10.0.0.5");
    CHECK(sub->server.port == 8081);
    CHECK(sub->token == "tok");
    auto pub = parse({"pub", "c", "1"}, env);
    REQUIRE(pub);
    CHECK(pub->api_key_text == "k");

    SECTION("flags win") {
        auto r = parse({"sub", "c", "--url", "ws://h:1", "--token-file", "f"}, env);
        REQUIRE(r);
        CHECK(r->server.host == "h");
        CHECK(r->token.empty());
        CHECK(r->token_file == "f");
        auto p = parse({"pub", "c", "1", "--api-key-file", "keys"}, env);
        REQUIRE(p);
        CHECK(p->api_key_text.empty());
    }
    SECTION("a bad RINGCAST_URL is named") {
        env.vars["RINGCAST_URL"] = "wss://x";
        CHECK(error_of({"stats"}, env).find("RINGCAST_URL") != std::string::npos);
    }
    SECTION("nothing set: the README's address") {
        auto r = parse({"stats"});
        REQUIRE(r);
        CHECK(r->server.host == "127.0.0.1");
        CHECK(r->server.port == 8080);
        CHECK(r->api_key_text.empty());
    }
}
