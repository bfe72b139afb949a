// strict_json.cc — the duplicate-name and depth walk over a parsed DOM (strict_json.h).
//
// Each object's names are appended to one scratch vector, sorted in place and checked for
// neighbours that are equal, then its members are walked; the vector is cut back when the
// object is done, so a document costs one allocation at most however it nests.
#include "strict_json.h"

#include <algorithm>

namespace ringcast::auth::detail {

namespace {

bool check_element(simdjson::dom::element value, std::size_t depth,
                   std::vector<std::string_view>& names) noexcept {
    switch (value.type()) {
    case simdjson::dom::element_type::OBJECT: {
        if (depth >= max_json_depth) {
            return false;
        }
        const std::size_t first = names.size();
        simdjson::dom::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS) {
            return false;
        }
        for (const simdjson::dom::key_value_pair field : object) {
            names.push_back(field.key);
        }
        const auto begin = names.begin() + static_cast<std::ptrdiff_t>(first);
        std::sort(begin, names.end());
        const bool unique = std::adjacent_find(begin, names.end()) == names.end();
        names.resize(first);
        if (!unique) {
            return false;
        }
        for (const simdjson::dom::key_value_pair field : object) {
            if (!check_element(field.value, depth + 1, names)) {
                return false;
            }
        }
        return true;
    }
    case simdjson::dom::element_type::ARRAY: {
        if (depth >= max_json_depth) {
            return false;
        }
        simdjson::dom::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
            return false;
        }
        for (const simdjson::dom::element item : array) {
            if (!check_element(item, depth + 1, names)) {
                return false;
            }
        }
        return true;
    }
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
    case simdjson::dom::element_type::STRING:
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::NULL_VALUE:
        return true;
    }
    return false;
}

} // namespace

bool parse_strict(simdjson::dom::parser& parser, const uint8_t* text, std::size_t size,
                  std::vector<std::string_view>& names, simdjson::dom::element& root) noexcept {
    names.clear();
    if (parser.parse(text, size, false).get(root) != simdjson::SUCCESS) {
        return false;
    }
    return check_element(root, 0, names);
}

} // namespace ringcast::auth::detail
