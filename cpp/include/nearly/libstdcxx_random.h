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

// std::mersenne_twister_engine as the standard defines it: word size w,
// state size n, shift m, separation r = 31 (both standard engines), twist
// matrix a, tempering (u, dmask), (s, b), (t, c), l, seeding multiplier f.
template <class UInt, int w, int n, int m, UInt a, int u, UInt dmask, int s, UInt b, int t, UInt c, int l, UInt f>
class MersenneTwister {
   public:
    static constexpr UInt default_seed = 5489u;
    explicit MersenneTwister(UInt seed = default_seed) {
        state_[0] = seed;
        for (int i = 1; i < n; i++) state_[i] = UInt(f * (state_[i - 1] ^ (state_[i - 1] >> (w - 2))) + UInt(i));
        next_ = n;
    }
    UInt operator()() {
        if (next_ >= n) twist();
        UInt y = state_[next_++];
        y ^= (y >> u) & dmask;
        y ^= (y << s) & b;
        y ^= (y << t) & c;
        y ^= y >> l;
        return y;
    }

   private:
    void twist() {
        constexpr UInt lower = (UInt(1) << 31) - 1, upper = UInt(~lower);
        for (int i = 0; i < n; i++) {
            const UInt y = (state_[i] & upper) | (state_[(i + 1) % n] & lower);
            state_[i] = state_[(i + m) % n] ^ (y >> 1) ^ ((y & 1u) ? a : UInt(0));
        }
        next_ = 0;
    }
    UInt state_[n];
    int next_;
};

using Mt19937 = MersenneTwister<uint32_t, 32, 624, 397, 0x9908b0dfu, 11, 0xffffffffu, 7, 0x9d2c5680u, 15,
                                0xefc60000u, 18, 1812433253u>;
using Mt19937_64 = MersenneTwister<uint64_t, 64, 312, 156, 0xb5026f5aa96619e9ull, 29, 0x5555555555555555ull, 17,
                                   0x71d67fffeda60000ull, 37, 0xfff7eee000000000ull, 43, 6364136223846793005ull>;

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
