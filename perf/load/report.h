// ringcast-bench report — the numbers a run produces, how worker processes hand them to
// the parent, and the JSON summary printed on stdout.
//
// A report is an ordered list of named metrics plus one latency histogram. Each metric
// says how to combine it across --procs workers (sum a rate, keep the max of a maximum,
// take the first of a setting) or that it is a percentile of the histogram, filled in only
// after the histograms are merged. Dotted names nest in the JSON output:
// "rtt_us.p50" → {"rtt_us":{"p50":..}}. Nested names must be added next to each other.
//
// Worker → parent wire format (one line of JSON per worker):
//   {"scenario":"echo","metrics":[["name","sum",1.5],...],"hist":[[index,count],...]}
// Setup-time code only: allocates freely, never on the data path.
#pragma once

#include "stats.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::bench {

enum class merge_rule : uint8_t {
    sum,   ///< counts and rates
    max,   ///< maxima and elapsed times
    first, ///< settings that are the same in every worker
    p50,   ///< histogram percentiles: computed after the merge, in microseconds
    p90,
    p99,
    p999,
    hist_max,
    hist_mean,
};

struct metric {
    std::string name;
    merge_rule rule = merge_rule::sum;
    double value = 0;
};

struct report {
    std::string scenario;
    std::vector<metric> metrics;
    latency_histogram hist;

    /// Sets `name` (appending it the first time).
    void set(std::string_view name, double value, merge_rule rule = merge_rule::first);
    /// Adds the histogram's p50/p99/p999/max/mean under `prefix` ("rtt_us").
    void add_percentiles(std::string_view prefix);
    std::optional<double> get(std::string_view name) const;

    /// Folds another worker's report into this one (matching names; new names appended).
    void merge(const report& other);
    /// Fills the percentile metrics from the histogram (values in µs).
    void resolve_percentiles();

    /// The human-facing summary: one JSON object, dotted names nested.
    std::string to_json() const;
    /// The worker → parent line (no trailing newline).
    std::string to_wire() const;
    /// Parses a to_wire() line; false with `error` set when it is not one.
    static bool from_wire(std::string_view line, report& out, std::string& error);
};

} // namespace ringcast::bench
