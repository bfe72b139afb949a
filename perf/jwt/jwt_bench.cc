// jwt_bench — what one handshake's token verification costs: auth::verifier::verify() in a
// loop on one thread, per algorithm, next to the bare OpenSSL signature check of the same
// bytes (a fresh EVP_DigestVerify per call, as a naive verifier would do it), so the
// parsing and claim overhead is visible. Results in perf/RESULTS.md "JWT verification cost
// (issue 13)". Not a test: numbers depend on the machine.
//
// Usage: jwt_bench [seconds per algorithm, default 1]
#include <ringcast/auth.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "jwt_bench: %s failed\n", what);
        std::exit(1);
    }
}

std::string b64url(const std::string& bytes) {
    std::string out;
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    for (const unsigned char c : bytes) {
        acc = acc << 8 | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[acc >> bits & 0x3f];
        }
    }
    if (bits > 0) {
        out += alphabet[acc << (6 - bits) & 0x3f];
    }
    return out;
}

EVP_PKEY* generate(const char* type, const char* group, int rsa_bits) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    require(ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1, "keygen");
    if (group != nullptr) {
        require(EVP_PKEY_CTX_set_group_name(ctx, group) == 1, "group");
    }
    if (rsa_bits != 0) {
        require(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, rsa_bits) == 1, "bits");
    }
    EVP_PKEY* key = nullptr;
    require(EVP_PKEY_generate(ctx, &key) == 1, "generate");
    EVP_PKEY_CTX_free(ctx);
    return key;
}

std::string public_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    require(PEM_write_bio_PUBKEY(bio, key) == 1, "pem");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return text;
}

/// The DER signature OpenSSL makes, and the JOSE form of it (R||S for ECDSA).
struct signature {
    std::string der;
    std::string jose;
};

signature sign(EVP_PKEY* key, const EVP_MD* md, const std::string& input, std::size_t ec_half) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    require(EVP_DigestSignInit(ctx, nullptr, md, nullptr, key) == 1, "sign init");
    std::size_t size = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    require(EVP_DigestSign(ctx, nullptr, &size, data, input.size()) == 1, "sign size");
    std::string der(size, '\0');
    require(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &size, data,
                           input.size()) == 1,
            "sign");
    der.resize(size);
    EVP_MD_CTX_free(ctx);
    if (ec_half == 0) {
        return {der, der};
    }
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    std::string raw(2 * ec_half, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, static_cast<int>(ec_half));
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + ec_half, static_cast<int>(ec_half));
    ECDSA_SIG_free(sig);
    return {der, raw};
}

template <typename Fn> double rate(double seconds, Fn&& once) {
    std::size_t done = 0;
    const auto start = clock_type::now();
    const auto stop = start + std::chrono::duration<double>(seconds);
    auto now = start;
    while (now < stop) {
        for (int i = 0; i < 64; ++i) {
            once();
        }
        done += 64;
        now = clock_type::now();
    }
    return static_cast<double>(done) / std::chrono::duration<double>(now - start).count();
}

} // namespace

int main(int argc, char** argv) {
    using namespace ringcast::auth;
    const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const std::string secret = "jwt-bench-secret-0123456789abcdef0123456789";
    EVP_PKEY* rsa = generate("RSA", nullptr, 2048);
    EVP_PKEY* p256 = generate("EC", "P-256", 0);
    EVP_PKEY* ed = generate("ED25519", nullptr, 0);

    key_set keys;
    require(keys.add_secret(secret).has_value(), "secret");
    for (EVP_PKEY* key : {rsa, p256, ed}) {
        require(keys.add_pem(public_pem(key)).has_value(), "pem");
    }
    verifier check(keys, {});

    // A typical browser token: sub, exp, iat, a few channel patterns and a role.
    const std::string payload = "{\"sub\":\"user-12345\",\"exp\":" + std::to_string(now + 3600) +
                                ",\"iat\":" + std::to_string(now) +
                                ",\"iss\":\"https://auth.example\",\"channels\":[\"team:red\","
                                "\"test-progress-*\",\"chat:lobby\"],\"roles\":[\"member\"]}";
    struct row {
        const char* alg;
        EVP_PKEY* key;
        const EVP_MD* md;
        std::size_t ec_half;
    };
    const std::vector<row> rows{{"HS256", nullptr, EVP_sha256(), 0},
                                {"RS256", rsa, EVP_sha256(), 0},
                                {"ES256", p256, EVP_sha256(), 32},
                                {"EdDSA", ed, nullptr, 0}};
    std::printf("%-6s %6s %14s %14s %9s\n", "alg", "bytes", "verify()/s", "bare EVP/s", "overhead");
    for (const row& r : rows) {
        const std::string input =
            b64url("{\"alg\":\"" + std::string(r.alg) + "\",\"typ\":\"JWT\"}") + "." +
            b64url(payload);
        signature sig;
        if (r.key == nullptr) {
            unsigned char tag[EVP_MAX_MD_SIZE];
            unsigned int size = 0;
            HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size(), tag, &size);
            sig.der = sig.jose = std::string(reinterpret_cast<char*>(tag), size);
        } else {
            sig = sign(r.key, r.md, input, r.ec_half);
        }
        const std::string token = input + "." + b64url(sig.jose);
        require(check.verify(token, now).has_value(), r.alg);
        const double ours = rate(seconds, [&] {
            auto v = check.verify(token, now);
            require(v.has_value(), "verify");
        });
        const double bare = rate(seconds, [&] {
            const auto* data = reinterpret_cast<const unsigned char*>(input.data());
            if (r.key == nullptr) {
                unsigned char tag[EVP_MAX_MD_SIZE];
                unsigned int size = 0;
                HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), data,
                     input.size(), tag, &size);
                require(size == 32, "hmac");
                return;
            }
            EVP_MD_CTX* ctx = EVP_MD_CTX_new();
            require(EVP_DigestVerifyInit(ctx, nullptr, r.md, nullptr, r.key) == 1 &&
                        EVP_DigestVerify(ctx,
                                         reinterpret_cast<const unsigned char*>(sig.der.data()),
                                         sig.der.size(), data, input.size()) == 1,
                    "bare verify");
            EVP_MD_CTX_free(ctx);
        });
        std::printf("%-6s %6zu %14.0f %14.0f %8.2fx\n", r.alg, token.size(), ours, bare,
                    bare / ours);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(ed);
    return 0;
}
