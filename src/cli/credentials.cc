// Tokens and API keys for the command-line client (contracts in commands.h). A secret is
// never printed: errors name the file, the variable or the key's name.
#include "commands.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ringcast::cli {

namespace {

/// A token or key file is a line or a few dozen: 64 KiB is far above any real one.
constexpr std::size_t max_secret_file_bytes = 64 * 1024;

std::string trimmed(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return std::string(s);
}

} // namespace

result<std::string, failure> read_small_file(const std::string& path, std::size_t limit,
                                             std::string_view what) {
    const bool from_stdin = path == "-";
    std::unique_ptr<FILE, int (*)(FILE*)> file(from_stdin ? stdin : std::fopen(path.c_str(), "rb"),
                                               from_stdin ? [](FILE*) { return 0; } : &std::fclose);
    if (!file) {
        return unexpected{failure{exit_usage, "cannot read " + std::string(what) + " " + path +
                                                  ": " + std::strerror(errno)}};
    }
    std::string out;
    char buf[8192];
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, file.get())) {
        out.append(buf, n);
        if (out.size() > limit) {
            return unexpected{failure{exit_usage, std::string(what) + " " +
                                                      (from_stdin ? "on standard input" : path) +
                                                      " is larger than " +
                                                      std::to_string(limit) + " bytes"}};
        }
    }
    if (std::ferror(file.get())) {
        return unexpected{failure{exit_usage, "cannot read " + std::string(what) + " " + path}};
    }
    return out;
}

result<std::string, failure> read_token(const invocation& inv) {
    if (inv.token_file.empty()) {
        return inv.token;
    }
    auto text = read_small_file(inv.token_file, max_secret_file_bytes, "the token file");
    if (!text) {
        return unexpected{text.error()};
    }
    std::string token = trimmed(*text);
    if (token.empty()) {
        return unexpected{failure{exit_usage, "the token file " + inv.token_file + " is empty"}};
    }
    return token;
}

result<std::optional<std::string>, failure> read_api_key(const invocation& inv,
                                                          admin::api_scope scope) {
    std::string text;
    std::string source;
    if (!inv.api_key_file.empty()) {
        auto contents = read_small_file(inv.api_key_file, max_secret_file_bytes, "the key file");
        if (!contents) {
            return unexpected{contents.error()};
        }
        text = std::move(*contents);
        source = inv.api_key_file;
    } else if (!inv.api_key_text.empty()) {
        text = inv.api_key_text;
        source = "RINGCAST_API_KEY";
    } else {
        if (!inv.key_name.empty()) {
            return unexpected{failure{exit_usage, "--key " + inv.key_name +
                                                      " names a key, but no --api-key-file or "
                                                      "RINGCAST_API_KEY gives any"}};
        }
        return std::optional<std::string>();
    }
    // The server's own reader, so a file ringcastd accepts is one ringcast accepts.
    auto keys = admin::parse_api_keys(text, source);
    if (!keys) {
        return unexpected{failure{exit_usage, keys.error()}};
    }
    const admin::api_key* chosen = nullptr;
    for (const admin::api_key& k : *keys) {
        if (!inv.key_name.empty() ? k.name == inv.key_name : k.allows(scope)) {
            chosen = &k;
            break;
        }
    }
    if (chosen == nullptr && !inv.key_name.empty()) {
        std::string names;
        for (const admin::api_key& k : *keys) {
            names += (names.empty() ? "" : ", ") + k.name;
        }
        return unexpected{failure{exit_usage, "no key named " + inv.key_name + " in " + source +
                                                  " (it has: " + names + ")"}};
    }
    if (chosen == nullptr && !keys->empty()) {
        chosen = &keys->front();
    }
    if (chosen == nullptr) {
        return std::optional<std::string>();
    }
    return std::optional<std::string>(chosen->secret);
}

int report(const failure& f) {
    std::fprintf(stderr, "ringcast: %s\n", f.message.c_str());
    return f.exit_status;
}

} // namespace ringcast::cli
