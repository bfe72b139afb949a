// token_maker.cc — see token_maker.h.
#include "token_maker.h"

#include "base64url.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace ringcast::auth::test {

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(what);
    }
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return text;
}

std::string bn_param(EVP_PKEY* key, const char* name, std::size_t pad_to = 0) {
    BIGNUM* bn = nullptr;
    require(EVP_PKEY_get_bn_param(key, name, &bn) == 1, "get_bn_param");
    std::string bytes(pad_to != 0 ? pad_to : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(bytes.size()));
    BN_free(bn);
    return bytes;
}

const EVP_MD* md_for(std::string_view alg) {
    if (alg.ends_with("384")) {
        return EVP_sha384();
    }
    if (alg.ends_with("512")) {
        return EVP_sha512();
    }
    return EVP_sha256();
}

} // namespace

pkey_ptr generate(const char* type, const char* curve_or_null, unsigned rsa_bits) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    require(ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1, "keygen_init");
    if (curve_or_null != nullptr) {
        require(EVP_PKEY_CTX_set_group_name(ctx, curve_or_null) == 1, "group");
    }
    if (rsa_bits != 0) {
        require(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, static_cast<int>(rsa_bits)) == 1, "bits");
    }
    EVP_PKEY* key = nullptr;
    require(EVP_PKEY_generate(ctx, &key) == 1, "generate");
    EVP_PKEY_CTX_free(ctx);
    return pkey_ptr(key);
}

const test_keys& keys() {
    static const test_keys all = [] {
        test_keys k;
        k.rsa = generate("RSA", nullptr, 2048);
        k.rsa_other = generate("RSA", nullptr, 2048);
        k.rsa_1024 = generate("RSA", nullptr, 1024);
        k.p256 = generate("EC", "P-256");
        k.p384 = generate("EC", "P-384");
        k.p521 = generate("EC", "P-521");
        k.ed25519 = generate("ED25519", nullptr);
        k.ed448 = generate("ED448", nullptr);
        return k;
    }();
    return all;
}

std::string public_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    require(PEM_write_bio_PUBKEY(bio, key) == 1, "write pubkey");
    return bio_text(bio);
}

std::string private_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    require(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
            "write private key");
    return bio_text(bio);
}

std::string b64(std::string_view bytes) {
    return detail::base64url_encode(bytes);
}

std::string jwk_members(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "RSA")) {
        return "\"kty\":\"RSA\",\"n\":\"" + b64(bn_param(key, OSSL_PKEY_PARAM_RSA_N)) +
               "\",\"e\":\"" + b64(bn_param(key, OSSL_PKEY_PARAM_RSA_E)) + "\"";
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[32] = {};
        std::size_t length = 0;
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &length);
        const bool p256 = std::string_view(group, length) == "prime256v1";
        const std::size_t size = p256 ? 32 : 48;
        return std::string("\"kty\":\"EC\",\"crv\":\"") + (p256 ? "P-256" : "P-384") +
               "\",\"x\":\"" + b64(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, size)) + "\",\"y\":\"" +
               b64(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, size)) + "\"";
    }
    unsigned char raw[32];
    std::size_t size = sizeof raw;
    require(EVP_PKEY_get_raw_public_key(key, raw, &size) == 1, "raw public");
    return "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" +
           b64(std::string_view(reinterpret_cast<const char*>(raw), size)) + "\"";
}

std::string sign_bytes(std::string_view alg, std::string_view signing_input, EVP_PKEY* key,
                       std::string_view secret) {
    const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
    if (alg.starts_with("HS")) {
        unsigned char tag[EVP_MAX_MD_SIZE];
        unsigned int size = 0;
        HMAC(md_for(alg), secret.data(), static_cast<int>(secret.size()), data,
             signing_input.size(), tag, &size);
        return std::string(reinterpret_cast<const char*>(tag), size);
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    const EVP_MD* md = alg == "EdDSA" ? nullptr : md_for(alg);
    require(EVP_DigestSignInit(ctx, &pctx, md, nullptr, key) == 1, "sign init");
    if (alg.starts_with("PS")) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    std::size_t size = 0;
    require(EVP_DigestSign(ctx, nullptr, &size, data, signing_input.size()) == 1, "sign size");
    std::vector<unsigned char> sig(size);
    require(EVP_DigestSign(ctx, sig.data(), &size, data, signing_input.size()) == 1, "sign");
    EVP_MD_CTX_free(ctx);
    sig.resize(size);
    if (!alg.starts_with("ES")) {
        return std::string(sig.begin(), sig.end());
    }
    const std::size_t half = alg == "ES256" ? 32 : 48;
    const unsigned char* p = sig.data();
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    require(ecdsa != nullptr, "der");
    std::string raw(2 * half, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()),
                 static_cast<int>(half));
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + half,
                 static_cast<int>(half));
    ECDSA_SIG_free(ecdsa);
    return raw;
}

std::string sign_token(std::string_view alg, std::string_view header_json,
                       std::string_view payload_json, EVP_PKEY* key, std::string_view secret) {
    const std::string input = b64(header_json) + "." + b64(payload_json);
    return input + "." + b64(sign_bytes(alg, input, key, secret));
}

} // namespace ringcast::auth::test
