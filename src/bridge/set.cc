// The bridges of one shard as one (include/ringcast/bridge.h, make_bridge_set): the engine
// answers every bridge publish to one listener, and this is it.
//
//   engine ──on_published(origin)──► set ──origin.index──► members[index].answer(...)
#include <ringcast/bridge.h>

namespace ringcast::bridge {

namespace {

class bridge_set final : public bridges, private pubsub::publish_listener {
public:
    bridge_set(pubsub::engine& engine, std::vector<std::unique_ptr<bridges>> members)
        : _engine(engine), _members(std::move(members)) {
        _engine.set_bridge_listener(this);
    }

    ~bridge_set() override {
        // Before the members go: an answer must never reach a bridge being destroyed.
        _engine.set_bridge_listener(nullptr);
    }

    void rows(std::vector<admin::bridge_row>& out) const override {
        for (const auto& m : _members) {
            m->rows(out);
        }
    }

    void answer(const pubsub::publish_origin& origin, uint64_t offset,
                std::string_view failure) noexcept override {
        on_published(origin, offset, failure);
    }

private:
    void on_published(const pubsub::publish_origin& origin, uint64_t offset,
                      std::string_view failure) noexcept override {
        if (origin.index < _members.size()) {
            _members[origin.index]->answer(origin, offset, failure);
        }
    }

    pubsub::engine& _engine;
    std::vector<std::unique_ptr<bridges>> _members;
};

} // namespace

std::unique_ptr<bridges> make_bridge_set(pubsub::engine& engine,
                                         std::vector<std::unique_ptr<bridges>> members) {
    return std::make_unique<bridge_set>(engine, std::move(members));
}

} // namespace ringcast::bridge
