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
        CHECK(fields.size() == all_names().size());
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
    CHECK(samples == expected_lines); // nothing else: no totals, no stray lines
}
