// Starting and joining the shards: one pinned thread each. Each ring is created on its own
// shard's thread, because SINGLE_ISSUER binds a ring to the task that created it.
#include "shard.h"

#include <future>
#include <pthread.h>
#include <sched.h>
#include <thread>

namespace ringcast::core {

class shard_group {
public:
    std::vector<std::thread> threads;
    std::vector<shard_counters> counters; // written by each shard's thread as it ends
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

void shard_group_deleter::operator()(shard_group* group) const noexcept {
    delete group;
}

result<shard_group_ptr, std::string> start_shards(const runtime_config& config,
                                                  handler_factory factory, stop_token& stop) {
    shard_group_ptr group(new shard_group());
    group->config = config;
    const std::size_t count = config.listen_fds.size();
    group->counters.resize(count);
    std::vector<std::future<result<void, std::string>>> ready;
    for (std::size_t i = 0; i < count; ++i) {
        std::promise<result<void, std::string>> promise;
        ready.push_back(promise.get_future());
        const int cpu = i < config.cpus.size() ? config.cpus[i] : -1;
        // The shard is built, run and destroyed on its own thread: its ring accepts
        // register/unregister calls only from the task that created it (SINGLE_ISSUER).
        group->threads.emplace_back(
            [g = group.get(), i, cpu, &factory, &stop, p = std::move(promise)]() mutable {
                pin_to_cpu(cpu);
                const auto id = shard_id(static_cast<uint16_t>(i));
                auto s = std::make_unique<shard>(id, g->config, g->config.listen_fds[i], stop);
                auto r = s->init(factory);
                const bool ok = r.has_value();
                p.set_value(std::move(r)); // after this, `factory` may be gone
                if (ok) {
                    s->run();
                }
                g->counters[i] = s->counters();
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
    for (auto& t : group->threads) {
        t.join();
    }
    return group->counters;
}

} // namespace ringcast::core
