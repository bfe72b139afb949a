// The RabbitMQ bridge's mapping (include/ringcast/bridge.h, amqp_mapper): a delivery's
// exchange and routing key against the rules, its body's fields into the channel templates,
// and the message's data.
//
//   rules whose exchange is the delivery's and whose binding key matches its routing key
//     none ─► unmatched
//     some ─► body: too large? ─► unmapped
//               JSON? (parsed once; a template with a body field needs a JSON object)
//          ─► each template expanded ─► a valid channel outside sys:? else unmapped
//          ─► data {"exchange","routingKey","id","redelivered","body"} ─► mapped
#include "template.h"

#include <ringcast/auth.h>
#include <ringcast/bridge.h>
#include <ringcast/core.h>

#include <simdjson.h>

#include <algorithm>

namespace ringcast::bridge {

struct amqp_mapper::parser {
    simdjson::dom::parser json;
};

amqp_mapper::amqp_mapper(std::vector<amqp_rule> rules)
    : _rules(std::move(rules)), _parser(std::make_unique<parser>()) {}

amqp_mapper::~amqp_mapper() = default;

namespace {

/// A top-level field of `object` as channel text: a string as it is, an integer in decimal.
/// Nothing for any other type or a field that is absent.
bool field_text(const simdjson::dom::object& object, std::string_view name, std::string& out) {
    simdjson::dom::element value;
    if (object.at_key(name).get(value) != simdjson::SUCCESS) {
        return false;
    }
    switch (value.type()) {
    case simdjson::dom::element_type::STRING: {
        std::string_view s;
        if (value.get(s) != simdjson::SUCCESS) {
            return false;
        }
        out = s;
        return true;
    }
    case simdjson::dom::element_type::INT64:
        out = std::to_string(int64_t(value));
        return true;
    case simdjson::dom::element_type::UINT64:
        out = std::to_string(uint64_t(value));
        return true;
    case simdjson::dom::element_type::ARRAY:
    case simdjson::dom::element_type::OBJECT:
    case simdjson::dom::element_type::DOUBLE:
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::NULL_VALUE:
        return false;
    }
    return false;
}

} // namespace

amqp_mapping amqp_mapper::map(const amqp_message& m, amqp_mapped& out) {
    out.channels.clear();
    out.event.clear();
    out.data.clear();
    out.why = {};
    std::vector<const amqp_rule*> matched;
    for (const amqp_rule& r : _rules) {
        if (r.exchange == m.exchange && topic_matches(r.binding_key, m.routing_key)) {
            matched.push_back(&r);
        }
    }
    if (matched.empty()) {
        return amqp_mapping::unmatched;
    }
    if (m.body_too_large || m.body.size() > max_event_bytes) {
        out.why = "its body is larger than 1 MiB";
        return amqp_mapping::unmapped;
    }
    // Parsed once: for the fields the templates name, and to tell JSON from text in the data.
    const simdjson::padded_string padded(m.body);
    simdjson::dom::element root;
    const bool json = !m.body.empty() && _parser->json.parse(padded).get(root) == simdjson::SUCCESS;
    simdjson::dom::object object;
    const bool is_object = json && root.get(object) == simdjson::SUCCESS;
    for (const amqp_rule* rule : matched) {
        if (rule->channel.needs_body && !is_object) {
            out.why = "a rule's template names a body field and the body is not a JSON object";
            return amqp_mapping::unmapped;
        }
        std::string channel;
        std::string value;
        bool missing = false;
        detail::walk_template(
            rule->channel.text, [&](std::string_view run) { channel += run; },
            [&](std::string_view name) {
                if (name == "routingKey") {
                    value.assign(m.routing_key);
                } else if (name == "exchange") {
                    value.assign(m.exchange);
                } else if (!field_text(object, name, value)) {
                    missing = true;
                    return;
                }
                // Bounded: a value longer than a channel can be makes no channel anyway.
                if (value.empty() || channel.size() + value.size() > 255) {
                    missing = true;
                    return;
                }
                channel += value;
            });
        if (missing) {
            out.why = "a rule's template names a body field the body lacks, holds empty, or "
                      "holds as neither a string nor an integer";
            return amqp_mapping::unmapped;
        }
        if (!pubsub::valid_channel(channel) ||
            pubsub::channel_namespace(channel) == auth::sys_namespace) {
            out.why = "a rule's template makes no valid channel of it";
            return amqp_mapping::unmapped;
        }
        if (std::find(out.channels.begin(), out.channels.end(), channel) == out.channels.end()) {
            out.channels.push_back(std::move(channel));
        }
    }
    if (!json && !simdjson::validate_utf8(m.body.data(), m.body.size())) {
        out.channels.clear();
        out.why = "its body is neither JSON nor UTF-8 text";
        return amqp_mapping::unmapped;
    }
    out.event = !m.routing_key.empty() && pubsub::valid_event(m.routing_key)
                    ? std::string(m.routing_key)
                    : std::string("message");
    out.data.reserve(m.body.size() + m.exchange.size() + m.routing_key.size() + 96);
    out.data = "{\"exchange\":\"";
    core::append_json_escaped(out.data, m.exchange);
    out.data += "\",\"routingKey\":\"";
    core::append_json_escaped(out.data, m.routing_key);
    out.data += "\",\"id\":\"";
    core::append_json_escaped(out.data, m.id);
    out.data += m.redelivered ? "\",\"redelivered\":true,\"body\":" : "\",\"redelivered\":false,\"body\":";
    if (json) {
        out.data += m.body;
    } else {
        out.data += '"';
        core::append_json_escaped(out.data, m.body);
        out.data += '"';
    }
    out.data += '}';
    if (!simdjson::validate_utf8(out.data.data(), out.data.size())) {
        // The id or the routing key carried bytes that are not UTF-8.
        out.channels.clear();
        out.data.clear();
        out.why = "its routing key or message id is not UTF-8";
        return amqp_mapping::unmapped;
    }
    return amqp_mapping::mapped;
}

} // namespace ringcast::bridge
