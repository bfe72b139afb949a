// Counts heap allocations in unit_net: alloc_count.cc replaces the global operator new family
// for the whole executable, so a test can check that code between two reads allocated nothing.
#pragma once

#include <cstddef>

namespace ringcast::test {

/// Calls of any replaceable global operator new (plain, array, nothrow) since start.
std::size_t allocations() noexcept;

} // namespace ringcast::test
