#include "nearly/binary_sdc.h"

#include <cstring>
#include <string>

#include "nearly/simd.h"

namespace nearly {

void sdc_check_shape(int m, int nb) {
    if (nb < 1 || nb > 4)
        throw InvalidArgument("bits_per_dim must be in 1..4, got " + std::to_string(nb));
    if (m <= 0 || m % 8 != 0)
        throw InvalidArgument("the code dimension m must be a positive multiple of 8, got " + std::to_string(m));
}

namespace {
// L_q(k) for every dimension of a canonical code.
void levels(const uint8_t* code, int m, int nb, int32_t* L) {
    const int P = m / 8;
    for (int k = 0; k < m; k++) {
        int32_t v = 0;
        for (int i = 0; i < nb; i++) {
            int bit = (code[i * P + k / 8] >> (k % 8)) & 1;
            v += (bit ? 1 : -1) * (1 << (nb - 1 - i));
        }
        L[k] = v;
    }
}
}  // namespace

void sdc_query_lut(const uint8_t* qcode, int m, int nb, int8_t* lut) {
    std::vector<int32_t> L(m);
    levels(qcode, m, nb, L.data());
    for (int g = 0; g < m / 4; g++)
        for (int n = 0; n < 16; n++) {
            int32_t t = 0;
            for (int k = 0; k < 4; k++) t += ((n >> k) & 1) ? L[4 * g + k] : -L[4 * g + k];
            lut[g * 16 + n] = int8_t(t);
        }
}

int32_t sdc_score_ref(const uint8_t* qcode, const uint8_t* xcode, int m, int nb) {
    std::vector<int32_t> a(m), b(m);
    levels(qcode, m, nb, a.data());
    levels(xcode, m, nb, b.data());
    int32_t s = 0;
    for (int k = 0; k < m; k++) s += a[k] * b[k];
    return s;
}

void sdc_prepare(const uint8_t* qcode, int m, int nb, SdcQuery& q) {
    sdc_check_shape(m, nb);
    q.m = m;
    q.nb = nb;
    const size_t P = size_t(m) / 8, PP = (P + 1) / 2;
    q.code.assign(qcode, qcode + size_t(nb) * P);
    std::vector<int8_t> lut(size_t(m) / 4 * 16);
    sdc_query_lut(qcode, m, nb, lut.data());
    const int bias = 4 * ((1 << nb) - 1);
    q.lut.resize(lut.size());
    for (size_t i = 0; i < lut.size(); i++) q.lut[i] = uint8_t(int(lut[i]) + bias);
    q.lut512.assign(PP * 128, 0);
    for (size_t pp = 0; pp < PP; pp++)
        for (size_t half = 0; half < 2; half++) {
            size_t p = 2 * pp + half;
            if (p >= P) break;
            for (size_t lane = 0; lane < 2; lane++) {
                std::memcpy(&q.lut512[pp * 128 + half * 32 + lane * 16], &q.lut[32 * p], 16);
                std::memcpy(&q.lut512[pp * 128 + 64 + half * 32 + lane * 16], &q.lut[32 * p + 16], 16);
            }
        }
    q.popq.assign(size_t(nb) * PP * 64, 0);
    for (int i = 0; i < nb; i++)
        for (size_t p = 0; p < P; p++)
            std::memset(&q.popq[(i * PP + p / 2) * 64 + (p % 2) * 32], qcode[i * P + p], 32);
}

bool sdc_popcount_native() {
#if defined(NEARLY_HAVE_AVX512)
    static const bool has = cpu_has_avx512_bitalg();
    return has && simd_level() == SimdLevel::avx512;
#else
    return false;
#endif
}

const char* sdc_popcount_kernel() {
    if (sdc_popcount_native()) return "avx512_bitalg";
#if defined(NEARLY_HAVE_AVX2)
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return "avx2_pshufb";
#endif
    return "scalar";
}

void sdc_scan(const SdcQuery& q, const uint8_t* blocks, size_t nblocks, int32_t* out, bool popcount) {
    const SimdLevel level = simd_level();
    (void)level;
    if (popcount) {
#if defined(NEARLY_HAVE_AVX512)
        if (sdc_popcount_native()) return sdc_scan_popcount_avx512(q.popq.data(), blocks, nblocks, q.m, q.nb, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        if (level == SimdLevel::avx2 || level == SimdLevel::avx512)
            return sdc_scan_popcount_avx2(q.popq.data(), blocks, nblocks, q.m, q.nb, out);
#endif
        return sdc_scan_scalar(q.code.data(), blocks, nblocks, q.m, q.nb, out);
    }
#if defined(NEARLY_HAVE_AVX512)
    if (level == SimdLevel::avx512) return sdc_scan_lut_avx512(q.lut512.data(), blocks, nblocks, q.m, q.nb, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
    if (level == SimdLevel::avx2 || level == SimdLevel::avx512)
        return sdc_scan_lut_avx2(q.lut.data(), blocks, nblocks, q.m, q.nb, out);
#endif
    sdc_scan_scalar(q.code.data(), blocks, nblocks, q.m, q.nb, out);
}

void sdc_scan_multi(const SdcQuery* const* qs, size_t nq, const uint8_t* blocks, size_t nblocks, int32_t* const* outs,
                    bool popcount) {
#if defined(NEARLY_HAVE_AVX512)
    if (!popcount && nq > 1 && simd_level() == SimdLevel::avx512) {
        std::vector<const uint8_t*> luts(nq);
        for (size_t i = 0; i < nq; i++) luts[i] = qs[i]->lut512.data();
        return sdc_scan_lut_avx512_multi(luts.data(), nq, blocks, nblocks, qs[0]->m, qs[0]->nb, outs);
    }
#endif
    for (size_t i = 0; i < nq; i++) sdc_scan(*qs[i], blocks, nblocks, outs[i], popcount);
}

size_t sdc_next_at_least(const int32_t* s, size_t j, size_t n, int32_t smin) {
#if defined(NEARLY_HAVE_AVX512)
    if (simd_level() == SimdLevel::avx512) return sdc_next_at_least_avx512(s, j, n, smin);
#endif
    while (j < n && s[j] < smin) j++;
    return j;
}

size_t sdc_next_at_least_off(const int32_t* s, const int32_t* off, size_t j, size_t n, int32_t smin) {
#if defined(NEARLY_HAVE_AVX512)
    if (simd_level() == SimdLevel::avx512) return sdc_next_at_least_off_avx512(s, off, j, n, smin);
#endif
    while (j < n && s[j] + off[j] < smin) j++;
    return j;
}

void sdc_scan(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    SdcQuery q;
    sdc_prepare(qcode, m, nb, q);
    sdc_scan(q, blocks, nblocks, out, false);
}

void sdc_scan_popcount(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    SdcQuery q;
    sdc_prepare(qcode, m, nb, q);
    sdc_scan(q, blocks, nblocks, out, true);
}

void sdc_to_blocks(const uint8_t* codes, size_t n, size_t cs, uint8_t* blocks, size_t first) {
    for (size_t i = 0; i < n; i++) {
        size_t v = first + i, blk = v / kSdcBlock, c = v % kSdcBlock;
        uint8_t* dst = blocks + blk * cs * kSdcBlock + c;
        const uint8_t* src = codes + i * cs;
        for (size_t p = 0; p < cs; p++) dst[p * kSdcBlock] = src[p];
    }
}

void sdc_from_blocks(const uint8_t* blocks, size_t i0, size_t n, size_t cs, uint8_t* codes) {
    for (size_t i = 0; i < n; i++) {
        size_t v = i0 + i, blk = v / kSdcBlock, c = v % kSdcBlock;
        const uint8_t* src = blocks + blk * cs * kSdcBlock + c;
        uint8_t* dst = codes + i * cs;
        for (size_t p = 0; p < cs; p++) dst[p] = src[p * kSdcBlock];
    }
}

}  // namespace nearly
