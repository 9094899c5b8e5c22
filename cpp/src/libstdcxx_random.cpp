#include "nearly/libstdcxx_random.h"

#include <cmath>

namespace nearly {

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

// ---- 64-bit engine ----------------------------------------------------

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
