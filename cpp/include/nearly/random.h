// faiss's random draws (utils/random.h), value for value: the same seed gives
// the same numbers as faiss on every platform, so code that draws test data
// with faiss.rand / faiss.randn, or a random rotation, gets what it got with
// faiss. Each array is cut into up to 1,024 blocks, each drawn from its own
// std::mt19937 seeded from the first generator's two draws; the blocks run on
// our thread pool and the result does not depend on the thread count.
//
// Floating point here is plain IEEE arithmetic (random.cpp is compiled with
// -ffp-contract=off, see CMakeLists.txt), as in faiss's build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

void float_rand(float* x, size_t n, int64_t seed);    // uniform in [0, 1]
void float_randn(float* x, size_t n, int64_t seed);   // standard normal (Marsaglia's polar method)
void int64_rand(int64_t* x, size_t n, int64_t seed);  // uniform in [0, 2^62)
void int64_rand_max(int64_t* x, size_t n, uint64_t max, int64_t seed);  // uniform in [0, max)

// faiss's random rotation: rows x cols (rows <= cols) Gaussian entries from
// float_randn(seed), whose rows are orthonormalized as LAPACK's Householder
// QR does it (the same signs), in double. faiss computes the same in float:
// the matrices agree to about 1e-7.
std::vector<double> random_rotation_rows(size_t rows, size_t cols, int64_t seed);

// Vigna's SplitMix64 (faiss's SplitMix64RandomGenerator, value for value):
// one 64-bit state stepped by the golden-ratio increment and mixed.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(int64_t seed) : state(uint64_t(seed)) {}
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

// faiss::rand_perm: a Fisher-Yates shuffle of 0..n-1 drawn from std::mt19937
// seeded with (unsigned) seed, each swap index taken as draw % (n - i).
void rand_perm(int* perm, size_t n, int64_t seed);

// faiss's fvecs_maybe_subsample: where n > max (max > 0), the first max rows
// (of d floats) of x in the order of rand_perm(seed), copied into storage,
// which x then points to, and n becomes max; otherwise nothing. verbose
// prints faiss's line.
void maybe_subsample(const float*& x, size_t& n, size_t d, size_t max, std::vector<float>& storage, bool verbose,
                     int64_t seed = 1234);

}  // namespace nearly
