// ringcast sub: one WebSocket, a subscribe per channel, every message printed as a line.
//
//   open /ws ──► subscribe ×N (pipelined; replies come back in command order)
//      │
//      └─► loop: reply ─► stderr (a refusal ends it: exit 1)
//                message ─► stdout, one line; --count reached ─► close 1000, exit 0
//                close by the server ─► stderr, exit 0 for 1000 else 1
//                --timeout ─► close 1000, exit 0 (4 when --count was not reached)
//                SIGINT/SIGTERM ─► close 1000, exit 0
#include "commands.h"
#include "http_client.h"
#include "json_text.h"
#include "ws_client.h"

#include <cstdio>

namespace ringcast::cli {

volatile std::sig_atomic_t stop_requested = 0;

namespace {

constexpr uint16_t close_normal = 1000;

std::string subscribe_command(const invocation& inv, std::size_t index) {
    std::string cmd = "{\"op\":\"subscribe\",\"channel\":" + json_quote(inv.channels[index]);
    if (inv.recover) {
        cmd += ",\"recover\":{\"epoch\":" + json_quote(inv.recover->epoch) +
               ",\"offset\":" + std::to_string(inv.recover->offset) + "}";
    }
    return cmd + ",\"id\":" + std::to_string(index + 1) + "}";
}

/// Prints a subscribe reply to stderr; false when it refused the channel.
bool report_reply(const invocation& inv, const ws_reply& r) {
    const bool ours = r.id && *r.id >= 1 && *r.id <= inv.channels.size();
    if (!ours) { // "id":null: a refusal not tied to a command (429 over the rate)
        std::fprintf(stderr, "ringcast: the server says: %lld %s\n",
                     static_cast<long long>(r.error_code), r.error_message.c_str());
        return true;
    }
    const std::string& channel = inv.channels[*r.id - 1];
    if (!r.ok) {
        std::fprintf(stderr, "ringcast: subscribe %s refused: %lld %s\n", channel.c_str(),
                     static_cast<long long>(r.error_code), r.error_message.c_str());
        return false;
    }
    std::string recovered;
    if (r.recovered) {
        recovered = *r.recovered ? ", recovered" : ", not recovered";
    }
    std::fprintf(stderr, "ringcast: subscribed to %s (epoch %s, offset %llu%s)\n",
                 channel.c_str(), r.epoch.c_str(),
                 static_cast<unsigned long long>(r.offset.value_or(0)), recovered.c_str());
    return true;
}

} // namespace

int run_sub(const invocation& inv) {
    auto token = read_token(inv);
    if (!token) {
        return report(token.error());
    }
    std::string target = "/ws";
    if (!inv.user.empty()) {
        target += "?user=" + percent_encode(inv.user);
    }
    const std::string headers =
        token->empty() ? std::string() : "Authorization: Bearer " + *token + "\r\n";
    const deadline until = inv.timeout_ms == 0
                               ? deadline::max()
                               : clock::now() + std::chrono::milliseconds(inv.timeout_ms);

    auto opened = ws_client::open(inv.server, target, headers, until, inv.max_bytes);
    if (!opened) {
        if (opened.error().exit_status == exit_timeout && inv.count == 0) {
            return exit_ok; // --timeout alone: listening ended before anything came
        }
        return report(opened.error());
    }
    ws_client& ws = **opened;
    for (std::size_t i = 0; i < inv.channels.size(); ++i) {
        if (auto sent = ws.send_text(subscribe_command(inv, i), until); !sent) {
            return report(sent.error());
        }
    }

    uint64_t received = 0;
    for (;;) {
        if (stop_requested != 0) {
            ws.close(close_normal, deadline::max());
            return exit_ok;
        }
        ws_event e = ws.next(until);
        switch (e.what) {
        case ws_event::kind::text: {
            const frame_kind kind = classify_frame(e.text);
            if (kind == frame_kind::reply) {
                const auto reply = read_reply(e.text);
                if (reply && !report_reply(inv, *reply)) {
                    ws.close(close_normal, deadline::max());
                    return exit_refused;
                }
                break;
            }
            std::fputs(one_line(e.text).c_str(), stdout);
            std::fputc('\n', stdout);
            std::fflush(stdout);
            // Presence events and notices are printed but are not messages of the channel.
            if (kind == frame_kind::message && inv.count != 0 && ++received >= inv.count) {
                ws.close(close_normal, deadline::max());
                return exit_ok;
            }
            break;
        }
        case ws_event::kind::binary:
            std::fprintf(stderr, "ringcast: a binary message of %zu bytes, not printed\n",
                         e.text.size());
            break;
        case ws_event::kind::closed:
            std::fprintf(stderr, "ringcast: closed by the server: %u %s\n", e.close_code,
                         e.text.empty() ? std::string(ws::describe(ws::close_code(e.close_code))).c_str()
                                        : e.text.c_str());
            return e.close_code == close_normal ? exit_ok : exit_refused;
        case ws_event::kind::timeout:
            ws.close(close_normal, deadline::max());
            if (inv.count != 0) {
                std::fprintf(stderr, "ringcast: --timeout passed after %llu of %llu messages\n",
                             static_cast<unsigned long long>(received),
                             static_cast<unsigned long long>(inv.count));
                return exit_timeout;
            }
            return exit_ok;
        case ws_event::kind::interrupted:
            break; // the loop's head looks at stop_requested
        case ws_event::kind::failed:
            return report(e.error);
        }
    }
}

} // namespace ringcast::cli
