// Tests for src/auth/key_set.cc: what each source loads, and each refusal at load.
#include "base64url.h"
#include "token_maker.h"

#include <ringcast/auth.h>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

using namespace ringcast::auth;
using namespace ringcast::auth::test;

namespace {

std::string error_of(const ringcast::result<void, std::string>& r) {
    return r ? std::string("ok") : r.error();
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

std::string jwks(std::string_view members) {
    return "{\"keys\":[{" + std::string(members) + "}]}";
}

/// A file under /tmp removed at scope exit.
struct temp_file {
    std::string path;
    explicit temp_file(std::string_view bytes) {
        char name[] = "/tmp/ringcast-auth-XXXXXX";
        const int fd = mkstemp(name);
        REQUIRE(fd >= 0);
        close(fd);
        path = name;
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~temp_file() { std::remove(path.c_str()); }
};

} // namespace

TEST_CASE("PEM public keys load with their type and size", "[auth][keys][pem]") {
    const test_keys& k = keys();
    key_set set;
    REQUIRE(error_of(set.add_pem(public_pem(k.rsa.get()))) == "ok");
    REQUIRE(error_of(set.add_pem(public_pem(k.p256.get()))) == "ok");
    REQUIRE(error_of(set.add_pem(public_pem(k.p384.get()))) == "ok");
    REQUIRE(error_of(set.add_pem(public_pem(k.ed25519.get()))) == "ok");
    REQUIRE(set.keys().size() == 4);
    CHECK(set.keys()[0].type == key_type::rsa);
    CHECK(set.keys()[0].bits == 2048);
    CHECK(set.keys()[1].type == key_type::ec_p256);
    CHECK(set.keys()[2].type == key_type::ec_p384);
    CHECK(set.keys()[3].type == key_type::ed25519);
    // Several blocks in one file: all of them (rotation).
    key_set two;
    REQUIRE(error_of(two.add_pem(public_pem(k.rsa.get()) + public_pem(k.rsa_other.get()))) == "ok");
    CHECK(two.keys().size() == 2);
}

TEST_CASE("PEM refusals: small RSA, other curves and types, private keys, garbage",
          "[auth][keys][pem]") {
    const test_keys& k = keys();
    key_set set;
    CHECK(contains(error_of(set.add_pem(public_pem(k.rsa_1024.get()))), "1024 bits"));
    CHECK(contains(error_of(set.add_pem(public_pem(k.p521.get()))), "not supported"));
    CHECK(contains(error_of(set.add_pem(public_pem(k.ed448.get()))), "not supported"));
    CHECK(contains(error_of(set.add_pem(private_pem(k.rsa.get()))), "private key"));
    CHECK(contains(error_of(set.add_pem("hello")), "BEGIN PUBLIC KEY"));
    CHECK(contains(error_of(set.add_pem("")), "BEGIN PUBLIC KEY"));
    std::string broken = public_pem(k.rsa.get());
    broken[40] = broken[40] == 'A' ? 'B' : 'A';
    broken[41] = '!';
    CHECK(error_of(set.add_pem(broken)) != "ok");
    // A bad second block fails the whole file.
    CHECK(error_of(set.add_pem(public_pem(k.rsa.get()) + public_pem(k.rsa_1024.get()))) != "ok");
    CHECK(set.empty());
}

TEST_CASE("secrets need 32 bytes; a file loses one trailing line end", "[auth][keys][secret]") {
    key_set set;
    CHECK(contains(error_of(set.add_secret(std::string(31, 's'))), "at least 32"));
    CHECK(error_of(set.add_secret(std::string(32, 's'))) == "ok");
    temp_file with_newline(std::string(40, 'q') + "\n");
    REQUIRE(error_of(set.load_secret_file(with_newline.path)) == "ok");
    CHECK(set.keys().back().secret == std::string(40, 'q'));
    temp_file crlf(std::string(40, 'r') + "\r\n");
    REQUIRE(error_of(set.load_secret_file(crlf.path)) == "ok");
    CHECK(set.keys().back().secret == std::string(40, 'r'));
    temp_file short_one(std::string(31, 'q') + "\n");
    const std::string e = error_of(set.load_secret_file(short_one.path));
    CHECK(contains(e, short_one.path));
    CHECK(contains(e, "31 bytes"));
    CHECK(contains(error_of(set.load_secret_file("/nonexistent/secret")), "cannot open"));
    CHECK(contains(error_of(set.load_jwks_file("/nonexistent/jwks")), "/nonexistent/jwks"));
    CHECK(contains(error_of(set.load_public_key_file("/nonexistent/pem")), "cannot open"));
    temp_file pem(public_pem(keys().ed25519.get()));
    CHECK(error_of(set.load_public_key_file(pem.path)) == "ok");
}

TEST_CASE("JWKS keys of every kty load, with kid and alg", "[auth][keys][jwks]") {
    const test_keys& k = keys();
    const std::string text = "{\"keys\":[{" + jwk_members(k.rsa.get()) +
                             ",\"kid\":\"r\",\"use\":\"sig\",\"alg\":\"PS256\"},{" +
                             jwk_members(k.p256.get()) + ",\"kid\":\"e2\"},{" +
                             jwk_members(k.p384.get()) + ",\"kid\":\"e3\",\"x5c\":[\"MIIB\"]},{" +
                             jwk_members(k.ed25519.get()) + ",\"kid\":\"o\"},{" +
                             "\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"" + b64(k.secret) +
                             "\"},{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"
                             "],\"extra\":true}";
    key_set set;
    REQUIRE(error_of(set.add_jwks(text)) == "ok");
    REQUIRE(set.keys().size() == 5); // the encryption key is skipped
    CHECK(set.keys()[0].type == key_type::rsa);
    CHECK(set.keys()[0].kid == "r");
    CHECK(set.keys()[0].alg == jwt_alg::ps256);
    CHECK(set.keys()[1].type == key_type::ec_p256);
    CHECK(set.keys()[2].type == key_type::ec_p384);
    CHECK(set.keys()[3].type == key_type::ed25519);
    CHECK(set.keys()[4].type == key_type::secret);
    CHECK(set.keys()[4].secret == k.secret);
}

TEST_CASE("JWKS refusals name the key and the cause", "[auth][keys][jwks]") {
    const test_keys& k = keys();
    const std::string rsa = jwk_members(k.rsa.get());
    const std::string p256 = jwk_members(k.p256.get());
    const auto load = [](const std::string& text) {
        key_set set;
        const std::string e = error_of(set.add_jwks(text));
        CHECK((e == "ok") == !set.empty());
        return e;
    };
    CHECK(contains(load("{\"keys\":[]}"), "no signature key"));
    CHECK(contains(load("{\"key\":[]}"), "no \"keys\""));
    CHECK(contains(load("{\"keys\":{}}"), "no \"keys\""));
    CHECK(contains(load("[]"), "no \"keys\""));
    CHECK(contains(load("{\"keys\":[],\"keys\":[]}"), "strict JSON"));
    CHECK(contains(load(jwks(rsa + ",\"kid\":\"a\",\"kid\":\"b\"")), "strict JSON"));
    CHECK(contains(load("{\"keys\":["), "strict JSON"));
    CHECK(contains(load("{\"keys\":[{" + rsa + ",\"kid\":\"a\"},{" + rsa + ",\"kid\":\"a\"}]}"),
                   "kid used by another key"));
    CHECK(contains(load("{\"keys\":[1]}"), "not a JSON object"));
    CHECK(contains(load(jwks("\"n\":\"AQAB\"")), "kty"));
    CHECK(contains(load(jwks("\"kty\":\"RSA-X\"")), "not supported"));
    CHECK(contains(load(jwks(rsa + ",\"use\":\"wrap\"")), "\"use\""));
    CHECK(contains(load(jwks(rsa + ",\"alg\":\"none\"")), "not supported"));
    CHECK(contains(load(jwks(rsa + ",\"alg\":\"ES256\"")), "does not fit"));
    CHECK(contains(load(jwks(p256 + ",\"alg\":\"ES384\"")), "does not fit"));
    CHECK(contains(load(jwks(rsa + ",\"kid\":5")), "\"kid\""));
    CHECK(contains(load(jwks(rsa + ",\"d\":\"AQAB\"")), "private"));
    CHECK(contains(load(jwks(jwk_members(k.rsa_1024.get()))), "1024 bits"));
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"e\":\"AQAB\"")), "missing \"n\""));
    // RSA parts checked deterministically: the same file loads the same way every time.
    const std::string n =
        rsa.substr(rsa.find("\"n\":\"") + 5, rsa.find("\",\"e\"") - rsa.find("\"n\":\"") - 5);
    std::string modulus;
    REQUIRE(ringcast::auth::detail::base64url_decode(n, modulus));
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"n\":\"" + n + "\",\"e\":\"AQAA\"")), "exponent"));
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"n\":\"" + n + "\",\"e\":\"AQ\"")), "exponent"));
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"n\":\"" + n + "\",\"e\":\"" + n + "\"")),
                   "exponent"));
    modulus.back() = static_cast<char>(modulus.back() & ~1);
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"n\":\"" + b64(modulus) + "\",\"e\":\"AQAB\"")),
                   "even modulus"));
    CHECK(contains(load(jwks("\"kty\":\"RSA\",\"n\":\"AQAB=\",\"e\":\"AQAB\"")), "base64url"));
    // EC: wrong curve, short coordinates, a point not on the curve.
    CHECK(contains(load(jwks("\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"")),
                   "not supported"));
    CHECK(contains(load(jwks("\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"")), "crv"));
    std::string x32 = b64(std::string(32, '\x01'));
    CHECK(contains(load(jwks("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + x32 + "\",\"y\":\"" +
                             b64(std::string(33, '\x01')) + "\"")),
                   "at most 32 bytes"));
    CHECK(load(jwks("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + x32 + "\",\"y\":\"" + x32 +
                    "\"")) != "ok");
    // OKP and oct.
    CHECK(contains(load(jwks("\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" + x32 + "\"")),
                   "not supported"));
    CHECK(contains(load(jwks("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"")), "32 bytes"));
    CHECK(contains(load(jwks("\"kty\":\"oct\",\"k\":\"" + b64(std::string(16, 'k')) + "\"")),
                   "at least 32"));
    CHECK(contains(
        load(jwks("\"kty\":\"oct\",\"k\":\"" + b64(std::string(32, 'k')) + "\",\"alg\":\"RS256\"")),
        "does not fit"));
    // An error names the key by index and kid.
    CHECK(contains(load("{\"keys\":[{" + p256 + ",\"kid\":\"fine\"},{" + rsa +
                        ",\"kid\":\"bad\",\"d\":\"AQAB\"}]}"),
                   "JWKS key 1 (kid \"bad\")"));
}

TEST_CASE("an EC coordinate written without its leading zero bytes loads and verifies",
          "[auth][keys][jwks]") {
    // PyJWT 2.6 (Debian 12) writes x and y without leading zero bytes: find a P-256 key
    // whose x starts with a zero byte (one in 256; 8,192 tries miss with odds 1e-14).
    pkey_ptr key;
    std::string members;
    for (int tries = 0; tries < 8192 && !key; ++tries) {
        pkey_ptr candidate = generate("EC", "P-256");
        const std::string m = jwk_members(candidate.get());
        const std::size_t at = m.find("\"x\":\"") + 5;
        const std::string x = m.substr(at, m.find('"', at) - at);
        std::string bytes;
        REQUIRE(ringcast::auth::detail::base64url_decode(x, bytes));
        REQUIRE(bytes.size() == 32);
        if (bytes[0] == '\0') {
            key = std::move(candidate);
            members = m;
            bytes.erase(0, bytes.find_first_not_of('\0'));
            members.replace(at, x.size(), b64(bytes));
        }
    }
    REQUIRE(key);
    key_set set;
    REQUIRE(error_of(set.add_jwks(jwks(members + ",\"kid\":\"short\""))) == "ok");
    verifier v(set, {});
    const std::string t = sign_token("ES256", "{\"alg\":\"ES256\",\"kid\":\"short\"}",
                                     "{\"sub\":\"alice\",\"exp\":4000000000}", key.get());
    auto r = v.verify(t, 1'800'000'000);
    INFO((r ? "" : r.error()));
    CHECK(r);
}
