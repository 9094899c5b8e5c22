// Hamming distances with the hardware popcnt instruction on 64-bit words
// (built with -mpopcnt); the generalized distance (bytes that differ) with
// AVX2 byte compares.
#include <immintrin.h>

#include "../hamming_popcount.h"

namespace nearly {

void hamming_ny_popcnt(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    hamming_popcount::hamming_ny(q, x, cs, ny, out);
}

namespace {

// Codes of CS bytes (a multiple of 8 up to 64, known at compile time): the
// query's bytes held in registers (out's stores may alias q, so the
// compiler would reload it for every code otherwise), loops unrolled.
template <size_t CS>
void generalized_ny_fixed(const uint8_t* q, const uint8_t* x, size_t ny, int32_t* out) {
    static_assert(CS % 8 == 0 && CS <= 64, "8-byte multiples up to 64");
    constexpr size_t N32 = CS / 32, N16 = (CS % 32) / 16, N8 = (CS % 16) / 8;
    __m256i q32[N32 ? N32 : 1];
    __m128i q16 = _mm_setzero_si128(), q8 = _mm_setzero_si128();
    for (size_t i = 0; i < N32; i++) q32[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i));
    if (N16) q16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 32 * N32));
    if (N8) q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 32 * N32 + 16 * N16));
    for (size_t j = 0; j < ny; j++) {
        const uint8_t* y = x + j * CS;
        int32_t equal = 0;
        for (size_t i = 0; i < N32; i++)
            equal += __builtin_popcount(unsigned(_mm256_movemask_epi8(
                _mm256_cmpeq_epi8(q32[i], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * i))))));
        if (N16)
            equal += __builtin_popcount(unsigned(_mm_movemask_epi8(
                _mm_cmpeq_epi8(q16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + 32 * N32))))));
        if (N8)
            equal += __builtin_popcount(unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(
                q8, _mm_loadl_epi64(reinterpret_cast<const __m128i*>(y + 32 * N32 + 16 * N16))))) & 0xffu);
        out[j] = int32_t(CS) - equal;
    }
}

void generalized_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    for (size_t j = 0; j < ny; j++) {
        const uint8_t* y = x + j * cs;
        int32_t equal = 0;
        size_t b = 0;
        for (; b + 32 <= cs; b += 32) {
            const __m256i e = _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b)),
                                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + b)));
            equal += __builtin_popcount(unsigned(_mm256_movemask_epi8(e)));
        }
        for (; b + 16 <= cs; b += 16) {
            const __m128i e = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + b)),
                                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + b)));
            equal += __builtin_popcount(unsigned(_mm_movemask_epi8(e)));
        }
        for (; b < cs; b++) equal += q[b] == y[b];
        out[j] = int32_t(cs) - equal;
    }
}

}  // namespace

void generalized_hamming_ny_avx2(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    switch (cs) {
        case 8: return generalized_ny_fixed<8>(q, x, ny, out);
        case 16: return generalized_ny_fixed<16>(q, x, ny, out);
        case 24: return generalized_ny_fixed<24>(q, x, ny, out);
        case 32: return generalized_ny_fixed<32>(q, x, ny, out);
        case 48: return generalized_ny_fixed<48>(q, x, ny, out);
        case 64: return generalized_ny_fixed<64>(q, x, ny, out);
        default: return generalized_ny(q, x, cs, ny, out);
    }
}

}  // namespace nearly
