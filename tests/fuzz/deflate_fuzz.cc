// libFuzzer target for permessage-deflate (src/ws/deflate_offer.cc, src/ws/deflate.cc).
// Built twice by tests/fuzz/meson.build: with -fsanitize=fuzzer as the fuzzer, and with
// replay_main.cc as the fuzz-corpus test of every build.
//
// Input layout: byte 0 picks the part; bytes 1.. are its input.
//   byte 0 even: a Sec-WebSocket-Extensions value for ws::negotiate_deflate;
//   byte 0 odd:  a client's compressed message for ws::inflater (bit 1: context takeover,
//                bits 2-4: window 8 + n), then the same bytes compressed by ws::deflater.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - an accepted agreement has windows of 8-15, and our response value, read back as an
//     offer, is accepted with the same agreement (we never answer what we could not read);
//   - an inflate never returns more than the limit, nor holds much more than it (a bomb);
//     an inflater is reusable after any failure;
//   - deflater output inflates back to its input, and fits its window rule (deflate_fits).
#include "split_feed.h"

#include <ringcast/ws.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace {

using namespace ringcast;
using ringcast::fuzz::require;

constexpr std::size_t inflate_limit = 64 * 1024;

void check_offer(std::string_view header) {
    const ws::deflate_negotiation n = ws::negotiate_deflate(header);
    if (n.verdict != ws::deflate_verdict::accepted) {
        return;
    }
    const ws::deflate_agreement& a = n.agreement;
    require(a.server_max_window_bits >= 8 && a.server_max_window_bits <= 15);
    require(a.client_max_window_bits >= 8 && a.client_max_window_bits <= 15);
    const std::string answer = ws::deflate_response_value(a);
    const ws::deflate_negotiation again = ws::negotiate_deflate(answer);
    require(again.verdict == ws::deflate_verdict::accepted);
    require(again.agreement.server_max_window_bits == a.server_max_window_bits);
    require(again.agreement.client_max_window_bits == a.client_max_window_bits);
    require(again.agreement.client_no_context_takeover == a.client_no_context_takeover);
}

void check_inflate(uint8_t mode, std::span<const std::byte> data) {
    const bool takeover = (mode & 2) != 0;
    const auto bits = static_cast<uint8_t>(8 + ((mode >> 2) & 7));
    ws::inflate_memory memory;
    {
        ws::inflater inf(bits, takeover, &memory);
        std::vector<std::byte> out;
        for (int round = 0; round < 2; ++round) {
            const ws::inflate_status s = inf.inflate(data, inflate_limit, out);
            require(out.size() <= inflate_limit + 1);
            require(out.capacity() <= 2 * (inflate_limit + 1));
            if (s == ws::inflate_status::ok) {
                require(out.size() <= inflate_limit);
            }
        }
        require(inf.held_bytes() <= ws::inflater_cost_bytes(bits));
        require(memory.held_bytes == inf.held_bytes());
    }
    require(memory.held_bytes == 0);

    ws::deflater d;
    std::vector<std::byte> z;
    const std::span<const std::byte> piece = data;
    require(d.compress(std::span(&piece, 1), z));
    ws::inflater back(15, false);
    std::vector<std::byte> out;
    require(back.inflate(z, data.size(), out) == ws::inflate_status::ok);
    require(out.size() == data.size() &&
            std::equal(out.begin(), out.end(), data.begin(), data.end()));
    if (ws::deflate_fits(data.size(), bits) && bits >= 9) {
        ws::inflater narrow(bits, false);
        require(narrow.inflate(z, data.size(), out) == ws::inflate_status::ok);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const auto rest = std::span(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    if ((data[0] & 1) == 0) {
        check_offer(std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()));
    } else {
        check_inflate(data[0], rest);
    }
    return 0;
}
