// token_maker.h — test-side key generation and token signing with OpenSSL, independent of
// src/auth's verification code (it shares only the base64url encoder), so the unit tests
// can mint valid, expired, tampered and confused tokens for every algorithm.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace ringcast::auth::test {

struct pkey_deleter {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

/// Keys generated once per test run (RSA generation is slow), shared by the tests.
struct test_keys {
    pkey_ptr rsa; // 2048 bits
    pkey_ptr rsa_other;
    pkey_ptr rsa_1024; // too small to be loaded
    pkey_ptr p256;
    pkey_ptr p384;
    pkey_ptr p521; // unsupported curve
    pkey_ptr ed25519;
    pkey_ptr ed448; // unsupported
    std::string secret = std::string("0123456789abcdef0123456789abcdef-hmac");
};
const test_keys& keys();

pkey_ptr generate(const char* type, const char* curve_or_null, unsigned rsa_bits = 0);

std::string public_pem(EVP_PKEY* key);
std::string private_pem(EVP_PKEY* key);
/// The public JWK of `key` as JSON members without braces ("\"kty\":\"RSA\",\"n\":…").
std::string jwk_members(EVP_PKEY* key);

std::string b64(std::string_view bytes);

/// Signs `header_json`.`payload_json` (both encoded here) with `alg`: a secret for HS*,
/// a private key otherwise. ECDSA signatures come out as JOSE R||S.
std::string sign_token(std::string_view alg, std::string_view header_json,
                       std::string_view payload_json, EVP_PKEY* key, std::string_view secret = {});

/// The signature part only, over the exact `signing_input`.
std::string sign_bytes(std::string_view alg, std::string_view signing_input, EVP_PKEY* key,
                       std::string_view secret);

} // namespace ringcast::auth::test
