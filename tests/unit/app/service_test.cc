// The systemd side (src/app/service.h): the watchdog pets only while every shard's loop
// turns; the notifier speaks to a datagram socket this test binds, as the manager would.
#include "service.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

using namespace ringcast::app;

TEST_CASE("watchdog pets only when every shard's loop moved since the last check",
          "[app][service]") {
    watchdog dog;
    CHECK_FALSE(dog.check({10, 20}).pet); // the first check only records
    CHECK(dog.check({11, 25}).pet);
    const watchdog::verdict stuck = dog.check({11, 30});
    CHECK_FALSE(stuck.pet);
    CHECK(stuck.stuck == std::vector<unsigned>{0});
    const watchdog::verdict both = dog.check({11, 30});
    CHECK(both.stuck == std::vector<unsigned>{0, 1});
    CHECK(dog.check({12, 31}).pet); // turning again
    CHECK_FALSE(dog.check({12, 31, 5}).pet); // a different shard count: records again
}

TEST_CASE("status_line says connections, rate and shards", "[app][service]") {
    CHECK(status_line(1, 0, 1) == "1 connection, 0 frames/s sent, 1 shard");
    CHECK(status_line(20000, 1234.6, 4) == "20000 connections, 1235 frames/s sent, 4 shards");
}

TEST_CASE("notifier sends one datagram per state to the socket it is given", "[app][service]") {
    char dir[] = "/tmp/ringcast-notify-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/notify";
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);

    notifier n(path, 5000000);
    REQUIRE(n.enabled());
    CHECK(n.error().empty());
    CHECK(n.watchdog_usec() == 5000000);
    CHECK(n.send("READY=1\nSTATUS=ok"));
    CHECK(n.send("WATCHDOG=1"));
    char buf[256];
    ssize_t got = recv(fd, buf, sizeof(buf), 0);
    CHECK(std::string(buf, std::size_t(got)) == "READY=1\nSTATUS=ok");
    got = recv(fd, buf, sizeof(buf), 0);
    CHECK(std::string(buf, std::size_t(got)) == "WATCHDOG=1");

    notifier moved = std::move(n);
    CHECK(moved.enabled());
    CHECK_FALSE(n.enabled()); // NOLINT: moved-from is disabled by contract
    CHECK_FALSE(n.send("READY=1"));

    close(fd);
    unlink(path.c_str());
    rmdir(dir);

    notifier relative("relative/path", 0);
    CHECK_FALSE(relative.enabled());
    CHECK(relative.error().find("absolute path") != std::string::npos);
    notifier nobody(std::string(dir) + "/gone", 0);
    CHECK_FALSE(nobody.enabled());
    CHECK(nobody.error().find("connect") != std::string::npos);
}

TEST_CASE("notifier from the environment: none without NOTIFY_SOCKET, watchdog for this pid",
          "[app][service]") {
    unsetenv("NOTIFY_SOCKET");
    CHECK_FALSE(notifier::from_environment().enabled());
    setenv("NOTIFY_SOCKET", "@ringcast-test-absent", 1);
    setenv("WATCHDOG_USEC", "2000000", 1);
    setenv("WATCHDOG_PID", "1", 1); // another process's watchdog
    // An abstract name nobody bound: connect fails, but the watchdog reading is the point.
    CHECK(notifier::from_environment().watchdog_usec() == 0);
    setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    CHECK(notifier::from_environment().watchdog_usec() == 2000000);
    unsetenv("WATCHDOG_PID");
    CHECK(notifier::from_environment().watchdog_usec() == 2000000);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
}
