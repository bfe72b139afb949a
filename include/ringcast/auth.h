// ringcast auth — who a connection is (a verified JWT) and what it may do (namespace rules).
//
// What it owns: the key set (HMAC secrets, RSA / EC / Ed25519 public keys, loaded from a
// secret file, a PEM file or a JSON Web Key Set), the JWT verifier (compact JWS, RFC 7515 /
// 7519, signatures with OpenSSL 3 EVP, strict base64url and strict JSON), the identity a
// verified token yields, and the namespace rule table with may_subscribe() / may_publish().
//
// Where it sits: main loads one key_set and one namespace_table at start-up (errors are
// strings for the operator); they are immutable afterwards and shared by every shard. Each
// shard builds its own verifier over the shared key set (the verifier holds reusable
// OpenSSL contexts, so it belongs to one thread). The gateway verifies a token once per
// handshake and keeps the identity with the connection; the pub/sub command path asks
// may_subscribe / may_publish before it subscribes or routes a publish.
//
//   token ─► verifier::verify ─► identity ─► may_subscribe(identity, channel, table)
//              │ (key_set)                  └► may_publish  (identity, channel, table)
//              └─► reason ("token expired", …): the body of a 401 / the WebSocket close
//
// Trust: only the key set and the clock are trusted. Everything in the token (header
// included: alg, kid) is attacker input until the signature has been checked with a key
// the header could only select, never supply (jwk, jku, x5u, x5c are ignored). The
// decisions behind each rule are in docs/decisions.md "JWT verification (issue 13)".
// Never throws; no logging here (a token must never reach a log: docs/security.md).
#pragma once

#include <ringcast/core.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// OpenSSL's key object (EVP_PKEY), named without including OpenSSL in every user.
struct evp_pkey_st;

namespace ringcast::auth {

// --- algorithms and keys -------------------------------------------------------------------

/// The JWS algorithms verified (RFC 7518 §3.1, RFC 8037 §3.1 for EdDSA with Ed25519 only).
/// "none" and every other name are refused ("algorithm not allowed").
enum class jwt_alg : uint8_t {
    hs256,
    hs384,
    hs512,
    rs256,
    rs384,
    rs512,
    ps256,
    es256,
    es384,
    eddsa
};

/// The algorithm named exactly `name` (case-sensitive, as RFC 7515 §4.1.1 says); nullopt
/// for "none" and anything unknown.
std::optional<jwt_alg> parse_alg(std::string_view name) noexcept;
std::string_view alg_name(jwt_alg alg) noexcept;

/// What a key is. An algorithm verifies only with its own type (alg_key_type): HMAC only
/// ever with a secret, so a public key can never be used as an HMAC secret (the classic
/// algorithm confusion).
enum class key_type : uint8_t { secret, rsa, ec_p256, ec_p384, ed25519 };
key_type alg_key_type(jwt_alg alg) noexcept;

namespace detail {
struct pkey_free {
    void operator()(evp_pkey_st* key) const noexcept;
};
} // namespace detail

/// One verification key, parsed once at load (the EVP_PKEY is never rebuilt per token).
struct jwt_key {
    std::string kid; ///< JWK "kid"; empty for secret and PEM files
    key_type type = key_type::secret;
    std::optional<jwt_alg> alg; ///< JWK "alg": when set, the only algorithm this key verifies
    std::string secret;         ///< the HMAC key bytes (type secret only)
    std::unique_ptr<evp_pkey_st, detail::pkey_free> pkey; ///< public key (every other type)
    int bits = 0; ///< key size in bits (RSA modulus, EC field, 256 for Ed25519)
};

/// The keys tokens may be signed with: the union of every source added. Immutable once
/// start-up is done; any number of verifiers (one per shard) read it concurrently.
///
/// Load rules (each failure is an error string naming the source and the cause; nothing
/// is added from a source that fails):
///   - secret: the bytes as given (a file loses one trailing "\n" or "\r\n"); at least 32
///     bytes (RFC 7518 §3.2: no shorter than the HS256 output).
///   - PEM: one or more "-----BEGIN PUBLIC KEY-----" blocks (SubjectPublicKeyInfo): RSA,
///     EC on P-256 or P-384, or Ed25519. A private key is refused.
///   - JWKS: {"keys":[…]} as strict JSON (no duplicate member names). kty RSA (n, e), EC
///     (crv P-256 / P-384, x, y of exactly the field size), OKP (crv Ed25519, x), oct (k);
///     values strict base64url. "use":"enc" keys are skipped (they sign nothing); any
///     other "use" than "sig" is an error, as are private members ("d"), an unsupported
///     kty / crv / alg, an "alg" that does not fit the kty, and two keys with one kid.
///   - Every RSA modulus has 2048 to 8192 bits, n and e odd, 1 < e < n (checked by hand:
///     OpenSSL's RSA public check is randomised); EC points pass OpenSSL's public-key check.
class key_set {
public:
    key_set() = default;
    key_set(key_set&&) noexcept = default;
    key_set& operator=(key_set&&) noexcept = default;

    result<void, std::string> add_secret(std::string_view secret);
    result<void, std::string> add_pem(std::string_view pem_text);
    result<void, std::string> add_jwks(std::string_view json_text);

    /// The same from files (--jwt-secret-file, --jwt-public-key, --jwks-file); the error
    /// names the path.
    result<void, std::string> load_secret_file(const std::string& path);
    result<void, std::string> load_public_key_file(const std::string& path);
    result<void, std::string> load_jwks_file(const std::string& path);

    std::span<const jwt_key> keys() const noexcept { return _keys; }
    bool empty() const noexcept { return _keys.empty(); }

private:
    std::vector<jwt_key> _keys;
};

// --- verification --------------------------------------------------------------------------

struct verify_options {
    /// Required "iss" when non-empty (exact match); otherwise "iss" is not checked.
    std::string issuer;
    /// Required member of "aud" (a string, or an array of strings) when non-empty. When
    /// empty, a token that carries "aud" is refused (RFC 7519 §4.1.3: a recipient that does
    /// not identify itself with the audience must reject it).
    std::string audience;
    /// Clock skew allowed on exp, nbf and iat, in seconds.
    int64_t leeway_s = 30;
    /// A token without "exp" is refused ("missing exp") unless this is false.
    bool require_exp = true;
    /// Longer tokens are refused before any decoding ("token too long").
    std::size_t max_token_bytes = 8192;
};

/// Who a verified token says the connection is. Data only: what it may do is decided by
/// may_subscribe / may_publish against the namespace table.
struct identity {
    std::string user_id;                 ///< "sub": a non-empty string of at most 256 bytes
    std::vector<std::string> channels;   ///< "channels": names, or prefixes ending in '*'
    std::vector<std::string> roles;      ///< "roles"
    std::optional<int64_t> expires_at_s; ///< "exp" (Unix seconds, rounded down)
};

/// Verifies compact JWS tokens against a key set. One per shard: it keeps OpenSSL contexts
/// and buffers between calls, so it is not thread-safe; the key set must outlive it.
///
/// verify() order and its reasons (static strings, suitable for {"error":"<reason>"}):
///   1. length > max_token_bytes                          → "token too long"
///   2. not three base64url segments (strict: no padding, only A-Z a-z 0-9 - _, unused
///      trailing bits zero), header not a strict JSON object (no duplicate names at any
///      depth), "alg" / "kid" / "typ" not strings          → "malformed token"
///   3. "crit" present (no extension is understood)        → "unsupported crit header"
///   4. "alg" not in jwt_alg ("none" included)             → "algorithm not allowed"
///   5. no key with the token's "kid" (a key without kid matches any kid; no "kid" tries
///      every key)                                         → "unknown key"
///      such keys exist but none of the alg's type / JWK alg → "algorithm not allowed"
///   6. signature wrong for every candidate key (ECDSA: JOSE R||S of exactly 64 / 96
///      bytes; RSA-PSS: MGF1 with the same hash, salt = hash length) → "bad signature"
///   7. payload not a strict JSON object, a claim of the wrong type, a NumericDate that is
///      not a number within ±2^53                          → "malformed token"
///   8. "exp" absent (when required)                       → "missing exp"
///      now >= exp + leeway                                → "token expired"
///      now + leeway < nbf                                 → "token not yet valid"
///      now + leeway < iat                                 → "token issued in the future"
///   9. "iss" ≠ options.issuer (when set)                  → "wrong issuer"
///      "aud" does not name options.audience (see above)   → "wrong audience"
///  10. "sub" absent or empty                              → "missing sub"
/// The claims are read only after the signature has verified. `now_s` is Unix seconds.
/// Allocation: the decode buffers are sized at construction; the JSON parser grows to the
/// largest header or payload seen (at most max_token_bytes, kept for the next token); a
/// key's verify context is made on its first use; and once a signature has verified, the
/// identity's strings (sub, channels, roles) are built, also for a token then refused for
/// its times or claims. Nothing else of ours per token (OpenSSL may allocate inside a
/// signature check, Ed25519 and RSA-PSS especially).
class verifier {
public:
    verifier(const key_set& keys, verify_options options);
    ~verifier();
    verifier(const verifier&) = delete;
    verifier& operator=(const verifier&) = delete;

    result<identity, std::string_view> verify(std::string_view token, int64_t now_s) noexcept;

    const verify_options& options() const noexcept { return _options; }

private:
    struct state;
    const key_set& _keys;
    verify_options _options;
    std::unique_ptr<state> _state;
};

// --- permissions ---------------------------------------------------------------------------

/// Who may subscribe in a namespace.
enum class ns_access : uint8_t {
    public_access,  ///< "public": any authenticated user
    private_access, ///< "private": only channels granted by the token's "channels" claim
    role,           ///< "role=<name>": only users holding one of the listed roles
};

/// One --namespace NAME:RULE[,RULE…] option: who may subscribe and publish (access rules,
/// decided by token claims) and what the namespace's channels keep (channel features,
/// with or without JWT).
struct namespace_rule {
    std::string name;
    ns_access access = ns_access::public_access;
    std::vector<std::string> roles; ///< for ns_access::role (a user needs any one of them)
    bool publish = false;           ///< "publish": clients allowed to subscribe may publish
    bool access_given = false;      ///< public, private or role= was written (else public)
    uint32_t history = 0;           ///< "history=N": messages kept per channel (0: none)
    uint32_t history_ttl_s = 0;     ///< "history-ttl=S": seconds they are kept (0: no limit)
    bool presence = false;          ///< "presence": members tracked, join / leave sent
    bool ack = false;               ///< "ack": clients acknowledge messages (needs history=)
};

/// Bounds of the channel features' values.
inline constexpr uint32_t max_history_messages = 100000;
inline constexpr uint32_t max_history_ttl_s = 31536000; // a year

/// Parses NAME:RULE[,RULE…]. NAME is 1-64 bytes of [A-Za-z0-9_.-] and not "user" (a
/// built-in namespace), nor "sys" (sys_namespace). RULEs: at most one of "public",
/// "private" or one or more "role=<name>" (non-empty, no ','); optionally "publish"
/// (which needs one of those); optionally "history=N" (1..max_history_messages) and
/// "history-ttl=S" (1..max_history_ttl_s, needs history=), "presence", "ack" (needs history=: what is
/// not acknowledged is replayed from it); none repeated; a rule without an access word
/// must carry a channel feature and is public. The error says what is wrong, for the
/// operator.
result<namespace_rule, std::string> parse_namespace_rule(std::string_view option);

/// The configured namespaces. Built at start-up, then read-only.
class namespace_table {
public:
    /// Fails when the name is already configured.
    result<void, std::string> add(namespace_rule rule);
    /// The rule for namespace `name`, or nullptr.
    const namespace_rule* find(std::string_view name) const noexcept;

private:
    std::vector<namespace_rule> _rules;
};

/// The server's own channels (sys:stats, docs/protocol.md "The sys namespace"): built in
/// like "user", never configured with --namespace, written only by the server. With a
/// token, only users whose "roles" hold admin_role may subscribe there.
inline constexpr std::string_view sys_namespace = "sys";
inline constexpr std::string_view admin_role = "admin";

/// allowed, or refused with a short static reason (the body of a 403 / an error reply).
struct access_verdict {
    bool allowed = false;
    std::string_view reason;
};

/// The namespace of a channel: the part before its first ':'; empty when it has none.
std::string_view channel_namespace(std::string_view channel) noexcept;

/// True when the token's "channels" claim grants `channel`: an exact entry, or an entry
/// ending in '*' whose prefix starts the channel ("test-progress-*", "*" for all).
bool channel_granted(const identity& who, std::string_view channel) noexcept;

/// Subscribe rule, first match wins:
///   - no namespace ("lobby")                 → allowed (any authenticated user)
///   - "user:<id>"                            → only when <id> is who.user_id
///   - "sys:…"                                → only when who.roles holds admin_role
///   - a configured namespace                 → by its access (public / private / role)
///   - any other namespace                    → refused "namespace not configured"
/// Reasons: "channel belongs to another user", "admin role required", "namespace not
/// configured", "channel not granted by token", "role required".
access_verdict may_subscribe(const identity& who, std::string_view channel,
                             const namespace_table& rules) noexcept;

/// Client publish: only in a configured namespace with "publish", by a user who may
/// subscribe to the channel there. Channels without a namespace and "user:" channels are
/// written by the backend only. Reasons: those of may_subscribe, and "publish not allowed".
access_verdict may_publish(const identity& who, std::string_view channel,
                           const namespace_table& rules) noexcept;

} // namespace ringcast::auth
