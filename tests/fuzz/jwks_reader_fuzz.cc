// libFuzzer target for auth::key_set::add_jwks (JWK Set parsing: strict JSON, base64url,
// building RSA / EC / Ed25519 / oct keys through OpenSSL). Built twice by
// tests/fuzz/meson.build, like every target here. The whole input is the JWKS text.
//
// Invariants checked (abort on violation):
//   - add_jwks answers; a refusal has a non-empty reason and adds no key (all or nothing);
//   - every loaded key is consistent: a secret of at least 32 bytes for oct, otherwise an
//     EVP_PKEY whose type matches (RSA of at least 2048 bits, P-256, P-384, Ed25519); a
//     JWK "alg" fits the key's type; kids are unique;
//   - loading the same text into a second set answers the same.
#include <ringcast/auth.h>

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace ringcast::auth;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

void check_key(const jwt_key& key) {
    if (key.alg) {
        require(alg_key_type(*key.alg) == key.type);
    }
    switch (key.type) {
    case key_type::secret:
        require(key.secret.size() >= 32 && !key.pkey);
        return;
    case key_type::rsa:
        require(key.pkey && EVP_PKEY_is_a(key.pkey.get(), "RSA") && key.bits >= 2048);
        return;
    case key_type::ec_p256:
        require(key.pkey && EVP_PKEY_is_a(key.pkey.get(), "EC") && key.bits == 256);
        return;
    case key_type::ec_p384:
        require(key.pkey && EVP_PKEY_is_a(key.pkey.get(), "EC") && key.bits == 384);
        return;
    case key_type::ed25519:
        require(key.pkey && EVP_PKEY_is_a(key.pkey.get(), "ED25519"));
        return;
    }
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    key_set first;
    const auto loaded = first.add_jwks(text);
    if (!loaded) {
        require(!loaded.error().empty() && first.empty());
    } else {
        require(!first.empty());
        const auto keys = first.keys();
        for (std::size_t i = 0; i < keys.size(); ++i) {
            check_key(keys[i]);
            for (std::size_t j = 0; j < i; ++j) {
                require(keys[i].kid.empty() || keys[i].kid != keys[j].kid);
            }
        }
    }
    key_set second;
    const auto again = second.add_jwks(text);
    require(again.has_value() == loaded.has_value() && second.keys().size() == first.keys().size());
    return 0;
}
