// The RabbitMQ bridge's rules (include/ringcast/bridge.h): --amqp-bridge
// EXCHANGE:BINDING_KEY:CHANNEL read and checked at start, and AMQP topic matching.
#include "template.h"

#include <ringcast/auth.h>
#include <ringcast/bridge.h>

#include <vector>

namespace ringcast::bridge {

namespace {

bool name_char(char ch) noexcept {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

bool valid_exchange(std::string_view e) noexcept {
    if (e.empty() || e.size() > 127) {
        return false;
    }
    for (const char ch : e) {
        if (!name_char(ch)) {
            return false;
        }
    }
    return true;
}

bool valid_binding_key(std::string_view k) noexcept {
    if (k.empty() || k.size() > 255) {
        return false;
    }
    for (const char ch : k) {
        if (!name_char(ch) && ch != '*' && ch != '#' && ch != '@') {
            return false;
        }
    }
    return true;
}

/// The words of a topic key, split at '.' ("a..b" has an empty middle word).
std::vector<std::string_view> words(std::string_view key) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (true) {
        const std::size_t dot = key.find('.', i);
        out.push_back(key.substr(i, dot == std::string_view::npos ? dot : dot - i));
        if (dot == std::string_view::npos) {
            return out;
        }
        i = dot + 1;
    }
}

} // namespace

result<amqp_template, std::string> parse_amqp_template(std::string_view text) {
    if (text.empty()) {
        return unexpected{std::string("the channel template is empty")};
    }
    std::string sample;
    bool literal_ok = true;
    amqp_template t;
    const bool braces_ok = detail::walk_template(
        text,
        [&](std::string_view run) {
            for (const char ch : run) {
                literal_ok = literal_ok && pubsub::valid_channel(std::string_view(&ch, 1));
            }
            sample += run;
        },
        [&](std::string_view name) {
            t.needs_body = t.needs_body || (name != "routingKey" && name != "exchange");
            sample += 'x';
        });
    if (!braces_ok) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' has a brace that is not around a placeholder ({routingKey}, "
                          "{exchange} or a body field's name of A-Z a-z 0-9 _ -)"};
    }
    if (!literal_ok || !pubsub::valid_channel(sample)) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' does not make a channel name (1-255 of A-Z a-z 0-9 _ . : @ * -, "
                          "and placeholders)"};
    }
    if (pubsub::channel_namespace(sample) == auth::sys_namespace) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' names a sys: channel, which only the server writes"};
    }
    t.text = std::string(text);
    return t;
}

result<amqp_rule, std::string> parse_amqp_rule(std::string_view text) {
    const std::size_t first = text.find(':');
    const std::size_t second =
        first == std::string_view::npos ? first : text.find(':', first + 1);
    if (second == std::string_view::npos) {
        return unexpected{"'" + std::string(text) +
                          "' is not EXCHANGE:BINDING_KEY:CHANNEL (e.g. quota:quota.*:user:{userId})"};
    }
    amqp_rule rule;
    rule.exchange = std::string(text.substr(0, first));
    rule.binding_key = std::string(text.substr(first + 1, second - first - 1));
    if (!valid_exchange(rule.exchange)) {
        return unexpected{"'" + std::string(text) + "': the exchange '" + rule.exchange +
                          "' is not an exchange name (1-127 of A-Z a-z 0-9 _ . -)"};
    }
    if (!valid_binding_key(rule.binding_key)) {
        return unexpected{"'" + std::string(text) + "': the binding key '" + rule.binding_key +
                          "' is not a topic binding key (1-255 of A-Z a-z 0-9 _ . @ -, and the "
                          "words * and #)"};
    }
    auto channel = parse_amqp_template(text.substr(second + 1));
    if (!channel) {
        return unexpected{"'" + std::string(text) + "': " + channel.error()};
    }
    rule.channel = std::move(*channel);
    return rule;
}

bool topic_matches(std::string_view binding_key, std::string_view routing_key) noexcept {
    const std::vector<std::string_view> b = words(binding_key);
    const std::vector<std::string_view> r = words(routing_key);
    // reach[j]: the binding's first i words can match the routing key's first j words.
    // O(|b|·|r|) with both at most 128 words (255 bytes): bounded, no backtracking.
    std::vector<char> reach(r.size() + 1, 0), next(r.size() + 1, 0);
    reach[0] = 1;
    for (const std::string_view word : b) {
        std::fill(next.begin(), next.end(), 0);
        if (word == "#") {
            char any = 0;
            for (std::size_t j = 0; j <= r.size(); ++j) {
                any = any || reach[j];
                next[j] = any; // zero or more words
            }
        } else {
            for (std::size_t j = 0; j < r.size(); ++j) {
                if (reach[j] && (word == "*" || word == r[j])) {
                    next[j + 1] = 1;
                }
            }
        }
        reach.swap(next);
    }
    return reach[r.size()] != 0;
}

bool valid_amqp_prefix(std::string_view prefix) noexcept {
    if (prefix.empty() || prefix.size() > 64) {
        return false;
    }
    for (const char ch : prefix) {
        if (!name_char(ch)) {
            return false;
        }
    }
    return true;
}

} // namespace ringcast::bridge
