// ringcastd's settings: flags parsed and validated here, then handed to core and net.
#pragma once

#include <ringcast/core.h>
#include <ringcast/net.h>

#include <string>
#include <vector>

namespace ringcast::app {

/// The environment variable ringcastd reads the backend API key from (or --api-key-file).
inline constexpr const char* api_key_env = "RINGCAST_API_KEY";

struct config {
    net::endpoint listen{"127.0.0.1", 8080};
    /// --api-listen: the backend API on its own address; unset: on the main listener.
    bool api_listen_set = false;
    net::endpoint api_listen;
    /// 0: one shard per CPU of the affinity mask.
    unsigned shards = 0;
    core::runtime_config runtime;
    net::gateway_config gateway;
    /// Where the API key came from (the --api-key-file path or the variable's name), for
    /// the start-up line; empty: no key.
    std::string api_key_source;
    /// --max-connections was given (else the default adapts to RLIMIT_NOFILE quietly).
    bool max_connections_set = false;
    bool check_only = false;
    bool show_help = false;
    bool show_version = false;
};

/// Parses argv; the error is a sentence naming the flag, the value and what is accepted.
result<config, std::string> parse_args(int argc, char** argv);

/// The --help text.
std::string usage();

/// CPUs this process may run on (sched_getaffinity), in order.
std::vector<int> allowed_cpus();

} // namespace ringcast::app
