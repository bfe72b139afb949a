// algorithms.cc — the JWS algorithm names (RFC 7518 §3.1, RFC 8037 §3.1) and the key type
// each one verifies with. The table is the whole list: anything not in it is refused.
#include <ringcast/auth.h>

#include <array>

namespace ringcast::auth {

namespace {

struct alg_row {
    jwt_alg alg;
    std::string_view name;
    key_type type;
};

constexpr std::array<alg_row, 10> alg_table{{
    {jwt_alg::hs256, "HS256", key_type::secret},
    {jwt_alg::hs384, "HS384", key_type::secret},
    {jwt_alg::hs512, "HS512", key_type::secret},
    {jwt_alg::rs256, "RS256", key_type::rsa},
    {jwt_alg::rs384, "RS384", key_type::rsa},
    {jwt_alg::rs512, "RS512", key_type::rsa},
    {jwt_alg::ps256, "PS256", key_type::rsa},
    {jwt_alg::es256, "ES256", key_type::ec_p256},
    {jwt_alg::es384, "ES384", key_type::ec_p384},
    {jwt_alg::eddsa, "EdDSA", key_type::ed25519},
}};

const alg_row& row(jwt_alg alg) noexcept {
    const auto index = static_cast<std::size_t>(alg);
    RINGCAST_ASSERT(index < alg_table.size() && alg_table[index].alg == alg);
    return alg_table[index];
}

} // namespace

std::optional<jwt_alg> parse_alg(std::string_view name) noexcept {
    for (const alg_row& r : alg_table) {
        if (r.name == name) {
            return r.alg;
        }
    }
    return std::nullopt;
}

std::string_view alg_name(jwt_alg alg) noexcept {
    return row(alg).name;
}

key_type alg_key_type(jwt_alg alg) noexcept {
    return row(alg).type;
}

} // namespace ringcast::auth
