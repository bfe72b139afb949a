#include <ringcast/core.h>

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast;

TEST_CASE("a frame keeps its bytes until the last reference is released", "[core][frame]") {
    core::frame_ref a = core::make_frame(std::string_view("hello"));
    core::frame_ref b = a;
    core::frame_ref c = std::move(b);
    CHECK(!b);
    a = core::frame_ref();
    REQUIRE(c);
    CHECK(std::string(reinterpret_cast<const char*>(c->data()), c->size()) == "hello");
}

TEST_CASE("leak and adopt hand one reference across an API that stores raw pointers",
          "[core][frame]") {
    core::frame_ref a = core::make_frame(std::string_view("x"));
    core::frame* raw = core::frame_ref(a).leak();
    core::frame_ref back = core::frame_ref::adopt(raw);
    CHECK(back.get() == a.get());
}
