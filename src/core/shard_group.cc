// Starting and joining the shards: one pinned thread each. Each ring is created on its own
// shard's thread, because SINGLE_ISSUER binds a ring to the task that created it.
#include "shard.h"

#include <pthread.h>
#include <sched.h>

#include <future>
#include <thread>

namespace ringcast::core {

class shard_group {
public:
    std::vector<std::thread> threads;
    std::vector<std::unique_ptr<shard>> shards;
    runtime_config config;
};

namespace {
void pin_to_cpu(int cpu) noexcept {
    if (cpu < 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // Best effort: a cgroup may forbid the CPU; the shard still runs, just unpinned.
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
} // namespace

void shard_group_deleter::operator()(shard_group* group) const noexcept { delete group; }

result<shard_group_ptr, std::string> start_shards(const runtime_config& config,
                                                  handler_factory factory, stop_token& stop) {
    shard_group_ptr group(new shard_group());
    group->config = config;
    const std::size_t count = config.listen_fds.size();
    std::vector<std::future<result<void, std::string>>> ready;
    for (std::size_t i = 0; i < count; ++i) {
        const auto id = shard_id(static_cast<uint16_t>(i));
        group->shards.push_back(
            std::make_unique<shard>(id, group->config, group->config.listen_fds[i], stop));
        std::promise<result<void, std::string>> promise;
        ready.push_back(promise.get_future());
        const int cpu = i < config.cpus.size() ? config.cpus[i] : -1;
        group->threads.emplace_back(
            [s = group->shards.back().get(), cpu, &factory, p = std::move(promise)]() mutable {
                pin_to_cpu(cpu);
                auto r = s->init(factory);
                const bool ok = r.has_value();
                p.set_value(std::move(r));
                if (ok) {
                    s->run();
                }
            });
    }
    std::string failure;
    for (std::size_t i = 0; i < count; ++i) {
        auto r = ready[i].get();
        if (!r && failure.empty()) {
            failure = "shard " + std::to_string(i) + ": " + r.error();
        }
    }
    if (!failure.empty()) {
        stop.requested.store(true);
        for (auto& t : group->threads) {
            t.join();
        }
        return unexpected{failure};
    }
    return group;
}

std::vector<shard_counters> wait_shards(shard_group_ptr group) {
    std::vector<shard_counters> counters;
    for (auto& t : group->threads) {
        t.join();
    }
    for (auto& s : group->shards) {
        counters.push_back(s->counters());
    }
    return counters;
}

} // namespace ringcast::core
