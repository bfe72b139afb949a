// The counters tables of GET /api/stats (src/admin/stats.h): each covers its struct member
// by member, names are unique and usable as JSON keys and Prometheus names, shards combine
// as each row's type says, and the JSON holds every figure under its row's name.
#include "stats.h"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace ringcast;
using namespace ringcast::admin::stats;

namespace {

/// Where each figure a row reads sits in S, in bytes from the start: one offset per row,
/// or one per element of a per_priority row.
template <typename S>
std::vector<std::size_t> offsets_read(rows<S> table) {
    const S s{};
    const auto* base = reinterpret_cast<const std::byte*>(&s);
    std::vector<std::size_t> out;
    for (const field<S>& row : table) {
        if (row.value != nullptr) {
            out.push_back(static_cast<std::size_t>(
                reinterpret_cast<const std::byte*>(&(s.*row.value)) - base));
            continue;
        }
        for (const uint64_t& one : s.*row.per_priority) {
            out.push_back(
                static_cast<std::size_t>(reinterpret_cast<const std::byte*>(&one) - base));
        }
    }
    return out;
}

/// A Prometheus metric name that needs no escaping in JSON either: [a-z_][a-z0-9_]*.
bool plain_identifier(std::string_view name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

/// Every name the JSON object of one shard has at its top level.
std::vector<std::string_view> all_names() {
    std::vector<std::string_view> names;
    for (const derived_field& d : derived_fields) {
        names.push_back(d.name);
    }
    for_each_section([&](std::string_view, auto table, auto) {
        for (const auto& row : table) {
            names.push_back(row.name);
        }
    });
    return names;
}

/// Gives every figure of `s` a different value from `seed` on, so a figure written under
/// the wrong name, or twice, shows.
void number_every_figure(shard_stats& s, uint64_t seed) {
    for_each_section([&](std::string_view, auto table, auto part) {
        for (const auto& row : table) {
            if (row.value != nullptr) {
                (s.*part).*row.value = seed++;
            } else {
                for (uint64_t& one : (s.*part).*row.per_priority) {
                    one = seed++;
                }
            }
        }
    });
}

/// A counters struct of each kind of row, for what the real tables do not have (no gauge
/// takes the largest shard's figure yet).
struct sample {
    uint64_t events = 0;
    uint64_t level = 0;
    uint64_t peak = 0;
    by_priority per_priority = {};
};

constexpr field<sample> sample_fields[] = {
    {"events", figure::counter, &sample::events, "a counter"},
    {"level", figure::gauge_sum, &sample::level, "a gauge the shards add up"},
    {"peak", figure::gauge_max, &sample::peak, "a gauge whose total is the largest shard's"},
    {"per_priority", figure::counter, &sample::per_priority, pubsub::priority::critical,
     "a counter by priority"},
};
constexpr field<sample> sample_without_peak[] = {sample_fields[0], sample_fields[1],
                                                 sample_fields[3]};
constexpr field<sample> sample_with_level_twice[] = {sample_fields[0], sample_fields[1],
                                                     sample_fields[1], sample_fields[3]};

/// Figures outside the tables: closes by code and the two histograms, numbered too.
void number_the_rest(shard_stats& s, uint64_t seed) {
    for (std::size_t i = 0; i < ws::close_code_slots; ++i) {
        s.closes.sent[i] = seed + i;
        s.closes.received[i] = seed + 100 + i;
    }
    s.publish_to_send_us.record(seed);
    s.publish_to_send_us.record(seed * 1000);
    s.queue_depth_bytes.record(0);
    s.queue_depth_bytes.record(seed * 10);
}

/// The keys each JSON object has besides the tables' rows and derived figures.
constexpr std::size_t keys_outside_tables = 4;

/// Codes a closes_sent object lists: those a close frame may carry.
std::size_t sendable_codes() {
    std::size_t n = 0;
    for (const ws::close_code c : ws::counted_close_codes) {
        n += ws::close_code_valid_on_wire(static_cast<uint16_t>(c)) ? 1 : 0;
    }
    return n;
}

uint64_t number_at(simdjson::dom::element object, std::string_view key) {
    uint64_t value = 0;
    INFO(key);
    REQUIRE(object[key].get(value) == simdjson::SUCCESS);
    return value;
}

} // namespace

// The same check the build makes (static_assert in stats.h), on tables made to fail it.
static_assert(covers_every_member(sample_fields));
static_assert(!covers_every_member(sample_without_peak));
static_assert(!covers_every_member(sample_with_level_twice));

TEST_CASE("each counters table reads every member of its struct once", "[admin][stats]") {
    for_each_section([](std::string_view section, auto table, auto part) {
        using S = std::remove_reference_t<decltype(shard_stats{}.*part)>;
        INFO("section " << section);
        auto offsets = offsets_read<S>(table);
        std::sort(offsets.begin(), offsets.end());
        // The figures tile the struct: the k-th starts at k × 8 bytes and they end at its end.
        REQUIRE(offsets.size() * sizeof(uint64_t) == sizeof(S));
        for (std::size_t k = 0; k < offsets.size(); ++k) {
            CHECK(offsets[k] == k * sizeof(uint64_t));
        }
    });
}

TEST_CASE("stats names are unique plain identifiers with one line of help", "[admin][stats]") {
    const auto names = all_names();
    const std::set<std::string_view> unique(names.begin(), names.end());
    CHECK(unique.size() == names.size());
    for (const auto name : names) {
        INFO(name);
        CHECK(plain_identifier(name));
    }
    auto good_help = [](std::string_view help) {
        return !help.empty() && help.find('\n') == std::string_view::npos &&
               help.find('\\') == std::string_view::npos;
    };
    for (const derived_field& d : derived_fields) {
        INFO(d.name);
        CHECK(good_help(d.help));
    }
    for_each_section([&](std::string_view, auto table, auto) {
        for (const auto& row : table) {
            INFO(row.name);
            CHECK(good_help(row.help));
        }
    });
}

TEST_CASE("shards combine as each row's type says", "[admin][stats]") {
    sample total{1, 10, 5, {0, 1, 2, 3, 4}};
    const sample one{2, 20, 3, {0, 10, 20, 30, 40}};
    merge_rows(rows<sample>(sample_fields), total, one);
    CHECK(total.events == 3);
    CHECK(total.level == 30);
    CHECK(total.peak == 5);
    CHECK(total.per_priority[4] == 44);
    const sample higher{0, 0, 9, {}};
    merge_rows(rows<sample>(sample_fields), total, higher);
    CHECK(total.peak == 9);
}

TEST_CASE("stats JSON holds every figure of every shard and their total", "[admin][stats]") {
    std::vector<shard_stats> shards(2);
    number_every_figure(shards[0], 1);
    number_every_figure(shards[1], 1000);
    number_the_rest(shards[0], 7);
    number_the_rest(shards[1], 3000);
    const std::string body = stats_json(shards);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(body).get(doc) == simdjson::SUCCESS);
    simdjson::dom::array listed;
    REQUIRE(doc["shards"].get(listed) == simdjson::SUCCESS);
    REQUIRE(listed.size() == 2);

    shard_stats total;
    merge(total, shards[0]);
    merge(total, shards[1]);
    std::vector<std::pair<simdjson::dom::element, const shard_stats*>> objects = {
        {doc["total"].value_unsafe(), &total}, {listed.at(0).value_unsafe(), &shards[0]},
        {listed.at(1).value_unsafe(), &shards[1]}};
    for (const auto& entry : objects) {
        // Named copies, not structured bindings: clang 14 cannot capture those in a lambda.
        const auto object = entry.first;
        const auto* s = entry.second;
        simdjson::dom::object fields;
        REQUIRE(object.get(fields) == simdjson::SUCCESS);
        CHECK(fields.size() == all_names().size() + keys_outside_tables);
        simdjson::dom::object sent;
        REQUIRE(object[closes_sent_name].get(sent) == simdjson::SUCCESS);
        CHECK(sent.size() == sendable_codes());
        CHECK(number_at(object[closes_sent_name].value_unsafe(), "1008") ==
              s->closes.sent[ws::close_code_slot(1008)]);
        simdjson::dom::object received;
        REQUIRE(object[closes_received_name].get(received) == simdjson::SUCCESS);
        CHECK(received.size() == ws::close_code_slots);
        CHECK(number_at(object[closes_received_name].value_unsafe(), "1006") ==
              s->closes.received[ws::close_code_slot(1006)]);
        CHECK(number_at(object[closes_received_name].value_unsafe(), "other") ==
              s->closes.received[ws::close_code_other]);
        CHECK(number_at(object[publish_to_send_name].value_unsafe(), "count") ==
              s->publish_to_send_us.count);
        CHECK(number_at(object[queue_depth_name].value_unsafe(), "sum") ==
              s->queue_depth_bytes.sum);
        for (const derived_field& d : derived_fields) {
            CHECK(number_at(object, d.name) == d.value(*s));
        }
        for_each_section([&](std::string_view, auto table, auto part) {
            for (const auto& row : table) {
                if (row.value != nullptr) {
                    CHECK(number_at(object, row.name) == (s->*part).*row.value);
                    continue;
                }
                // Only the priorities that can have a figure: "3" and "4" for dropped.
                simdjson::dom::object by_prio;
                REQUIRE(object[row.name].get(by_prio) == simdjson::SUCCESS);
                CHECK(by_prio.size() == 5 - static_cast<std::size_t>(row.shown_from));
                for (auto p = static_cast<unsigned>(row.shown_from); p <= 4; ++p) {
                    CHECK(number_at(object[row.name].value_unsafe(), std::to_string(p)) ==
                          ((s->*part).*row.per_priority)[p]);
                }
            }
        });
    }
    CHECK(number_at(doc["total"].value_unsafe(), "messages_in") ==
          shards[0].pubsub.messages_in + shards[1].pubsub.messages_in);
}

TEST_CASE("metrics text: HELP, TYPE and one sample per shard for every row", "[admin][stats]") {
    std::vector<shard_stats> shards(2);
    number_every_figure(shards[0], 1);
    number_every_figure(shards[1], 1000);
    number_the_rest(shards[0], 7);
    number_the_rest(shards[1], 3000);
    const std::string text = metrics_text(shards);
    const auto line_of = [&](const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
    };
    std::size_t samples = 0;
    for (std::size_t at = 0; (at = text.find('\n', at)) != std::string::npos; ++at) {
        ++samples;
    }
    std::size_t expected_lines = 0;
    for_each_section([&](std::string_view, auto table, auto part) {
        for (const auto& row : table) {
            const std::string name = "ringcast_" + std::string(row.name) +
                                     (row.type == figure::counter ? "_total" : "");
            INFO(name);
            CHECK(line_of("# HELP " + name + " " + std::string(row.help)));
            CHECK(line_of("# TYPE " + name + " " +
                          (row.type == figure::counter ? "counter" : "gauge")));
            expected_lines += 2;
            for (std::size_t i = 0; i < shards.size(); ++i) {
                const std::string shard = "shard=\"" + std::to_string(i) + "\"";
                if (row.value != nullptr) {
                    CHECK(line_of(name + "{" + shard + "} " +
                                  std::to_string((shards[i].*part).*row.value)));
                    ++expected_lines;
                    continue;
                }
                for (auto p = static_cast<unsigned>(row.shown_from); p <= 4; ++p) {
                    CHECK(line_of(name + "{" + shard + ",priority=\"" + std::to_string(p) +
                                  "\"} " +
                                  std::to_string(((shards[i].*part).*row.per_priority)[p])));
                    ++expected_lines;
                }
            }
        }
    });
    for (const derived_field& d : derived_fields) {
        const bool listed = text.find("# TYPE ringcast_" + std::string(d.name) + " ") !=
                            std::string::npos;
        // Derived gauges (differences) are metrics; derived counters (sums of rows) are not.
        CHECK(listed == (d.type != figure::counter));
        if (listed) {
            expected_lines += 2 + shards.size();
            CHECK(line_of("ringcast_" + std::string(d.name) + "{shard=\"1\"} " +
                          std::to_string(d.value(shards[1]))));
        }
    }
    // Closes by code (sent: the codes a frame may carry; received: every slot), then two
    // histograms of bounds + 1 buckets, _sum and _count per shard; HELP and TYPE each.
    expected_lines += 2 + shards.size() * sendable_codes();
    expected_lines += 2 + shards.size() * ws::close_code_slots;
    expected_lines += 2 + shards.size() * (std::size(core::latency_bounds_us) + 3);
    expected_lines += 2 + shards.size() * (std::size(core::queue_depth_bounds_bytes) + 3);
    CHECK(line_of("ringcast_closes_sent_total{shard=\"1\",code=\"1008\",reason=\"policy "
                  "violation\"} " +
                  std::to_string(shards[1].closes.sent[ws::close_code_slot(1008)])));
    CHECK(line_of("ringcast_closes_received_total{shard=\"0\",code=\"other\",reason=\"other\"} " +
                  std::to_string(shards[0].closes.received[ws::close_code_other])));
    CHECK(samples == expected_lines); // nothing else: no totals, no stray lines
}

TEST_CASE("histogram JSON: bounds, per-bucket counts one longer, count and sum",
          "[admin][stats][histogram]") {
    core::latency_histogram h;
    h.record(10);      // on the first bound: its bucket
    h.record(11);      // just above it: the next
    h.record(9000000); // above every bound: the last
    std::string out = "{";
    append_histogram_json(out, h);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(out.substr(1)).get(doc) == simdjson::SUCCESS);
    simdjson::dom::array le;
    simdjson::dom::array counts;
    REQUIRE(doc["le"].get(le) == simdjson::SUCCESS);
    REQUIRE(doc["counts"].get(counts) == simdjson::SUCCESS);
    REQUIRE(le.size() == std::size(core::latency_bounds_us));
    REQUIRE(counts.size() == le.size() + 1);
    CHECK(uint64_t(le.at(0).value_unsafe()) == 10);
    CHECK(uint64_t(counts.at(0).value_unsafe()) == 1);
    CHECK(uint64_t(counts.at(1).value_unsafe()) == 1);
    CHECK(uint64_t(counts.at(le.size()).value_unsafe()) == 1);
    CHECK(number_at(doc, "count") == 3);
    CHECK(number_at(doc, "sum") == 9000021);
}

TEST_CASE("metrics text: histograms are cumulative, end in +Inf, and the latency is in seconds",
          "[admin][stats][histogram]") {
    std::vector<shard_stats> shards(1);
    shards[0].publish_to_send_us.record(5);       // ≤ 10 µs
    shards[0].publish_to_send_us.record(300);     // ≤ 500 µs
    shards[0].publish_to_send_us.record(4000000); // above 2.5 s
    shards[0].queue_depth_bytes.record(0);
    shards[0].queue_depth_bytes.record(5000);
    const std::string text = metrics_text(shards);
    const auto has = [&](const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    };
    const std::string lat = "ringcast_publish_to_send_seconds";
    CHECK(has("# TYPE " + lat + " histogram"));
    CHECK(has(lat + "_bucket{shard=\"0\",le=\"0.00001\"} 1"));
    CHECK(has(lat + "_bucket{shard=\"0\",le=\"0.00025\"} 1"));
    CHECK(has(lat + "_bucket{shard=\"0\",le=\"0.0005\"} 2"));
    CHECK(has(lat + "_bucket{shard=\"0\",le=\"2.5\"} 2"));
    CHECK(has(lat + "_bucket{shard=\"0\",le=\"+Inf\"} 3"));
    CHECK(has(lat + "_sum{shard=\"0\"} 4.000305"));
    CHECK(has(lat + "_count{shard=\"0\"} 3"));
    const std::string depth = "ringcast_queue_depth_bytes";
    CHECK(has("# TYPE " + depth + " histogram"));
    CHECK(has(depth + "_bucket{shard=\"0\",le=\"0\"} 1"));
    CHECK(has(depth + "_bucket{shard=\"0\",le=\"4096\"} 1"));
    CHECK(has(depth + "_bucket{shard=\"0\",le=\"16384\"} 2"));
    CHECK(has(depth + "_sum{shard=\"0\"} 5000"));
}

TEST_CASE("seconds_of_us writes decimal seconds without exponent or trailing zeros",
          "[admin][stats][histogram]") {
    CHECK(seconds_of_us(0) == "0");
    CHECK(seconds_of_us(10) == "0.00001");
    CHECK(seconds_of_us(2500) == "0.0025");
    CHECK(seconds_of_us(1000000) == "1");
    CHECK(seconds_of_us(2500000) == "2.5");
    CHECK(seconds_of_us(1234567) == "1.234567");
}

TEST_CASE("closes by code merge across shards with the histograms", "[admin][stats]") {
    shard_stats a;
    shard_stats b;
    a.closes.close_sent(ws::close_code::policy_violation);
    b.closes.close_sent(ws::close_code::policy_violation);
    b.closes.close_received(1000);
    a.publish_to_send_us.record(100);
    b.publish_to_send_us.record(100);
    shard_stats total;
    merge(total, a);
    merge(total, b);
    CHECK(total.closes.sent[ws::close_code_slot(1008)] == 2);
    CHECK(total.closes.received[ws::close_code_slot(1000)] == 1);
    CHECK(total.publish_to_send_us.count == 2);
    CHECK(total.publish_to_send_us.counts[3] == 2); // 100 µs: the fourth bound's bucket
}
