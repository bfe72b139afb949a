// The configuration sources besides the command line: RINGCAST_* environment variables
// and the TOML config file (docs/operations.md "Configuration"). Each sets options through
// the same table and set_option as argv, so a value means the same wherever it comes from;
// a source only sets the options no higher source gave (flag > environment > file >
// default), and a list option takes the highest source's list whole.
#include "config.h"

#include "options.h"

#include <sys/stat.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern char** environ;

namespace ringcast::app {

namespace {

bool given_already(const config& cfg, const option& opt) noexcept {
    return std::any_of(cfg.given.begin(), cfg.given.end(),
                       [&](const given_option& g) { return g.opt == &opt; });
}

/// "file:line: " for a node of the config file.
std::string where(const std::string& path, const toml::source_region& at) {
    return path + ":" + std::to_string(at.begin.line) + ": ";
}

/// The text set_option reads for one TOML value: strings as they are, integers in decimal,
/// booleans as true / false; nothing for the other kinds (floats, dates, tables, arrays).
std::optional<std::string> scalar_text(const toml::node& node) {
    if (const auto* s = node.as_string()) {
        return s->get();
    }
    if (const auto* i = node.as_integer()) {
        if (i->get() < 0) {
            return std::to_string(i->get()); // refused by the number check, with its reason
        }
        return std::to_string(i->get());
    }
    if (const auto* b = node.as_boolean()) {
        return b->get() ? "true" : "false";
    }
    return std::nullopt;
}

std::string_view kind_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::none:
        return "nothing";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a number with a fraction";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
        return "a date or time";
    }
    return "a value";
}

/// The words of a namespace table ([namespace.NAME]) as a --namespace entry: "NAME:" and
/// its rules; problems (unknown keys, wrong kinds) appended to `problems`.
std::optional<std::string> namespace_entry(const std::string& path, std::string_view name,
                                           const toml::table& t,
                                           std::vector<std::string>& problems) {
    std::string rules;
    bool ok = true;
    const auto add = [&](const std::string& word) {
        rules += rules.empty() ? "" : ",";
        rules += word;
    };
    for (const auto& [key, value] : t) {
        const std::string k(key.str());
        const std::string at = where(path, value.source()) + "[namespace." + std::string(name) +
                               "] " + k + ": ";
        if (k == "access") {
            const auto* s = value.as_string();
            if (s == nullptr || (s->get() != "public" && s->get() != "private")) {
                problems.push_back(at + "must be \"public\" or \"private\" (or give roles)");
                ok = false;
                continue;
            }
            add(s->get());
        } else if (k == "roles") {
            const auto* a = value.as_array();
            if (a == nullptr || a->empty()) {
                problems.push_back(at + "must be an array of role names");
                ok = false;
                continue;
            }
            for (const auto& role : *a) {
                const auto* s = role.as_string();
                if (s == nullptr) {
                    problems.push_back(at + "must be an array of role names");
                    ok = false;
                    break;
                }
                add("role=" + s->get());
            }
        } else if (k == "publish" || k == "presence" || k == "ack") {
            const auto* b = value.as_boolean();
            if (b == nullptr) {
                problems.push_back(at + "must be true or false");
                ok = false;
                continue;
            }
            if (b->get()) {
                add(k);
            }
        } else if (k == "history" || k == "history-ttl") {
            const auto* i = value.as_integer();
            if (i == nullptr) {
                problems.push_back(at + "must be a whole number");
                ok = false;
                continue;
            }
            add(k + "=" + std::to_string(i->get()));
        } else {
            problems.push_back(at.substr(0, at.size() - 2 - k.size()) + "unknown key '" + k +
                               "' (access, roles, publish, history, history-ttl, presence, "
                               "ack)");
            ok = false;
        }
    }
    if (!ok) {
        return std::nullopt;
    }
    return std::string(name) + ":" + rules;
}

/// A TOML basic string: quotes and backslashes escaped, control characters as \uXXXX.
std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof(esc), "\\u%04x", static_cast<unsigned>(c));
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

/// A --namespace entry (NAME:RULE,...; checked when it was set) as a [namespace.NAME] table.
std::string namespace_table_text(std::string_view entry, std::string_view origin) {
    const std::size_t colon = entry.find(':');
    std::string out = "\n[namespace." + std::string(entry.substr(0, colon)) + "]  # " +
                      std::string(origin) + "\n";
    std::string roles;
    std::string_view rest = entry.substr(colon + 1);
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view word = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (word == "public" || word == "private") {
            out += "access = " + quoted(word) + "\n";
        } else if (word.starts_with("role=")) {
            roles += (roles.empty() ? "" : ", ") + quoted(word.substr(5));
        } else if (const std::size_t eq = word.find('='); eq != std::string_view::npos) {
            out += std::string(word.substr(0, eq)) + " = " + std::string(word.substr(eq + 1)) +
                   "\n"; // history, history-ttl: numbers
        } else {
            out += std::string(word) + " = true\n"; // publish, presence, ack
        }
    }
    if (!roles.empty()) {
        out += "roles = [" + roles + "]\n";
    }
    return out;
}

} // namespace

std::vector<std::string> read_environment(config& cfg) {
    std::vector<std::string> problems;
    std::vector<const option*> set_here;
    for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
        const std::string_view entry = *env;
        if (!entry.starts_with("RINGCAST_")) {
            continue;
        }
        const std::size_t eq = entry.find('=');
        const std::string_view var = entry.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? "" : entry.substr(eq + 1);
        if (var == api_key_env) {
            continue; // read by finish_config (a secret, not an option)
        }
        // The command-line client's own (docs/cli.md): a shell that set them for `ringcast`
        // may start ringcastd too, and they are no misspelt option to warn of.
        if (var == "RINGCAST_URL" || var == "RINGCAST_TOKEN") {
            continue;
        }
        const option* opt = nullptr;
        for (const option& o : options()) {
            if (env_name(o) == var) {
                opt = &o;
                break;
            }
        }
        if (opt == nullptr) {
            // A warning, not an error: the prefix is shared with other tools' variables
            // (a test harness's, a wrapper's), but a typo of an option must not pass unseen.
            cfg.warnings.push_back("the environment variable " + std::string(var) +
                                   " is no option of ringcastd and is ignored (RINGCAST_<OPTION>, "
                                   "e.g. RINGCAST_MAX_CONNECTIONS; see --help)");
            continue;
        }
        if (given_already(cfg, *opt)) {
            continue; // the command line wins
        }
        const std::string given_as = "the environment variable " + std::string(var);
        // A list takes several values: one per line (an entry may hold commas).
        std::size_t from = 0;
        bool ok = true;
        do {
            const std::size_t nl = value.find('\n', from);
            const std::string_view one = value.substr(from, nl - from);
            from = nl == std::string_view::npos ? value.size() + 1 : nl + 1;
            if (one.empty() && opt->type == option_type::entry_list) {
                continue;
            }
            if (auto r = set_option(cfg, *opt, given_as, one); !r) {
                problems.push_back(r.error());
                ok = false;
            }
        } while (from <= value.size());
        if (ok) {
            set_here.push_back(opt);
        }
    }
    for (const option* opt : set_here) {
        cfg.given.push_back({opt, value_source::environment});
    }
    return problems;
}

std::vector<std::string> read_config_file(config& cfg, const std::string& path) {
    std::vector<std::string> problems;
    struct stat st {};
    const bool found = stat(path.c_str(), &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
        problems.push_back("--config " + path + ": " +
                           (found ? std::string("not a regular file") : std::strerror(errno)) +
                           " (it must name a TOML file of settings)");
        return problems;
    }
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        std::string why(e.description());
        if (at.line == 0) { // not a syntax error: the file could not be read
            problems.push_back("--config " + path + ": " + why);
        } else {
            problems.push_back(path + ":" + std::to_string(at.line) + ":" +
                               std::to_string(at.column) + ": " + why);
        }
        return problems;
    }
    std::vector<const option*> set_here;
    std::vector<std::string> namespace_entries;
    for (const auto& [key, value] : root) {
        const std::string k(key.str());
        const std::string at = where(path, value.source());
        if (k == "namespace") {
            const auto* tables = value.as_table();
            if (tables == nullptr) {
                problems.push_back(at + "namespace must be tables: [namespace.NAME]");
                continue;
            }
            for (const auto& [name, rules] : *tables) {
                const auto* t = rules.as_table();
                if (t == nullptr) {
                    problems.push_back(where(path, rules.source()) + "namespace." +
                                       std::string(name.str()) + " must be a table");
                    continue;
                }
                if (auto entry = namespace_entry(path, name.str(), *t, problems)) {
                    namespace_entries.push_back(
                        where(path, rules.source()).append("[namespace.")
                            .append(name.str()).append("]") + "\n" + *entry);
                }
            }
            continue;
        }
        const option* opt = find_option(k);
        if (opt == nullptr || config_key(*opt).empty()) {
            std::string why = opt == nullptr ? "unknown key '" + k + "'"
                                             : "'" + k + "' is for the command line only";
            if (opt == nullptr) {
                if (const std::string refused = refusal(k); !refused.empty()) {
                    why = "'" + k + "' is not accepted: " + refused;
                }
            }
            problems.push_back(at + why);
            continue;
        }
        if (opt->name == "namespace") {
            problems.push_back(at + "give namespaces as tables: [namespace.NAME]");
            continue;
        }
        if (given_already(cfg, *opt)) {
            continue; // the command line or the environment wins
        }
        const std::string given_as = at + k;
        std::vector<const toml::node*> items;
        if (const auto* a = value.as_array()) {
            const bool list = opt->type == option_type::name_list ||
                              opt->type == option_type::network_list ||
                              opt->type == option_type::entry_list;
            if (!list) {
                problems.push_back(at + k + " takes one value, not an array");
                continue;
            }
            for (const auto& item : *a) {
                items.push_back(&item);
            }
        } else {
            items.push_back(&value);
        }
        bool ok = true;
        for (const toml::node* item : items) {
            const auto text = scalar_text(*item);
            if (!text) {
                problems.push_back(where(path, item->source()) + k + " cannot be " +
                                   std::string(kind_name(*item)));
                ok = false;
                continue;
            }
            if (auto r = set_option(cfg, *opt, given_as, *text); !r) {
                problems.push_back(r.error());
                ok = false;
            }
        }
        if (ok) {
            set_here.push_back(opt);
        }
    }
    if (!namespace_entries.empty()) {
        const option* ns = find_option("namespace");
        if (!given_already(cfg, *ns)) {
            for (const std::string& e : namespace_entries) {
                const std::size_t nl = e.find('\n');
                if (auto r = set_option(cfg, *ns, e.substr(0, nl), e.substr(nl + 1)); !r) {
                    problems.push_back(r.error());
                }
            }
            set_here.push_back(ns);
        }
    }
    for (const option* opt : set_here) {
        cfg.given.push_back({opt, value_source::file});
    }
    // In the file's order: every problem starts "PATH:LINE: " (the table is read in key
    // order).
    const auto line_of = [&](const std::string& p) {
        return p.starts_with(path + ":") ? std::strtoul(p.c_str() + path.size() + 1, nullptr, 10)
                                         : 0ul;
    };
    std::stable_sort(problems.begin(), problems.end(),
                     [&](const std::string& a, const std::string& b) {
                         return line_of(a) < line_of(b);
                     });
    return problems;
}

std::string print_config(const config& cfg) {
    std::string out = "# ringcastd's effective configuration (--print-config): a config file "
                      "that gives the same settings.\n# Where each value came from is "
                      "said after it; the API key is never printed (RINGCAST_API_KEY or "
                      "--api-key-file).\n";
    std::string namespaces;
    for (const option& opt : options()) {
        if (config_key(opt).empty()) {
            continue;
        }
        value_source from = value_source::default_value;
        for (const given_option& g : cfg.given) {
            if (g.opt == &opt) {
                from = g.from;
            }
        }
        const std::string_view origin = from == value_source::command_line ? "command line"
                                        : from == value_source::environment ? "environment"
                                        : from == value_source::file        ? "config file"
                                                                            : "default";
        if (opt.name == "namespace") {
            for (const std::string& entry : cfg.namespaces) {
                namespaces += namespace_table_text(entry, origin);
            }
            continue;
        }
        const auto value = render_value(cfg, opt);
        if (!value) {
            out += "# " + std::string(opt.name) + " = (not set: " + std::string(opt.when_unset) +
                   ")\n";
            continue;
        }
        std::string shown;
        switch (opt.type) {
        case option_type::integer:
        case option_type::bytes:
        case option_type::milliseconds:
        case option_type::microseconds:
        case option_type::toggle:
            shown = *value;
            break;
        case option_type::address:
        case option_type::path:
        case option_type::text:
            shown = quoted(*value);
            break;
        case option_type::name_list:
        case option_type::network_list:
        case option_type::entry_list: {
            shown = "[";
            // render_value joins list entries with ',' and entry_list's (which may hold
            // commas) with ' ' (which none holds).
            const char separator = opt.type == option_type::entry_list ? ' ' : ',';
            std::size_t from_at = 0;
            while (from_at <= value->size()) {
                const std::size_t comma = value->find(separator, from_at);
                const std::string one = value->substr(from_at, comma - from_at);
                if (!one.empty()) {
                    shown += (shown.size() > 1 ? ", " : "") + quoted(one);
                }
                if (comma == std::string::npos) {
                    break;
                }
                from_at = comma + 1;
            }
            shown += "]";
            break;
        }
        }
        out += std::string(opt.name) + " = " + shown + "  # " + std::string(origin) + "\n";
    }
    return out + namespaces;
}

} // namespace ringcast::app
