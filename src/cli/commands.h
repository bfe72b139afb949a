// The commands of `ringcast` (docs/cli.md), each run from main() with a checked
// invocation, each returning the process's exit status (options.h). Errors are printed
// here, to standard error, prefixed "ringcast: ". Private to src/cli.
#pragma once

#include "options.h"

#include <ringcast/admin.h>

#include <csignal>
#include <optional>
#include <string>

namespace ringcast::cli {

/// Set by the SIGINT/SIGTERM handler main() installs; sub closes with 1000 when it is.
extern volatile std::sig_atomic_t stop_requested;

/// sub: subscribe on /ws and print what arrives.
int run_sub(const invocation& inv);

/// pub, send, stats, online, presence: one request to the backend API.
int run_api(const invocation& inv);

/// Prints "ringcast: MESSAGE" to standard error and returns the failure's exit status.
int report(const failure& f);

/// The token for /ws: --token, the trimmed contents of --token-file, or RINGCAST_TOKEN;
/// empty when none was given.
result<std::string, failure> read_token(const invocation& inv);

/// The API key secret to send: from --api-key-file or RINGCAST_API_KEY, read in the
/// server's format (admin::parse_api_keys): the key named --key, else the first holding
/// `scope`, else the first (the server then names the missing scope). nullopt when neither
/// source was given.
result<std::optional<std::string>, failure> read_api_key(const invocation& inv,
                                                          admin::api_scope scope);

/// The contents of a small file (a token, a key file, standard input for "-"): at most
/// `limit` bytes, else an error naming `what`.
result<std::string, failure> read_small_file(const std::string& path, std::size_t limit,
                                             std::string_view what);

} // namespace ringcast::cli
