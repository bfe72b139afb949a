// The Redis broker of one shard (docs/scaling.md): pubsub::broker over two links.
//
//   command link      EVALSHA publish  (offset, epoch, stamp, XADD, PUBLISH: one script, so
//                                        the order of offsets is the order of messages)
//                     EVALSHA point    (a watched channel's epoch and last offset)
//                     EVALSHA history  (XRANGE after an offset, or the newest N)
//                     EVALSHA claim    (a user's slots on every live shard ≤ the limit?)
//                     HSET / HDEL      (this shard's count of a user's slots)
//                     EVALSHA members  (this shard's presence entries: set, replace, sweep)
//                     EVALSHA presence (a channel's members on every live node)
//                     EVALSHA live     (this shard's liveness, every 2 s; who stopped)
//   subscriber link   SUBSCRIBE / UNSUBSCRIBE <prefix>:<channel>, one channel per request
//
// hiredis 0.14 reads RESP2 only, where a subscribed connection takes no other command:
// hence two links. The point of a watch is read on the command link after the SUBSCRIBE's
// confirmation; messages that arrive between the two are held (watch::held) and those at
// or before the point dropped by the engine, so a subscriber misses nothing after its point
// and gets nothing twice.
//
// A watch's states:
//
//   down ──sub link up──► subscribing ──confirmed──► pointing ──point read──► live
//     ▲                                                 │ command link down / error
//     └───────── sub link down (every watch) ◄──────────┴──► needs_point ──command link up──┘
#include <ringcast/log.h>
#include <ringcast/redis.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace ringcast::redis {

namespace {

// KEYS: meta (hash: e epoch, o last offset, t last stamp), history (stream).
// ARGV: epoch if new, history count (0: none kept), history ttl s, meta ttl s, pub/sub
// channel, body. A new epoch drops the old history: offsets restart under it.
constexpr std::string_view publish_script = R"lua(
local e = redis.call('HGET', KEYS[1], 'e')
if not e then
  e = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', e, 'o', 0, 't', 0)
  redis.call('DEL', KEYS[2])
end
local o = redis.call('HINCRBY', KEYS[1], 'o', 1)
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[1], 't')) or 0
if t < last then t = last end
redis.call('HSET', KEYS[1], 't', t)
redis.call('EXPIRE', KEYS[1], ARGV[4])
local keep = tonumber(ARGV[2])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, o .. '-1', 't', t, 'b', ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[5], e .. ' ' .. o .. ' ' .. t .. ' ' .. ARGV[6])
return {e, o, t}
)lua";

// KEYS: meta, history. ARGV: epoch if new, watched ttl s. Returns {epoch, last offset}. A
// meta made here (nothing published yet) lives the watched ttl, not the publish's week, and
// an existing one at least that long: the watching nodes keep extending it (touch_watched).
constexpr std::string_view point_script = R"lua(
local e = redis.call('HGET', KEYS[1], 'e')
if not e then
  e = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', e, 'o', 0, 't', 0)
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2], 'GT')
end
return {e, tonumber(redis.call('HGET', KEYS[1], 'o'))}
)lua";

// KEYS: meta, history. ARGV: after (0: the newest), count. Returns {epoch or nil, last
// offset, then id, stamp, body per message, oldest first}.
constexpr std::string_view history_script = R"lua(
local e = redis.call('HGET', KEYS[1], 'e')
if not e then return {false, 0} end
local o = tonumber(redis.call('HGET', KEYS[1], 'o'))
local after = tonumber(ARGV[1])
local entries
if after == 0 then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', '+', 'COUNT', ARGV[2])
end
local out = {e, o}
local n = #entries
for i = 1, n do
  local en = entries[i]
  if after == 0 then en = entries[n - i + 1] end
  out[#out + 1] = en[1]
  out[#out + 1] = en[2][2]
  out[#out + 1] = en[2][4]
end
return out
)lua";

// KEYS: meta, history. ARGV: after (0: from the oldest), count. Returns {epoch or nil, last
// offset, the oldest retained offset (last + 1: none), then id, stamp, body per message,
// oldest first}: GET /api/history's page.
constexpr std::string_view range_script = R"lua(
local e = redis.call('HGET', KEYS[1], 'e')
if not e then return {false, 0, 1} end
local o = tonumber(redis.call('HGET', KEYS[1], 'o'))
local first = o + 1
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #oldest > 0 then first = tonumber(string.match(oldest[1][1], '^(%d+)')) end
local entries = redis.call('XRANGE', KEYS[2], (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
local out = {e, o, first}
for i = 1, #entries do
  out[#out + 1] = entries[i][1]
  out[#out + 1] = entries[i][2][2]
  out[#out + 1] = entries[i][2][4]
end
return out
)lua";

// KEYS: the user's hash (field: a shard's id, value: the slots it holds). ARGV: this
// shard's id, its slots with this claim, the limit, the liveness key prefix, the hash's
// ttl ms. Entries of shards whose liveness key expired are dropped, not counted.
constexpr std::string_view claim_script = R"lua(
local total = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local shard = fields[i]
  if shard ~= ARGV[1] then
    if redis.call('EXISTS', ARGV[4] .. shard) == 1 then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', KEYS[1], shard)
    end
  end
end
if total > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
)lua";

// Presence (docs/scaling.md "Presence"). A change of the users' totals announces a user's
// first connection anywhere and its last on the channel's pub/sub, in the channel's order:
// "presence join|leave <users with the user> <user>" (a message starts with its hex epoch,
// so the first word tells them apart).
//
// KEYS: the channel's presence hash (field "<shard id>|<user>": that shard's connections
// of the user; user "" the anonymous ones), its users hash (user: connections on every
// node). ARGV: mode, this shard's id, the pub/sub channel, the liveness key prefix, the
// hashes' ttl ms, then user, connections pairs. Modes: set (the named entries of this
// shard), replace (this shard's entries become the named ones; entries of shards whose
// liveness key expired are removed first), sweep (only that removal). Returns the entries
// removed for dead shards.
constexpr std::string_view members_script = R"lua(
local function adjust(user, delta)
  local before = tonumber(redis.call('HGET', KEYS[2], user)) or 0
  local after = before + delta
  if after <= 0 then redis.call('HDEL', KEYS[2], user) else redis.call('HSET', KEYS[2], user, after) end
  if before <= 0 and after > 0 then
    redis.call('PUBLISH', ARGV[3], 'presence join ' .. redis.call('HLEN', KEYS[2]) .. ' ' .. user)
  elseif before > 0 and after <= 0 then
    redis.call('PUBLISH', ARGV[3], 'presence leave ' .. (redis.call('HLEN', KEYS[2]) + 1) .. ' ' .. user)
  end
end
local mode, me = ARGV[1], ARGV[2]
local old = {}
local swept = 0
if mode ~= 'set' then
  local fields = redis.call('HGETALL', KEYS[1])
  local live = {}
  for i = 1, #fields, 2 do
    local bar = string.find(fields[i], '|', 1, true)
    if bar then
      local shard = string.sub(fields[i], 1, bar - 1)
      local user = string.sub(fields[i], bar + 1)
      local n = tonumber(fields[i + 1]) or 0
      if shard == me then
        if mode == 'replace' then old[user] = n end
      else
        local alive = live[shard]
        if alive == nil then
          alive = redis.call('EXISTS', ARGV[4] .. shard) == 1
          live[shard] = alive
        end
        if not alive then
          swept = swept + 1
          redis.call('HDEL', KEYS[1], fields[i])
          if user ~= '' then adjust(user, -n) end
        end
      end
    end
  end
end
local new = {}
for i = 6, #ARGV, 2 do
  local user = ARGV[i]
  new[user] = tonumber(ARGV[i + 1])
  if old[user] == nil then
    old[user] = tonumber(redis.call('HGET', KEYS[1], me .. '|' .. user)) or 0
  end
end
for user, was in pairs(old) do
  local now = new[user] or 0
  if now ~= was then
    if now == 0 then
      redis.call('HDEL', KEYS[1], me .. '|' .. user)
    else
      redis.call('HSET', KEYS[1], me .. '|' .. user, now)
    end
    if user ~= '' then adjust(user, now - was) end
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return swept
)lua";

// KEYS: the channel's presence hash. ARGV: the liveness key prefix, the most users named.
// Returns {anonymous, connections, users, then user, connections per user when users is at
// most the limit}, counting live shards' entries only.
constexpr std::string_view presence_script = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
local totals = {}
local names = {}
local anonymous, connections = 0, 0
for i = 1, #fields, 2 do
  local bar = string.find(fields[i], '|', 1, true)
  if bar then
    local shard = string.sub(fields[i], 1, bar - 1)
    local alive = live[shard]
    if alive == nil then
      alive = redis.call('EXISTS', ARGV[1] .. shard) == 1
      live[shard] = alive
    end
    local n = tonumber(fields[i + 1]) or 0
    if alive and n > 0 then
      local user = string.sub(fields[i], bar + 1)
      connections = connections + n
      if user == '' then
        anonymous = anonymous + n
      else
        if totals[user] == nil then
          totals[user] = 0
          names[#names + 1] = user
        end
        totals[user] = totals[user] + n
      end
    end
  end
end
local out = {anonymous, connections, #names}
if #names <= tonumber(ARGV[2]) then
  for _, user in ipairs(names) do
    out[#out + 1] = user
    out[#out + 1] = totals[user]
  end
end
return out
)lua";

// KEYS: the shards' sorted set (member: shard id, score: its last refresh, ms). ARGV: this
// shard's id, its liveness key, the key's ttl ms, how long a shard that stopped is kept in
// the set (ms). Returns {1 if this shard's key still existed, the shards that stopped
// refreshing within that time}.
constexpr std::string_view live_script = R"lua(
local existed = redis.call('EXISTS', ARGV[2])
redis.call('SET', ARGV[2], '1', 'PX', ARGV[3])
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - tonumber(ARGV[4]))
return {existed, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t - tonumber(ARGV[3]), 'LIMIT', 0, 100)}
)lua";

/// A shard's liveness: its key lives this long and is refreshed every live_refresh_s, so
/// a node that died stops counting within live_ttl_ms (docs/scaling.md "Connections per
/// user").
constexpr uint32_t live_ttl_ms = 6000;
constexpr uint64_t live_refresh_ms = 2000;
/// A user's hash outlives its last change by a day: entries of users who never come back
/// after their node died do not stay in Redis for ever.
constexpr uint32_t user_ttl_ms = 86400 * 1000;
/// A shard that stopped refreshing stays in the shards' set this long, so every node's
/// refresh (every live_refresh_ms) sees it stopped and sweeps its channels.
constexpr uint32_t dead_kept_ms = 60000;
/// Presence channels swept per tick (1/s) after a shard stopped: one script each.
constexpr std::size_t sweeps_per_tick = 256;

/// Seven days: a channel's order (epoch, offset) outlives a week without publishes; past
/// it a new epoch starts, which a recovering client is told (docs/scaling.md "Keys").
constexpr uint32_t meta_ttl_s = 7 * 86400;
/// A channel's order while only watched (subscribed to, never published to): an hour,
/// extended by every node that watches it (touch_watched) every 20 minutes. So a client
/// that subscribes to fresh names and leaves costs Redis one key per name for an hour, not
/// a week (perf/attack/engine: 180,000 names in 30 s kept 33 MB for 7 days before).
constexpr uint32_t watched_ttl_s = 3600;
constexpr uint64_t touch_every_ms = 20 * 60 * 1000;
/// Watched channels touched per tick (1/s): 256 a second covers 307,200 channels per shard
/// in the 20 minutes.
constexpr std::size_t touches_per_tick = 256;
/// Writes of user counts and presence members the command link had no room for (its bound
/// of pending requests, link::max_pending = 65,536): kept, the latest value per user and
/// per (channel, user), and written on the tick as room allows, so the burst that writes
/// every count and member again after a reconnect is paged out rather than cut off past
/// the bound. At most this many entries; past it a change is dropped and counted
/// (engine_presence_dropped, engine_user_counts_dropped) until the next reconnect writes
/// everything anew. 262,144 is four times what one shard's connection cap (65,536) can hold.
constexpr std::size_t max_unsent_writes = std::size_t{1} << 18;

/// Messages held for one watch while its point is read (a round trip); past it the oldest
/// are dropped and counted (engine_buffered_dropped), and so past the bytes every watch of
/// the shard holds: 10,000 messages of the 1 MiB the API takes at most could otherwise be
/// 10 GiB for one channel. 64 MiB is ~65,000 typical 1 KB messages: a point read waits one
/// round trip (Redis adds 0.2-0.3 ms to a delivery here, perf/RESULTS.md), so only a Redis stalled for seconds under a flood reaches it.
constexpr std::size_t max_held_messages = 10000;
constexpr std::size_t max_held_bytes = std::size_t{64} << 20;
/// A resubscribed watch reads at most this many messages it missed from the stream (one
/// read, like a recovery's bound); a longer gap is left to the clients' recovery.
constexpr uint64_t max_gap_fill = 1000;

/// This process's id among the nodes: a broadcast it hands on carries it, so its own shards,
/// which delivered it already, skip it when it comes back. Drawn once, by the first shard
/// (a function-local static: its initialisation is thread-safe).
const std::string& node_id() {
    static const std::string id = [] {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
            r = core::monotonic_us() * 0x9E3779B97F4A7C15ull;
        }
        char text[20];
        std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(r));
        return std::string(text);
    }();
    return id;
}

std::string sha1_hex(std::string_view text) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char b : digest) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

bool to_u64(std::string_view text, uint64_t& out) noexcept {
    const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size();
}

/// A reply element as a number: an integer, or a string of digits.
bool number_of(const redisReply* r, uint64_t& out) noexcept {
    if (r == nullptr) {
        return false;
    }
    if (type_of(*r) == reply_type::integer) {
        out = static_cast<uint64_t>(integer_of(*r));
        return integer_of(*r) >= 0;
    }
    return to_u64(text_of(*r), out);
}

/// Splits the next field off `rest` at `sep`; false when there is none.
bool take(std::string_view& rest, char sep, std::string_view& field) noexcept {
    const std::size_t at = rest.find(sep);
    if (at == std::string_view::npos) {
        return false;
    }
    field = rest.substr(0, at);
    rest = rest.substr(at + 1);
    return true;
}

/// A body: event, priority, user id, ack, each ending in '\n', then the data.
bool parse_body(std::string_view body, pubsub::broker_message& m) noexcept {
    std::string_view prio;
    std::string_view ack;
    if (!take(body, '\n', m.event) ||
        !take(body, '\n', prio) || !take(body, '\n', m.user_id) || !take(body, '\n', ack) ||
        prio.size() != 1 || prio[0] < '1' || prio[0] > '4' || body.empty()) {
        return false;
    }
    m.prio = static_cast<pubsub::priority>(prio[0] - '0');
    m.ack = ack == "1";
    m.data = body;
    return true;
}

enum class tag_kind : uint8_t {
    publish = 1,
    point,
    history,
    range, ///< a history page for the API
    gap,   ///< what a resubscribed watch missed
    subscribe,
    unsubscribe,
    script,
    claim,
    count, ///< a count pushed: nothing waits for the reply
    members,  ///< presence entries set, replaced or swept
    presence, ///< a presence page read
    live,     ///< the liveness refreshed; who stopped
    broadcast, ///< a broadcast handed on, the broadcast channel subscribed: nothing waits
};

uint64_t make_tag(tag_kind kind, uint64_t seq) noexcept {
    return (uint64_t(kind) << 56) | (seq & ((uint64_t{1} << 56) - 1));
}
tag_kind kind_of(uint64_t tag) noexcept {
    return static_cast<tag_kind>(tag >> 56);
}
uint64_t seq_of(uint64_t tag) noexcept {
    return tag & ((uint64_t{1} << 56) - 1);
}

class redis_broker final : public pubsub::broker, private link_owner {
public:
    redis_broker(core::conn_io& io, core::outbound_connector& connector,
                 const redis_target& target, link_timing timing)
        : _io(io), _target(target),
          _cmd(io, connector, target, "cmd-" + std::to_string(unsigned(io.id())), *this, timing),
          _sub(io, connector, target, "sub-" + std::to_string(unsigned(io.id())), *this, timing),
          _publish_sha(sha1_hex(publish_script)), _point_sha(sha1_hex(point_script)),
          _history_sha(sha1_hex(history_script)), _claim_sha(sha1_hex(claim_script)),
          _members_sha(sha1_hex(members_script)), _presence_sha(sha1_hex(presence_script)),
          _live_sha(sha1_hex(live_script)), _range_sha(sha1_hex(range_script)) {
        if (getrandom(&_epoch_base, sizeof(_epoch_base), 0) != sizeof(_epoch_base)) {
            _epoch_base = core::monotonic_us() * 0x9E3779B97F4A7C15ull;
        }
        char id[20];
        std::snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(_epoch_base));
        _shard_id = id;
        _live_key = _target.prefix + ":live:" + _shard_id;
        _cmd.start();
        _sub.start();
    }

    ~redis_broker() override {
        _cmd.stop();
        _sub.stop();
    }

    void set_events(pubsub::broker_events* events) noexcept override { _events = events; }

    bool up() const noexcept override { return _cmd.up() && _sub.up(); }

    pubsub::broker_stats stats() const noexcept override {
        pubsub::broker_stats s = _stats;
        s.links = 2;
        for (const link* l : {&_cmd, &_sub}) {
            const link_stats& ls = l->stats();
            s.links_up += ls.up ? 1 : 0;
            s.connects += ls.connects;
            s.connect_failures += ls.connect_failures;
            s.disconnects += ls.disconnects;
            s.requests += ls.requests;
            s.errors += ls.errors;
            s.pending += ls.pending;
        }
        s.watched = _watched.size();
        return s;
    }

    void publish(const pubsub::broker_message& m, const pubsub::channel_policy& keep,
                 uint64_t token) noexcept override {
        if (!_cmd.up()) {
            ++_stats.publish_failed;
            return _events->on_ordered(token, {}, 0, "the Redis engine is unavailable; retry");
        }
        std::string body;
        body.reserve(m.event.size() + m.user_id.size() + m.data.size() + 8);
        body.append(m.event).append(1, '\n');
        body.append(1, char('0' + int(m.prio))).append(1, '\n');
        body.append(m.user_id).append(1, '\n').append(m.ack ? "1\n" : "0\n").append(m.data);
        const std::string meta = key(m.channel, "meta");
        const std::string history = key(m.channel, "history");
        const std::string epoch = next_epoch();
        const std::string count = std::to_string(keep.count);
        const std::string ttl = std::to_string(keep.ttl_s > 0 ? keep.ttl_s : meta_ttl_s);
        const std::string meta_ttl = std::to_string(meta_ttl_s);
        const std::string channel = pubsub_channel(m.channel);
        const std::string_view args[] = {"EVALSHA", _publish_sha, "2", meta, history, epoch,
                                         count, ttl, meta_ttl, channel, body};
        if (!_cmd.send(args, make_tag(tag_kind::publish, token))) {
            ++_stats.publish_failed;
            return _events->on_ordered(token, {}, 0, "the Redis engine is busy; retry");
        }
    }

    void watch(std::string_view channel) noexcept override {
        auto [it, created] = _watched.try_emplace(std::string(channel));
        release_held(it->second);
        it->second = watch_state{};
        it->second.generation = ++_generation;
        if (_sub.up()) {
            subscribe(it->first, it->second);
        }
    }

    void unwatch(std::string_view channel) noexcept override {
        auto it = _watched.find(channel);
        if (it == _watched.end()) {
            return;
        }
        release_held(it->second);
        _watched.erase(it);
        if (_sub.up()) {
            const std::string name = pubsub_channel(channel);
            const std::string_view args[] = {"UNSUBSCRIBE", name};
            _sub.send(args, make_tag(tag_kind::unsubscribe, 0));
        }
    }

    void set_user_events(pubsub::user_count_events* events) noexcept override {
        _user_events = events;
    }

    void claim_user(std::string_view user, uint32_t held, uint32_t max,
                    uint64_t token) noexcept override {
        ++_stats.user_claims;
        const std::string hash = user_key(user);
        const std::string held_text = std::to_string(held);
        const std::string max_text = std::to_string(max);
        const std::string live_prefix = _target.prefix + ":live:";
        const std::string ttl = std::to_string(user_ttl_ms);
        const std::string_view args[] = {"EVALSHA", _claim_sha, "1",     hash,
                                         _shard_id, held_text,  max_text, live_prefix, ttl};
        if (!_cmd.up() || !_cmd.send(args, make_tag(tag_kind::claim, token))) {
            ++_stats.user_claims_unchecked;
            _user_events->on_user_claimed(token, true);
        }
    }

    void count_user(std::string_view user, uint32_t held) noexcept override {
        if (!_cmd.up()) {
            return; // pushed again when the link is up (on_user_counts_lost)
        }
        // A value still waiting for room would land after this one: this one replaces it.
        if (auto it = _unsent_counts.find(user); it != _unsent_counts.end()) {
            it->second = held;
            return;
        }
        if (!send_count(user, held)) {
            keep_unsent_count(user, held);
        }
    }

    /// This shard's entry for `user` in Redis becomes `held`; false when the link had no
    /// room for every request of it (sending it again is harmless).
    bool send_count(std::string_view user, uint32_t held) {
        const std::string hash = user_key(user);
        if (held == 0) {
            const std::string_view args[] = {"HDEL", hash, _shard_id};
            return _cmd.send(args, make_tag(tag_kind::count, 0));
        }
        const std::string held_text = std::to_string(held);
        const std::string ttl = std::to_string(user_ttl_ms);
        const std::string_view set[] = {"HSET", hash, _shard_id, held_text};
        const std::string_view expire[] = {"PEXPIRE", hash, ttl};
        return _cmd.send(set, make_tag(tag_kind::count, 0)) &&
               _cmd.send(expire, make_tag(tag_kind::count, 0));
    }

    void keep_unsent_count(std::string_view user, uint32_t held) {
        if (unsent_entries() >= max_unsent_writes) {
            ++_stats.user_counts_dropped;
            return;
        }
        if (_unsent_counts.emplace(std::string(user), held).second) {
            ++_unsent_entries;
        }
    }

    void set_member(std::string_view channel, std::string_view user,
                    uint64_t connections) noexcept override {
        if (auto it = _unsent_members.find(channel); it != _unsent_members.end()) {
            // The channel's earlier changes still wait for room: this one joins them.
            if (it->second.members.size() >= max_unsent_writes) {
                ++_stats.presence_dropped;
                return;
            }
            if (it->second.members.insert_or_assign(std::string(user), connections).second) {
                ++_unsent_entries;
            }
            return;
        }
        const std::string count = std::to_string(connections);
        const std::string_view pair[] = {user, count};
        if (write_members(channel, "set", pair) == written::no_room) {
            keep_unsent_members(channel, false, {{std::string(user), connections}});
        }
    }

    void replace_members(std::string_view channel,
                         std::span<const std::pair<std::string, uint32_t>> members) noexcept override {
        std::vector<std::string> counts;
        std::vector<std::string_view> pairs;
        counts.reserve(members.size());
        pairs.reserve(members.size() * 2);
        for (const auto& [user, connections] : members) {
            counts.push_back(std::to_string(connections));
        }
        for (std::size_t i = 0; i < members.size(); ++i) {
            pairs.push_back(members[i].first);
            pairs.push_back(counts[i]);
        }
        if (members.empty()) {
            if (auto it = _member_channels.find(channel); it != _member_channels.end()) {
                _member_channels.erase(it);
            }
        } else {
            _member_channels.emplace(std::string(channel));
        }
        if (auto it = _unsent_members.find(channel); it != _unsent_members.end()) {
            _unsent_entries -= it->second.members.size();
            _unsent_members.erase(it); // all of them, again
        }
        if (write_members(channel, "replace", pairs) == written::no_room) {
            std::map<std::string, uint64_t, std::less<>> all;
            for (const auto& [user, connections] : members) {
                all.emplace(user, connections);
            }
            keep_unsent_members(channel, true, std::move(all));
        }
    }

    void keep_unsent_members(std::string_view channel, bool replace,
                             std::map<std::string, uint64_t, std::less<>> members) {
        if (unsent_entries() + members.size() > max_unsent_writes) {
            ++_stats.presence_dropped;
            return;
        }
        const std::size_t entries = members.size();
        unsent_presence waiting{replace, std::move(members)};
        if (_unsent_members.emplace(std::string(channel), std::move(waiting)).second) {
            _unsent_entries += entries;
        }
    }

    std::size_t unsent_entries() const noexcept { return _unsent_entries; }

    /// What _unsent_entries must equal, counted the slow way (a walk over every channel
    /// waiting); for the debug check in flush_unsent only.
    std::size_t walked_unsent_entries() const noexcept {
        std::size_t n = _unsent_counts.size();
        for (const auto& [channel, u] : _unsent_members) {
            n += u.members.size();
        }
        return n;
    }

    /// Writes what waited for room (oldest first is not needed: each entry is the latest
    /// value of its key) until the link has none again; on the tick.
    void flush_unsent() {
        // Checked once a tick: a walk on every change would make a burst quadratic.
        RINGCAST_DEBUG_ASSERT(_unsent_entries == walked_unsent_entries());
        for (auto it = _unsent_members.begin(); it != _unsent_members.end();) {
            std::vector<std::string> counts;
            std::vector<std::string_view> pairs;
            counts.reserve(it->second.members.size());
            for (const auto& [user, connections] : it->second.members) {
                counts.push_back(std::to_string(connections));
            }
            std::size_t i = 0;
            for (const auto& [user, connections] : it->second.members) {
                pairs.push_back(user);
                pairs.push_back(counts[i++]);
            }
            if (write_members(it->first, it->second.replace ? "replace" : "set", pairs) !=
                written::yes) {
                return; // no room yet (or down: on_up writes everything anew)
            }
            _unsent_entries -= it->second.members.size();
            it = _unsent_members.erase(it);
        }
        for (auto it = _unsent_counts.begin(); it != _unsent_counts.end();) {
            if (!send_count(it->first, it->second)) {
                return;
            }
            it = _unsent_counts.erase(it);
            --_unsent_entries;
        }
    }

    void read_range(std::string_view channel, uint64_t after, uint64_t limit,
                    uint64_t token) noexcept override {
        ++_stats.history_reads;
        const std::string meta = key(channel, "meta");
        const std::string history = key(channel, "history");
        const std::string from = std::to_string(after);
        const std::string count = std::to_string(limit);
        const std::string_view args[] = {"EVALSHA", _range_sha, "2", meta, history, from, count};
        if (!_cmd.send(args, make_tag(tag_kind::range, token))) {
            _events->on_range(token, false, {}, 0, 0, {});
        }
    }

    void broadcast(std::string_view text, pubsub::priority prio) noexcept override {
        if (!_cmd.up()) {
            ++_stats.broadcasts_dropped;
            return;
        }
        std::string payload = node_id();
        payload.append(1, ' ').append(1, char('0' + int(prio))).append(1, ' ').append(text);
        const std::string name = broadcast_channel();
        const std::string_view args[] = {"PUBLISH", name, payload};
        if (_cmd.send(args, make_tag(tag_kind::broadcast, 0))) {
            ++_stats.broadcasts_sent;
        } else {
            ++_stats.broadcasts_dropped;
        }
    }

    bool read_presence(std::string_view channel, uint32_t max_listed,
                       uint64_t token) noexcept override {
        if (!_cmd.up()) {
            return false;
        }
        const std::string hash = key(channel, "presence");
        const std::string live_prefix = _target.prefix + ":live:";
        const std::string max = std::to_string(max_listed);
        const std::string_view args[] = {"EVALSHA", _presence_sha, "1", hash, live_prefix, max};
        return _cmd.send(args, make_tag(tag_kind::presence, token));
    }

    void read_history(std::string_view channel, uint64_t after, uint64_t limit,
                      uint64_t token) noexcept override {
        ++_stats.history_reads;
        const std::string meta = key(channel, "meta");
        const std::string history = key(channel, "history");
        const std::string from = std::to_string(after);
        const std::string count = std::to_string(limit);
        const std::string_view args[] = {"EVALSHA", _history_sha, "2", meta, history, from, count};
        if (!_cmd.send(args, make_tag(tag_kind::history, token))) {
            _events->on_history(token, false, {}, 0, {});
        }
    }

private:
    enum class watch_phase : uint8_t { down, subscribing, pointing, needs_point, live };
    struct watch_state {
        uint64_t generation = 0;
        watch_phase phase = watch_phase::down;
        std::deque<std::string> held; // pointing: messages after the confirmation
        std::size_t held_bytes = 0;   // their payloads' bytes (in _held_bytes too)
        // The last message handed to the engine: after a resubscribe, what was published
        // between it and the new point is read from the stream (fill_gap).
        std::string epoch;
        uint64_t last_offset = 0;
    };
    struct pending_watch {
        std::string channel;
        uint64_t generation;
    };
    /// A resubscribed watch whose gap is being read: the point it goes live at after.
    struct pending_gap {
        pending_watch watch;
        std::string epoch;
        uint64_t point = 0;
    };

    std::string key(std::string_view channel, std::string_view what) const {
        std::string k;
        k.reserve(_target.prefix.size() + channel.size() + what.size() + 4);
        k.append(_target.prefix).append(":{").append(channel).append("}:").append(what);
        return k;
    }
    std::string user_key(std::string_view user) const {
        return _target.prefix + ":user:{" + std::string(user) + "}";
    }
    void refresh_liveness() {
        const std::string shards = _target.prefix + ":shards";
        const std::string ttl = std::to_string(live_ttl_ms);
        const std::string kept = std::to_string(dead_kept_ms);
        const std::string_view args[] = {"EVALSHA", _live_sha, "1",  shards,
                                         _shard_id, _live_key, ttl, kept};
        _cmd.send(args, make_tag(tag_kind::live, 0));
        _live_refreshed_ms = _io.now_ms();
    }

    enum class written : uint8_t { yes, down, no_room };
    /// The members script in `mode` for `channel`, with `pairs` (user, connections, …).
    written write_members(std::string_view channel, std::string_view mode,
                          std::span<const std::string_view> pairs) {
        if (!_cmd.up()) {
            ++_stats.presence_dropped; // set again by on_members_lost when the link is up
            return written::down;
        }
        const std::string hash = key(channel, "presence");
        const std::string users = key(channel, "users");
        const std::string name = pubsub_channel(channel);
        const std::string live_prefix = _target.prefix + ":live:";
        const std::string ttl = std::to_string(user_ttl_ms);
        std::vector<std::string_view> args = {"EVALSHA", _members_sha, "2",         hash, users,
                                              mode,      _shard_id,    name, live_prefix, ttl};
        args.insert(args.end(), pairs.begin(), pairs.end());
        if (!_cmd.send(args, make_tag(tag_kind::members, 0))) {
            return written::no_room; // the caller keeps it for the tick
        }
        ++_stats.presence_writes;
        return written::yes;
    }

    /// The live script's answer: this shard's own key had expired (it was taken for dead:
    /// its members and counts may have been swept), and the shards that stopped.
    void live_answered(const redisReply* r) {
        const auto items = r != nullptr ? elements_of(*r) : std::span<redisReply* const>{};
        if (items.size() != 2 || type_of(*items[0]) != reply_type::integer) {
            return;
        }
        const bool existed = integer_of(*items[0]) == 1;
        if (!existed && _live_confirmed) {
            RINGCAST_LOG(log::level::warn, "redis_liveness_lost")
                .msg("redis: this shard's liveness key had expired; its presence and user "
                     "counts are written again");
            _events->on_members_lost();
            if (_user_events != nullptr) {
                _user_events->on_user_counts_lost();
            }
        }
        _live_confirmed = true;
        std::unordered_set<std::string> stopped;
        bool new_dead = false;
        for (const redisReply* e : elements_of(*items[1])) {
            std::string id(text_of(*e));
            if (id == _shard_id) {
                continue;
            }
            if (!_dead_known.contains(id)) {
                new_dead = true;
                ++_stats.dead_shards;
            }
            stopped.insert(std::move(id));
        }
        _dead_known = std::move(stopped);
        if (new_dead) {
            // Every channel this shard has members in, swept a page per tick.
            _sweep_queue.assign(_member_channels.begin(), _member_channels.end());
        }
    }

    void sweep_some() {
        for (std::size_t n = 0; n < sweeps_per_tick && !_sweep_queue.empty(); ++n) {
            const std::string channel = std::move(_sweep_queue.back());
            _sweep_queue.pop_back();
            ++_stats.presence_sweeps;
            write_members(channel, "sweep", {});
        }
    }

    /// "<node id> <priority> <envelope>" from the broadcast channel: delivered here unless
    /// this node sent it (its shards delivered it then).
    void node_broadcast(std::string_view payload) {
        std::string_view node;
        std::string_view prio;
        if (!take(payload, ' ', node) || !take(payload, ' ', prio) || prio.size() != 1 ||
            prio[0] < '1' || prio[0] > '4' || payload.empty()) {
            RINGCAST_LOG_EVERY(log::level::warn, "redis_bad_broadcast", 1, 10000)
                .msg("redis: a message on the broadcast channel is not ringcast's; ignored");
            return;
        }
        if (node == node_id()) {
            return;
        }
        ++_stats.broadcasts_received;
        _events->on_broadcast(payload, static_cast<pubsub::priority>(prio[0] - '0'));
    }

    void presence_answered(uint64_t token, const redisReply* r) {
        const auto items = r != nullptr ? elements_of(*r) : std::span<redisReply* const>{};
        pubsub::presence_page page;
        uint64_t users = 0;
        if (items.size() < 3 || !number_of(items[0], page.anonymous) ||
            !number_of(items[1], page.connections) || !number_of(items[2], users) ||
            (items.size() != 3 && items.size() != 3 + 2 * users)) {
            return _events->on_presence_page(token, false, {});
        }
        ++_stats.presence_reads;
        page.users = users;
        page.listed = items.size() == 3 + 2 * users;
        page.members.reserve(users);
        for (std::size_t i = 3; page.listed && i + 1 < items.size(); i += 2) {
            uint64_t connections = 0;
            if (!number_of(items[i + 1], connections)) {
                return _events->on_presence_page(token, false, {});
            }
            page.members.emplace_back(std::string(text_of(*items[i])),
                                      static_cast<uint32_t>(connections));
        }
        std::sort(page.members.begin(), page.members.end());
        _events->on_presence_page(token, true, page);
    }
    std::string pubsub_channel(std::string_view channel) const {
        return _target.prefix + ":" + std::string(channel);
    }
    /// Broadcasts to every connection: '!' is no channel's character, so no channel's.
    std::string broadcast_channel() const { return _target.prefix + ":!all"; }
    std::string next_epoch() {
        char text[40];
        std::snprintf(text, sizeof(text), "%016llx%x",
                      static_cast<unsigned long long>(_epoch_base),
                      static_cast<unsigned>(++_epoch_seq));
        return text;
    }

    void load_scripts() {
        for (const std::string_view script :
             {publish_script, point_script, history_script, claim_script, members_script,
              presence_script, live_script, range_script}) {
            const std::string_view args[] = {"SCRIPT", "LOAD", script};
            _cmd.send(args, make_tag(tag_kind::script, 0));
        }
    }

    void subscribe(const std::string& channel, watch_state& w) {
        w.phase = watch_phase::subscribing;
        release_held(w);
        const uint64_t seq = ++_request_seq;
        const std::string name = pubsub_channel(channel);
        const std::string_view args[] = {"SUBSCRIBE", name};
        if (_sub.send(args, make_tag(tag_kind::subscribe, seq))) {
            _subscribing.emplace(seq, pending_watch{channel, w.generation});
        } else {
            w.phase = watch_phase::down; // resubscribed when the link is up again
        }
    }

    void read_point(const std::string& channel, watch_state& w) {
        w.phase = watch_phase::needs_point;
        if (!_cmd.up()) {
            return _events->on_point_lost(channel); // read when the link is up (on_up)
        }
        const uint64_t seq = ++_request_seq;
        const std::string meta = key(channel, "meta");
        const std::string history = key(channel, "history");
        const std::string epoch = next_epoch();
        const std::string ttl = std::to_string(watched_ttl_s);
        const std::string_view args[] = {"EVALSHA", _point_sha, "2", meta, history, epoch, ttl};
        if (_cmd.send(args, make_tag(tag_kind::point, seq))) {
            w.phase = watch_phase::pointing;
            _pointing.emplace(seq, pending_watch{channel, w.generation});
            return;
        }
        _events->on_point_lost(channel); // busy: read again when the link is up anew
    }

    /// Extends the order of the watched channels to at least watched_ttl_s, a page per
    /// tick, every touch_every_ms (EXPIRE … GT: a published channel's week is kept).
    void touch_watched() {
        if (_touch_queue.empty()) {
            if (_io.now_ms() < _next_touch_ms) {
                return;
            }
            _next_touch_ms = _io.now_ms() + touch_every_ms;
            _touch_queue.reserve(_watched.size());
            for (const auto& [channel, w] : _watched) {
                _touch_queue.push_back(channel);
            }
        }
        const std::string ttl = std::to_string(watched_ttl_s);
        for (std::size_t n = 0; n < touches_per_tick && !_touch_queue.empty(); ++n) {
            const std::string meta = key(_touch_queue.back(), "meta");
            _touch_queue.pop_back();
            const std::string_view args[] = {"EXPIRE", meta, ttl, "GT"};
            _cmd.send(args, make_tag(tag_kind::count, 0));
        }
    }

    /// Keeps a message that came while `w`'s point is read, within max_held_messages for
    /// the watch and max_held_bytes for the shard: the watch's oldest go first, and a
    /// message that still does not fit (other watches hold the bytes) is dropped; each
    /// counted. A dropped message is in the channel's stream: a subscriber that sees the
    /// offset jump recovers it (docs/scaling.md "When Redis or a connection fails").
    void hold(watch_state& w, std::string_view payload) {
        while (!w.held.empty() && (w.held.size() >= max_held_messages ||
                                   _held_bytes + payload.size() > max_held_bytes)) {
            w.held_bytes -= w.held.front().size();
            _held_bytes -= w.held.front().size();
            w.held.pop_front();
            ++_stats.buffered_dropped;
        }
        if (_held_bytes + payload.size() > max_held_bytes) {
            ++_stats.buffered_dropped;
            return;
        }
        w.held.emplace_back(payload);
        w.held_bytes += payload.size();
        _held_bytes += payload.size();
    }
    void release_held(watch_state& w) noexcept {
        _held_bytes -= w.held_bytes;
        w.held_bytes = 0;
        w.held.clear();
    }

    /// The watch of `p` if it is still the one that asked.
    watch_state* current(const pending_watch& p) {
        auto it = _watched.find(p.channel);
        return it != _watched.end() && it->second.generation == p.generation ? &it->second
                                                                               : nullptr;
    }

    void deliver(std::string_view channel, watch_state& w, std::string_view payload) {
        if (payload.starts_with("presence ")) {
            // "presence join|leave <users> <user>" (members_script)
            std::string_view rest = payload.substr(9);
            std::string_view change;
            std::string_view users_text;
            uint64_t users = 0;
            if (take(rest, ' ', change) && take(rest, ' ', users_text) &&
                to_u64(users_text, users) && (change == "join" || change == "leave") &&
                !rest.empty()) {
                return _events->on_presence(channel, rest, change == "join", users);
            }
            RINGCAST_LOG_EVERY(log::level::warn, "redis_bad_presence", 1, 10000)
                .field("channel", channel)
                .msg("redis: a presence event on %.*s is not ringcast's; ignored",
                     int(channel.size()), channel.data());
            return;
        }
        // "epoch offset stamp body"
        pubsub::broker_message m;
        std::string_view rest = payload;
        std::string_view offset;
        std::string_view stamp;
        if (!take(rest, ' ', m.epoch) || !take(rest, ' ', offset) || !take(rest, ' ', stamp) ||
            !to_u64(offset, m.offset) || !to_u64(stamp, m.timestamp_ms) ||
            !parse_body(rest, m)) {
            RINGCAST_LOG_EVERY(log::level::warn, "redis_bad_message", 1, 10000)
                .field("channel", channel)
                .msg("redis: a message on %.*s is not ringcast's; ignored",
                     int(channel.size()), channel.data());
            return;
        }
        m.channel = channel;
        ++_stats.received;
        w.epoch.assign(m.epoch);
        w.last_offset = m.offset;
        _events->on_message(m);
    }

    // --- link_owner ------------------------------------------------------------------------

    void on_up(link& l) noexcept override {
        if (&l == &_cmd) {
            // Loaded first on every connection (a restarted Redis has none): every EVALSHA
            // after these finds its script.
            load_scripts();
            _live_confirmed = false;
            refresh_liveness();
            // Everything is written anew below: what waited for room is superseded.
            _unsent_members.clear();
            _unsent_counts.clear();
            _unsent_entries = 0;
            _events->on_members_lost();
            for (auto& [channel, w] : _watched) {
                if (w.phase == watch_phase::needs_point) {
                    read_point(channel, w);
                }
            }
            if (_user_events != nullptr) {
                _user_events->on_user_counts_lost();
            }
            return;
        }
        const std::string all = broadcast_channel();
        const std::string_view args[] = {"SUBSCRIBE", all};
        _sub.send(args, make_tag(tag_kind::broadcast, 0));
        for (auto& [channel, w] : _watched) {
            subscribe(channel, w);
        }
    }

    void on_down(link& l) noexcept override {
        if (&l == &_sub) {
            // Every subscription is gone with the connection: each watch starts again when
            // the link is back, and gets a new point (messages meanwhile are the gap
            // docs/scaling.md "Failures" describes).
            std::vector<std::string> waiting;
            for (auto& [channel, w] : _watched) {
                if (w.phase != watch_phase::live) {
                    waiting.push_back(channel);
                }
                w.phase = watch_phase::down;
                release_held(w);
            }
            _subscribing.clear();
            _pointing.clear();
            _filling.clear();
            // Subscribes waiting for these points are confirmed at the node's last one
            // rather than waiting for Redis (a handler may unwatch: names, not iterators).
            for (const std::string& channel : waiting) {
                _events->on_point_lost(channel);
            }
        }
    }

    void on_reply(link& l, uint64_t tag, const redisReply* r) noexcept override {
        const uint64_t seq = seq_of(tag);
        switch (kind_of(tag)) {
        case tag_kind::publish:
            return publish_answered(seq, r);
        case tag_kind::point:
            return point_answered(seq, r);
        case tag_kind::history:
            return history_answered(seq, r, false);
        case tag_kind::range:
            return history_answered(seq, r, true);
        case tag_kind::gap:
            return gap_answered(seq, r);
        case tag_kind::subscribe: {
            auto node = _subscribing.extract(seq);
            if (node.empty() || r == nullptr) {
                return;
            }
            if (watch_state* w = current(node.mapped()); w != nullptr) {
                read_point(node.mapped().channel, *w);
            }
            return;
        }
        case tag_kind::unsubscribe:
        case tag_kind::count:
        case tag_kind::members:
        case tag_kind::broadcast:
            return;
        case tag_kind::presence:
            return presence_answered(seq, r);
        case tag_kind::live:
            return live_answered(r);
        case tag_kind::claim: {
            // Not answered (the link went down): granted on this node's count, as when
            // down; the count is pushed again when the link is back.
            const bool refused = r != nullptr && type_of(*r) == reply_type::integer &&
                                 integer_of(*r) == 0;
            if (refused) {
                ++_stats.user_claims_refused;
            } else if (r == nullptr || type_of(*r) != reply_type::integer) {
                ++_stats.user_claims_unchecked;
            }
            _user_events->on_user_claimed(seq, !refused);
            return;
        }
        case tag_kind::script:
            if (r != nullptr && type_of(*r) == reply_type::error) {
                RINGCAST_LOG(log::level::error, "redis_script_refused")
                    .msg("redis %s: SCRIPT LOAD refused: %.*s", l.name().c_str(),
                         int(text_of(*r).size()), text_of(*r).data());
            }
            return;
        }
    }

    void on_tick(link& l) noexcept override {
        if (&l != &_cmd) {
            return;
        }
        if (_io.now_ms() >= _live_refreshed_ms + live_refresh_ms) {
            refresh_liveness();
        }
        sweep_some();
        touch_watched();
        flush_unsent();
    }

    void on_push(link&, const redisReply& r) noexcept override {
        const auto items = elements_of(r);
        if (items.size() != 3 || text_of(*items[0]) != "message") {
            return;
        }
        std::string_view name = text_of(*items[1]);
        if (name == broadcast_channel()) {
            return node_broadcast(text_of(*items[2]));
        }
        if (!name.starts_with(_target.prefix) || name.size() <= _target.prefix.size() + 1 ||
            name[_target.prefix.size()] != ':') {
            return;
        }
        const std::string_view channel = name.substr(_target.prefix.size() + 1);
        auto it = _watched.find(channel);
        if (it == _watched.end()) {
            return; // unwatched; its UNSUBSCRIBE is on the way
        }
        watch_state& w = it->second;
        switch (w.phase) {
        case watch_phase::live:
            return deliver(channel, w, text_of(*items[2]));
        case watch_phase::pointing:
        case watch_phase::needs_point:
            return hold(w, text_of(*items[2]));
        case watch_phase::down:
        case watch_phase::subscribing:
            return; // not subscribed by this connection's count yet: cannot happen
        }
    }

    void publish_answered(uint64_t token, const redisReply* r) {
        if (r == nullptr) {
            // Sent and not answered: Redis may or may not have run it (docs/scaling.md
            // "Failures"); the publisher is told it failed and may retry.
            ++_stats.publish_failed;
            return _events->on_ordered(token, {}, 0, "the Redis engine connection was lost; retry");
        }
        const auto items = elements_of(*r);
        uint64_t offset = 0;
        if (type_of(*r) != reply_type::array || items.size() != 3 ||
            !number_of(items[1], offset) || offset == 0) {
            ++_stats.publish_failed;
            RINGCAST_LOG_EVERY(log::level::warn, "redis_publish_refused", 1, 10000)
                .msg("redis: a publish was refused: %.*s", int(text_of(*r).size()),
                     text_of(*r).data());
            if (text_of(*r).starts_with("NOSCRIPT")) {
                load_scripts(); // flushed meanwhile (SCRIPT FLUSH): the next one finds it
            }
            return _events->on_ordered(token, {}, 0, "the Redis engine refused the publish");
        }
        ++_stats.published;
        _events->on_ordered(token, text_of(*items[0]), offset, {});
    }

    void point_answered(uint64_t seq, const redisReply* r) {
        auto node = _pointing.extract(seq);
        if (node.empty()) {
            return;
        }
        watch_state* w = current(node.mapped());
        if (w == nullptr) {
            return;
        }
        const auto items = r != nullptr ? elements_of(*r) : std::span<redisReply* const>{};
        uint64_t offset = 0;
        if (items.size() != 2 || type_of(*items[0]) != reply_type::string ||
            !number_of(items[1], offset)) {
            w->phase = watch_phase::needs_point; // read again when the command link is up
            return _events->on_point_lost(node.mapped().channel);
        }
        const std::string_view epoch = text_of(*items[0]);
        if (w->last_offset > 0 && w->epoch == epoch && offset > w->last_offset &&
            offset - w->last_offset <= max_gap_fill) {
            // Resubscribed after a lost connection: what was published meanwhile is read
            // from the stream and handed on first, live messages held until then.
            const uint64_t gap_seq = ++_request_seq;
            const std::string meta = key(node.mapped().channel, "meta");
            const std::string history = key(node.mapped().channel, "history");
            const std::string after = std::to_string(w->last_offset);
            const std::string count = std::to_string(offset - w->last_offset);
            const std::string_view args[] = {"EVALSHA", _history_sha, "2", meta,
                                             history,   after,        count};
            if (_cmd.send(args, make_tag(tag_kind::gap, gap_seq))) {
                _filling.emplace(gap_seq, pending_gap{node.mapped(), std::string(epoch), offset});
                return;
            }
        }
        go_live(node.mapped(), epoch, offset);
    }

    /// The watch of `p` takes its point (epoch, offset) and hands on what it held.
    void go_live(const pending_watch& p, std::string_view epoch, uint64_t offset) {
        watch_state* w = current(p);
        if (w == nullptr) {
            return;
        }
        const std::string channel = p.channel;
        const uint64_t generation = w->generation;
        std::deque<std::string> held = std::move(w->held);
        release_held(*w);
        w->phase = watch_phase::live;
        _events->on_point(channel, epoch, offset);
        for (const std::string& payload : held) {
            // An unwatch from a handler of the last one ends the watch: stop there.
            auto it = _watched.find(channel);
            if (it == _watched.end() || it->second.generation != generation) {
                return;
            }
            deliver(it->first, it->second, payload);
        }
    }

    /// The gap of a resubscribed watch, read from the stream: its messages after the
    /// watch's last one go to the engine in order, then the watch goes live. Not read (the
    /// connection went, nothing kept): live at once, the gap left to the clients' recovery.
    void gap_answered(uint64_t seq, const redisReply* r) {
        auto node = _filling.extract(seq);
        if (node.empty()) {
            return;
        }
        const pending_gap& gap = node.mapped();
        const auto items = r != nullptr ? elements_of(*r) : std::span<redisReply* const>{};
        if (items.size() >= 2 && (items.size() - 2) % 3 == 0 &&
            type_of(*items[0]) == reply_type::string && text_of(*items[0]) == gap.epoch) {
            for (std::size_t i = 2; i + 2 < items.size(); i += 3) {
                watch_state* w = current(gap.watch);
                if (w == nullptr) {
                    return; // unwatched by a handler
                }
                pubsub::broker_message m;
                std::string_view id = text_of(*items[i]);
                std::string_view number;
                if (!take(id, '-', number) || !to_u64(number, m.offset) ||
                    !number_of(items[i + 1], m.timestamp_ms) ||
                    !parse_body(text_of(*items[i + 2]), m)) {
                    break;
                }
                if (m.offset <= w->last_offset || m.offset > gap.point) {
                    continue;
                }
                m.epoch = gap.epoch;
                m.channel = gap.watch.channel;
                w->last_offset = m.offset;
                ++_stats.gap_filled;
                _events->on_message(m);
            }
        }
        go_live(gap.watch, gap.epoch, gap.point);
    }

    /// A history script's answer (`range`: the range script's, with the oldest retained
    /// offset third), to on_history or on_range.
    void history_answered(uint64_t token, const redisReply* r, bool range) {
        const auto failed = [&] {
            if (range) {
                return _events->on_range(token, false, {}, 0, 0, {});
            }
            _events->on_history(token, false, {}, 0, {});
        };
        const auto items = r != nullptr ? elements_of(*r) : std::span<redisReply* const>{};
        const std::size_t head = range ? 3 : 2;
        uint64_t offset = 0;
        uint64_t first = 0;
        if (items.size() < head || (items.size() - head) % 3 != 0 ||
            !number_of(items[1], offset) || (range && !number_of(items[2], first))) {
            return failed();
        }
        const std::string_view epoch =
            type_of(*items[0]) == reply_type::string ? text_of(*items[0]) : std::string_view{};
        std::vector<pubsub::broker_message> messages;
        messages.reserve((items.size() - head) / 3);
        for (std::size_t i = head; i + 2 < items.size(); i += 3) {
            pubsub::broker_message m;
            std::string_view id = text_of(*items[i]);
            std::string_view number;
            if (!take(id, '-', number) || !to_u64(number, m.offset) ||
                !number_of(items[i + 1], m.timestamp_ms) || !parse_body(text_of(*items[i + 2]), m)) {
                return failed();
            }
            m.epoch = epoch;
            messages.push_back(m);
        }
        if (range) {
            return _events->on_range(token, true, epoch, offset, first, messages);
        }
        _events->on_history(token, true, epoch, offset, messages);
    }

    core::conn_io& _io;
    redis_target _target;
    link _cmd;
    link _sub;
    const std::string _publish_sha;
    const std::string _point_sha;
    const std::string _history_sha;
    const std::string _claim_sha;
    const std::string _members_sha;
    const std::string _presence_sha;
    const std::string _live_sha;
    const std::string _range_sha;
    std::string _shard_id; // this shard's entry in users' hashes, and its liveness key's
    std::string _live_key;
    uint64_t _live_refreshed_ms = 0;
    bool _live_confirmed = false; // a refresh on this connection found the key or made it
    // Presence: the channels this shard has members in (replace_members), the shards seen
    // stopped (at most 100, as the live script answers), the channels still to sweep.
    std::unordered_set<std::string, pubsub::name_hash, std::equal_to<>> _member_channels;
    // What the command link had no room for, written on the tick (flush_unsent): per
    // channel its members' latest counts (all of them when `replace`), per user its count.
    struct unsent_presence {
        bool replace = false;
        std::map<std::string, uint64_t, std::less<>> members;
    };
    std::unordered_map<std::string, unsent_presence, pubsub::name_hash, std::equal_to<>>
        _unsent_members;
    std::unordered_map<std::string, uint32_t, pubsub::name_hash, std::equal_to<>> _unsent_counts;
    // _unsent_counts.size() plus the members of every _unsent_members entry, kept where
    // either changes, so the bound's check (unsent_entries) costs no walk over the channels.
    std::size_t _unsent_entries = 0;
    std::unordered_set<std::string> _dead_known;
    std::vector<std::string> _sweep_queue;
    // The watched channels still to touch in this round, and when the next round starts.
    std::vector<std::string> _touch_queue;
    uint64_t _next_touch_ms = 0;
    pubsub::broker_events* _events = nullptr;
    pubsub::user_count_events* _user_events = nullptr;
    pubsub::name_map<watch_state> _watched;
    std::size_t _held_bytes = 0; // every watch's held_bytes
    std::unordered_map<uint64_t, pending_watch> _subscribing; // SUBSCRIBE sent, by seq
    std::unordered_map<uint64_t, pending_watch> _pointing;    // point read sent, by seq
    std::unordered_map<uint64_t, pending_gap> _filling;       // gap read sent, by seq
    uint64_t _generation = 0;
    uint64_t _request_seq = 0;
    uint64_t _epoch_base = 0;
    uint32_t _epoch_seq = 0;
    pubsub::broker_stats _stats;
};

} // namespace

std::unique_ptr<pubsub::broker> make_broker(core::conn_io& io, core::outbound_connector& connector,
                                            const redis_target& target, link_timing timing) {
    return std::make_unique<redis_broker>(io, connector, target, timing);
}

} // namespace ringcast::redis
