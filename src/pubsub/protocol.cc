// Client command parser (docs/protocol.md "Client → server").
//
// One pass over the root object with simdjson on-demand; every value is read strictly or
// validated completely (json.h), so an accepted command is valid RFC 8259 JSON and `data`
// can be forwarded byte for byte. Field rules:
//
//   * duplicate keys: the last one wins (each occurrence is still validated);
//   * unknown keys are ignored, but their values must be valid JSON;
//   * a known key is checked whenever it is present, whatever the op (a ping with a bad
//     "channel" is refused), so one key has one meaning;
//   * after a refused field the scan goes on, so an "id" later in the object is still
//     echoed and a broken document is still reported as such. The reply names the first
//     problem: a JSON syntax error wins over a field error, then position order, then the
//     missing-field checks.
#include "ringcast/pubsub.h"

#include "json.h"

#include <utility>

namespace ringcast::pubsub {

namespace {

/// 2^53: the largest integer every JSON peer (JavaScript's Number in particular) holds
/// exactly, and all integers below it too, so an echoed id is the id the client sent.
constexpr uint64_t max_command_id = uint64_t{1} << 53;

constexpr std::string_view not_json = "command is not valid JSON";
constexpr std::string_view not_object = "command must be a JSON object";
constexpr std::string_view out_of_memory = "server is out of memory";
constexpr std::string_view bad_id = "id must be an integer from 0 to 2^53";
constexpr std::string_view op_missing = "op is missing";
constexpr std::string_view op_unknown = "unknown op";
constexpr std::string_view channel_missing = "channel is missing";
constexpr std::string_view bad_channel = "channel is not a valid channel name";
constexpr std::string_view bad_event = "event is not a valid event name";
constexpr std::string_view bad_data = "data is not valid JSON";
constexpr std::string_view bad_priority = "priority must be an integer from 1 to 4";
constexpr std::string_view bad_recover =
    "recover must be an object with epoch and offset, or with since";
constexpr std::string_view bad_since = "recover.since must be a timestamp in ms from 0 to 2^53";
constexpr std::string_view bad_epoch = "recover.epoch must be 1-64 characters of [A-Za-z0-9_.@-]";
constexpr std::string_view bad_offset = "recover.offset must be an integer from 0 to 2^64-1";
constexpr std::string_view token_missing = "token is missing";
constexpr std::string_view offset_missing = "offset is missing";
constexpr std::string_view bad_ack_offset = "offset must be an integer from 0 to 2^64-1";
constexpr std::string_view bad_token =
    "token must be a compact JWT: 1-16384 characters of [A-Za-z0-9_.-]";

/// HTTP-style status for a server-side failure (the parse buffer could not grow); not a
/// client error, so not 400.
constexpr int server_error_code = 500;

enum class op_state : uint8_t { missing, known, unknown };

// The state of one parse_command() call.
class command_scanner {
public:
    explicit command_scanner(json::thread_state& state) noexcept : _state(state) {}

    // Reads every field of the root object. Stops only at a JSON syntax error.
    void scan(json::od::object& root) noexcept;
    // The reply-ready outcome after scan() and the trailing-content check.
    result<command, command_error> finish(json::od::document& doc) noexcept;

private:
    void field(std::string_view key, json::od::value& v) noexcept;
    void op_field(json::od::value& v) noexcept;
    void recover_field(json::od::value& v) noexcept;
    bool name(json::od::value& v, bool (*valid)(std::string_view), std::string_view& out) noexcept;

    void refuse(std::string_view message) noexcept {
        if (_refusal.empty()) {
            _refusal = message;
        }
    }
    void syntax_error(std::string_view message) noexcept {
        if (_syntax.empty()) {
            _syntax = message;
        }
    }
    command_error error(std::string_view message, int code = 400) const noexcept {
        return {code, message, _cmd.has_id, _cmd.id};
    }

    json::thread_state& _state;
    command _cmd;
    op_state _op = op_state::missing;
    bool _has_channel = false;
    bool _has_token = false;
    bool _has_offset = false;
    std::string_view _syntax;  // first JSON syntax error: the document is not valid JSON
    std::string_view _refusal; // first field error in a well-formed document
};

void command_scanner::scan(json::od::object& root) noexcept {
    for (auto item : root) {
        json::od::field f;
        std::string_view key;
        if (std::move(item).get(f) != simdjson::SUCCESS || f.unescaped_key().get(key) != simdjson::SUCCESS) {
            syntax_error(not_json);
            return;
        }
        field(key, f.value());
        if (!_syntax.empty()) {
            return;
        }
    }
}

void command_scanner::field(std::string_view key, json::od::value& v) noexcept {
    if (key == "op") {
        op_field(v);
    } else if (key == "id") {
        _cmd.has_id = json::read_uint(v, max_command_id, _cmd.id);
        if (!_cmd.has_id) {
            _cmd.id = 0;
            refuse(bad_id);
        }
    } else if (key == "channel") {
        _has_channel = name(v, valid_channel, _cmd.channel);
        if (!_has_channel) {
            refuse(bad_channel);
        }
    } else if (key == "event") {
        if (!name(v, valid_event, _cmd.event)) {
            refuse(bad_event);
        }
    } else if (key == "data") {
        std::string_view raw;
        if (!json::read_raw(_state, v, raw)) {
            syntax_error(bad_data);
            return;
        }
        _cmd.data = _state.to_input(raw);
    } else if (key == "priority") {
        uint64_t p = 0;
        if (!json::read_uint(v, 4, p) || p == 0) {
            refuse(bad_priority);
            return;
        }
        _cmd.prio = static_cast<priority>(p);
    } else if (key == "recover") {
        recover_field(v);
    } else if (key == "offset") {
        _has_offset = json::read_uint(v, UINT64_MAX, _cmd.offset);
        if (!_has_offset) {
            _cmd.offset = 0;
            refuse(bad_ack_offset);
        }
    } else if (key == "token") {
        _has_token = name(v, valid_token, _cmd.token);
        if (!_has_token) {
            refuse(bad_token);
        }
    } else {
        std::string_view ignored;
        if (!json::read_raw(_state, v, ignored)) {
            syntax_error(not_json);
        }
    }
}

void command_scanner::op_field(json::od::value& v) noexcept {
    std::string_view op;
    _op = op_state::unknown;
    if (!json::read_name(v, op)) {
        refuse(op_unknown);
        return;
    }
    if (op == "subscribe") {
        _cmd.op = command_op::subscribe;
    } else if (op == "unsubscribe") {
        _cmd.op = command_op::unsubscribe;
    } else if (op == "publish") {
        _cmd.op = command_op::publish;
    } else if (op == "ping") {
        _cmd.op = command_op::ping;
    } else if (op == "refresh") {
        _cmd.op = command_op::refresh;
    } else if (op == "ack") {
        _cmd.op = command_op::ack;
    } else if (op == "presence") {
        _cmd.op = command_op::presence;
    } else {
        refuse(op_unknown);
        return;
    }
    _op = op_state::known;
}

void command_scanner::recover_field(json::od::value& v) noexcept {
    json::od::object object;
    if (v.get_object().get(object) != simdjson::SUCCESS) {
        refuse(bad_recover);
        return;
    }
    bool has_epoch = false;
    bool has_offset = false;
    bool has_since = false;
    for (auto item : object) {
        json::od::field f;
        std::string_view key;
        if (std::move(item).get(f) != simdjson::SUCCESS || f.unescaped_key().get(key) != simdjson::SUCCESS) {
            syntax_error(not_json);
            return;
        }
        if (key == "epoch") {
            has_epoch = name(f.value(), valid_user_id, _cmd.recover.epoch);
            if (!has_epoch) {
                refuse(bad_epoch);
            }
        } else if (key == "offset") {
            has_offset = json::read_uint(f.value(), UINT64_MAX, _cmd.recover.offset);
            if (!has_offset) {
                refuse(bad_offset);
            }
        } else if (key == "since") {
            has_since = json::read_uint(f.value(), uint64_t(1) << 53, _cmd.recover.since_ms);
            if (!has_since) {
                refuse(bad_since);
            }
        } else {
            std::string_view ignored;
            if (!json::read_raw(_state, f.value(), ignored)) {
                syntax_error(not_json);
                return;
            }
        }
    }
    // One form or the other, never a mix: which would win is not obvious to a reader.
    _cmd.recover.by_time = has_since && !has_epoch && !has_offset;
    _cmd.has_recover = (has_epoch && has_offset && !has_since) || _cmd.recover.by_time;
    if (!_cmd.has_recover) {
        refuse(bad_recover);
    }
}

// A restricted-charset name: a plain JSON string (no escapes) that `valid` accepts; `out`
// is set to the caller's bytes only on success.
bool command_scanner::name(json::od::value& v, bool (*valid)(std::string_view),
                           std::string_view& out) noexcept {
    std::string_view body;
    if (!json::read_name(v, body) || !valid(body)) {
        return false;
    }
    out = _state.to_input(body);
    return true;
}

result<command, command_error> command_scanner::finish(json::od::document& doc) noexcept {
    if (_syntax.empty() && !json::at_end(doc)) {
        syntax_error(not_json);
    }
    if (!_syntax.empty()) {
        return unexpected{error(_syntax)};
    }
    if (!_refusal.empty()) {
        return unexpected{error(_refusal)};
    }
    if (_op == op_state::missing) {
        return unexpected{error(op_missing)};
    }
    switch (_cmd.op) {
    case command_op::subscribe:
    case command_op::unsubscribe:
    case command_op::publish:
    case command_op::presence:
        if (!_has_channel) {
            return unexpected{error(channel_missing)};
        }
        break;
    case command_op::ack:
        if (!_has_channel) {
            return unexpected{error(channel_missing)};
        }
        if (!_has_offset) {
            return unexpected{error(offset_missing)};
        }
        break;
    case command_op::refresh:
        if (!_has_token) {
            return unexpected{error(token_missing)};
        }
        break;
    case command_op::ping:
        break;
    }
    if (_cmd.event.empty()) {
        _cmd.event = "message";
    }
    if (_cmd.data.empty()) {
        _cmd.data = "null";
    }
    return _cmd;
}

} // namespace

result<command, command_error> parse_command(std::string_view text) noexcept {
    json::thread_state& state = json::local();
    json::od::document doc;
    const simdjson::error_code opened = state.open(text, doc);
    if (opened == simdjson::MEMALLOC) {
        return unexpected{command_error{server_error_code, out_of_memory}};
    }
    json::od::json_type type;
    if (opened != simdjson::SUCCESS || doc.type().get(type) != simdjson::SUCCESS) {
        return unexpected{command_error{400, not_json}};
    }
    json::od::object root;
    if (type != json::od::json_type::object) {
        return unexpected{command_error{400, not_object}};
    }
    if (doc.get_object().get(root) != simdjson::SUCCESS) {
        return unexpected{command_error{400, not_json}};
    }
    command_scanner scanner(state);
    scanner.scan(root);
    return scanner.finish(doc);
}

} // namespace ringcast::pubsub
