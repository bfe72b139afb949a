// The bridges' rules (include/ringcast/bridge.h): --queue-bridge QUEUE:EVENT:CHANNEL read
// and checked at start, and channel templates expanded per event.
#include <ringcast/auth.h>
#include <ringcast/bridge.h>

#include "template.h"

#include <algorithm>
#include <iterator>

namespace ringcast::bridge {

namespace {

bool name_char(char ch) noexcept {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

bool valid_queue(std::string_view q) noexcept {
    if (q.empty() || q.size() > 128) {
        return false;
    }
    for (const char ch : q) {
        if (!name_char(ch) && ch != '@') {
            return false;
        }
    }
    return true;
}

bool valid_event_name(std::string_view e) noexcept {
    if (e == "*") {
        return true;
    }
    if (e.empty() || e.size() > 64) {
        return false;
    }
    for (const char ch : e) {
        if (!name_char(ch)) {
            return false;
        }
    }
    return true;
}

constexpr std::string_view placeholders[] = {"queue", "event", "jobId"};

/// Walks `text` (detail::walk_template): literal runs go to `literal(run)`, each placeholder
/// to `value(index)`. False when a brace is not part of one of the three placeholders.
template <typename Literal, typename Value>
bool walk(std::string_view text, Literal&& literal, Value&& value) {
    bool known = true;
    const bool braces_ok = detail::walk_template(text, literal, [&](std::string_view name) {
        const auto* p = std::find(std::begin(placeholders), std::end(placeholders), name);
        if (p == std::end(placeholders)) {
            known = false;
            return;
        }
        value(static_cast<std::size_t>(p - std::begin(placeholders)));
    });
    return braces_ok && known;
}

} // namespace

std::optional<std::string> channel_template::expand(std::string_view queue,
                                                    std::string_view event,
                                                    std::string_view job_id) const {
    const std::string_view values[] = {queue, event, job_id};
    std::string out;
    bool empty_value = false;
    walk(
        text, [&](std::string_view run) { out += run; },
        [&](std::size_t p) {
            empty_value = empty_value || values[p].empty();
            // Bounded: a value longer than a channel can be makes no channel anyway.
            if (out.size() + values[p].size() <= 255) {
                out += values[p];
            } else {
                empty_value = true;
            }
        });
    if (empty_value || !pubsub::valid_channel(out) ||
        pubsub::channel_namespace(out) == auth::sys_namespace) {
        return std::nullopt;
    }
    return out;
}

result<channel_template, std::string> parse_channel_template(std::string_view text) {
    std::string sample;
    bool literal_ok = true;
    const bool braces_ok = walk(
        text,
        [&](std::string_view run) {
            for (const char ch : run) {
                literal_ok = literal_ok && pubsub::valid_channel(std::string_view(&ch, 1));
            }
            sample += run;
        },
        [&](std::size_t) { sample += 'x'; });
    if (text.empty()) {
        return unexpected{std::string("the channel template is empty")};
    }
    if (!braces_ok) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' has a brace that is not one of {queue}, {event}, {jobId}"};
    }
    if (!literal_ok || !pubsub::valid_channel(sample)) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' does not make a channel name (1-255 of A-Z a-z 0-9 _ . : @ * -, "
                          "and the placeholders {queue}, {event}, {jobId})"};
    }
    if (pubsub::channel_namespace(sample) == auth::sys_namespace) {
        return unexpected{"the channel template '" + std::string(text) +
                          "' names a sys: channel, which only the server writes"};
    }
    return channel_template{std::string(text)};
}

result<bull_rule, std::string> parse_bull_rule(std::string_view text) {
    const std::size_t first = text.find(':');
    const std::size_t second =
        first == std::string_view::npos ? first : text.find(':', first + 1);
    if (second == std::string_view::npos) {
        return unexpected{"'" + std::string(text) +
                          "' is not QUEUE:EVENT:CHANNEL (e.g. reports:progress:job:{jobId})"};
    }
    bull_rule rule;
    rule.queue = std::string(text.substr(0, first));
    rule.event = std::string(text.substr(first + 1, second - first - 1));
    if (!valid_queue(rule.queue)) {
        return unexpected{"'" + std::string(text) + "': the queue '" + rule.queue +
                          "' is not a queue name (1-128 of A-Z a-z 0-9 _ . @ -)"};
    }
    if (!valid_event_name(rule.event)) {
        return unexpected{"'" + std::string(text) + "': the event '" + rule.event +
                          "' is not an event name (1-64 of A-Z a-z 0-9 _ . -) or *"};
    }
    auto channel = parse_channel_template(text.substr(second + 1));
    if (!channel) {
        return unexpected{"'" + std::string(text) + "': " + channel.error()};
    }
    rule.channel = std::move(*channel);
    return rule;
}

bool valid_bull_prefix(std::string_view prefix) noexcept {
    if (prefix.empty() || prefix.size() > 64) {
        return false;
    }
    // Braces: BullMQ's advice for Redis Cluster is a prefix such as {reports} (a hash tag).
    for (const char ch : prefix) {
        if (!name_char(ch) && ch != '@' && ch != '{' && ch != '}') {
            return false;
        }
    }
    return true;
}

} // namespace ringcast::bridge
