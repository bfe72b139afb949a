// libFuzzer target for auth::verifier (and the strict base64url / JSON under it). Built
// twice by tests/fuzz/meson.build: with -fsanitize=fuzzer as the fuzzer, and with
// replay_main.cc as the fuzz-corpus test of every build.
//
// The key set is fixed: an HMAC secret (fuzz_secret below) and, generated once per
// process, an RSA-2048, a P-256 and an Ed25519 key from a JWKS with kids "r", "e", "o".
// Input layout, byte 0 picks the mode:
//   even: bytes 1.. are a token, verified as they are (shape, base64url, header JSON, key
//         selection, every signature path with wrong signatures);
//   odd:  bytes 1.. are HEADER '\n' PAYLOAD (raw JSON text); the target encodes both and
//         signs them with HS256 and the fixed secret, so the claim parser behind a valid
//         signature is reached too (header without a '\n': the payload is empty).
// Byte 0's high bits choose the clock: now = 1.8e9 + ((byte >> 1) - 64) × 1000 s.
//
// Invariants checked (abort on violation):
//   - verify() answers, and a second call with the same input answers the same;
//   - a refusal is one of the reasons documented at verifier in auth.h;
//   - an accepted token has a user id of 1-256 bytes without control characters, channel
//     and role entries of the same shape, and is refused as "token expired" once the clock
//     is past exp + leeway;
//   - a token longer than max_token_bytes is "token too long".
#include "base64url.h"

#include <ringcast/auth.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace ringcast::auth;

constexpr std::string_view fuzz_secret = "ringcast-fuzz-secret-0123456789abcdef";
constexpr int64_t base_now = 1'800'000'000;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

std::string bn_member(EVP_PKEY* key, const char* name, int pad) {
    BIGNUM* bn = nullptr;
    require(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    std::string bytes(static_cast<std::size_t>(pad != 0 ? pad : BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(bytes.size()));
    BN_free(bn);
    return detail::base64url_encode(bytes);
}

EVP_PKEY* generate(const char* type, const char* group) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    require(ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1);
    if (group != nullptr) {
        require(EVP_PKEY_CTX_set_group_name(ctx, group) == 1);
    }
    EVP_PKEY* key = nullptr;
    require(EVP_PKEY_generate(ctx, &key) == 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

const key_set& fixed_keys() {
    static const key_set set = [] {
        key_set s;
        require(s.add_secret(fuzz_secret).has_value());
        EVP_PKEY* rsa = generate("RSA", nullptr);
        EVP_PKEY* ec = generate("EC", "P-256");
        EVP_PKEY* ed = generate("ED25519", nullptr);
        unsigned char raw[32];
        std::size_t raw_size = sizeof raw;
        require(EVP_PKEY_get_raw_public_key(ed, raw, &raw_size) == 1);
        const std::string jwks =
            "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" +
            bn_member(rsa, OSSL_PKEY_PARAM_RSA_N, 0) + "\",\"e\":\"" +
            bn_member(rsa, OSSL_PKEY_PARAM_RSA_E, 0) +
            "\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\",\"x\":\"" +
            bn_member(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32) + "\",\"y\":\"" +
            bn_member(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32) +
            "\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"o\",\"x\":\"" +
            detail::base64url_encode(std::string_view(reinterpret_cast<char*>(raw), raw_size)) +
            "\"}]}";
        require(s.add_jwks(jwks).has_value());
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
        EVP_PKEY_free(ed);
        return s;
    }();
    return set;
}

verifier& fixed_verifier() {
    static verifier v(fixed_keys(), [] {
        verify_options o;
        o.issuer = "https://issuer.example";
        o.audience = "ringcast";
        o.max_token_bytes = 4096;
        return o;
    }());
    return v;
}

verifier& lenient_verifier() {
    static verifier v(fixed_keys(), [] {
        verify_options o;
        o.require_exp = false;
        o.leeway_s = 0;
        return o;
    }());
    return v;
}

bool documented(std::string_view reason) {
    static constexpr std::array<std::string_view, 13> reasons{"token too long",
                                                              "malformed token",
                                                              "unsupported crit header",
                                                              "algorithm not allowed",
                                                              "unknown key",
                                                              "bad signature",
                                                              "missing exp",
                                                              "token expired",
                                                              "token not yet valid",
                                                              "token issued in the future",
                                                              "wrong issuer",
                                                              "wrong audience",
                                                              "missing sub"};
    for (std::string_view r : reasons) {
        if (r == reason) {
            return true;
        }
    }
    return false;
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 256) {
        return false;
    }
    for (const char c : name) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

void check(verifier& v, std::string_view token, int64_t now) {
    auto first = v.verify(token, now);
    auto second = v.verify(token, now);
    require(first.has_value() == second.has_value());
    if (!first) {
        require(documented(first.error()) && first.error() == second.error());
        require(token.size() <= v.options().max_token_bytes || first.error() == "token too long");
        return;
    }
    require(token.size() <= v.options().max_token_bytes);
    require(valid_name(first->user_id) && first->user_id == second->user_id);
    for (const std::string& c : first->channels) {
        require(valid_name(c));
    }
    for (const std::string& r : first->roles) {
        require(valid_name(r));
    }
    if (first->expires_at_s && *first->expires_at_s < INT64_MAX - v.options().leeway_s) {
        auto later = v.verify(token, *first->expires_at_s + v.options().leeway_s);
        require(!later && later.error() == "token expired");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const int64_t now = base_now + (static_cast<int64_t>(data[0] >> 1) - 64) * 1000;
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((data[0] & 1) == 0) {
        check(fixed_verifier(), rest, now);
        check(lenient_verifier(), rest, now);
        return 0;
    }
    const std::size_t newline = rest.find('\n');
    const std::string_view header = rest.substr(0, newline);
    const std::string_view payload =
        newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    const std::string input =
        detail::base64url_encode(header) + "." + detail::base64url_encode(payload);
    unsigned char tag[EVP_MAX_MD_SIZE];
    unsigned int tag_size = 0;
    HMAC(EVP_sha256(), fuzz_secret.data(), static_cast<int>(fuzz_secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), tag, &tag_size);
    const std::string token =
        input + "." +
        detail::base64url_encode(std::string_view(reinterpret_cast<char*>(tag), tag_size));
    check(fixed_verifier(), token, now);
    check(lenient_verifier(), token, now);
    return 0;
}
