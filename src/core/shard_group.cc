// Starting and joining the shards: one pinned thread each. Each ring is created on its own
// shard's thread, because SINGLE_ISSUER binds a ring to the task that created it.
#include "shard.h"

#include <ringcast/log.h>

#include <pthread.h>
#include <sched.h>

#include <barrier>
#include <cstdio>
#include <future>
#include <thread>

namespace ringcast::core {

class shard_group {
public:
    std::vector<std::thread> threads;
    std::vector<shard_counters> counters; // written by each shard's thread as it ends
    runtime_config config;
    std::unique_ptr<core::mesh> mesh;
    // Every shard's ring (doorbell target) exists before any shard runs; every shard has
    // stopped pushing before any drains its leftovers and destroys its ring.
    std::unique_ptr<std::barrier<>> started;
    std::unique_ptr<std::barrier<>> stopped;
    std::atomic<bool> init_failed{false};
    process_gauge gauge;
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
    const std::size_t count = config.shards();
    group->counters.resize(count);
    group->gauge.pulses = std::make_unique<shard_pulse[]>(count);
    group->mesh = std::make_unique<core::mesh>(static_cast<unsigned>(count));
    group->started = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(count));
    group->stopped = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(count));
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
                // "ringcast-s3": what top -H, perf and a debugger show for the thread.
                char name[16];
                std::snprintf(name, sizeof(name), "ringcast-s%zu", i);
                (void)pthread_setname_np(pthread_self(), name);
                log::set_thread_shard(unsigned(i));
                const auto id = shard_id(static_cast<uint16_t>(i));
                auto s = std::make_unique<shard>(id, g->config, stop, *g->mesh, g->gauge);
                auto r = s->init(factory);
                if (!r) {
                    g->init_failed.store(true);
                }
                p.set_value(std::move(r)); // after this, `factory` may be gone
                g->started->arrive_and_wait();
                if (!g->init_failed.load()) {
                    s->run();
                }
                g->stopped->arrive_and_wait();
                s->drain_leftovers();
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
        // A flag only: pairs with the relaxed load in shard::run (stop_token).
        stop.requested.store(true, std::memory_order_relaxed);
        for (auto& t : group->threads) {
            t.join();
        }
        return unexpected{failure};
    }
    return group;
}

group_status status_of(const shard_group& group) {
    group_status out;
    out.loop_passes.reserve(group.threads.size());
    for (std::size_t i = 0; i < group.threads.size(); ++i) {
        // Relaxed: pairs with each shard's relaxed store once a loop pass (shard_pulse).
        out.loop_passes.push_back(group.gauge.pulses[i].passes.load(std::memory_order_relaxed));
        out.frames_sent += group.gauge.pulses[i].frames_sent.load(std::memory_order_relaxed);
    }
    // Relaxed: a gauge (process_gauge).
    out.connections = group.gauge.connections.load(std::memory_order_relaxed);
    return out;
}

void reload_shards(shard_group& group, std::shared_ptr<const reload_payload> settings) {
    {
        std::lock_guard lock(group.gauge.reload_mutex);
        group.gauge.reload_settings = std::move(settings);
    }
    // Release: pairs with each shard's acquire load once a pass; a shard that sees the new
    // version then finds these settings (or later ones) under the mutex.
    group.gauge.reload_version.fetch_add(1, std::memory_order_release);
}

std::vector<shard_counters> wait_shards(shard_group_ptr group) {
    for (auto& t : group->threads) {
        t.join();
    }
    return group->counters;
}

} // namespace ringcast::core
