// verifier.cc — one compact JWS token in, an identity or a reason out (contract: verifier
// in auth.h).
//
//   token ─ length ─ split at the two '.' ─ header: base64url → strict JSON → alg, kid, crit
//                                              │
//        candidate keys (kid, type of alg) ◄───┘
//                │  signature: base64url → HMAC (constant-time compare) / RSA / ECDSA
//                │  (JOSE R||S → DER) / Ed25519, tried per candidate until one verifies
//                ▼
//        payload: base64url → strict JSON → claims typed → time → iss, aud → sub → identity
//
// The payload is not decoded before a signature has verified: nobody without a key gets
// the claim parser to run. Cost per token (perf/RESULTS.md "JWT verification cost (issue
// 13)"): the keys' EVP_PKEYs are parsed at load; this object keeps, per thread, the
// fetched digests, one HMAC context per hash, a hash context, an Ed25519 context and one
// EVP_PKEY_CTX per (key, algorithm) initialised for verification on first use, so a token
// costs the signature check and no OpenSSL fetch or key decoding.
#include "base64url.h"
#include "strict_json.h"

#include <ringcast/auth.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <array>
#include <cmath>
#include <limits>

namespace ringcast::auth {

namespace {

constexpr std::size_t alg_count = 10;
constexpr std::size_t max_name_bytes = 256;
/// A NumericDate beyond ±2^53 cannot be held exactly by a double: no real date is there.
constexpr double max_numeric_date = 9007199254740992.0;

struct mac_free {
    void operator()(EVP_MAC_CTX* p) const noexcept { EVP_MAC_CTX_free(p); }
    void operator()(EVP_MAC* p) const noexcept { EVP_MAC_free(p); }
    void operator()(EVP_MD* p) const noexcept { EVP_MD_free(p); }
    void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
    void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
template <typename T> using ossl_ptr = std::unique_ptr<T, mac_free>;

enum class hash : uint8_t { sha256, sha384, sha512 };

hash alg_hash(jwt_alg alg) noexcept {
    switch (alg) {
    case jwt_alg::hs256:
    case jwt_alg::rs256:
    case jwt_alg::ps256:
    case jwt_alg::es256:
    case jwt_alg::eddsa: // unused: Ed25519 hashes the message itself
        return hash::sha256;
    case jwt_alg::hs384:
    case jwt_alg::rs384:
    case jwt_alg::es384:
        return hash::sha384;
    case jwt_alg::hs512:
    case jwt_alg::rs512:
        return hash::sha512;
    }
    return hash::sha256;
}

/// Saturating a + b for the time checks (an exp of INT64_MAX must not wrap).
int64_t add_saturating(int64_t a, int64_t b) noexcept {
    int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) {
        return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    }
    return sum;
}

/// JOSE ECDSA signature R||S (RFC 7518 §3.4) as the DER ECDSA-Sig-Value EVP expects:
/// SEQUENCE { INTEGER r, INTEGER s }, minimal, with a 0x00 before a high bit. For P-256
/// and P-384 every length fits one byte (at most 2 + 2 × (2 + 49) = 104).
std::size_t jose_to_der(const uint8_t* raw, std::size_t half, uint8_t* out) noexcept {
    std::size_t o = 2;
    for (int part = 0; part < 2; ++part) {
        const uint8_t* p = raw + static_cast<std::size_t>(part) * half;
        std::size_t n = half;
        while (n > 1 && *p == 0) {
            ++p;
            --n;
        }
        const bool pad = (*p & 0x80) != 0;
        out[o++] = 0x02;
        out[o++] = static_cast<uint8_t>(n + (pad ? 1 : 0));
        if (pad) {
            out[o++] = 0x00;
        }
        for (std::size_t i = 0; i < n; ++i) {
            out[o++] = p[i];
        }
    }
    out[0] = 0x30;
    out[1] = static_cast<uint8_t>(o - 2);
    return o;
}

/// A NumericDate (RFC 7519 §2): an integer, or a non-integer rounded toward the stricter
/// side (`round_up` for nbf and iat, down for exp). False for anything else.
bool read_numeric_date(simdjson::dom::element value, bool round_up, int64_t& out) noexcept {
    switch (value.type()) {
    case simdjson::dom::element_type::INT64:
        out = value.get_int64().value_unsafe();
        return true;
    case simdjson::dom::element_type::DOUBLE: {
        const double d = value.get_double().value_unsafe();
        if (!std::isfinite(d) || std::fabs(d) > max_numeric_date) {
            return false;
        }
        out = static_cast<int64_t>(round_up ? std::ceil(d) : std::floor(d));
        return true;
    }
    case simdjson::dom::element_type::UINT64: // above INT64_MAX
    case simdjson::dom::element_type::ARRAY:
    case simdjson::dom::element_type::OBJECT:
    case simdjson::dom::element_type::STRING:
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::NULL_VALUE:
        return false;
    }
    return false;
}

/// A name from a claim (sub, a channel, a role): 1-256 bytes, no control characters.
bool valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name_bytes) {
        return false;
    }
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return false;
        }
    }
    return true;
}

/// A claim that is a list of names; absent is an empty list.
bool read_names(simdjson::dom::object payload, std::string_view claim,
                std::vector<std::string>& out) {
    simdjson::dom::element value;
    if (payload.at_key(claim).get(value) != simdjson::SUCCESS) {
        return true;
    }
    simdjson::dom::array list;
    if (value.get_array().get(list) != simdjson::SUCCESS) {
        return false;
    }
    out.reserve(list.size());
    for (const simdjson::dom::element item : list) {
        std::string_view name;
        if (item.get_string().get(name) != simdjson::SUCCESS || !valid_name(name)) {
            return false;
        }
        out.emplace_back(name);
    }
    return true;
}

using failure = unexpected<std::string_view>;

} // namespace

struct verifier::state {
    simdjson::dom::parser parser;
    std::vector<std::string_view> names;
    std::vector<uint8_t> text;      // a decoded header or payload, then simdjson's padding
    std::vector<uint8_t> signature; // the decoded signature
    std::array<ossl_ptr<EVP_MD>, 3> digests;
    ossl_ptr<EVP_MAC> hmac;
    std::array<ossl_ptr<EVP_MAC_CTX>, 3> mac_contexts; // digest set once per hash
    ossl_ptr<EVP_MD_CTX> hash_context;
    ossl_ptr<EVP_MD_CTX> eddsa_context;
    std::vector<ossl_ptr<EVP_PKEY_CTX>> verify_contexts; // [key index × alg_count + alg]

    EVP_PKEY_CTX* verify_context(const jwt_key& key, std::size_t key_index, jwt_alg alg) noexcept;
    bool check_signature(const jwt_key& key, std::size_t key_index, jwt_alg alg,
                         std::string_view signed_part, std::span<const uint8_t> signature,
                         const uint8_t* digest, std::size_t digest_size) noexcept;
};

EVP_PKEY_CTX* verifier::state::verify_context(const jwt_key& key, std::size_t key_index,
                                              jwt_alg alg) noexcept {
    const std::size_t slot = key_index * alg_count + static_cast<std::size_t>(alg);
    if (slot >= verify_contexts.size()) {
        verify_contexts.resize(slot + 1);
    }
    if (verify_contexts[slot]) {
        return verify_contexts[slot].get();
    }
    ossl_ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.pkey.get(), nullptr));
    const EVP_MD* md = digests[static_cast<std::size_t>(alg_hash(alg))].get();
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1) {
        return nullptr;
    }
    if (alg == jwt_alg::ps256) {
        // RFC 7518 §3.5: MGF1 with the same hash, a salt as long as the hash.
        if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1) {
            return nullptr;
        }
    } else if (key.type == key_type::rsa) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
            return nullptr;
        }
    }
    verify_contexts[slot] = std::move(ctx);
    return verify_contexts[slot].get();
}

bool verifier::state::check_signature(const jwt_key& key, std::size_t key_index, jwt_alg alg,
                                      std::string_view signed_part, std::span<const uint8_t> sig,
                                      const uint8_t* digest, std::size_t digest_size) noexcept {
    const auto* message = reinterpret_cast<const unsigned char*>(signed_part.data());
    switch (key.type) {
    case key_type::secret: {
        EVP_MAC_CTX* mac = mac_contexts[static_cast<std::size_t>(alg_hash(alg))].get();
        unsigned char tag[EVP_MAX_MD_SIZE];
        std::size_t tag_size = 0;
        if (EVP_MAC_init(mac, reinterpret_cast<const unsigned char*>(key.secret.data()),
                         key.secret.size(), nullptr) != 1 ||
            EVP_MAC_update(mac, message, signed_part.size()) != 1 ||
            EVP_MAC_final(mac, tag, &tag_size, sizeof tag) != 1) {
            return false;
        }
        return tag_size == sig.size() && CRYPTO_memcmp(tag, sig.data(), tag_size) == 0;
    }
    case key_type::ed25519: {
        EVP_MD_CTX* ctx = eddsa_context.get();
        EVP_MD_CTX_reset(ctx);
        return EVP_DigestVerifyInit_ex(ctx, nullptr, nullptr, nullptr, nullptr, key.pkey.get(),
                                       nullptr) == 1 &&
               EVP_DigestVerify(ctx, sig.data(), sig.size(), message, signed_part.size()) == 1;
    }
    case key_type::ec_p256:
    case key_type::ec_p384: {
        const std::size_t half = key.type == key_type::ec_p256 ? 32 : 48;
        if (sig.size() != 2 * half) {
            return false;
        }
        uint8_t der[2 + 2 * (3 + 48)];
        const std::size_t der_size = jose_to_der(sig.data(), half, der);
        EVP_PKEY_CTX* ctx = verify_context(key, key_index, alg);
        return ctx != nullptr && EVP_PKEY_verify(ctx, der, der_size, digest, digest_size) == 1;
    }
    case key_type::rsa: {
        EVP_PKEY_CTX* ctx = verify_context(key, key_index, alg);
        return ctx != nullptr &&
               EVP_PKEY_verify(ctx, sig.data(), sig.size(), digest, digest_size) == 1;
    }
    }
    return false;
}

verifier::verifier(const key_set& keys, verify_options options)
    : _keys(keys), _options(std::move(options)), _state(std::make_unique<state>()) {
    static constexpr std::array<const char*, 3> digest_names{"SHA256", "SHA384", "SHA512"};
    _state->hmac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    RINGCAST_ASSERT(_state->hmac);
    for (std::size_t i = 0; i < digest_names.size(); ++i) {
        _state->digests[i].reset(EVP_MD_fetch(nullptr, digest_names[i], nullptr));
        _state->mac_contexts[i].reset(EVP_MAC_CTX_new(_state->hmac.get()));
        RINGCAST_ASSERT(_state->digests[i] && _state->mac_contexts[i]);
        const std::array<OSSL_PARAM, 2> params{
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                             const_cast<char*>(digest_names[i]), 0),
            OSSL_PARAM_construct_end()};
        RINGCAST_ASSERT(EVP_MAC_CTX_set_params(_state->mac_contexts[i].get(), params.data()) == 1);
    }
    _state->hash_context.reset(EVP_MD_CTX_new());
    _state->eddsa_context.reset(EVP_MD_CTX_new());
    RINGCAST_ASSERT(_state->hash_context && _state->eddsa_context);
    const std::size_t decoded_max = detail::base64url_decoded_size(_options.max_token_bytes);
    _state->text.resize(decoded_max + simdjson::SIMDJSON_PADDING);
    _state->signature.resize(decoded_max);
    _state->verify_contexts.resize(keys.keys().size() * alg_count);
}

verifier::~verifier() = default;

result<identity, std::string_view> verifier::verify(std::string_view token,
                                                    int64_t now_s) noexcept {
    static constexpr std::string_view malformed = "malformed token";
    state& s = *_state;
    if (token.size() > _options.max_token_bytes) {
        return failure{"token too long"};
    }
    const std::size_t first_dot = token.find('.');
    const std::size_t second_dot =
        first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos ||
        token.find('.', second_dot + 1) != std::string_view::npos) {
        return failure{malformed};
    }
    const std::string_view header_text = token.substr(0, first_dot);
    const std::string_view payload_text = token.substr(first_dot + 1, second_dot - first_dot - 1);
    const std::string_view signature_text = token.substr(second_dot + 1);
    const std::string_view signed_part = token.substr(0, second_dot);

    // Header.
    std::size_t size = 0;
    simdjson::dom::element root;
    simdjson::dom::object header;
    if (!detail::base64url_decode(header_text, s.text.data(), size) ||
        !detail::parse_strict(s.parser, s.text.data(), size, s.names, root) ||
        root.get_object().get(header) != simdjson::SUCCESS) {
        return failure{malformed};
    }
    std::string_view alg_text;
    std::string_view kid;
    bool has_kid = false;
    simdjson::dom::element value;
    if (header.at_key("alg").get(value) != simdjson::SUCCESS ||
        value.get_string().get(alg_text) != simdjson::SUCCESS) {
        return failure{malformed};
    }
    if (header.at_key("kid").get(value) == simdjson::SUCCESS) {
        if (value.get_string().get(kid) != simdjson::SUCCESS) {
            return failure{malformed};
        }
        has_kid = true;
    }
    std::string_view typ;
    if (header.at_key("typ").get(value) == simdjson::SUCCESS &&
        value.get_string().get(typ) != simdjson::SUCCESS) {
        return failure{malformed};
    }
    if (header.at_key("crit").get(value) == simdjson::SUCCESS) {
        return failure{"unsupported crit header"};
    }
    const std::optional<jwt_alg> alg = parse_alg(alg_text);
    if (!alg) {
        return failure{"algorithm not allowed"};
    }

    // Signature. `kid` points into the parser's buffers: it is used up before the payload
    // is parsed.
    std::size_t signature_size = 0;
    if (signature_text.empty() ||
        !detail::base64url_decode(signature_text, s.signature.data(), signature_size)) {
        return failure{malformed};
    }
    const key_type wanted = alg_key_type(*alg);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    bool kid_matched = false;
    bool tried = false;
    bool verified = false;
    const std::span<const jwt_key> keys = _keys.keys();
    for (std::size_t i = 0; i < keys.size() && !verified; ++i) {
        const jwt_key& key = keys[i];
        if (has_kid && !key.kid.empty() && key.kid != kid) {
            continue;
        }
        kid_matched = true;
        if (key.type != wanted || (key.alg && *key.alg != *alg)) {
            continue;
        }
        if (!tried && wanted != key_type::secret && wanted != key_type::ed25519) {
            EVP_MD_CTX* ctx = s.hash_context.get();
            if (EVP_DigestInit_ex(ctx, s.digests[static_cast<std::size_t>(alg_hash(*alg))].get(),
                                  nullptr) != 1 ||
                EVP_DigestUpdate(ctx, signed_part.data(), signed_part.size()) != 1 ||
                EVP_DigestFinal_ex(ctx, digest, &digest_size) != 1) {
                break;
            }
        }
        tried = true;
        verified = s.check_signature(key, i, *alg, signed_part,
                                     std::span<const uint8_t>(s.signature.data(), signature_size),
                                     digest, digest_size);
    }
    // A failed check leaves reasons in this thread's OpenSSL error queue; nothing reads
    // them, and they must not pile up over a connection's lifetime of tokens.
    ERR_clear_error();
    if (!kid_matched) {
        return failure{"unknown key"};
    }
    if (!tried) {
        return failure{"algorithm not allowed"};
    }
    if (!verified) {
        return failure{"bad signature"};
    }

    // Payload: only now, with a verified signature.
    simdjson::dom::object payload;
    if (!detail::base64url_decode(payload_text, s.text.data(), size) ||
        !detail::parse_strict(s.parser, s.text.data(), size, s.names, root) ||
        root.get_object().get(payload) != simdjson::SUCCESS) {
        return failure{malformed};
    }
    identity who;
    std::optional<int64_t> not_before;
    std::optional<int64_t> issued_at;
    const std::array<std::pair<std::string_view, std::optional<int64_t>*>, 3> dates{{
        {"exp", &who.expires_at_s},
        {"nbf", &not_before},
        {"iat", &issued_at},
    }};
    for (const auto& [claim, target] : dates) {
        if (payload.at_key(claim).get(value) == simdjson::SUCCESS) {
            int64_t date = 0;
            if (!read_numeric_date(value, claim != "exp", date)) {
                return failure{malformed};
            }
            *target = date;
        }
    }
    std::string_view issuer;
    const bool has_issuer = payload.at_key("iss").get(value) == simdjson::SUCCESS;
    if (has_issuer && value.get_string().get(issuer) != simdjson::SUCCESS) {
        return failure{malformed};
    }
    bool audience_present = false;
    bool audience_matched = false;
    if (payload.at_key("aud").get(value) == simdjson::SUCCESS) {
        audience_present = true;
        std::string_view one;
        simdjson::dom::array list;
        if (value.get_string().get(one) == simdjson::SUCCESS) {
            audience_matched = one == _options.audience;
        } else if (value.get_array().get(list) == simdjson::SUCCESS) {
            for (const simdjson::dom::element item : list) {
                if (item.get_string().get(one) != simdjson::SUCCESS) {
                    return failure{malformed};
                }
                audience_matched = audience_matched || one == _options.audience;
            }
        } else {
            return failure{malformed};
        }
    }
    std::string_view subject;
    const bool has_subject = payload.at_key("sub").get(value) == simdjson::SUCCESS;
    if (has_subject && (value.get_string().get(subject) != simdjson::SUCCESS ||
                        (!subject.empty() && !valid_name(subject)))) {
        return failure{malformed};
    }
    if (!read_names(payload, "channels", who.channels) ||
        !read_names(payload, "roles", who.roles)) {
        return failure{malformed};
    }

    const int64_t leeway = _options.leeway_s;
    if (!who.expires_at_s) {
        if (_options.require_exp) {
            return failure{"missing exp"};
        }
    } else if (now_s >= add_saturating(*who.expires_at_s, leeway)) {
        return failure{"token expired"};
    }
    if (not_before && add_saturating(now_s, leeway) < *not_before) {
        return failure{"token not yet valid"};
    }
    if (issued_at && add_saturating(now_s, leeway) < *issued_at) {
        return failure{"token issued in the future"};
    }
    if (!_options.issuer.empty() && (!has_issuer || issuer != _options.issuer)) {
        return failure{"wrong issuer"};
    }
    if (_options.audience.empty() ? audience_present : !audience_matched) {
        return failure{"wrong audience"};
    }
    if (subject.empty()) {
        return failure{"missing sub"};
    }
    who.user_id = std::string(subject);
    return who;
}

} // namespace ringcast::auth
