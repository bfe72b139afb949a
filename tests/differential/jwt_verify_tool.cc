// jwt_verify_tool — auth::verifier on the command line, for the PyJWT cross-check
// (jwt_pyjwt.py): loads keys and options from its arguments, then verifies one token per
// line of stdin and prints one verdict per line:
//
//   ok sub=<user id> exp=<exp or -> channels=<a,b> roles=<x,y>
//   error <reason>
//
// Arguments: --secret-file F, --public-key F, --jwks-file F (each repeatable, at least one),
// --issuer S, --audience S, --leeway SECONDS, --now UNIX_SECONDS (default: the clock),
// --no-require-exp. A key that fails to load prints "load-error <message>" and exits 2.
#include <ringcast/auth.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

namespace {

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        out += (out.empty() ? "" : ",") + item;
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    using namespace ringcast::auth;
    key_set keys;
    verify_options options;
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--no-require-exp") {
            options.require_exp = false;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr,
                         "usage: %s [--secret-file F|--public-key F|--jwks-file F]... "
                         "[--issuer S] [--audience S] [--leeway N] [--now T] "
                         "[--no-require-exp] < tokens\n",
                         argv[0]);
            return 64;
        }
        const std::string value = argv[++i];
        ringcast::result<void, std::string> loaded;
        if (flag == "--secret-file") {
            loaded = keys.load_secret_file(value);
        } else if (flag == "--public-key") {
            loaded = keys.load_public_key_file(value);
        } else if (flag == "--jwks-file") {
            loaded = keys.load_jwks_file(value);
        } else if (flag == "--issuer") {
            options.issuer = value;
        } else if (flag == "--audience") {
            options.audience = value;
        } else if (flag == "--leeway") {
            options.leeway_s = std::strtoll(value.c_str(), nullptr, 10);
        } else if (flag == "--now") {
            now = std::strtoll(value.c_str(), nullptr, 10);
        } else {
            std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
            return 64;
        }
        if (!loaded) {
            std::printf("load-error %s\n", loaded.error().c_str());
            return 2;
        }
    }
    verifier check(keys, options);
    std::string line;
    while (std::getline(std::cin, line)) {
        auto verdict = check.verify(line, now);
        if (!verdict) {
            std::printf("error %.*s\n", static_cast<int>(verdict.error().size()),
                        verdict.error().data());
            continue;
        }
        std::printf("ok sub=%s exp=%s channels=%s roles=%s\n", verdict->user_id.c_str(),
                    verdict->expires_at_s ? std::to_string(*verdict->expires_at_s).c_str() : "-",
                    joined(verdict->channels).c_str(), joined(verdict->roles).c_str());
    }
    return 0;
}
