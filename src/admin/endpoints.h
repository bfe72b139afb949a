// What the API's endpoint handlers share (private to src/admin): the request as the route
// table hands it over, and a publish waiting for its home shards. The handlers themselves
// are members of admin::api (include/ringcast/admin.h), one per route of api.cc's table.
#pragma once

#include <ringcast/admin.h>
#include <ringcast/http.h>
#include <ringcast/pubsub.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace ringcast::admin {

/// One routed /api/ request, valid for the handler call only. Access has been checked and
/// the method is the route's.
struct call {
    conn_handle h;
    const http::request& req;
    http::keep_alive ka;
    /// A route with a name after its path (/api/channels/<name>): the name, percent-decoded
    /// and valid for that route; empty for the others.
    std::string_view name;
};

/// Where api::publish_each puts each item of a body: /api/publish and /api/send.
enum class addressed_to : uint8_t {
    channel, ///< on its "channel" (/api/publish)
    user,    ///< on user:<its "userId"> (/api/send)
};

/// A publish request waiting for the home shards of its items (pubsub::engine reports each
/// item's offset through api::on_published, in any order). Lives in api::_publishes.
struct pending_publish {
    conn_handle h;
    http::keep_alive ka = http::keep_alive::yes;
    /// True while api::issue hands items to the engine: an item ordered on this shard
    /// reports at once, and the answer must wait until every item has been handed over.
    bool issuing = true;
    pubsub::body_shape shape = pubsub::body_shape::single;
    uint32_t remaining = 0;
    std::vector<uint64_t> offsets; // by item; 0: not ordered (`failure` says why)
    std::string_view failure;      // the first item's that failed (a static text)
};

} // namespace ringcast::admin
