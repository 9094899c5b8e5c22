// Cross-checks nearly's explicit random draws (libstdcxx_random.h) against
// <random> itself, built with libstdc++ from GCC 11 or later (the library the
// MUVERA reference was built with). Run by tests/test_fde.py when g++ is
// installed. Prints "OK: 0 failures" when every draw matches bit for bit.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include "nearly/libstdcxx_random.h"

using namespace nearly;

static int failures = 0;

static uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

static void report(const char* what, uint32_t seed, long i) {
    if (failures++ < 20) std::printf("mismatch: %s seed %u draw %ld\n", what, seed, i);
}

int main() {
#if !defined(__GLIBCXX__) || !defined(_GLIBCXX_RELEASE) || _GLIBCXX_RELEASE < 11
    std::printf("SKIP: needs libstdc++ from GCC 11 or later\n");
    return 0;
#else
    const uint32_t seeds[] = {0u, 1u, 2u, 5489u, 42u, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    for (uint32_t seed : seeds) {
        {  // the engine
            std::mt19937 a(seed);
            Mt19937 b(seed);
            for (long i = 0; i < 5000; i++)
                if (uint32_t(a()) != b()) report("mt19937", seed, i);
        }
        {  // normal_distribution<float>, many pairs (logf, the cache)
            std::mt19937 a(seed);
            Mt19937 b(seed);
            std::normal_distribution<float> na(0.f, 1.f);
            NormalFloat nb(0.f, 1.f);
            for (long i = 0; i < 200000; i++)
                if (bits(na(a)) != bits(nb(b))) report("normal_distribution<float>", seed, i);
            if (uint32_t(a()) != b()) report("normal: engine position", seed, -1);
        }
        {  // bernoulli_distribution(0.5) and generate_canonical<double>
            std::mt19937 a(seed);
            Mt19937 b(seed);
            std::bernoulli_distribution ba(0.5);
            for (long i = 0; i < 100000; i++)
                if (ba(a) != bernoulli(b, 0.5)) report("bernoulli_distribution", seed, i);
            if (uint32_t(a()) != b()) report("bernoulli: engine position", seed, -1);
        }
        // uniform_int_distribution, the two instantiations the reference
        // uses, over ranges with and without rejections.
        const uint64_t ranges[] = {1, 2, 3, 4, 5, 7, 8, 16, 100, 1000, 3000000000ull, 4294967295ull, 4294967296ull};
        for (uint64_t range : ranges) {
            std::mt19937 a(seed), a32(seed);
            Mt19937 b(seed), b32(seed);
            std::uniform_int_distribution<size_t> ua(0, size_t(range - 1));
            for (long i = 0; i < 20000; i++)
                if (ua(a) != uniform_below(b, range)) report("uniform_int_distribution<size_t>", seed, i);
            if (uint32_t(a()) != b()) report("uniform<size_t>: engine position", seed, long(range));
            if (range <= 0x7fffffffull) {
                std::uniform_int_distribution<int32_t> ua32(0, int32_t(range - 1));
                for (long i = 0; i < 20000; i++)
                    if (uint32_t(ua32(a32)) != uniform_below(b32, range))
                        report("uniform_int_distribution<int32_t>", seed, i);
            }
        }
    }
    std::printf("OK: %d failures\n", failures);
    return failures ? 1 : 0;
#endif
}
