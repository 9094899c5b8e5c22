// TurboQuant's full codes at AVX2 (turboquant.h): eight dimensions a step,
// one byte of each bit plane. A byte becomes eight lane masks (broadcast,
// and with the lanes' bits, compare); the planes' masks build the cells,
// which pick the centroids by a permute (two and a blend for 16 centroids),
// and the QJL byte's masks select the transformed query's lanes to add.
#include <immintrin.h>

#include "../turboquant_dispatch.h"
#include "nearly/turboquant.h"

namespace nearly {

namespace {

inline __m256i lanes_of(uint8_t byte, __m256i bitsel) {
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(byte), bitsel), bitsel);
}

// The centroids of eight dimensions' cells (byte o of each of the B planes).
template <int B>
inline __m256 centroids8(const uint8_t* c, size_t pb, size_t o, __m256 lo, __m256 hi, __m256i bitsel) {
    __m256i idx = _mm256_setzero_si256();
    for (int pl = 0; pl < B; pl++)
        idx = _mm256_or_si256(idx, _mm256_and_si256(lanes_of(c[pl * pb + o], bitsel), _mm256_set1_epi32(1 << pl)));
    __m256 v = _mm256_permutevar8x32_ps(lo, idx);
    if constexpr (B == 4)
        v = _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(hi, idx),
                             _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7))));
    return v;
}

template <int B>
inline __m256 mse_step(__m256 acc, const uint8_t* c, size_t pb, size_t o, __m256 qv, __m256 lo, __m256 hi,
                       __m256i bitsel) {
    return _mm256_fmadd_ps(qv, centroids8<B>(c, pb, o, lo, hi, bitsel), acc);
}

inline __m256 qjl_step(__m256 acc, uint8_t byte, __m256 pv, __m256i bitsel) {
    return _mm256_add_ps(acc, _mm256_and_ps(pv, _mm256_castsi256_ps(lanes_of(byte, bitsel))));
}

// Lanes summed in a fixed order (the same for every code).
inline float hsum(__m256 a) {
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    a4 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    return _mm_cvtss_f32(_mm_add_ss(a4, _mm_movehdup_ps(a4)));
}

template <int B>
void sums(const uint8_t* const* codes, size_t n, size_t d, size_t pb, const float* q, const float* p,
          const float* t, float* mse, float* qjl) {
    const __m256i bitsel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
    const size_t so = B * pb;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {  // four codes side by side: the query's loads shared
        const uint8_t* c0 = codes[i];
        const uint8_t* c1 = codes[i + 1];
        const uint8_t* c2 = codes[i + 2];
        const uint8_t* c3 = codes[i + 3];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t j = 0; j < d; j += 8) {
            const size_t o = j / 8;
            const __m256 qv = _mm256_loadu_ps(q + j), pv = _mm256_loadu_ps(p + j);
            a0 = mse_step<B>(a0, c0, pb, o, qv, lo, hi, bitsel);
            a1 = mse_step<B>(a1, c1, pb, o, qv, lo, hi, bitsel);
            a2 = mse_step<B>(a2, c2, pb, o, qv, lo, hi, bitsel);
            a3 = mse_step<B>(a3, c3, pb, o, qv, lo, hi, bitsel);
            b0 = qjl_step(b0, c0[so + o], pv, bitsel);
            b1 = qjl_step(b1, c1[so + o], pv, bitsel);
            b2 = qjl_step(b2, c2[so + o], pv, bitsel);
            b3 = qjl_step(b3, c3[so + o], pv, bitsel);
        }
        mse[i] = hsum(a0), mse[i + 1] = hsum(a1), mse[i + 2] = hsum(a2), mse[i + 3] = hsum(a3);
        qjl[i] = hsum(b0), qjl[i + 1] = hsum(b1), qjl[i + 2] = hsum(b2), qjl[i + 3] = hsum(b3);
    }
    for (; i < n; i++) {
        const uint8_t* c = codes[i];
        __m256 a = _mm256_setzero_ps(), b = a;
        for (size_t j = 0; j < d; j += 8) {
            const size_t o = j / 8;
            a = mse_step<B>(a, c, pb, o, _mm256_loadu_ps(q + j), lo, hi, bitsel);
            b = qjl_step(b, c[so + o], _mm256_loadu_ps(p + j), bitsel);
        }
        mse[i] = hsum(a);
        qjl[i] = hsum(b);
    }
}

// Up to four queries over the same codes (a search's group of queries):
// each code's lane masks are built once for all of them.
template <int B, int NQ>
void sums_group(const uint8_t* codes, size_t cs, size_t n, size_t d, size_t pb, const float* const* q,
                const float* const* p, const float* t, float* mse, float* qjl) {
    const __m256i bitsel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
    const size_t so = B * pb;
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m256 a[NQ], b[NQ];
        for (int u = 0; u < NQ; u++) a[u] = b[u] = _mm256_setzero_ps();
        for (size_t j = 0; j < d; j += 8) {
            const size_t o = j / 8;
            const __m256 v = centroids8<B>(c, pb, o, lo, hi, bitsel);
            const __m256 ms = _mm256_castsi256_ps(lanes_of(c[so + o], bitsel));
            for (int u = 0; u < NQ; u++) {
                a[u] = _mm256_fmadd_ps(_mm256_loadu_ps(q[u] + j), v, a[u]);
                b[u] = _mm256_add_ps(b[u], _mm256_and_ps(_mm256_loadu_ps(p[u] + j), ms));
            }
        }
        for (int u = 0; u < NQ; u++) {
            mse[u * n + i] = hsum(a[u]);
            qjl[u * n + i] = hsum(b[u]);
        }
    }
}

struct Kernels {
    template <int B>
    static void one(const uint8_t* const* codes, size_t n, size_t d, size_t pb, const float* q, const float* p,
                    const float* t, float* mse, float* qjl) {
        sums<B>(codes, n, d, pb, q, p, t, mse, qjl);
    }
    template <int B, int NQ>
    static void group(const uint8_t* codes, size_t cs, size_t n, size_t d, size_t pb, const float* const* q,
                      const float* const* p, const float* t, float* mse, float* qjl) {
        sums_group<B, NQ>(codes, cs, n, d, pb, q, p, t, mse, qjl);
    }
};

}  // namespace

void tq_sums_group_avx2(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                        size_t nq, const float* const* q, const float* const* p, const float* t, float* mse,
                        float* qjl) {
    tq_detail::sums_group<Kernels>(mse_bits, codes, cs, n, d, plane_bytes, nq, q, p, t, mse, qjl);
}

void tq_sums_avx2(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                  const float* q, const float* p, const float* t, float* mse, float* qjl) {
    tq_detail::sums<Kernels>(mse_bits, codes, n, d, plane_bytes, q, p, t, mse, qjl);
}

}  // namespace nearly
