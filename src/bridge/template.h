// Channel templates, walked (private to src/bridge): the RabbitMQ bridge's rule parser
// (amqp_rules.cc) and mapper (amqp_mapper.cc), and the queue bridge's rules (rules.cc, whose
// placeholders are a fixed three).
#pragma once

#include <string_view>

namespace ringcast::bridge::detail {

/// A placeholder name: 1-64 of [A-Za-z0-9_-].
inline bool placeholder_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (const char ch : name) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/// Walks `text`: literal runs go to `literal(run)`, each {name} to `value(name)`. False when
/// a brace does not open or close a placeholder name.
template <typename Literal, typename Value>
bool walk_template(std::string_view text, Literal&& literal, Value&& value) {
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t open = text.find_first_of("{}", i);
        if (open == std::string_view::npos) {
            literal(text.substr(i));
            return true;
        }
        literal(text.substr(i, open - i));
        if (text[open] == '}') {
            return false;
        }
        const std::size_t close = text.find('}', open + 1);
        if (close == std::string_view::npos) {
            return false;
        }
        const std::string_view name = text.substr(open + 1, close - open - 1);
        if (!placeholder_name(name)) {
            return false;
        }
        value(name);
        i = close + 1;
    }
    return true;
}

} // namespace ringcast::bridge::detail
