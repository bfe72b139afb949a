// The one Catch2 v2 main for every unit test executable. The TAP reporter is compiled in so
// meson (protocol: 'tap') counts test cases rather than executables.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <catch2/catch_reporter_tap.hpp>
