// key_set.cc — loading verification keys: a secret, PEM public keys, a JSON Web Key Set.
//
//   file ─► bytes ─► add_secret / add_pem / add_jwks ─► jwt_key (EVP_PKEY parsed once)
//                                     │
//                                     └─► check (type, size, curve, OpenSSL public check)
//
// Every source is all-or-nothing: keys are collected in a local vector and appended only
// when the whole source loaded. The rules are at key_set in auth.h; this file runs at
// start-up only, so it favours clear error strings over speed.
#include "base64url.h"
#include "strict_json.h"

#include <ringcast/auth.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace ringcast::auth {

void detail::pkey_free::operator()(evp_pkey_st* key) const noexcept {
    EVP_PKEY_free(key);
}

namespace {

using pkey_ptr = std::unique_ptr<evp_pkey_st, detail::pkey_free>;

struct openssl_free {
    void operator()(BIO* p) const noexcept { BIO_free(p); }
    void operator()(BIGNUM* p) const noexcept { BN_free(p); }
    void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
    void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
    void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
template <typename T> using ossl_ptr = std::unique_ptr<T, openssl_free>;

using error = unexpected<std::string>;

/// RFC 7518 §3.2: an HMAC key no shorter than the hash output; HS256's is 32 bytes.
constexpr std::size_t min_secret_bytes = 32;
/// RFC 7518 §3.3: RSA keys of 2048 bits or more. Above 8192 bits a verification costs
/// several times a 4096-bit one for no security anyone needs: refused as a likely mistake.
constexpr int min_rsa_bits = 2048;
constexpr int max_rsa_bits = 8192;
/// A key file larger than this is a mistake (a JWKS of a few dozen keys is a few KiB).
constexpr std::size_t max_key_file_bytes = 1u << 20;

/// The reason at the top of OpenSSL's error queue, and an empty queue afterwards.
std::string openssl_reason() {
    const char* reason = ERR_reason_error_string(ERR_peek_last_error());
    std::string text = reason != nullptr ? reason : "no reason given";
    ERR_clear_error();
    return text;
}

/// RSA: n and e odd, 1 < e < n. Deterministic on purpose: OpenSSL's RSA public check
/// (SP 800-56B) runs a Miller-Rabin round with a random base, and on a malformed modulus it
/// passed or failed from one load to the next (found by tests/fuzz/jwks_reader_fuzz): a
/// key file must load the same way every time.
bool rsa_public_parts_valid(evp_pkey_st* key) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    const bool read = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    const bool ok = read && BN_is_odd(n) && BN_is_odd(e) && !BN_is_one(e) && BN_cmp(e, n) < 0;
    BN_free(n);
    BN_free(e);
    ERR_clear_error();
    return ok;
}

/// EC: OpenSSL's check (the point is on the curve, not at infinity), deterministic.
bool passes_public_check(evp_pkey_st* key) {
    const ossl_ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    const bool ok = ctx && EVP_PKEY_public_check(ctx.get()) == 1;
    ERR_clear_error();
    return ok;
}

/// Fills type and bits from the EVP_PKEY and checks what auth.h promises about each type.
result<void, std::string> classify(jwt_key& key) {
    evp_pkey_st* pkey = key.pkey.get();
    key.bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        key.type = key_type::rsa;
        if (key.bits < min_rsa_bits || key.bits > max_rsa_bits) {
            return error{"RSA key of " + std::to_string(key.bits) +
                         " bits: " + std::to_string(min_rsa_bits) + " to " +
                         std::to_string(max_rsa_bits) + " supported"};
        }
        if (!rsa_public_parts_valid(pkey)) {
            return error{"RSA key with an even modulus or an exponent that is even, 1 or not "
                         "below the modulus"};
        }
        return {};
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = {};
        std::size_t length = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &length) != 1) {
            ERR_clear_error();
            return error{"EC key without a named curve"};
        }
        const std::string_view name(group, length);
        if (name == "prime256v1" || name == "P-256") {
            key.type = key_type::ec_p256;
        } else if (name == "secp384r1" || name == "P-384") {
            key.type = key_type::ec_p384;
        } else {
            return error{"EC curve " + std::string(name) + " not supported (P-256, P-384)"};
        }
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        key.type = key_type::ed25519;
        return {};
    } else {
        return error{std::string("key type ") + EVP_PKEY_get0_type_name(pkey) +
                     " not supported (RSA, EC P-256 / P-384, Ed25519)"};
    }
    if (!passes_public_check(pkey)) {
        return error{"EC key fails OpenSSL's public key check (point not on the curve)"};
    }
    return {};
}

result<std::string, std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error{"cannot open " + path + ": " + std::strerror(errno)};
    }
    std::string bytes;
    char chunk[4096];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
        bytes.append(chunk, static_cast<std::size_t>(in.gcount()));
        if (bytes.size() > max_key_file_bytes) {
            return error{path + ": larger than " + std::to_string(max_key_file_bytes) + " bytes"};
        }
    }
    if (in.bad()) {
        return error{"cannot read " + path};
    }
    return bytes;
}

// --- JWK members ---------------------------------------------------------------------------

/// A member that must be a string when present: found / absent / wrong type.
enum class member { found, absent, not_string };

member string_member(simdjson::dom::object object, std::string_view name,
                     std::string_view& out) noexcept {
    simdjson::dom::element value;
    if (object.at_key(name).get(value) != simdjson::SUCCESS) {
        return member::absent;
    }
    return value.get_string().get(out) == simdjson::SUCCESS ? member::found : member::not_string;
}

/// Decodes a required base64url member into bytes.
result<std::string, std::string> bytes_member(simdjson::dom::object object, std::string_view name) {
    std::string_view text;
    switch (string_member(object, name, text)) {
    case member::absent:
        return error{"missing \"" + std::string(name) + "\""};
    case member::not_string:
        return error{"\"" + std::string(name) + "\" is not a string"};
    case member::found:
        break;
    }
    std::string bytes;
    if (!detail::base64url_decode(text, bytes) || bytes.empty()) {
        return error{"\"" + std::string(name) + "\" is not strict non-empty base64url"};
    }
    return bytes;
}

ossl_ptr<BIGNUM> to_bignum(const std::string& bytes) {
    return ossl_ptr<BIGNUM>(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()), nullptr));
}

/// Builds a public EVP_PKEY of `type_name` from the parameters in `builder`.
result<pkey_ptr, std::string> from_params(const char* type_name, OSSL_PARAM_BLD* builder) {
    const ossl_ptr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(builder));
    const ossl_ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type_name, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return error{"not a valid " + std::string(type_name) + " public key (" + openssl_reason() +
                     ")"};
    }
    return pkey_ptr(raw);
}

result<pkey_ptr, std::string> rsa_from_jwk(simdjson::dom::object object) {
    auto n = bytes_member(object, "n");
    if (!n) {
        return error{n.error()};
    }
    auto e = bytes_member(object, "e");
    if (!e) {
        return error{e.error()};
    }
    const ossl_ptr<BIGNUM> modulus = to_bignum(*n);
    const ossl_ptr<BIGNUM> exponent = to_bignum(*e);
    const ossl_ptr<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
    if (!modulus || !exponent || !builder ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
        return error{"cannot build the RSA key (" + openssl_reason() + ")"};
    }
    return from_params("RSA", builder.get());
}

result<pkey_ptr, std::string> ec_from_jwk(simdjson::dom::object object, std::string_view crv) {
    std::size_t field_bytes = 0;
    const char* group = nullptr;
    if (crv == "P-256") {
        field_bytes = 32;
        group = "P-256";
    } else if (crv == "P-384") {
        field_bytes = 48;
        group = "P-384";
    } else {
        return error{"EC curve \"" + std::string(crv) + "\" not supported (P-256, P-384)"};
    }
    auto x = bytes_member(object, "x");
    if (!x) {
        return error{x.error()};
    }
    auto y = bytes_member(object, "y");
    if (!y) {
        return error{y.error()};
    }
    // RFC 7518 §6.2.1.2-3: x and y are the full field size, leading zeros included. Widely
    // deployed writers drop the leading zero bytes (PyJWT up to 2.7's to_jwk, Debian 12 ships
    // 2.6: one key in 128 has a 31-byte coordinate), and the value is the same number: a
    // shorter coordinate is taken left-padded with zeros; a longer one is refused.
    if (x->size() > field_bytes || y->size() > field_bytes) {
        return error{"\"x\" and \"y\" must be at most " + std::to_string(field_bytes) +
                     " bytes for " + std::string(crv)};
    }
    x->insert(0, field_bytes - x->size(), '\0');
    y->insert(0, field_bytes - y->size(), '\0');
    std::string point(1, '\x04'); // SEC 1 §2.3.3 uncompressed point
    point += *x;
    point += *y;
    const ossl_ptr<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
    if (!builder ||
        OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
        return error{"cannot build the EC key (" + openssl_reason() + ")"};
    }
    return from_params("EC", builder.get());
}

result<pkey_ptr, std::string> okp_from_jwk(simdjson::dom::object object, std::string_view crv) {
    if (crv != "Ed25519") {
        return error{"OKP curve \"" + std::string(crv) + "\" not supported (Ed25519)"};
    }
    auto x = bytes_member(object, "x");
    if (!x) {
        return error{x.error()};
    }
    if (x->size() != 32) {
        return error{"\"x\" must be 32 bytes for Ed25519"};
    }
    EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
    if (raw == nullptr) {
        return error{"not a valid Ed25519 public key (" + openssl_reason() + ")"};
    }
    return pkey_ptr(raw);
}

/// One JWK: the key, or nullopt for an encryption key that is skipped.
result<std::optional<jwt_key>, std::string> key_from_jwk(simdjson::dom::element element) {
    simdjson::dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
        return error{"not a JSON object"};
    }
    std::string_view kty;
    std::string_view use;
    std::string_view kid;
    std::string_view alg_text;
    std::string_view crv;
    if (string_member(object, "kty", kty) != member::found) {
        return error{"\"kty\" missing or not a string"};
    }
    switch (string_member(object, "use", use)) {
    case member::not_string:
        return error{"\"use\" is not a string"};
    case member::absent:
        break;
    case member::found:
        if (use == "enc") {
            return std::optional<jwt_key>{};
        }
        if (use != "sig") {
            return error{"\"use\" is \"" + std::string(use) + "\" (only \"sig\" or \"enc\")"};
        }
        break;
    }
    jwt_key key;
    switch (string_member(object, "kid", kid)) {
    case member::not_string:
        return error{"\"kid\" is not a string"};
    case member::found:
        key.kid = std::string(kid);
        break;
    case member::absent:
        break;
    }
    switch (string_member(object, "alg", alg_text)) {
    case member::not_string:
        return error{"\"alg\" is not a string"};
    case member::found:
        key.alg = parse_alg(alg_text);
        if (!key.alg) {
            return error{"\"alg\" \"" + std::string(alg_text) + "\" not supported"};
        }
        break;
    case member::absent:
        break;
    }
    const bool has_crv = string_member(object, "crv", crv) == member::found;
    result<pkey_ptr, std::string> built = error{std::string()};
    if (kty == "oct") {
        auto k = bytes_member(object, "k");
        if (!k) {
            return error{k.error()};
        }
        if (k->size() < min_secret_bytes) {
            return error{"\"k\" is " + std::to_string(k->size()) + " bytes: at least " +
                         std::to_string(min_secret_bytes) + " needed"};
        }
        key.type = key_type::secret;
        key.secret = std::move(*k);
        key.bits = static_cast<int>(key.secret.size() * 8);
    } else {
        // A public JWK that carries its private part is a leaked key: refuse to load it.
        simdjson::dom::element ignored;
        if (object.at_key("d").get(ignored) == simdjson::SUCCESS) {
            return error{"holds a private key (\"d\"): give the public key only"};
        }
        if (kty == "RSA") {
            built = rsa_from_jwk(object);
        } else if (kty == "EC" && has_crv) {
            built = ec_from_jwk(object, crv);
        } else if (kty == "OKP" && has_crv) {
            built = okp_from_jwk(object, crv);
        } else if (kty == "EC" || kty == "OKP") {
            return error{"\"crv\" missing or not a string"};
        } else {
            return error{"kty \"" + std::string(kty) + "\" not supported (RSA, EC, OKP, oct)"};
        }
        if (!built) {
            return error{built.error()};
        }
        key.pkey = std::move(*built);
        auto checked = classify(key);
        if (!checked) {
            return error{checked.error()};
        }
    }
    if (key.alg && alg_key_type(*key.alg) != key.type) {
        return error{"\"alg\" " + std::string(alg_name(*key.alg)) + " does not fit kty " +
                     std::string(kty)};
    }
    return std::optional<jwt_key>(std::move(key));
}

std::string describe_jwk(std::size_t index, const simdjson::dom::element& element) {
    std::string what = "JWKS key " + std::to_string(index);
    std::string_view kid;
    if (element.at_key("kid").get_string().get(kid) == simdjson::SUCCESS) {
        what += " (kid \"" + std::string(kid) + "\")";
    }
    return what;
}

} // namespace

result<void, std::string> key_set::add_secret(std::string_view secret) {
    if (secret.size() < min_secret_bytes) {
        return error{"HMAC secret is " + std::to_string(secret.size()) + " bytes: at least " +
                     std::to_string(min_secret_bytes) + " needed"};
    }
    jwt_key key;
    key.type = key_type::secret;
    key.secret = std::string(secret);
    key.bits = static_cast<int>(secret.size() * 8);
    _keys.push_back(std::move(key));
    return {};
}

result<void, std::string> key_set::add_pem(std::string_view pem_text) {
    if (pem_text.find("PRIVATE KEY-----") != std::string_view::npos) {
        return error{"PEM holds a private key: give the public key only"};
    }
    // Each block is read on its own: text between blocks is allowed (comments), and the
    // end of the file is where no block begins, not an OpenSSL error to interpret.
    std::vector<jwt_key> loaded;
    std::size_t from = 0;
    for (;;) {
        const std::size_t begin = pem_text.find("-----BEGIN ", from);
        if (begin == std::string_view::npos) {
            break;
        }
        const std::size_t end_line = pem_text.find("-----END ", begin);
        const std::size_t end_dashes =
            end_line == std::string_view::npos ? end_line : pem_text.find("-----", end_line + 9);
        const std::string where = "PEM block " + std::to_string(loaded.size() + 1) + ": ";
        if (end_dashes == std::string_view::npos) {
            return error{where + "no -----END line"};
        }
        from = end_dashes + 5;
        const std::string_view block = pem_text.substr(begin, from - begin);
        const ossl_ptr<BIO> bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
        EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
        if (raw == nullptr) {
            return error{where + "not a valid \"-----BEGIN PUBLIC KEY-----\" block (" +
                         openssl_reason() + ")"};
        }
        jwt_key key;
        key.pkey.reset(raw);
        auto checked = classify(key);
        if (!checked) {
            return error{where + checked.error()};
        }
        loaded.push_back(std::move(key));
    }
    if (loaded.empty()) {
        return error{"PEM: no \"-----BEGIN PUBLIC KEY-----\" block"};
    }
    for (jwt_key& key : loaded) {
        _keys.push_back(std::move(key));
    }
    return {};
}

result<void, std::string> key_set::add_jwks(std::string_view json_text) {
    const simdjson::padded_string padded(json_text);
    simdjson::dom::parser parser;
    std::vector<std::string_view> names;
    simdjson::dom::element root;
    if (!detail::parse_strict(parser, reinterpret_cast<const uint8_t*>(padded.data()),
                              padded.size(), names, root)) {
        return error{"JWKS is not strict JSON (syntax, duplicate member names or nesting)"};
    }
    simdjson::dom::array keys;
    if (root.at_key("keys").get_array().get(keys) != simdjson::SUCCESS) {
        return error{"JWKS has no \"keys\" array"};
    }
    std::vector<jwt_key> loaded;
    std::size_t index = 0;
    for (const simdjson::dom::element element : keys) {
        auto key = key_from_jwk(element);
        if (!key) {
            return error{describe_jwk(index, element) + ": " + key.error()};
        }
        if (*key) {
            const std::string& kid = (*key)->kid;
            auto same_kid = [&](const jwt_key& other) { return !kid.empty() && other.kid == kid; };
            if (std::any_of(loaded.begin(), loaded.end(), same_kid) ||
                std::any_of(_keys.begin(), _keys.end(), same_kid)) {
                return error{describe_jwk(index, element) + ": kid used by another key"};
            }
            loaded.push_back(std::move(**key));
        }
        ++index;
    }
    if (loaded.empty()) {
        return error{"JWKS has no signature key"};
    }
    for (jwt_key& key : loaded) {
        _keys.push_back(std::move(key));
    }
    return {};
}

result<void, std::string> key_set::load_secret_file(const std::string& path) {
    auto bytes = read_file(path);
    if (!bytes) {
        return error{bytes.error()};
    }
    std::string_view secret = *bytes;
    // Files written by `echo` or an editor end in a line end that is not part of the secret.
    if (secret.ends_with("\r\n")) {
        secret.remove_suffix(2);
    } else if (secret.ends_with('\n')) {
        secret.remove_suffix(1);
    }
    auto added = add_secret(secret);
    if (!added) {
        return error{path + ": " + added.error()};
    }
    return {};
}

result<void, std::string> key_set::load_public_key_file(const std::string& path) {
    auto bytes = read_file(path);
    if (!bytes) {
        return error{bytes.error()};
    }
    auto added = add_pem(*bytes);
    if (!added) {
        return error{path + ": " + added.error()};
    }
    return {};
}

result<void, std::string> key_set::load_jwks_file(const std::string& path) {
    auto bytes = read_file(path);
    if (!bytes) {
        return error{bytes.error()};
    }
    auto added = add_jwks(*bytes);
    if (!added) {
        return error{path + ": " + added.error()};
    }
    return {};
}

} // namespace ringcast::auth
