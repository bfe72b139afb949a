// Tests for src/auth/verifier.cc: every algorithm verifies, and every refusal listed at
// verifier in auth.h comes with its reason. Tokens are minted by token_maker (OpenSSL).
#include "token_maker.h"

#include <ringcast/auth.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast::auth;
using namespace ringcast::auth::test;

namespace {

constexpr int64_t now = 1'800'000'000;

std::string payload(std::string_view extra = {}) {
    std::string p = "{\"sub\":\"alice\",\"exp\":" + std::to_string(now + 600);
    if (!extra.empty()) {
        p += ",";
        p += extra;
    }
    return p + "}";
}

std::string header(std::string_view alg, std::string_view extra = {}) {
    std::string h = "{\"alg\":\"" + std::string(alg) + "\",\"typ\":\"JWT\"";
    if (!extra.empty()) {
        h += ",";
        h += extra;
    }
    return h + "}";
}

/// A key set holding one key of every type, from PEM (public keys) and the secret.
key_set all_types() {
    key_set set;
    const test_keys& k = keys();
    REQUIRE(set.add_secret(k.secret));
    for (EVP_PKEY* key : {k.rsa.get(), k.p256.get(), k.p384.get(), k.ed25519.get()}) {
        auto added = set.add_pem(public_pem(key));
        INFO((added ? "" : added.error()));
        REQUIRE(added);
    }
    return set;
}

EVP_PKEY* key_for(std::string_view alg) {
    const test_keys& k = keys();
    if (alg.starts_with("RS") || alg.starts_with("PS")) {
        return k.rsa.get();
    }
    if (alg == "ES256") {
        return k.p256.get();
    }
    if (alg == "ES384") {
        return k.p384.get();
    }
    if (alg == "EdDSA") {
        return k.ed25519.get();
    }
    return nullptr;
}

std::string token(std::string_view alg, std::string_view payload_json) {
    return sign_token(alg, header(alg), payload_json, key_for(alg), keys().secret);
}

std::string reason(verifier& v, std::string_view t, int64_t at = now) {
    auto r = v.verify(t, at);
    return r ? std::string("ok") : std::string(r.error());
}

} // namespace

TEST_CASE("every supported algorithm verifies a token signed with its key", "[auth][verifier]") {
    const key_set set = all_types();
    verifier v(set, {});
    for (const char* alg : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256",
                            "ES384", "EdDSA"}) {
        INFO(alg);
        const std::string t = token(alg, payload("\"channels\":[\"a\",\"team:*\"],"
                                                 "\"roles\":[\"admin\"]"));
        auto r = v.verify(t, now);
        REQUIRE(r);
        CHECK(r->user_id == "alice");
        CHECK(r->expires_at_s == now + 600);
        CHECK(r->channels == std::vector<std::string>{"a", "team:*"});
        CHECK(r->roles == std::vector<std::string>{"admin"});
        // Repeated use of the cached contexts, interleaved with a failure, still verifies.
        std::string tampered = t;
        tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
        CHECK(reason(v, tampered) == "bad signature");
        CHECK(reason(v, t) == "ok");
    }
}

TEST_CASE("a changed payload, header or signature is a bad signature", "[auth][verifier]") {
    const key_set set = all_types();
    verifier v(set, {});
    for (const char* alg : {"HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"}) {
        INFO(alg);
        const std::string good = token(alg, payload());
        const std::size_t dot = good.rfind('.');
        const std::string input = good.substr(0, dot);
        const std::string other_payload =
            b64(header(alg)) + "." + b64(payload("\"roles\":[\"admin\"]"));
        CHECK(reason(v, other_payload + good.substr(dot)) == "bad signature");
        // A signature from the other RSA key, or over other bytes.
        const std::string other_sig = sign_bytes(alg, input + "x", key_for(alg), keys().secret);
        CHECK(reason(v, input + "." + b64(other_sig)) == "bad signature");
        // Truncated and extended signatures.
        std::string sig = sign_bytes(alg, input, key_for(alg), keys().secret);
        CHECK(reason(v, input + "." + b64(sig.substr(0, sig.size() - 1))) == "bad signature");
        CHECK(reason(v, input + "." + b64(sig + '\0')) == "bad signature");
    }
    const std::string rs = sign_token("RS256", header("RS256"), payload(), keys().rsa_other.get());
    CHECK(reason(v, rs) == "bad signature");
}

TEST_CASE("ECDSA signatures must be raw R||S of the curve's size, not DER",
          "[auth][verifier][ecdsa]") {
    const key_set set = all_types();
    verifier v(set, {});
    const std::string input = b64(header("ES256")) + "." + b64(payload());
    const std::string raw = sign_bytes("ES256", input, keys().p256.get(), {});
    REQUIRE(raw.size() == 64);
    CHECK(reason(v, input + "." + b64(raw)) == "ok");
    CHECK(reason(v, input + "." + b64(raw.substr(0, 63))) == "bad signature");
    CHECK(reason(v, input + "." + b64(std::string(1, '\0') + raw)) == "bad signature");
    CHECK(reason(v, input + "." + b64(std::string(64, '\0'))) == "bad signature");
    // The DER form OpenSSL produces is refused.
    std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
    CHECK(reason(v, input + "." + b64(der)) == "bad signature");
    // An ES384 signature (96 bytes) under ES256 is refused for its length.
    const std::string input384 = b64(header("ES256")) + "." + b64(payload());
    CHECK(reason(v, input384 + "." + b64(sign_bytes("ES384", input384, keys().p384.get(), {}))) ==
          "bad signature");
}

TEST_CASE("alg none and unknown algorithms are never accepted", "[auth][verifier][alg]") {
    const key_set set = all_types();
    verifier v(set, {});
    for (const char* alg :
         {"none", "None", "NONE", "hs256", "HS1", "RS1", "ES512", "PS384", "Ed25519", ""}) {
        INFO(alg);
        const std::string input = b64(header(alg)) + "." + b64(payload());
        CHECK(reason(v, input + "." + b64(std::string(32, 'x'))) == "algorithm not allowed");
        CHECK(reason(v, input + ".") == "algorithm not allowed"); // the unsecured JWS form
    }
}

TEST_CASE("HS256 signed with a public key's PEM text is refused (no algorithm confusion)",
          "[auth][verifier][alg]") {
    key_set set;
    const std::string pem = public_pem(keys().rsa.get());
    REQUIRE(set.add_pem(pem));
    verifier v(set, {});
    const std::string forged = sign_token("HS256", header("HS256"), payload(), nullptr, pem);
    CHECK(reason(v, forged) == "algorithm not allowed");
    // Also with the PEM's DER bytes or the key in any other spelling: no secret exists.
    CHECK(reason(v, token("RS256", payload())) == "ok");
}

TEST_CASE("an algorithm verifies only with keys of its own type", "[auth][verifier][alg]") {
    key_set set;
    REQUIRE(set.add_pem(public_pem(keys().p256.get())));
    verifier v(set, {});
    CHECK(reason(v, token("ES256", payload())) == "ok");
    CHECK(reason(v, token("ES384", payload())) == "algorithm not allowed");
    CHECK(reason(v, token("RS256", payload())) == "algorithm not allowed");
    CHECK(reason(v, token("HS256", payload())) == "algorithm not allowed");
    CHECK(reason(v, token("EdDSA", payload())) == "algorithm not allowed");
}

TEST_CASE("kid selects the key; keys without kid match any kid", "[auth][verifier][kid]") {
    key_set set;
    const std::string jwks = "{\"keys\":[{" + jwk_members(keys().rsa.get()) +
                             ",\"kid\":\"old\"},{" + jwk_members(keys().rsa_other.get()) +
                             ",\"kid\":\"new\",\"alg\":\"RS256\"}]}";
    auto loaded = set.add_jwks(jwks);
    INFO((loaded ? "" : loaded.error()));
    REQUIRE(loaded);
    verifier v(set, {});
    const auto with_kid = [](std::string_view alg, std::string_view kid, EVP_PKEY* key) {
        return sign_token(alg, header(alg, "\"kid\":\"" + std::string(kid) + "\""), payload(), key);
    };
    CHECK(reason(v, with_kid("RS256", "old", keys().rsa.get())) == "ok");
    CHECK(reason(v, with_kid("RS256", "new", keys().rsa_other.get())) == "ok");
    CHECK(reason(v, with_kid("RS256", "new", keys().rsa.get())) == "bad signature");
    CHECK(reason(v, with_kid("RS256", "gone", keys().rsa.get())) == "unknown key");
    // The JWK's own alg restricts it: "new" is RS256 only, "old" takes any RSA alg.
    CHECK(reason(v, with_kid("PS256", "new", keys().rsa_other.get())) == "algorithm not allowed");
    CHECK(reason(v, with_kid("PS256", "old", keys().rsa.get())) == "ok");
    // No kid: every key of the type is tried (rotation without kids).
    CHECK(reason(v, token("RS256", payload())) == "ok");
    CHECK(reason(v, sign_token("RS256", header("RS256"), payload(), keys().rsa_other.get())) ==
          "ok");
    // A kid that is not a string is malformed.
    CHECK(reason(v, sign_token("RS256", header("RS256", "\"kid\":7"), payload(),
                               keys().rsa.get())) == "malformed token");

    key_set pem_only;
    REQUIRE(pem_only.add_pem(public_pem(keys().rsa.get())));
    verifier pv(pem_only, {});
    CHECK(reason(pv, with_kid("RS256", "anything", keys().rsa.get())) == "ok");
    key_set none;
    verifier nv(none, {});
    CHECK(reason(nv, token("RS256", payload())) == "unknown key");
}

TEST_CASE("the token's shape, encoding and header JSON are strict", "[auth][verifier][strict]") {
    const key_set set = all_types();
    verifier v(set, {});
    const std::string good = token("HS256", payload());
    const std::string h = good.substr(0, good.find('.'));
    const std::string sig = good.substr(good.rfind('.'));
    CHECK(reason(v, good) == "ok");
    CHECK(reason(v, "") == "malformed token");
    CHECK(reason(v, "abc") == "malformed token");
    CHECK(reason(v, "a.b") == "malformed token");
    CHECK(reason(v, good + ".x") == "malformed token");
    CHECK(reason(v, good.substr(0, good.rfind('.') + 1)) == "malformed token");
    CHECK(reason(v, good + "=") == "malformed token");
    CHECK(reason(v, " " + good) == "malformed token");
    CHECK(reason(v, good + "\n") == "malformed token");
    // A non-canonical last character of the signature (unused bits set).
    std::string bits = good;
    const char last = bits.back();
    bits.back() = static_cast<char>(last ^ 1);
    CHECK(reason(v, bits) != "ok");

    const auto with_header = [&](std::string_view json) {
        return sign_token("HS256", json, payload(), nullptr, keys().secret);
    };
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"alg\":\"HS256\"}")) == "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"\\u0061lg\":\"none\"}")) ==
          "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"x\":{\"a\":1,\"a\":2}}")) ==
          "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"x\":[{\"a\":1,\"a\":2}]}")) ==
          "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\"} ")) == "ok");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\"}x")) == "malformed token");
    CHECK(reason(v, with_header("[\"HS256\"]")) == "malformed token");
    CHECK(reason(v, with_header("{\"alg\":256}")) == "malformed token");
    CHECK(reason(v, with_header("{\"typ\":\"JWT\"}")) == "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"typ\":1}")) == "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"a\":\"\xff\"}")) == "malformed token");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}")) ==
          "unsupported crit header");
    CHECK(reason(v, with_header("{\"alg\":\"HS256\",\"crit\":[]}")) == "unsupported crit header");
    std::string deep =
        "{\"alg\":\"HS256\",\"x\":" + std::string(40, '[') + std::string(40, ']') + "}";
    CHECK(reason(v, with_header(deep)) == "malformed token");
    // A header segment that is not base64url.
    CHECK(reason(v, "e30=" + good.substr(good.find('.'))) == "malformed token");
    (void)h;
    (void)sig;
}

TEST_CASE("tokens longer than the bound are refused before decoding", "[auth][verifier][limits]") {
    const key_set set = all_types();
    verify_options options;
    options.max_token_bytes = 512;
    verifier v(set, options);
    const std::string fits = token("HS256", payload("\"pad\":\"" + std::string(200, 'p') + "\""));
    REQUIRE(fits.size() <= 512);
    CHECK(reason(v, fits) == "ok");
    const std::string big = token("HS256", payload("\"pad\":\"" + std::string(400, 'p') + "\""));
    CHECK(reason(v, big) == "token too long");
    verifier d(set, {});
    CHECK(d.options().max_token_bytes == 8192);
    CHECK(reason(d, std::string(8193, 'a')) == "token too long");
}

TEST_CASE("the payload JSON is strict and claims have their types", "[auth][verifier][claims]") {
    const key_set set = all_types();
    verifier v(set, {});
    const auto check = [&](std::string_view json) { return reason(v, token("HS256", json)); };
    const std::string exp = "\"exp\":" + std::to_string(now + 600);
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"sub\":\"b\"}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"x\":{\"y\":[{\"k\":1,\"k\":1}]}}") ==
          "malformed token");
    CHECK(check("[1]") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + "") == "malformed token");
    CHECK(check("{\"sub\":1," + exp + "}") == "malformed token");
    CHECK(check("{\"sub\":\"a\\u0000b\"," + exp + "}") == "malformed token");
    CHECK(check("{\"sub\":\"" + std::string(257, 'u') + "\"," + exp + "}") == "malformed token");
    CHECK(check("{\"sub\":\"" + std::string(256, 'u') + "\"," + exp + "}") == "ok");
    CHECK(check("{\"sub\":\"a\",\"exp\":\"1900000000\"}") == "malformed token");
    CHECK(check("{\"sub\":\"a\",\"exp\":true}") == "malformed token");
    CHECK(check("{\"sub\":\"a\",\"exp\":null}") == "malformed token");
    CHECK(check("{\"sub\":\"a\",\"exp\":1e300}") == "malformed token");
    CHECK(check("{\"sub\":\"a\",\"exp\":18446744073709551615}") == "malformed token");
    CHECK(check("{\"sub\":\"a\",\"exp\":184467440737095516150}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"nbf\":[]}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"iat\":{}}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"iss\":5}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"aud\":5}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"channels\":\"x\"}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"channels\":[1]}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"channels\":[\"\"]}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"roles\":[\"x\",null]}") == "malformed token");
    CHECK(check("{\"sub\":\"a\"," + exp + ",\"channels\":[],\"roles\":[]}") == "ok");
    // A fractional exp counts down, a fractional nbf up.
    auto r =
        v.verify(token("HS256", "{\"sub\":\"a\",\"exp\":" + std::to_string(now + 10) + ".9}"), now);
    REQUIRE(r);
    CHECK(r->expires_at_s == now + 10);
}

TEST_CASE("exp, nbf and iat are checked with the leeway", "[auth][verifier][time]") {
    const key_set set = all_types();
    verifier v(set, {}); // leeway 30 s
    const auto at = [&](std::string_view claims, int64_t t) {
        return reason(v, token("ES256", claims), t);
    };
    const std::string exp = "{\"sub\":\"a\",\"exp\":" + std::to_string(now);
    CHECK(at(exp + "}", now - 1) == "ok");
    CHECK(at(exp + "}", now + 29) == "ok");
    CHECK(at(exp + "}", now + 30) == "token expired");
    CHECK(at(exp + "}", now + 100000) == "token expired");
    CHECK(at("{\"sub\":\"a\"}", now) == "missing exp");
    CHECK(at("{\"sub\":\"a\",\"exp\":9223372036854775807}", now) == "ok");
    CHECK(at("{\"sub\":\"a\",\"exp\":-9223372036854775807}", now) == "token expired");

    const std::string nbf = exp + ",\"nbf\":" + std::to_string(now - 100) + "}";
    CHECK(at(nbf, now - 130) == "ok");
    CHECK(at(nbf, now - 131) == "token not yet valid");
    const std::string iat = exp + ",\"iat\":" + std::to_string(now - 100) + "}";
    CHECK(at(iat, now - 130) == "ok");
    CHECK(at(iat, now - 131) == "token issued in the future");

    verify_options strict;
    strict.leeway_s = 0;
    strict.require_exp = false;
    verifier s(set, strict);
    CHECK(reason(s, token("ES256", exp + "}"), now) == "token expired");
    CHECK(reason(s, token("ES256", exp + "}"), now - 1) == "ok");
    auto no_exp = s.verify(token("ES256", "{\"sub\":\"a\"}"), now);
    REQUIRE(no_exp);
    CHECK_FALSE(no_exp->expires_at_s.has_value());
}

TEST_CASE("iss and aud are checked when configured; aud may be a string or an array",
          "[auth][verifier][claims]") {
    const key_set set = all_types();
    verify_options options;
    options.issuer = "https://auth.example";
    options.audience = "ringcast";
    verifier v(set, options);
    verifier open(set, {});
    const auto check = [&](verifier& which, std::string_view extra) {
        return reason(which, token("EdDSA", payload(extra)));
    };
    const std::string iss = "\"iss\":\"https://auth.example\"";
    CHECK(check(v, iss + ",\"aud\":\"ringcast\"") == "ok");
    CHECK(check(v, iss + ",\"aud\":[\"other\",\"ringcast\"]") == "ok");
    CHECK(check(v, iss + ",\"aud\":[\"other\"]") == "wrong audience");
    CHECK(check(v, iss + ",\"aud\":[]") == "wrong audience");
    CHECK(check(v, iss + ",\"aud\":\"ringcast2\"") == "wrong audience");
    CHECK(check(v, iss) == "wrong audience");
    CHECK(check(v, iss + ",\"aud\":[\"ringcast\",7]") == "malformed token");
    CHECK(check(v, "\"iss\":\"https://evil.example\",\"aud\":\"ringcast\"") == "wrong issuer");
    CHECK(check(v, "\"aud\":\"ringcast\"") == "wrong issuer");
    // Not configured: iss is not checked, aud present is refused (RFC 7519 §4.1.3).
    CHECK(check(open, "\"iss\":\"anyone\"") == "ok");
    CHECK(check(open, "\"aud\":\"ringcast\"") == "wrong audience");
}

TEST_CASE("sub is required and non-empty", "[auth][verifier][claims]") {
    const key_set set = all_types();
    verifier v(set, {});
    const std::string exp = "\"exp\":" + std::to_string(now + 60);
    CHECK(reason(v, token("RS256", "{" + exp + "}")) == "missing sub");
    CHECK(reason(v, token("RS256", "{\"sub\":\"\"," + exp + "}")) == "missing sub");
    CHECK(reason(v, token("RS256", "{\"sub\":\"u-1\"," + exp + "}")) == "ok");
}

TEST_CASE("parse_alg knows exactly the listed names", "[auth][alg]") {
    for (const char* name : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256",
                             "ES384", "EdDSA"}) {
        const auto alg = parse_alg(name);
        REQUIRE(alg);
        CHECK(alg_name(*alg) == name);
    }
    CHECK_FALSE(parse_alg("none"));
    CHECK_FALSE(parse_alg("EDDSA"));
    CHECK(alg_key_type(jwt_alg::ps256) == key_type::rsa);
    CHECK(alg_key_type(jwt_alg::es384) == key_type::ec_p384);
}
