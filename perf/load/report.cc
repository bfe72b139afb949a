// See report.h.
#include "report.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ringcast::bench {

namespace {

constexpr std::string_view rule_name(merge_rule r) noexcept {
    switch (r) {
    case merge_rule::sum:
        return "sum";
    case merge_rule::max:
        return "max";
    case merge_rule::first:
        return "first";
    case merge_rule::p50:
        return "p50";
    case merge_rule::p90:
        return "p90";
    case merge_rule::p99:
        return "p99";
    case merge_rule::p999:
        return "p999";
    case merge_rule::hist_max:
        return "hist_max";
    case merge_rule::hist_mean:
        return "hist_mean";
    }
    return "first";
}

std::optional<merge_rule> rule_from(std::string_view s) noexcept {
    for (auto r :
         {merge_rule::sum, merge_rule::max, merge_rule::first, merge_rule::p50, merge_rule::p90,
          merge_rule::p99, merge_rule::p999, merge_rule::hist_max, merge_rule::hist_mean}) {
        if (rule_name(r) == s) {
            return r;
        }
    }
    return std::nullopt;
}

std::string number(double v) {
    if (!std::isfinite(v)) {
        return "null";
    }
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        std::snprintf(buf, sizeof buf, "%.3f", v);
    }
    return buf;
}

// A cursor over the wire line: just enough JSON for what to_wire() writes.
struct cursor {
    std::string_view s;
    std::size_t pos = 0;

    void skip_ws() noexcept {
        while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\t')) {
            ++pos;
        }
    }
    bool eat(char c) noexcept {
        skip_ws();
        if (pos < s.size() && s[pos] == c) {
            ++pos;
            return true;
        }
        return false;
    }
    bool peek(char c) noexcept {
        skip_ws();
        return pos < s.size() && s[pos] == c;
    }
    bool string(std::string& out) {
        if (!eat('"')) {
            return false;
        }
        const std::size_t end = s.find('"', pos); // our names never contain quotes
        if (end == std::string_view::npos) {
            return false;
        }
        out.assign(s.substr(pos, end - pos));
        pos = end + 1;
        return true;
    }
    bool num(double& out) {
        skip_ws();
        const std::string rest(s.substr(pos, 40));
        char* end = nullptr;
        out = std::strtod(rest.c_str(), &end);
        if (end == rest.c_str()) {
            if (rest.rfind("null", 0) == 0) {
                out = NAN;
                pos += 4;
                return true;
            }
            return false;
        }
        pos += std::size_t(end - rest.c_str());
        return true;
    }
};

} // namespace

void report::set(std::string_view name, double value, merge_rule rule) {
    for (auto& m : metrics) {
        if (m.name == name) {
            m.value = value;
            m.rule = rule;
            return;
        }
    }
    metrics.push_back(metric{std::string(name), rule, value});
}

void report::add_percentiles(std::string_view prefix) {
    const std::string p(prefix);
    set(p + ".p50", 0, merge_rule::p50);
    set(p + ".p99", 0, merge_rule::p99);
    set(p + ".p999", 0, merge_rule::p999);
    set(p + ".max", 0, merge_rule::hist_max);
    set(p + ".mean", 0, merge_rule::hist_mean);
}

std::optional<double> report::get(std::string_view name) const {
    for (const auto& m : metrics) {
        if (m.name == name) {
            return m.value;
        }
    }
    return std::nullopt;
}

void report::merge(const report& other) {
    for (const auto& o : other.metrics) {
        metric* mine = nullptr;
        for (auto& m : metrics) {
            if (m.name == o.name) {
                mine = &m;
                break;
            }
        }
        if (mine == nullptr) {
            metrics.push_back(o);
            continue;
        }
        switch (mine->rule) {
        case merge_rule::sum:
            mine->value += o.value;
            break;
        case merge_rule::max:
            mine->value = std::fmax(mine->value, o.value);
            break;
        case merge_rule::first:
        case merge_rule::p50:
        case merge_rule::p90:
        case merge_rule::p99:
        case merge_rule::p999:
        case merge_rule::hist_max:
        case merge_rule::hist_mean:
            break;
        }
    }
    hist.merge(other.hist);
}

void report::resolve_percentiles() {
    for (auto& m : metrics) {
        switch (m.rule) {
        case merge_rule::p50:
            m.value = double(hist.percentile(0.50)) / 1e3;
            break;
        case merge_rule::p90:
            m.value = double(hist.percentile(0.90)) / 1e3;
            break;
        case merge_rule::p99:
            m.value = double(hist.percentile(0.99)) / 1e3;
            break;
        case merge_rule::p999:
            m.value = double(hist.percentile(0.999)) / 1e3;
            break;
        case merge_rule::hist_max:
            m.value = double(hist.max()) / 1e3;
            break;
        case merge_rule::hist_mean:
            m.value = hist.mean() / 1e3;
            break;
        case merge_rule::sum:
        case merge_rule::max:
        case merge_rule::first:
            break;
        }
    }
}

std::string report::to_json() const {
    std::string out = "{\"scenario\":\"" + scenario + "\"";
    std::string open_prefix; // the nested object currently open, "" for none
    for (const auto& m : metrics) {
        const std::size_t dot = m.name.find('.');
        const std::string prefix = dot == std::string::npos ? "" : m.name.substr(0, dot);
        const std::string leaf = dot == std::string::npos ? m.name : m.name.substr(dot + 1);
        bool first_in_object = false;
        if (prefix != open_prefix) {
            if (!open_prefix.empty()) {
                out += "}";
            }
            if (!prefix.empty()) {
                out += ",\"" + prefix + "\":{";
                first_in_object = true;
            }
            open_prefix = prefix;
        }
        out += first_in_object ? "" : ",";
        out += "\"" + leaf + "\":" + number(m.value);
    }
    if (!open_prefix.empty()) {
        out += "}";
    }
    out += "}";
    return out;
}

std::string report::to_wire() const {
    std::string out = "{\"scenario\":\"" + scenario + "\",\"metrics\":[";
    bool first = true;
    for (const auto& m : metrics) {
        out += first ? "" : ",";
        first = false;
        out += "[\"" + m.name + "\",\"" + std::string(rule_name(m.rule)) + "\"," + number(m.value) +
               "]";
    }
    out += "],\"hist\":[";
    first = true;
    for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
        if (hist.bucket(i) != 0) {
            out += first ? "" : ",";
            first = false;
            out += "[" + std::to_string(i) + "," + std::to_string(hist.bucket(i)) + "]";
        }
    }
    out += "],\"hist_max\":" + std::to_string(hist.max()) + "}";
    return out;
}

bool report::from_wire(std::string_view line, report& out, std::string& error) {
    cursor c{line};
    std::string key;
    auto fail = [&](const char* what) {
        error = std::string("worker report is malformed near byte ") + std::to_string(c.pos) +
                ": " + what;
        return false;
    };
    if (!c.eat('{') || !c.string(key) || key != "scenario" || !c.eat(':') ||
        !c.string(out.scenario)) {
        return fail("expected {\"scenario\":...");
    }
    if (!c.eat(',') || !c.string(key) || key != "metrics" || !c.eat(':') || !c.eat('[')) {
        return fail("expected \"metrics\":[");
    }
    // Bounded by the line length: every iteration consumes at least one byte.
    while (!c.peek(']') && c.pos < line.size()) {
        std::string name;
        std::string rule;
        double value = 0;
        if (!c.eat('[') || !c.string(name) || !c.eat(',') || !c.string(rule) || !c.eat(',') ||
            !c.num(value) || !c.eat(']')) {
            return fail("expected [\"name\",\"rule\",number]");
        }
        const auto r = rule_from(rule);
        if (!r) {
            return fail("unknown merge rule");
        }
        out.metrics.push_back(metric{name, *r, value});
        c.eat(',');
    }
    if (!c.eat(']') || !c.eat(',') || !c.string(key) || key != "hist" || !c.eat(':') ||
        !c.eat('[')) {
        return fail("expected \"hist\":[");
    }
    latency_histogram h;
    while (!c.peek(']') && c.pos < line.size()) {
        double index = 0;
        double count = 0;
        if (!c.eat('[') || !c.num(index) || !c.eat(',') || !c.num(count) || !c.eat(']')) {
            return fail("expected [index,count]");
        }
        h.add_bucket(std::size_t(index), uint64_t(count));
        c.eat(',');
    }
    double hist_max = 0;
    if (!c.eat(']') || !c.eat(',') || !c.string(key) || key != "hist_max" || !c.eat(':') ||
        !c.num(hist_max)) {
        return fail("expected \"hist_max\"");
    }
    // add_bucket() estimated the max from bucket bounds; the worker knew it exactly.
    h.set_max(uint64_t(hist_max));
    out.hist = h;
    return true;
}

} // namespace ringcast::bench
