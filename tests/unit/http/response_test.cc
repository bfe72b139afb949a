// Tests for src/http/response.cc: reason phrases, response layout and the JSON error body.
#include <ringcast/http.h>

#include <catch2/catch.hpp>

#include <string>

using namespace ringcast::http;
using namespace std::string_literals;

TEST_CASE("status_text names every status the server sends", "[http][response]") {
    CHECK(status_text(101) == "Switching Protocols");
    CHECK(status_text(200) == "OK");
    CHECK(status_text(204) == "No Content");
    CHECK(status_text(400) == "Bad Request");
    CHECK(status_text(401) == "Unauthorized");
    CHECK(status_text(403) == "Forbidden");
    CHECK(status_text(404) == "Not Found");
    CHECK(status_text(405) == "Method Not Allowed");
    CHECK(status_text(408) == "Request Timeout");
    CHECK(status_text(413) == "Content Too Large");
    CHECK(status_text(414) == "URI Too Long");
    CHECK(status_text(426) == "Upgrade Required");
    CHECK(status_text(429) == "Too Many Requests");
    CHECK(status_text(431) == "Request Header Fields Too Large");
    CHECK(status_text(500) == "Internal Server Error");
    CHECK(status_text(501) == "Not Implemented");
    CHECK(status_text(503) == "Service Unavailable");
    CHECK(status_text(505) == "HTTP Version Not Supported");
    CHECK(status_text(299) == "Unknown");
    CHECK(status_text(-1) == "Unknown");
}

TEST_CASE("make_response writes status line, Content-Type, Content-Length and body",
          "[http][response]") {
    CHECK(make_response(200, "text/plain", "ok\n", keep_alive::yes) ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 3\r\n"
          "\r\n"
          "ok\n");
}

TEST_CASE("make_response adds Connection: close when the connection ends", "[http][response]") {
    CHECK(make_response(404, "text/plain", "", keep_alive::no) == "HTTP/1.1 404 Not Found\r\n"
                                                                  "Content-Type: text/plain\r\n"
                                                                  "Content-Length: 0\r\n"
                                                                  "Connection: close\r\n"
                                                                  "\r\n");
}

TEST_CASE("make_response announces the WebSocket version on 426", "[http][response]") {
    const std::string open = make_response(426, "text/plain", "x", keep_alive::yes);
    CHECK(open == "HTTP/1.1 426 Upgrade Required\r\n"
                  "Content-Type: text/plain\r\n"
                  "Content-Length: 1\r\n"
                  "Upgrade: websocket\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Connection: Upgrade\r\n"
                  "\r\n"
                  "x");
    const std::string closing = make_response(426, "text/plain", "x", keep_alive::no);
    CHECK(closing.find("Connection: Upgrade, close\r\n") != std::string::npos);
    CHECK(closing.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
}

TEST_CASE("make_response lists the allowed method on 405", "[http][response]") {
    const std::string out = make_response(405, "text/plain", "", keep_alive::yes);
    CHECK(out.find("\r\nAllow: GET\r\n") != std::string::npos);
}

TEST_CASE("make_response inserts extra headers verbatim before the blank line",
          "[http][response]") {
    CHECK(make_response(503, "text/plain", "draining", keep_alive::no,
                        "Retry-After: 5\r\nX-Shard: 3\r\n") ==
          "HTTP/1.1 503 Service Unavailable\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 8\r\n"
          "Connection: close\r\n"
          "Retry-After: 5\r\n"
          "X-Shard: 3\r\n"
          "\r\n"
          "draining");
}

TEST_CASE("make_response sends no Content-Length or body with 204 and 1xx", "[http][response]") {
    CHECK(make_response(204, "", "ignored", keep_alive::yes) == "HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(make_response(101, "", "", keep_alive::yes) ==
          "HTTP/1.1 101 Switching Protocols\r\n\r\n");
}

TEST_CASE("make_error_response wraps the reason in a JSON error body", "[http][response]") {
    const std::string body = R"({"error":{"code":431,"message":"too many header fields"}})";
    CHECK(make_error_response(431, "too many header fields", keep_alive::no) ==
          "HTTP/1.1 431 Request Header Fields Too Large\r\n"
          "Content-Type: application/json\r\n"
          "Content-Length: " +
              std::to_string(body.size()) +
              "\r\n"
              "Connection: close\r\n"
              "\r\n" +
              body);
}

TEST_CASE("a refusal that asks the client back later carries Retry-After", "[http][response]") {
    CHECK(retry_after(0) == "Retry-After: 0\r\n");
    CHECK(retry_after(10) == "Retry-After: 10\r\n");
    CHECK(retry_after(4294967295u) == "Retry-After: 4294967295\r\n");
    const std::string r = make_error_response(429, "slow down", keep_alive::no, retry_after(1));
    CHECK(r.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
    CHECK(r.find("\r\nRetry-After: 1\r\n") != std::string::npos);
    CHECK(r.find("Retry-After") < r.find("\r\n\r\n"));
    CHECK(r.ends_with(R"({"error":{"code":429,"message":"slow down"}})"));
}

TEST_CASE("make_error_response escapes quotes, backslashes and control characters",
          "[http][response]") {
    const std::string out =
        make_error_response(400, "bad \"key\" \\ x\n\t\x01\x1f\0 caf\xc3\xa9"s, keep_alive::yes);
    const std::string body =
        R"({"error":{"code":400,"message":"bad \"key\" \\ x\n\t\u0001\u001f\u0000 caf)"
        "\xc3\xa9\"}}";
    REQUIRE(out.size() > body.size());
    CHECK(out.substr(out.size() - body.size()) == body);
    CHECK(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
}
