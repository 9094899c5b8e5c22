// Memory for the big arrays that searches read at random: stored vectors that
// re-ranking gathers row by row, graph blocks, flat codes.
//
// With 4 KiB pages nearly every row gathered from a 100+ MB array costs a TLB
// miss and a page walk; on Linux we ask for 2 MiB pages (transparent huge
// pages, which most distributions grant only to memory that asks for them
// with madvise). Measured on the 100k x 384 float rows: 12% less time per
// gathered row. Small arrays use the ordinary heap: a huge page would waste
// most of itself.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace nearly {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// Blocks of at least kHugePageBytes come back aligned to kHugePageBytes and
// advised for huge pages (a mapping of their own); smaller ones from operator
// new, aligned to 64. `bytes` must be
// passed again to release_large: it decides which of the two freed it.
void* allocate_large(size_t bytes);
void release_large(void* p, size_t bytes) noexcept;

template <class T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <class U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(size_t n) {
        if (n > size_t(-1) / sizeof(T)) throw std::bad_alloc();
        return static_cast<T*>(allocate_large(n * sizeof(T)));
    }
    void deallocate(T* p, size_t n) noexcept { release_large(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept { return false; }
};

template <class T>
using LargeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace nearly
