// permissions.cc — the --namespace option, the namespace table and the subscribe / publish
// rules (contract: may_subscribe and may_publish in auth.h).
//
//   channel ─► namespace (before the first ':') ─┬─ none      → public
//                                                ├─ "user"    → only user:<own id>
//                                                ├─ "sys"     → only the role "admin"
//                                                ├─ in table  → public / private / role
//                                                └─ otherwise → refused
// Start-up code (parsing, add) returns error strings; the checks allocate nothing.
#include <ringcast/auth.h>

#include <algorithm>

namespace ringcast::auth {

namespace {

using error = unexpected<std::string>;

constexpr std::size_t max_namespace_bytes = 64;
constexpr std::string_view user_namespace = "user";

bool valid_namespace_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_namespace_bytes) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    });
}

bool has_role(const identity& who, const namespace_rule& rule) noexcept {
    return std::any_of(rule.roles.begin(), rule.roles.end(), [&](const std::string& role) {
        return std::find(who.roles.begin(), who.roles.end(), role) != who.roles.end();
    });
}

} // namespace

result<namespace_rule, std::string> parse_namespace_rule(std::string_view option) {
    const std::size_t colon = option.find(':');
    if (colon == std::string_view::npos) {
        return error{"--namespace " + std::string(option) + ": expected NAME:RULE[,RULE...]"};
    }
    namespace_rule rule;
    rule.name = std::string(option.substr(0, colon));
    const std::string where = "--namespace " + std::string(option) + ": ";
    if (!valid_namespace_name(rule.name)) {
        return error{where + "the name must be 1-64 characters of A-Z a-z 0-9 _ . -"};
    }
    if (rule.name == user_namespace) {
        return error{where + "\"user\" is built in (user:<id> only for that user)"};
    }
    if (rule.name == sys_namespace) {
        return error{where + "\"sys\" is built in (the server's own channels, sys:stats)"};
    }
    bool access_set = false;
    std::string_view rest = option.substr(colon + 1);
    for (;;) {
        const std::size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        if (item == "public" || item == "private") {
            if (access_set) {
                return error{where + "more than one of public, private, role="};
            }
            access_set = true;
            rule.access = item == "public" ? ns_access::public_access : ns_access::private_access;
        } else if (item.starts_with("role=")) {
            const std::string role(item.substr(5));
            if (role.empty()) {
                return error{where + "role= needs a role name"};
            }
            if (access_set && rule.access != ns_access::role) {
                return error{where + "more than one of public, private, role="};
            }
            if (std::find(rule.roles.begin(), rule.roles.end(), role) != rule.roles.end()) {
                return error{where + "role " + role + " given twice"};
            }
            access_set = true;
            rule.access = ns_access::role;
            rule.roles.push_back(role);
        } else if (item == "publish") {
            if (rule.publish) {
                return error{where + "publish given twice"};
            }
            rule.publish = true;
        } else if (item == "presence" || item == "ack") {
            bool& flag = item == "presence" ? rule.presence : rule.ack;
            if (flag) {
                return error{where + std::string(item) + " given twice"};
            }
            flag = true;
        } else if (item.starts_with("history=") || item.starts_with("history-ttl=")) {
            const bool ttl = item.starts_with("history-ttl=");
            const std::string_view digits = item.substr(item.find('=') + 1);
            const uint32_t most = ttl ? max_history_ttl_s : max_history_messages;
            uint64_t value = 0;
            bool valid = !digits.empty() && digits.size() <= 10;
            for (const char c : digits) {
                valid = valid && c >= '0' && c <= '9';
                value = value * 10 + uint64_t(c - '0');
            }
            if (!valid || value == 0 || value > most) {
                return error{where + std::string(ttl ? "history-ttl" : "history") +
                             "= needs a number from 1 to " + std::to_string(most)};
            }
            uint32_t& field = ttl ? rule.history_ttl_s : rule.history;
            if (field != 0) {
                return error{where + std::string(ttl ? "history-ttl" : "history") +
                             " given twice"};
            }
            field = static_cast<uint32_t>(value);
        } else {
            return error{where + "unknown rule \"" + std::string(item) +
                         "\" (public, private, role=<name>, publish, history=N, history-ttl=S, "
                         "presence, ack)"};
        }
        if (comma == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(comma + 1);
    }
    if (rule.history_ttl_s != 0 && rule.history == 0) {
        return error{where + "history-ttl= needs history=N"};
    }
    if (rule.ack && rule.history == 0) {
        return error{where + "ack needs history=N (what is not acknowledged is replayed from "
                             "the channel's history)"};
    }
    rule.access_given = access_set;
    const bool feature = rule.history > 0 || rule.presence || rule.ack;
    if (!access_set && (rule.publish || !feature)) {
        return error{where + "needs one of public, private, role=<name>"};
    }
    return rule;
}

result<void, std::string> namespace_table::add(namespace_rule rule) {
    if (find(rule.name) != nullptr) {
        return error{"--namespace " + rule.name + " given twice"};
    }
    _rules.push_back(std::move(rule));
    return {};
}

const namespace_rule* namespace_table::find(std::string_view name) const noexcept {
    for (const namespace_rule& rule : _rules) {
        if (rule.name == name) {
            return &rule;
        }
    }
    return nullptr;
}

std::string_view channel_namespace(std::string_view channel) noexcept {
    const std::size_t colon = channel.find(':');
    return colon == std::string_view::npos ? std::string_view() : channel.substr(0, colon);
}

bool channel_granted(const identity& who, std::string_view channel) noexcept {
    for (const std::string& entry : who.channels) {
        if (!entry.empty() && entry.back() == '*') {
            if (channel.starts_with(std::string_view(entry).substr(0, entry.size() - 1))) {
                return true;
            }
        } else if (entry == channel) {
            return true;
        }
    }
    return false;
}

access_verdict may_subscribe(const identity& who, std::string_view channel,
                             const namespace_table& rules) noexcept {
    if (channel.find(':') == std::string_view::npos) {
        return {true, {}};
    }
    const std::string_view name = channel_namespace(channel);
    if (name == user_namespace) {
        const std::string_view owner = channel.substr(user_namespace.size() + 1);
        if (!who.user_id.empty() && owner == who.user_id) {
            return {true, {}};
        }
        return {false, "channel belongs to another user"};
    }
    if (name == sys_namespace) {
        const bool admin = std::find(who.roles.begin(), who.roles.end(), admin_role) !=
                           who.roles.end();
        return admin ? access_verdict{true, {}} : access_verdict{false, "admin role required"};
    }
    const namespace_rule* rule = rules.find(name);
    if (rule == nullptr) {
        return {false, "namespace not configured"};
    }
    switch (rule->access) {
    case ns_access::public_access:
        return {true, {}};
    case ns_access::private_access:
        if (channel_granted(who, channel)) {
            return {true, {}};
        }
        return {false, "channel not granted by token"};
    case ns_access::role:
        if (has_role(who, *rule)) {
            return {true, {}};
        }
        return {false, "role required"};
    }
    return {false, "namespace not configured"};
}

access_verdict may_publish(const identity& who, std::string_view channel,
                           const namespace_table& rules) noexcept {
    const std::string_view name = channel_namespace(channel);
    const namespace_rule* rule = name.empty() ? nullptr : rules.find(name);
    if (rule == nullptr || !rule->publish) {
        // Refuse with the subscribe reason when there is one: it says more.
        const access_verdict subscribe = may_subscribe(who, channel, rules);
        return {false, subscribe.allowed ? "publish not allowed" : subscribe.reason};
    }
    return may_subscribe(who, channel, rules);
}

} // namespace ringcast::auth
