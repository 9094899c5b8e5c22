#include "nearly/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstdio>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace nearly {

namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t xgetbv0() {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t(edx) << 32) | eax;
}

bool cpu_has_avx2() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
    if (!(osxsave && fma && avx)) return false;
    if ((xgetbv0() & 0x6) != 0x6) return false;  // OS saves xmm and ymm
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return b & (1u << 5);
}

bool cpu_has_avx512() {
    if (!cpu_has_avx2()) return false;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    if (!(f && dq && bw && vl)) return false;
    return (xgetbv0() & 0xe6) == 0xe6;  // opmask and zmm state saved by the OS
}
#endif

bool supported(SimdLevel level) {
    switch (level) {
        case SimdLevel::scalar: return true;
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return cpu_has_avx2();
#endif
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return cpu_has_avx512();
#endif
#if defined(NEARLY_HAVE_NEON)
        case SimdLevel::neon: return true;  // baseline on AArch64
#endif
        default: return false;
    }
}

const SimdKernels& table(SimdLevel level) {
    switch (level) {
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return kernels_avx2();
#endif
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return kernels_avx512();
#endif
#if defined(NEARLY_HAVE_NEON)
        case SimdLevel::neon: return kernels_neon();
#endif
        default: return kernels_scalar();
    }
}

bool parse_level(const std::string& name, SimdLevel* out) {
    if (name == "scalar") *out = SimdLevel::scalar;
    else if (name == "avx2") *out = SimdLevel::avx2;
    else if (name == "avx512") *out = SimdLevel::avx512;
    else if (name == "neon") *out = SimdLevel::neon;
    else return false;
    return true;
}

const SimdKernels* initial_table() {
    std::vector<SimdLevel> levels = simd_levels_supported();
    SimdLevel best = levels.back();
    // faiss's FAISS_SIMD_LEVEL (NONE, AVX2, AVX512, ARM_NEON) pins the level
    // too, where NEARLY_SIMD is not set.
    std::string faiss_level;
    if (!std::getenv("NEARLY_SIMD")) {
        if (const char* f = std::getenv("FAISS_SIMD_LEVEL")) {
            const std::string v = f;
            faiss_level = v == "NONE" ? "scalar" : v == "AVX2" ? "avx2" : v == "AVX512" ? "avx512"
                        : v == "ARM_NEON" ? "neon" : v;
        }
    }
    if (const char* env = std::getenv("NEARLY_SIMD") ? std::getenv("NEARLY_SIMD")
                           : faiss_level.empty() ? nullptr : faiss_level.c_str()) {
        SimdLevel wanted;
        if (!parse_level(env, &wanted))
            std::fprintf(stderr, "nearly: ignoring unknown %s=%s\n", faiss_level.empty() ? "NEARLY_SIMD" : "FAISS_SIMD_LEVEL", env);
        else if (!supported(wanted))
            std::fprintf(stderr, "nearly: %s=%s is not supported by this CPU or build, using %s\n",
                         faiss_level.empty() ? "NEARLY_SIMD" : "FAISS_SIMD_LEVEL", env, simd_level_name(best).c_str());
        else
            best = wanted;
    }
    return &table(best);
}

std::atomic<const SimdKernels*>& active() {
    static std::atomic<const SimdKernels*> ptr{initial_table()};
    return ptr;
}

}  // namespace

const SimdKernels& simd() { return *active().load(std::memory_order_relaxed); }

SimdLevel simd_level() { return simd().level; }

std::string simd_level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::scalar: return "scalar";
        case SimdLevel::neon: return "neon";
        case SimdLevel::avx2: return "avx2";
        case SimdLevel::avx512: return "avx512";
    }
    return "unknown";
}

std::vector<SimdLevel> simd_levels_supported() {
    std::vector<SimdLevel> out;
    for (SimdLevel l : {SimdLevel::scalar, SimdLevel::neon, SimdLevel::avx2, SimdLevel::avx512})
        if (supported(l)) out.push_back(l);
    return out;
}

void set_simd_level(const std::string& name) {
    SimdLevel level;
    if (!parse_level(name, &level))
        throw InvalidArgument("unknown SIMD level '" + name + "' (expected scalar, avx2, avx512 or neon)");
    if (!supported(level))
        throw InvalidArgument("SIMD level '" + name + "' is not supported by this CPU or build");
    active().store(&table(level));
}

}  // namespace nearly
