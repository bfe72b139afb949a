// The global operator new family, counted (alloc_count.h). Every non-aligned form is replaced,
// news and deletes alike, on malloc and free: a sanitizer that checks which family freed what
// (ASan's alloc-dealloc-mismatch) then sees one pair. The aligned forms stay the library's,
// a pair of their own, and are not counted.
#include "alloc_count.h"

#include <cstdlib>
#include <new>

namespace {
std::size_t counted = 0; // unit tests run on one thread
} // namespace

std::size_t ringcast::test::allocations() noexcept {
    return counted;
}

void* operator new(std::size_t size) {
    ++counted;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++counted;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
