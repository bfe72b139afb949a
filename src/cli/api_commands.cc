// ringcast pub, send, stats, online, presence: one backend API request each (docs/protocol.md
// "Backend API"), the answer printed to stdout, a refusal's message to stderr.
#include "commands.h"
#include "http_client.h"
#include "json_text.h"

#include <cstdio>

namespace ringcast::cli {

namespace {

/// The API's body limit (docs/protocol.md "Backend API": bodies up to 1 MiB): data read
/// from standard input beyond it could never be sent.
constexpr std::size_t max_request_body_bytes = 1u << 20;

struct api_call {
    std::string_view method;
    std::string path;
    std::string body;
    admin::api_scope scope;
};

/// The data argument, read from stdin for "-", checked to be one JSON value.
result<std::string, failure> data_of(const invocation& inv) {
    std::string data = inv.data;
    if (data == "-") {
        auto in = read_small_file("-", max_request_body_bytes, "the JSON");
        if (!in) {
            return unexpected{in.error()};
        }
        data = std::move(*in);
    }
    if (const auto problem = json_problem(data)) {
        return unexpected{failure{exit_usage, "the JSON to " + std::string(command_name(inv.cmd)) +
                                                  " is not valid JSON (" + *problem +
                                                  "); nothing was sent"}};
    }
    return data;
}

/// The optional fields pub and send share.
std::string message_fields(const invocation& inv) {
    std::string out;
    if (!inv.event.empty()) {
        out += ",\"event\":" + json_quote(inv.event);
    }
    if (inv.priority) {
        out += ",\"priority\":" + std::to_string(*inv.priority);
    }
    return out;
}

result<api_call, failure> call_of(const invocation& inv) {
    switch (inv.cmd) {
    case command::pub:
    case command::send: {
        auto data = data_of(inv);
        if (!data) {
            return unexpected{data.error()};
        }
        if (inv.cmd == command::send) {
            return api_call{"POST", "/api/send",
                            "{\"userId\":" + json_quote(inv.target) + message_fields(inv) +
                                ",\"data\":" + *data + "}",
                            admin::api_scope::publish};
        }
        std::string body = "{\"channel\":" + json_quote(inv.target) + message_fields(inv);
        if (!inv.publish_user.empty()) {
            body += ",\"userId\":" + json_quote(inv.publish_user);
        }
        return api_call{"POST", "/api/publish", body + ",\"data\":" + *data + "}",
                        admin::api_scope::publish};
    }
    case command::stats:
        return api_call{"GET", "/api/stats", {}, admin::api_scope::admin};
    case command::online:
        return api_call{"GET", "/api/online", {}, admin::api_scope::admin};
    case command::presence:
        return api_call{"GET", "/api/presence/" + percent_encode(inv.target), {},
                        admin::api_scope::admin};
    case command::none:
    case command::sub:
        break;
    }
    return unexpected{failure{exit_usage, "not an API command"}};
}

} // namespace

int run_api(const invocation& inv) {
    auto call = call_of(inv);
    if (!call) {
        return report(call.error());
    }
    auto key = read_api_key(inv, call->scope);
    if (!key) {
        return report(key.error());
    }
    const std::string headers = *key ? "Authorization: Bearer " + **key + "\r\n" : std::string();
    const uint64_t timeout_ms = inv.timeout_ms != 0 ? inv.timeout_ms : default_request_timeout_ms;
    auto response = http_request(inv.server, call->method, call->path, headers, call->body,
                                 clock::now() + std::chrono::milliseconds(timeout_ms),
                                 inv.max_bytes);
    if (!response) {
        return report(response.error());
    }
    const std::string what = std::string(call->method) + " " + call->path;
    if (response->status < 200 || response->status > 299) {
        const auto message = api_error_message(response->body);
        return report(failure{exit_refused,
                              what + ": " + std::to_string(response->status) + " " +
                                  (message ? *message : response->reason)});
    }
    const std::string& body = response->body;
    const bool pretty = !inv.raw && (inv.cmd == command::stats || inv.cmd == command::online ||
                                     inv.cmd == command::presence);
    const std::string out = pretty && !json_problem(body) ? indent_json(body) : body;
    std::fputs(out.c_str(), stdout);
    if (out.empty() || out.back() != '\n') {
        std::fputc('\n', stdout);
    }
    return std::fflush(stdout) == 0 ? exit_ok : exit_refused;
}

} // namespace ringcast::cli
