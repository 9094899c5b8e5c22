// The scalar reference of the PQ ADC scan: each code's lookups added in
// order m = 0 .. M-1 (the SIMD versions add in the same order, lane by lane).
#include "nearly/simd.h"

namespace nearly {

void pq_adc8_scalar(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * M;
        float s = 0.f;
        for (size_t m = 0; m < M; m++) s += tab[m * 256 + c[m]];
        out[j] = s;
    }
}

float pq_sdc8_scalar(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b, bool ip) {
    float s = 0.f;
    for (size_t m = 0; m < M; m++) {
        const float* x = C + (m * 256 + a[m]) * dsub;
        const float* y = C + (m * 256 + b[m]) * dsub;
        for (size_t j = 0; j < dsub; j++) s += ip ? x[j] * y[j] : (x[j] - y[j]) * (x[j] - y[j]);
    }
    return s;
}

}  // namespace nearly
