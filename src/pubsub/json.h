// simdjson glue for the protocol parsers (private to src/pubsub).
//
// Validation strategy. simdjson's on-demand API is lazy: its stage 1 checks UTF-8, string
// termination and unescaped control characters for the whole input, but the grammar of a
// value is only checked when the value is read, and skipped values are merely
// bracket-counted (so a stray ':' or '}' after an unread value goes unnoticed). The parsers
// therefore keep these rules, which make "every byte of an accepted message is valid
// RFC 8259 JSON" hold:
//
//   * every value is checked: read with a strict reader below (read_name, read_uint), or
//     taken as a raw span and validated completely with simdjson's DOM parser (read_raw;
//     used for "data" and for the values of unknown keys);
//   * every value is consumed: scalars by a typed read that advances exactly one token,
//     objects and arrays by raw_json() whose span the DOM parser has just proven to be one
//     value; so the next step checks the ',' or closing bracket after it strictly;
//   * every key is unescaped (which validates its escapes), every object and array is
//     iterated to its end, and after the root object nothing but whitespace may follow
//     (at_end).
//
// Limits inherited from simdjson (RFC 8259 §9 allows limits on numbers; §8.2 leaves
// unpaired surrogates undefined): integer literals must fit int64 or uint64, other numbers
// a finite double; "\ud800"-style unpaired surrogate escapes, a leading byte order mark and
// nesting deeper than 1024 are refused. Such input is never forwarded.
//
// The libFuzzer target checks the consequence: a message that parses is valid JSON for the
// DOM parser as a whole.
//
// Padding. simdjson reads up to SIMDJSON_PADDING bytes past the end of its input, so the
// text is copied into a per-thread buffer with that much slack. Commands are small and
// bounded by the caller's maximum message size (bodies by the 1 MiB API limit), so the copy
// is cheap next to parsing; the buffer and both parsers grow to the largest input seen on
// the thread and are then reused, so steady state allocates nothing.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace ringcast::pubsub::json {

namespace od = simdjson::ondemand;

/// One thread's parsing state: the padded copy of the current input and the two parsers.
/// Lifecycle: created on first use by a thread, reused for every parse on that thread,
/// freed at thread exit. Not reentrant: one input at a time per thread (the parsers never
/// call back into user code, so this holds).
class thread_state {
public:
    /// Copies `text` into the padded buffer and starts an on-demand iteration over it.
    /// Returns MEMALLOC when the buffer or parser cannot grow; other simdjson errors
    /// (EMPTY, UTF8_ERROR, UNCLOSED_STRING, UNESCAPED_CHARS ...) mean invalid JSON.
    simdjson::error_code open(std::string_view text, od::document& doc) noexcept;

    /// The bytes of the caller's text that `copy` (a view into the padded copy) mirrors.
    std::string_view to_input(std::string_view copy) const noexcept {
        return {_input + (copy.data() - _buf.get()), copy.size()};
    }

    /// True when `copy` (a view into the padded copy) is one complete, valid JSON value.
    bool valid_json(std::string_view copy) noexcept;

private:
    std::unique_ptr<char[]> _buf;
    std::size_t _capacity = 0; // bytes usable for text; the allocation adds the padding
    const char* _input = nullptr;
    od::parser _ondemand;
    simdjson::dom::parser _dom;
};

/// The calling thread's parsing state.
thread_state& local() noexcept;

/// Reads a string value whose body needs no unescaping (channel, event, user id, epoch):
/// `out` is the body between the quotes. False when the value is not a string or contains
/// a backslash: names are never unescaped, so an escape makes the name invalid.
/// The caller checks the charset, which also excludes anything else JSON would refuse.
bool read_name(od::value& v, std::string_view& out) noexcept;

/// Reads a non-negative integer literal no larger than `max` (no fraction, no exponent,
/// no sign).
bool read_uint(od::value& v, uint64_t max, uint64_t& out) noexcept;

/// Reads the raw text of any value, surrounding whitespace trimmed, after validating it
/// completely. False when it is not one valid JSON value (or its bracket structure breaks
/// the document); `out` points into the padded copy.
bool read_raw(thread_state& state, od::value& v, std::string_view& out) noexcept;

/// True when nothing but whitespace follows the root value already consumed.
bool at_end(od::document& doc) noexcept;

} // namespace ringcast::pubsub::json
