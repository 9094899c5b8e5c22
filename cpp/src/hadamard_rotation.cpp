#include "nearly/hadamard_rotation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/random.h"

namespace nearly {

namespace {

int next_power_of_2(int d) {
    NEARLY_CHECK_ARG(d > 0 && d <= (1 << 30), "HadamardRotation: d must be in [1, 2^30], got " + std::to_string(d));
    int p = 1;
    while (p < d) p *= 2;
    return p;
}

// The unnormalized Walsh-Hadamard butterflies, in place (n a power of 2).
// The first three stages run inside each group of 8 floats held in
// registers; the later ones pair runs of at least 8 contiguous floats,
// which the compiler vectorizes. Every sum is the one the plain stage order
// computes, so the output is bit for bit the same (faiss's).
void walsh_hadamard(float* v, size_t n) {
    size_t first = 1;  // the first stage left to run on the whole vector
    if (n >= 8) {
        first = 8;
        for (size_t i = 0; i < n; i += 8) {
            float a[8];
            std::copy(v + i, v + i + 8, a);
            for (size_t h = 1; h < 8; h *= 2)
                for (size_t j = 0; j < 8; j++)
                    if (!(j & h)) {
                        const float x = a[j], y = a[j + h];
                        a[j] = x + y;
                        a[j + h] = x - y;
                    }
            std::copy(a, a + 8, v + i);
        }
    }
    for (size_t h = first; h < n; h *= 2)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                const float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

}  // namespace

HadamardRotation::HadamardRotation(int d, uint32_t seed_) : VectorTransform(d, next_power_of_2(d)) { init(seed_); }

void HadamardRotation::init(uint32_t seed_) {
    seed = seed_;
    SplitMix64 rng(seed_);
    for (auto* s : {&signs1, &signs2, &signs3}) {
        s->resize(size_t(d_out));
        for (float& v : *s) v = rng.next() % 2 == 0 ? -1.f : 1.f;
    }
    is_trained = true;
}

void HadamardRotation::apply(idx_t n, const float* x, float* out) const {
    const size_t di = size_t(d_in), p = size_t(d_out);
    // Each transform multiplies norms by sqrt(p): scaled once at the end.
    const float scale = 1.0f / (float(p) * std::sqrt(float(p)));
    parallel_for_blocks(size_t(n), 64, [&](size_t i) {
        float* y = out + i * p;
        for (size_t j = 0; j < di; j++) y[j] = x[i * di + j] * signs1[j];
        for (size_t j = di; j < p; j++) y[j] = 0.f;
        walsh_hadamard(y, p);
        for (size_t j = 0; j < p; j++) y[j] *= signs2[j];
        walsh_hadamard(y, p);
        for (size_t j = 0; j < p; j++) y[j] *= signs3[j];
        walsh_hadamard(y, p);
        for (size_t j = 0; j < p; j++) y[j] *= scale;
    });
}

void HadamardRotation::reverse(idx_t n, const float* y, float* x) const {
    // The forward map is s H S3 H S2 H S1 (H symmetric, H H = p I): its
    // inverse is s S1 H S2 H S3 H.
    const size_t di = size_t(d_in), p = size_t(d_out);
    const float scale = 1.0f / (float(p) * std::sqrt(float(p)));
    parallel_for_blocks(size_t(n), 64, [&](size_t i) {
        std::vector<float> v(y + i * p, y + (i + 1) * p);
        walsh_hadamard(v.data(), p);
        for (size_t j = 0; j < p; j++) v[j] *= signs3[j];
        walsh_hadamard(v.data(), p);
        for (size_t j = 0; j < p; j++) v[j] *= signs2[j];
        walsh_hadamard(v.data(), p);
        for (size_t j = 0; j < di; j++) x[i * di + j] = v[j] * signs1[j] * scale;
    });
}

void HadamardRotation::write_body(Writer& w) const { w.pod<uint32_t>(seed); }

std::shared_ptr<HadamardRotation> HadamardRotation::read(Reader& r, int d_in, int d_out) {
    const uint32_t seed = r.pod<uint32_t>();
    r.check(d_in <= (1 << 30) && next_power_of_2(d_in) == d_out, "bad HadamardRotation dimensions");
    return std::make_shared<HadamardRotation>(d_in, seed);
}

}  // namespace nearly
