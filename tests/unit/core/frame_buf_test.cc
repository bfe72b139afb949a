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

TEST_CASE("a spliced frame holds its body until the frame itself is released",
          "[core][frame]") {
    core::frame_ref body = core::make_frame(std::string_view("shared payload"));
    core::frame* raw_body = body.get();
    core::frame_ref f = core::make_spliced_frame(4, 2, body);
    body = core::frame_ref(); // only the spliced frame holds the body now
    CHECK(f->size() == 4 + 14);
    CHECK(f->own_size() == 4);
    CHECK(f->split() == 2);
    REQUIRE(f->body() == raw_body);
    core::frame_piece pieces[3];
    CHECK(core::frame_pieces(*f.get(), 0, pieces) == 3);
    CHECK(pieces[1].size == 14);
    CHECK(std::string(reinterpret_cast<const char*>(pieces[1].data), pieces[1].size) ==
          "shared payload");
    // Skipping into the body: the head is gone, the body starts late.
    CHECK(core::frame_pieces(*f.get(), 5, pieces) == 2);
    CHECK(pieces[0].size == 11);
    CHECK(pieces[1].size == 2);
}
