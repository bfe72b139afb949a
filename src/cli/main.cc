// ringcast: the command-line client of ringcastd (docs/cli.md). Parses the command line,
// installs the signal handlers sub needs, runs the command, returns its exit status.
#include "commands.h"
#include "options.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

using namespace ringcast;

namespace {

/// The first SIGINT or SIGTERM asks the command to end cleanly (sub closes with 1000);
/// a second one ends the process at once, for a server that never answers the close.
void on_stop_signal(int) {
    if (cli::stop_requested != 0) {
        ::_exit(130);
    }
    cli::stop_requested = 1;
}

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked poll() returns EINTR and sees the flag
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    auto inv = cli::parse_arguments(args, [](const char* name) { return std::getenv(name); });
    if (!inv) {
        std::fprintf(stderr, "ringcast: %s\n", inv.error().c_str());
        return cli::exit_usage;
    }
    if (inv->help) {
        std::fputs(cli::usage(inv->cmd).c_str(), stdout);
        return cli::exit_ok;
    }
    if (inv->version) {
        std::printf("ringcast %s\n", RINGCAST_VERSION);
        return cli::exit_ok;
    }
    install_stop_handlers();
    if (inv->cmd == cli::command::sub) {
        return cli::run_sub(*inv);
    }
    return cli::run_api(*inv);
}
