// TurboQuant's full codes at AVX-512 (turboquant.h): sixteen dimensions a
// step, four codes side by side (the query's loads shared, eight
// independent sums in flight). Each bit plane's two bytes are a mask that
// adds its bit to the cells (a masked add), the cells pick the centroids out
// of one register (a permute); at one MSE bit the plane is a mask of the
// query itself: sum_j q_j t[b_j] = t0 sum q + (t1 - t0) sum_{b_j = 1} q_j.
// The QJL plane's two bytes are the mask of a masked add of the transformed
// query. Reads may run a byte past a plane into the next one (or into the
// factors): those bits are for dimensions past d, where q and p are zeros.
#include <immintrin.h>

#include <cstring>

#include "../turboquant_dispatch.h"
#include "nearly/turboquant.h"

namespace nearly {

namespace {

inline __mmask16 mask_at(const uint8_t* c) {
    uint16_t m;
    std::memcpy(&m, c, 2);
    return __mmask16(m);
}

// The sum over code c of q_j t[cell_j] (B > 1) or of q_j over its set bits (B == 1).
template <int B>
inline __m512 mse_step(__m512 acc, const uint8_t* c, size_t pb, size_t o, __m512 qv, __m512 tab) {
    if constexpr (B == 1) {
        return _mm512_mask_add_ps(acc, mask_at(c + o), acc, qv);
    } else {
        __m512i idx = _mm512_setzero_si512();
        for (int pl = 0; pl < B; pl++)
            idx = _mm512_mask_add_epi32(idx, mask_at(c + pl * pb + o), idx, _mm512_set1_epi32(1 << pl));
        return _mm512_fmadd_ps(qv, _mm512_permutexvar_ps(idx, tab), acc);
    }
}

template <int B>
void sums(const uint8_t* const* codes, size_t n, size_t d, size_t pb, const float* q, const float* p,
          const float* t, float* mse, float* qjl) {
    const __m512 tab = _mm512_loadu_ps(t);
    float qsum = 0.f;  // B == 1: t0 sum q + (t1 - t0) (the masked sum)
    if constexpr (B == 1)
        for (size_t j = 0; j < d; j++) qsum += q[j];
    auto finish = [&](__m512 a, __m512 b, float* m, float* s) {
        const float sa = _mm512_reduce_add_ps(a);
        *m = B == 1 ? t[0] * qsum + (t[1] - t[0]) * sa : sa;
        *s = _mm512_reduce_add_ps(b);
    };
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = codes[i];
        const uint8_t* c1 = codes[i + 1];
        const uint8_t* c2 = codes[i + 2];
        const uint8_t* c3 = codes[i + 3];
        const size_t so = B * pb;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t j = 0; j < d; j += 16) {
            const size_t o = j / 8;
            const __m512 qv = _mm512_loadu_ps(q + j), pv = _mm512_loadu_ps(p + j);
            a0 = mse_step<B>(a0, c0, pb, o, qv, tab);
            a1 = mse_step<B>(a1, c1, pb, o, qv, tab);
            a2 = mse_step<B>(a2, c2, pb, o, qv, tab);
            a3 = mse_step<B>(a3, c3, pb, o, qv, tab);
            b0 = _mm512_mask_add_ps(b0, mask_at(c0 + so + o), b0, pv);
            b1 = _mm512_mask_add_ps(b1, mask_at(c1 + so + o), b1, pv);
            b2 = _mm512_mask_add_ps(b2, mask_at(c2 + so + o), b2, pv);
            b3 = _mm512_mask_add_ps(b3, mask_at(c3 + so + o), b3, pv);
        }
        finish(a0, b0, mse + i, qjl + i);
        finish(a1, b1, mse + i + 1, qjl + i + 1);
        finish(a2, b2, mse + i + 2, qjl + i + 2);
        finish(a3, b3, mse + i + 3, qjl + i + 3);
    }
    for (; i < n; i++) {
        const uint8_t* c = codes[i];
        __m512 a = _mm512_setzero_ps(), b = a;
        for (size_t j = 0; j < d; j += 16) {
            const size_t o = j / 8;
            a = mse_step<B>(a, c, pb, o, _mm512_loadu_ps(q + j), tab);
            b = _mm512_mask_add_ps(b, mask_at(c + B * pb + o), b, _mm512_loadu_ps(p + j));
        }
        finish(a, b, mse + i, qjl + i);
    }
}

// Up to four queries over the same codes (a search's group of queries):
// each code's masks are loaded once for all of them.
template <int B, int NQ>
void sums_group(const uint8_t* codes, size_t cs, size_t n, size_t d, size_t pb, const float* const* q,
                const float* const* p, const float* t, float* mse, float* qjl) {
    const __m512 tab = _mm512_loadu_ps(t);
    float qsum[NQ] = {};
    if constexpr (B == 1)
        for (int u = 0; u < NQ; u++)
            for (size_t j = 0; j < d; j++) qsum[u] += q[u][j];
    const size_t so = B * pb;
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m512 a[NQ], b[NQ];
        for (int u = 0; u < NQ; u++) a[u] = b[u] = _mm512_setzero_ps();
        for (size_t j = 0; j < d; j += 16) {
            const size_t o = j / 8;
            const __mmask16 ms = mask_at(c + so + o);
            if constexpr (B == 1) {
                const __mmask16 m0 = mask_at(c + o);
                for (int u = 0; u < NQ; u++) a[u] = _mm512_mask_add_ps(a[u], m0, a[u], _mm512_loadu_ps(q[u] + j));
            } else {
                __m512i idx = _mm512_setzero_si512();
                for (int pl = 0; pl < B; pl++)
                    idx = _mm512_mask_add_epi32(idx, mask_at(c + pl * pb + o), idx, _mm512_set1_epi32(1 << pl));
                const __m512 v = _mm512_permutexvar_ps(idx, tab);
                for (int u = 0; u < NQ; u++) a[u] = _mm512_fmadd_ps(_mm512_loadu_ps(q[u] + j), v, a[u]);
            }
            for (int u = 0; u < NQ; u++) b[u] = _mm512_mask_add_ps(b[u], ms, b[u], _mm512_loadu_ps(p[u] + j));
        }
        for (int u = 0; u < NQ; u++) {
            const float sa = _mm512_reduce_add_ps(a[u]);
            mse[u * n + i] = B == 1 ? t[0] * qsum[u] + (t[1] - t[0]) * sa : sa;
            qjl[u * n + i] = _mm512_reduce_add_ps(b[u]);
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

void tq_sums_group_avx512(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                          size_t nq, const float* const* q, const float* const* p, const float* t, float* mse,
                          float* qjl) {
    tq_detail::sums_group<Kernels>(mse_bits, codes, cs, n, d, plane_bytes, nq, q, p, t, mse, qjl);
}

void tq_sums_avx512(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                    const float* q, const float* p, const float* t, float* mse, float* qjl) {
    tq_detail::sums<Kernels>(mse_bits, codes, n, d, plane_bytes, q, p, t, mse, qjl);
}

}  // namespace nearly
