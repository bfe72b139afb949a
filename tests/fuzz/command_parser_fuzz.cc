// libFuzzer target for the pubsub wire protocol (parse_command, parse_publish_body, the
// envelope and replies).
//
// Every input goes through both parsers. Invariants checked:
//   1. an accepted input is valid JSON as a whole for simdjson's DOM parser (the parsers
//      use the lazy on-demand API; this is the check that nothing was left unvalidated);
//   2. every returned view lies inside the input (or is the documented default), `data`
//      is one valid JSON value, and names pass their validators;
//   3. ids, priorities and batch sizes are within their documented ranges;
//   4. an envelope built from an accepted publish has exactly envelope_size() bytes and
//      parses as JSON; replies (ok and error) parse as JSON;
//   5. a refusal carries a documented code and a non-empty message.
// Any violated invariant aborts, which libFuzzer (and the corpus replay test) reports.
#include "ringcast/pubsub.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ringcast::pubsub;

namespace {

[[noreturn]] void invariant_failed(const char* what) {
    std::fprintf(stderr, "command_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
}

void require(bool ok, const char* what) {
    if (!ok) {
        invariant_failed(what);
    }
}

bool valid_json(std::string_view text) {
    static simdjson::dom::parser parser;
    const simdjson::padded_string copy(text);
    simdjson::dom::element ignored;
    return parser.parse(copy).get(ignored) == simdjson::SUCCESS;
}

bool inside(std::string_view view, std::string_view input) {
    return view.data() >= input.data() && view.data() + view.size() <= input.data() + input.size();
}

// A view into the input, or exactly the documented default for an absent field.
void require_view(std::string_view view, std::string_view input, std::string_view fallback,
                  const char* what) {
    require(inside(view, input) || (view == fallback && !fallback.empty()) ||
                (view.empty() && fallback.empty()),
            what);
}

void check_envelope(std::string_view event, std::string_view channel, std::string_view data,
                    priority prio, std::string_view user_id) {
    const envelope e{.message_id = "m-1",
                     .event = event,
                     .channel = channel.empty() ? std::string_view("c") : channel,
                     .data = data,
                     .prio = prio,
                     .timestamp_ms = 1763790000000,
                     .user_id = user_id,
                     .offset = 18};
    std::string out(envelope_size(e) + 1, '#');
    const std::size_t written = write_envelope(e, std::span<char>(out.data(), out.size() - 1));
    require(written == out.size() - 1, "envelope_size differs from the bytes written");
    require(out.back() == '#', "write_envelope wrote past envelope_size");
    out.pop_back();
    require(valid_json(out), "envelope is not valid JSON");
}

void check_command(std::string_view input) {
    const auto r = parse_command(input);
    if (!r) {
        const command_error& e = r.error();
        require(e.code == 400 || e.code == 500, "command refused with an undocumented code");
        require(!e.message.empty(), "command refused without a message");
        require(!e.has_id || e.id <= (uint64_t{1} << 53), "echoed id out of range");
        require(valid_json(reply_error(e.has_id, e.id, e.code, e.message)),
                "error reply is not valid JSON");
        return;
    }
    const command& c = *r;
    require(valid_json(input), "accepted a command that is not valid JSON");
    require(!c.has_id || c.id <= (uint64_t{1} << 53), "id out of range");
    require(c.has_id || c.id == 0, "id without has_id");
    require(c.prio >= priority::critical && c.prio <= priority::low, "priority out of range");
    require(c.op == command_op::ping || valid_channel(c.channel), "channel invalid");
    require(c.channel.empty() || valid_channel(c.channel), "channel invalid");
    require(valid_event(c.event), "event invalid");
    require(valid_json(c.data), "data is not valid JSON");
    require_view(c.channel, input, {}, "channel view outside the input");
    require_view(c.event, input, "message", "event view outside the input");
    require_view(c.data, input, "null", "data view outside the input");
    if (c.has_recover) {
        require(valid_user_id(c.recover.epoch), "recover epoch invalid");
        require(inside(c.recover.epoch, input), "epoch view outside the input");
    }
    require(valid_json(reply_ok(c.has_id, c.id)), "ok reply is not valid JSON");
    if (c.op == command_op::publish) {
        check_envelope(c.event, c.channel, c.data, c.prio, "7");
    }
}

void check_publish_body(std::string_view input) {
    const auto r = parse_publish_body(input);
    if (!r) {
        require(r.error().code == 400 || r.error().code == 500, "body refused with an undocumented code");
        require(!r.error().message.empty(), "body refused without a message");
        require(valid_json(reply_error(false, 0, r.error().code, r.error().message)),
                "error reply is not valid JSON");
        return;
    }
    require(valid_json(input), "accepted a body that is not valid JSON");
    require(!r->requests.empty() && r->requests.size() <= 1000, "batch size out of range");
    require(r->shape == body_shape::batch || r->requests.size() == 1,
            "a single-shaped body parsed into several requests");
    for (const publish_request& p : r->requests) {
        require(p.channel.empty() || valid_channel(p.channel), "request channel invalid");
        require(valid_event(p.event), "request event invalid");
        require(p.user_id.empty() || valid_user_id(p.user_id), "request userId invalid");
        require(p.prio >= priority::critical && p.prio <= priority::low, "request priority out of range");
        require(valid_json(p.data), "request data is not valid JSON");
        require_view(p.channel, input, {}, "request channel view outside the input");
        require_view(p.event, input, "message", "request event view outside the input");
        require_view(p.data, input, "null", "request data view outside the input");
        require_view(p.user_id, input, {}, "request userId view outside the input");
        require(p.channels.size() <= 1000, "too many channels");
        for (const std::string_view channel : p.channels) {
            require(valid_channel(channel) && inside(channel, input), "listed channel invalid");
        }
        check_envelope(p.event, p.channel, p.data, p.prio, p.user_id);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_command(input);
    check_publish_body(input);
    return 0;
}
