// Explicit reimplementations of the random draws that Google's MUVERA
// reference (google/graph-mining, fixed_dimensional_encoding.cc) and faiss's
// k-means seeding (ClusteringInitialization.cpp) make through <random>:
// std::mt19937, std::mt19937_64 and the distributions as libstdc++ (GCC 11
// and later) implements them. The C++ standard fixes mt19937's output but leaves
// the distributions to the library, so calling <random> directly would give
// other matrices under libc++ or MSVC. Writing the draws out makes the
// Fixed Dimensional Encodings the same on every platform (and on the GPU).
//
// Floating point here must be plain IEEE arithmetic: libstdcxx_random.cpp is
// compiled with -ffp-contract=off (see CMakeLists.txt).
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {

// std::mt19937: the 32-bit Mersenne Twister with the standard's parameters.
class Mt19937 {
   public:
    static constexpr uint32_t default_seed = 5489u;
    explicit Mt19937(uint32_t seed = default_seed);
    uint32_t operator()();

   private:
    static constexpr int n = 624;
    void twist();
    uint32_t state_[n];
    int next_;
};

// generate_canonical<float, 24>: one draw, float(u) / 2^32, kept below 1.
float canonical_float(Mt19937& gen);
// generate_canonical<double, 53>: two draws, (u0 + u1 * 2^32) / 2^64 rounded
// to double, kept below 1.
double canonical_double(Mt19937& gen);

// std::bernoulli_distribution(p): true when canonical_double < p.
bool bernoulli(Mt19937& gen, double p);

// std::uniform_int_distribution over [0, range - 1] for 1 <= range <= 2^32:
// Lemire's multiply-and-reject on one 32-bit draw (libstdc++'s path for a
// 32-bit engine), redrawing only when the low word falls below 2^32 mod range.
uint32_t uniform_below(Mt19937& gen, uint64_t range);

// std::mt19937_64: the 64-bit Mersenne Twister with the standard's parameters.
class Mt19937_64 {
   public:
    static constexpr uint64_t default_seed = 5489u;
    explicit Mt19937_64(uint64_t seed = default_seed);
    uint64_t operator()();

   private:
    static constexpr int n = 312;
    void twist();
    uint64_t state_[n];
    int next_;
};

// generate_canonical<double, 53> on a 64-bit engine: one draw, double(u)
// (rounded to 53 bits) / 2^64, kept below 1.
double canonical_double(Mt19937_64& gen);

// std::uniform_int_distribution<uint64_t> over [0, range - 1], 1 <= range
// < 2^64, on a 64-bit engine: Lemire's multiply-and-reject in 128 bits.
uint64_t uniform_below(Mt19937_64& gen, uint64_t range);

// std::normal_distribution<float>(mean, stddev): Marsaglia's polar method in
// float. Each accepted pair (x, y) yields y * mult first and keeps x * mult
// for the next call, like libstdc++. The logarithm is the C library's logf,
// which is what the reference calls; glibc's logf is deterministic, other C
// libraries may round a rare draw differently in the last bit.
class NormalFloat {
   public:
    NormalFloat(float mean = 0.f, float stddev = 1.f) : mean_(mean), stddev_(stddev) {}
    float operator()(Mt19937& gen);

   private:
    float mean_, stddev_;
    float saved_ = 0.f;
    bool saved_available_ = false;
};

}  // namespace nearly
