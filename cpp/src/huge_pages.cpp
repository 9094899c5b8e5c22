#include "nearly/huge_pages.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define NEARLY_HAVE_MMAP 1
#endif

namespace nearly {

constexpr std::align_val_t kCacheLine{64};

// NEARLY_HUGE_PAGES=0 turns the advice off: on VMs that hand freed 2 MiB
// blocks back to the host, every fresh huge page costs host faults when first
// written (a 150 MB Flat add: 0.26-0.44 s instead of 0.1 s here).
static bool advise_huge_pages() {
    static const bool on = [] {
        const char* v = std::getenv("NEARLY_HUGE_PAGES");
        return !(v && std::strcmp(v, "0") == 0);
    }();
    return on;
}

static size_t round_up(size_t bytes) { return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes; }

// Big blocks get a mapping of their own: advice applies to exactly them, and
// freeing one gives the memory back to the system at once (from malloc a
// block may come out of a heap arena, whose advice outlives it).
void* allocate_large(size_t bytes) {
    if (bytes < kHugePageBytes) return ::operator new(bytes, kCacheLine);
#if NEARLY_HAVE_MMAP
    const size_t rounded = round_up(bytes);
    if (rounded < bytes || rounded > SIZE_MAX - kHugePageBytes) throw std::bad_alloc();
    // Map a huge page more than needed, then unmap the ends to align to 2 MiB.
    const size_t span = rounded + kHugePageBytes;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (begin + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (aligned > begin) munmap(raw, aligned - begin);
    const uintptr_t end = aligned + rounded;
    if (begin + span > end) munmap(reinterpret_cast<void*>(end), begin + span - end);
    void* p = reinterpret_cast<void*>(aligned);
#if defined(MADV_HUGEPAGE)
    // Advice only: where the kernel says no (THP off), the pages stay small.
    if (advise_huge_pages()) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
#else
    return ::operator new(bytes, kCacheLine);
#endif
}

void release_large(void* p, size_t bytes) noexcept {
    if (!p) return;
#if NEARLY_HAVE_MMAP
    if (bytes >= kHugePageBytes) {
        munmap(p, round_up(bytes));
        return;
    }
#endif
    ::operator delete(p, kCacheLine);
}

}  // namespace nearly
