// JSON text for the command-line client (contracts in json_text.h). Parsing goes through
// simdjson's DOM parser: these are one-off values, not a hot path.
#include "json_text.h"

#include <ringcast/core.h>

#include <simdjson.h>

namespace ringcast::cli {

namespace {

/// Parses `text` into `parser`'s document. simdjson reads past the end of its input, so
/// the text is copied into a padded buffer first.
simdjson::simdjson_result<simdjson::dom::element> parse(simdjson::dom::parser& parser,
                                                        std::string_view text) {
    return parser.parse(simdjson::padded_string(text));
}

void newline(std::string& out, int depth) {
    out += '\n';
    out.append(depth > 0 ? std::size_t(depth) * 2 : 0, ' '); // unbalanced input: no wrap
}

constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

std::optional<std::string> json_problem(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (const auto err = parse(parser, text).get(root); err != simdjson::SUCCESS) {
        return std::string(simdjson::error_message(err));
    }
    return std::nullopt;
}

std::string json_quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    core::append_json_escaped(out, text);
    out += '"';
    return out;
}

std::string one_line(std::string_view json) {
    std::string out(json);
    for (char& c : out) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    return out;
}

std::string indent_json(std::string_view json) {
    std::string out;
    out.reserve(json.size() * 2);
    int depth = 0;
    for (std::size_t i = 0; i < json.size(); ++i) {
        const char c = json[i];
        if (c == '"') { // copy the whole string, escapes included
            std::size_t end = i + 1;
            while (end < json.size() && json[end] != '"') {
                end += json[end] == '\\' ? 2 : 1;
            }
            out.append(json.substr(i, end + 1 - i));
            i = end;
            continue;
        }
        switch (c) {
        case '{':
        case '[': {
            std::size_t next = i + 1;
            while (next < json.size() && is_space(json[next])) {
                ++next;
            }
            if (next < json.size() && (json[next] == '}' || json[next] == ']')) {
                out += c;
                out += json[next];
                i = next;
                break;
            }
            out += c;
            newline(out, ++depth);
            break;
        }
        case '}':
        case ']':
            newline(out, --depth);
            out += c;
            break;
        case ',':
            out += ',';
            newline(out, depth);
            break;
        case ':':
            out += ": ";
            break;
        default:
            if (!is_space(c)) {
                out += c;
            }
        }
    }
    return out;
}

std::optional<ws_reply> read_reply(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parse(parser, text).get(obj) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view op;
    if (obj["op"].get(op) != simdjson::SUCCESS || op != "reply") {
        return std::nullopt;
    }
    ws_reply r;
    uint64_t number = 0;
    if (obj["id"].get(number) == simdjson::SUCCESS) {
        r.id = number;
    }
    bool flag = false;
    r.ok = obj["ok"].get(flag) == simdjson::SUCCESS && flag;
    if (obj["offset"].get(number) == simdjson::SUCCESS) {
        r.offset = number;
    }
    if (obj["recovered"].get(flag) == simdjson::SUCCESS) {
        r.recovered = flag;
    }
    std::string_view s;
    if (obj["epoch"].get(s) == simdjson::SUCCESS) {
        r.epoch = s;
    }
    simdjson::dom::object err;
    if (obj["error"].get(err) == simdjson::SUCCESS) {
        int64_t code = 0;
        if (err["code"].get(code) == simdjson::SUCCESS) {
            r.error_code = code;
        }
        if (err["message"].get(s) == simdjson::SUCCESS) {
            r.error_message = s;
        }
    }
    return r;
}

frame_kind classify_frame(std::string_view text) {
    if (text.starts_with("{\"id\":")) {
        return frame_kind::message;
    }
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    std::string_view op;
    if (parse(parser, text).get(obj) != simdjson::SUCCESS ||
        obj["op"].get(op) != simdjson::SUCCESS) {
        return frame_kind::message;
    }
    return op == "reply" ? frame_kind::reply : frame_kind::event;
}

std::optional<std::string> api_error_message(std::string_view body) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parse(parser, body).get(obj) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view message;
    if (obj.at_pointer("/error/message").get(message) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return std::string(message);
}

} // namespace ringcast::cli
