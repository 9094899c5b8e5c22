#include "nearly/libstdcxx_random.h"

#include <cmath>

namespace nearly {

// ---- std::mt19937 (word size 32, n 624, m 397, r 31) --------------------

Mt19937::Mt19937(uint32_t seed) {
    state_[0] = seed;
    for (int i = 1; i < n; i++) state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + uint32_t(i);
    next_ = n;
}

void Mt19937::twist() {
    constexpr int m = 397;
    constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix_a = 0x9908b0dfu;
    for (int i = 0; i < n; i++) {
        uint32_t y = (state_[i] & upper) | (state_[(i + 1) % n] & lower);
        state_[i] = state_[(i + m) % n] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
    }
    next_ = 0;
}

uint32_t Mt19937::operator()() {
    if (next_ >= n) twist();
    uint32_t y = state_[next_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

// ---- generate_canonical -------------------------------------------------
// libstdc++ sums ceil(digits / 32) draws, the k-th scaled by 2^(32k), in the
// result type, divides by 2^(32m), and maps a result that rounded up to 1.0
// to the largest value below 1.

float canonical_float(Mt19937& gen) {
    const float sum = float(gen());  // rounds to 24 bits: may reach 2^32
    const float r = sum / 4294967296.0f;
    return r >= 1.0f ? std::nextafter(1.0f, 0.0f) : r;
}

double canonical_double(Mt19937& gen) {
    double sum = double(gen());
    sum += double(gen()) * 4294967296.0;  // rounds to 53 bits
    const double r = sum / 18446744073709551616.0;
    return r >= 1.0 ? std::nextafter(1.0, 0.0) : r;
}

bool bernoulli(Mt19937& gen, double p) { return canonical_double(gen) < p; }

uint32_t uniform_below(Mt19937& gen, uint64_t range) {
    // A range of 2^32 is the engine's own: libstdc++ returns the draw as is.
    if (range > 0xffffffffull) return gen();
    const uint32_t r32 = uint32_t(range);
    uint64_t product = uint64_t(gen()) * r32;
    uint32_t low = uint32_t(product);
    if (low < r32) {
        const uint32_t threshold = uint32_t(0u - r32) % r32;  // 2^32 mod range
        while (low < threshold) {
            product = uint64_t(gen()) * r32;
            low = uint32_t(product);
        }
    }
    return uint32_t(product >> 32);
}

// ---- std::mt19937_64 (word size 64, n 312, m 156, r 31) ----------------

Mt19937_64::Mt19937_64(uint64_t seed) {
    state_[0] = seed;
    for (int i = 1; i < n; i++)
        state_[i] = 6364136223846793005ull * (state_[i - 1] ^ (state_[i - 1] >> 62)) + uint64_t(i);
    next_ = n;
}

void Mt19937_64::twist() {
    constexpr int m = 156;
    constexpr uint64_t upper = 0xffffffff80000000ull, lower = 0x7fffffffull, matrix_a = 0xb5026f5aa96619e9ull;
    for (int i = 0; i < n; i++) {
        uint64_t y = (state_[i] & upper) | (state_[(i + 1) % n] & lower);
        state_[i] = state_[(i + m) % n] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
    }
    next_ = 0;
}

uint64_t Mt19937_64::operator()() {
    if (next_ >= n) twist();
    uint64_t y = state_[next_++];
    y ^= (y >> 29) & 0x5555555555555555ull;
    y ^= (y << 17) & 0x71d67fffeda60000ull;
    y ^= (y << 37) & 0xfff7eee000000000ull;
    y ^= y >> 43;
    return y;
}

double canonical_double(Mt19937_64& gen) {
    const double r = double(gen()) / 18446744073709551616.0;  // the draw rounds to 53 bits: may reach 2^64
    return r >= 1.0 ? std::nextafter(1.0, 0.0) : r;
}

uint64_t uniform_below(Mt19937_64& gen, uint64_t range) {
    unsigned __int128 product = (unsigned __int128)gen() * range;
    uint64_t low = uint64_t(product);
    if (low < range) {
        const uint64_t threshold = (0ull - range) % range;  // 2^64 mod range
        while (low < threshold) {
            product = (unsigned __int128)gen() * range;
            low = uint64_t(product);
        }
    }
    return uint64_t(product >> 64);
}

// ---- normal_distribution<float> -----------------------------------------

float NormalFloat::operator()(Mt19937& gen) {
    float ret;
    if (saved_available_) {
        saved_available_ = false;
        ret = saved_;
    } else {
        float x, y, r2;
        do {
            // 2u - 1 is formed in double (the literal 1.0 is a double in
            // libstdc++) and rounded back to float.
            x = float(double(2.0f * canonical_float(gen)) - 1.0);
            y = float(double(2.0f * canonical_float(gen)) - 1.0);
            r2 = x * x + y * y;
        } while (r2 > 1.0f || r2 == 0.0f);
        const float mult = std::sqrt(-2.0f * std::log(r2) / r2);  // float overloads: sqrtf, logf
        saved_ = x * mult;
        saved_available_ = true;
        ret = y * mult;
    }
    return ret * stddev_ + mean_;
}

}  // namespace nearly
