// The scalar reference: the definition every SIMD variant is tested against.
// Plain loops in index order; no FMA contraction (see CMakeLists.txt).
#include <algorithm>
#include <cmath>

#include "nearly/simd.h"

namespace nearly {
namespace {

float inner_product(const float* x, const float* y, size_t d) {
    float s = 0.f;
    for (size_t i = 0; i < d; i++) s += x[i] * y[i];
    return s;
}

float l2sqr(const float* x, const float* y, size_t d) {
    float s = 0.f;
    for (size_t i = 0; i < d; i++) {
        float t = x[i] - y[i];
        s += t * t;
    }
    return s;
}

void inner_products_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = inner_product(q, x + j * d, d);
}

void l2sqr_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = l2sqr(q, x + j * d, d);
}

void inner_products_rows(const float* q, const float* const* rows, size_t d, size_t n, float* out) {
    for (size_t i = 0; i < n; i++) out[i] = inner_product(q, rows[i], d);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, size_t d) {
    int32_t s = 0;
    for (size_t i = 0; i < d; i++) s += int32_t(a[i]) * int32_t(b[i]);
    return s;
}

constexpr int MR = 4, NR = 8;

void gemm_micro(const float* q, const float* panel, size_t d, float* out, size_t ldo) {
    float acc[MR][NR] = {};
    for (size_t k = 0; k < d; k++)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += q[k * MR + i] * panel[k * NR + j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) out[i * ldo + j] = acc[i][j];
}


// Four queries, one after the other (no faster form at this level).
void ip_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) inner_products_ny(q + i * d, x, d, ny, out + i * ldo);
}

void l2sqr_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) l2sqr_ny(q + i * d, x, d, ny, out + i * ldo);
}

// The reference: one sum in index order.
void l1_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) {
        const float* xj = x + j * d;
        float s = 0;
        for (size_t i = 0; i < d; i++) s += std::fabs(q[i] - xj[i]);
        out[j] = s;
    }
}

void linf_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) {
        const float* xj = x + j * d;
        float s = 0;
        for (size_t i = 0; i < d; i++) s = std::max(s, std::fabs(q[i] - xj[i]));
        out[j] = s;
    }
}

}  // namespace

const SimdKernels& kernels_scalar() {
    static const SimdKernels k{SimdLevel::scalar, inner_product, l2sqr, inner_products_ny, l2sqr_ny, inner_products_rows,
                               dot_i8, {MR, NR}, gemm_micro, vecmat_unfused_scalar, vecmat_fused_scalar, ip_4q, l2sqr_4q, pq_adc8_scalar, nearest_transposed_scalar,
                               pq4_pack_lut_scalar, pq4_scan_block_scalar, l1_ny, linf_ny, pq_sdc8_scalar, select_within_scalar};
    return k;
}

}  // namespace nearly
