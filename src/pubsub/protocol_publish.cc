// Backend publish body parser (docs/protocol.md "Backend API": /api/publish, /api/send,
// /api/broadcast).
//
// A body is one request object, or {"messages":[...]} with 1-1000 request objects. Every
// value is read strictly or validated completely (json.h), like client commands. Rules:
//
//   * duplicate keys: the last one wins; unknown keys are ignored but must be valid JSON;
//   * "messages" cannot be combined with top-level request fields (which would otherwise
//     be silently ignored for the batch);
//   * which fields an endpoint requires (channel for /api/publish, userId for /api/send)
//     is the endpoint's business: every field is optional here;
//   * the first problem in document order is reported, as a sentence naming the field
//     ("messages[3].channel is not a valid channel name"); the message is only built on
//     that error path.
#include "ringcast/pubsub.h"

#include "json.h"

#include <utility>

namespace ringcast::pubsub {

namespace {

/// Requests per body and channels per request: 1000 keeps one body's work (and its reply,
/// one result per request) bounded well inside the 1 MiB body limit's worth of parsing.
constexpr std::size_t max_batch_requests = 1000;
constexpr std::size_t max_request_channels = 1000;

constexpr std::string_view not_json = "body is not valid JSON";

class publish_scanner {
public:
    explicit publish_scanner(json::thread_state& state) noexcept : _state(state) {}

    result<publish_body, publish_error> scan(json::od::document& doc);

private:
    bool messages(json::od::value& v);
    bool request(json::od::object& object, publish_request& out);
    bool request_field(std::string_view key, json::od::value& v, publish_request& out);
    bool channels(json::od::value& v, std::vector<std::string_view>& out);
    bool name(json::od::value& v, bool (*valid)(std::string_view), std::string_view& out);
    bool skip(json::od::value& v);

    // Records the refusal "<messages[i].><field> <reason>" and returns false.
    bool fail(std::string_view field, std::string_view reason, std::size_t index = npos);
    bool fail_syntax() {
        _error = not_json;
        return false;
    }

    static constexpr std::size_t npos = std::string_view::npos;

    json::thread_state& _state;
    std::vector<publish_request> _batch;
    std::size_t _item = npos; // index in "messages" while reading an item
    std::string _error;
};

bool is_request_field(std::string_view key) noexcept {
    return key == "channel" || key == "event" || key == "data" || key == "priority" ||
           key == "userId" || key == "channels";
}

result<publish_body, publish_error> publish_scanner::scan(json::od::document& doc) {
    json::od::object root;
    json::od::json_type type;
    if (doc.type().get(type) != simdjson::SUCCESS) {
        return unexpected{publish_error{400, std::string(not_json)}};
    }
    if (type != json::od::json_type::object || doc.get_object().get(root) != simdjson::SUCCESS) {
        return unexpected{publish_error{400, "body must be a JSON object"}};
    }
    publish_request single;
    bool has_messages = false;
    bool has_fields = false;
    for (auto item : root) {
        json::od::field f;
        std::string_view key;
        if (std::move(item).get(f) != simdjson::SUCCESS || f.unescaped_key().get(key) != simdjson::SUCCESS) {
            fail_syntax();
            break;
        }
        bool ok = true;
        if (key == "messages") {
            ok = messages(f.value());
            has_messages = true;
        } else if (is_request_field(key)) {
            ok = request_field(key, f.value(), single);
            has_fields = true;
        } else {
            ok = skip(f.value());
        }
        if (!ok) {
            break;
        }
    }
    if (_error.empty() && !json::at_end(doc)) {
        fail_syntax();
    }
    if (_error.empty() && has_messages && has_fields) {
        _error = "messages cannot be combined with channel, event, data, priority, userId or "
                 "channels";
    }
    if (!_error.empty()) {
        return unexpected{publish_error{400, std::move(_error)}};
    }
    if (!has_messages) {
        return publish_body{{std::move(single)}, body_shape::single};
    }
    return publish_body{std::move(_batch), body_shape::batch};
}

bool publish_scanner::messages(json::od::value& v) {
    constexpr std::string_view bad_count = "must be an array of 1 to 1000 requests";
    json::od::array array;
    if (v.get_array().get(array) != simdjson::SUCCESS) {
        return fail("messages", bad_count);
    }
    _batch.clear();
    for (auto element : array) {
        json::od::value item;
        if (std::move(element).get(item) != simdjson::SUCCESS) {
            return fail_syntax();
        }
        if (_batch.size() == max_batch_requests) {
            return fail("messages", bad_count);
        }
        json::od::object object;
        if (item.get_object().get(object) != simdjson::SUCCESS) {
            return fail("messages", "must be an object", _batch.size());
        }
        _item = _batch.size();
        publish_request r;
        if (!request(object, r)) {
            return false;
        }
        _batch.push_back(std::move(r));
        _item = npos;
    }
    return !_batch.empty() || fail("messages", bad_count);
}

bool publish_scanner::request(json::od::object& object, publish_request& out) {
    for (auto item : object) {
        json::od::field f;
        std::string_view key;
        if (std::move(item).get(f) != simdjson::SUCCESS || f.unescaped_key().get(key) != simdjson::SUCCESS) {
            return fail_syntax();
        }
        const bool ok = is_request_field(key) ? request_field(key, f.value(), out) : skip(f.value());
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool publish_scanner::request_field(std::string_view key, json::od::value& v,
                                    publish_request& out) {
    if (key == "channel") {
        return name(v, valid_channel, out.channel) ||
               fail(key, "is not a valid channel name");
    }
    if (key == "event") {
        return name(v, valid_event, out.event) || fail(key, "is not a valid event name");
    }
    if (key == "userId") {
        return name(v, valid_user_id, out.user_id) ||
               fail(key, "is not a valid user id (1-64 characters of [A-Za-z0-9_.@-])");
    }
    if (key == "data") {
        std::string_view raw;
        if (!json::read_raw(_state, v, raw)) {
            return fail(key, "is not valid JSON");
        }
        out.data = _state.to_input(raw);
        return true;
    }
    if (key == "priority") {
        uint64_t p = 0;
        if (!json::read_uint(v, 4, p) || p == 0) {
            return fail(key, "must be an integer from 1 to 4");
        }
        out.prio = static_cast<priority>(p);
        return true;
    }
    return channels(v, out.channels); // is_request_field() admits nothing else
}

bool publish_scanner::channels(json::od::value& v, std::vector<std::string_view>& out) {
    constexpr std::string_view bad_list = "must be an array of 1 to 1000 channel names";
    json::od::array array;
    if (v.get_array().get(array) != simdjson::SUCCESS) {
        return fail("channels", bad_list);
    }
    out.clear();
    for (auto element : array) {
        json::od::value item;
        if (std::move(element).get(item) != simdjson::SUCCESS) {
            return fail_syntax();
        }
        if (out.size() == max_request_channels) {
            return fail("channels", bad_list);
        }
        std::string_view channel;
        if (!name(item, valid_channel, channel)) {
            return fail("channels[" + std::to_string(out.size()) + "]",
                        "is not a valid channel name");
        }
        out.push_back(channel);
    }
    return !out.empty() || fail("channels", bad_list);
}

bool publish_scanner::name(json::od::value& v, bool (*valid)(std::string_view),
                           std::string_view& out) {
    std::string_view body;
    if (!json::read_name(v, body) || !valid(body)) {
        return false;
    }
    out = _state.to_input(body);
    return true;
}

bool publish_scanner::skip(json::od::value& v) {
    std::string_view ignored;
    return json::read_raw(_state, v, ignored) || fail_syntax();
}

bool publish_scanner::fail(std::string_view field, std::string_view reason, std::size_t index) {
    _error.clear();
    if (_item != npos) {
        _error = "messages[" + std::to_string(_item) + "].";
    }
    _error += field;
    if (index != npos) {
        _error += "[" + std::to_string(index) + "]";
    }
    _error += ' ';
    _error += reason;
    return false;
}

} // namespace

result<publish_body, publish_error> parse_publish_body(std::string_view body) {
    json::thread_state& state = json::local();
    json::od::document doc;
    const simdjson::error_code opened = state.open(body, doc);
    if (opened == simdjson::MEMALLOC) {
        return unexpected{publish_error{500, "server is out of memory"}};
    }
    if (opened != simdjson::SUCCESS) {
        return unexpected{publish_error{400, std::string(not_json)}};
    }
    publish_scanner scanner(state);
    return scanner.scan(doc);
}

} // namespace ringcast::pubsub
