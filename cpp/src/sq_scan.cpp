#include "nearly/sq_scan.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "nearly/simd.h"

namespace nearly {

SQScorer::SQScorer(const ScalarQuantizer& sq, MetricType metric)
    : kind_(sq.turboq()                            ? kSQturboq
            : sq.codebook()                        ? kSQcodebook
            : sq.qtype == ScalarQuantizer::QT_fp16 ? kSQfp16
            : sq.qtype == ScalarQuantizer::QT_bf16 ? kSQbf16
                                                   : int(sq.bits)),
      ip_(metric == METRIC_INNER_PRODUCT),
      d_(sq.d),
      code_size_(sq.code_size) {
    sq.check_standalone();
    NEARLY_CHECK_ARG(sq.is_trained(), "SQScorer: the ScalarQuantizer is not trained");
    if (sq.turboq()) {
        tq_ = std::make_shared<const TurboQuantCodec>(sq);
        w_.assign(TurboQuantCodec::padded(d_), 0.f);
        r_.assign(TurboQuantCodec::padded(d_), 0.f);
        tq_coeff_ = float(std::sqrt(M_PI / 2.0f) / float(d_));  // faiss's QJL coefficient, rounded as its
        return;
    }
    if (sq.codebook()) {
        cb_bits_ = sq.bits;
        const size_t k = size_t(1) << sq.bits;
        table_.assign(std::max<size_t>(k, 16), 0.f);
        std::copy(sq.centroids(), sq.centroids() + k, table_.begin());
        w_.resize(d_);
        return;
    }
    A_.assign(d_, 0.f);
    B_.assign(d_, 1.f);
    if (sq.qtype == ScalarQuantizer::QT_8bit_direct_signed) A_.assign(d_, -128.f);
    direct8_ = (sq.qtype == ScalarQuantizer::QT_8bit_direct || sq.qtype == ScalarQuantizer::QT_8bit_direct_signed) &&
               d_ <= 32768;
    if (direct8_) q16_.resize(d_);
    if (sq.needs_training()) {
        const float levels = float((1 << sq.bits) - 1);
        for (size_t j = 0; j < d_; j++) {
            const float vmin = sq.uniform() ? sq.trained[0] : sq.trained[j];
            const float vdiff = sq.uniform() ? sq.trained[1] : sq.trained[d_ + j];
            B_[j] = vdiff / levels;
            A_[j] = vmin + 0.5f * B_[j];
        }
    }
    if (ip_) {
        w_.resize(d_);
    } else {
        w_ = B_;
        r_.resize(d_);
    }
}

void SQScorer::set_query(const float* q) {
    if (kind_ == kSQturboq) {
        float s = 0.f;
        for (size_t j = 0; j < d_; j++) s += q[j] * q[j];
        tq_qnorm_ = s;
        tq_->prepare_query(q, w_.data(), r_.data(), &tq_psum_);
        return;
    }
    if (kind_ == kSQcodebook) {
        std::copy(q, q + d_, w_.begin());
        return;
    }
    if (ip_) {
        float c0 = 0.f;
        for (size_t j = 0; j < d_; j++) {
            w_[j] = q[j] * B_[j];
            c0 += q[j] * A_[j];
        }
        c0_ = c0;
    } else {
        for (size_t j = 0; j < d_; j++) r_[j] = q[j] - A_[j];
    }
    if (!direct8_) return;
    const float* v = ip_ ? w_.data() : r_.data();
    const float lo = ip_ ? -255.f : 0.f;
    int_query_ = true;
    for (size_t j = 0; j < d_ && int_query_; j++) {
        int_query_ = v[j] >= lo && v[j] <= 255.f && v[j] == float(int(v[j]));
        q16_[j] = int_query_ ? int16_t(v[j]) : 0;
    }
}

float SQScorer::turboq_score(const uint8_t* code, float mse, float qjl) const {
    float f[2];  // norm, gamma
    std::memcpy(f, code + tq_->factors_offset(), sizeof(f));
    const float ip = f[0] * (mse + tq_coeff_ * f[1] * (2.0f * qjl - tq_psum_));
    return ip_ ? ip : tq_qnorm_ + f[0] * f[0] - 2.0f * ip;
}

void SQScorer::turboq_scores(const uint8_t* const* codes, size_t n, float* out) const {
    constexpr size_t kChunk = 64;
    float mse[kChunk], qjl[kChunk];
    for (size_t i0 = 0; i0 < n; i0 += kChunk) {
        const size_t m = std::min(kChunk, n - i0);
        tq_sums(tq_->mse_bits, codes + i0, m, d_, tq_->plane_bytes, w_.data(), r_.data(), tq_->table(), mse, qjl);
        for (size_t i = 0; i < m; i++) out[i0 + i] = turboq_score(codes[i0 + i], mse[i], qjl[i]);
    }
}

void SQScorer::scores(const uint8_t* codes, size_t n, float* out) const {
    if (kind_ == kSQturboq) {
        constexpr size_t kChunk = 256;
        const uint8_t* ptrs[kChunk];
        for (size_t i0 = 0; i0 < n; i0 += kChunk) {
            const size_t m = std::min(kChunk, n - i0);
            for (size_t i = 0; i < m; i++) ptrs[i] = codes + (i0 + i) * code_size_;
            turboq_scores(ptrs, m, out + i0);
        }
        return;
    }
    if (kind_ == kSQcodebook)
        return sq_codebook_scores(cb_bits_, ip_, codes, code_size_, n, d_, w_.data(), table_.data(), out);
    if (int_query_)
        sq8_int_scores(ip_, codes, code_size_, n, d_, q16_.data(), out);
    else
        sq_scores(kind_, ip_, codes, code_size_, n, d_, w_.data(), r_.data(), out);
    if (ip_ && c0_ != 0.f)
        for (size_t i = 0; i < n; i++) out[i] += c0_;
}

void SQScorer::scores_gather(const uint8_t* const* codes, size_t n, float* out) const {
    if (kind_ == kSQturboq) return turboq_scores(codes, n, out);
    if (kind_ == kSQcodebook)
        return sq_codebook_scores_gather(cb_bits_, ip_, codes, n, d_, w_.data(), table_.data(), out);
    if (int_query_)
        for (size_t i = 0; i < n; i++) sq8_int_scores(ip_, codes[i], code_size_, 1, d_, q16_.data(), out + i);
    else
        sq_scores_gather(kind_, ip_, codes, code_size_, n, d_, w_.data(), r_.data(), out);
    if (ip_ && c0_ != 0.f)
        for (size_t i = 0; i < n; i++) out[i] += c0_;
}

void SQScorer::scores_group(const SQScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out) {
    if (nq > 0 && s[0].kind_ == kSQturboq) {  // each code read once for the group
        const SQScorer& a = s[0];
        const TurboQuantCodec& tq = *a.tq_;
        constexpr size_t kChunk = 256;
        std::vector<const float*> qs(nq), ps(nq);
        for (size_t q = 0; q < nq; q++) qs[q] = s[q].w_.data(), ps[q] = s[q].r_.data();
        std::vector<float> mse(nq * kChunk), qjl(nq * kChunk);
        for (size_t i0 = 0; i0 < n; i0 += kChunk) {
            const size_t m = std::min(kChunk, n - i0);
            const uint8_t* c = codes + i0 * a.code_size_;
            tq_sums_group(tq.mse_bits, c, a.code_size_, m, a.d_, tq.plane_bytes, nq, qs.data(), ps.data(), tq.table(),
                          mse.data(), qjl.data());
            for (size_t q = 0; q < nq; q++)
                for (size_t i = 0; i < m; i++)
                    out[q * n + i0 + i] = s[q].turboq_score(c + i * a.code_size_, mse[q * m + i], qjl[q * m + i]);
        }
        return;
    }
    if (nq > 0 && s[0].kind_ == kSQcodebook) {  // the codebook kernels sum as the one-query kernels do
        std::vector<const float*> q(nq);
        for (size_t i = 0; i < nq; i++) q[i] = s[i].w_.data();
        return sq_codebook_scores_group(s[0].cb_bits_, s[0].ip_, codes, s[0].code_size_, n, s[0].d_, nq, q.data(),
                                        s[0].table_.data(), out);
    }
    bool any_int = false;
    for (size_t q = 0; q < nq; q++) any_int = any_int || s[q].int_query_;
    // Integer queries have their own kernel. A group of one goes through the
    // group kernel too, so that a query's scores do not depend on the batch.
    if (any_int) {
        for (size_t q = 0; q < nq; q++) s[q].scores(codes, n, out + q * n);
        return;
    }
    std::vector<const float*> w(nq), r(nq);
    for (size_t q = 0; q < nq; q++) {
        w[q] = s[q].w_.data();
        r[q] = s[q].r_.data();
    }
    const SQScorer& a = s[0];
    sq_scores_group(a.kind_, a.ip_, codes, a.code_size_, n, a.d_, nq, w.data(), r.data(), out);
    for (size_t q = 0; q < nq; q++)
        if (s[q].ip_ && s[q].c0_ != 0.f)
            for (size_t i = 0; i < n; i++) out[q * n + i] += s[q].c0_;
}

void sq_scores_group(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                     const float* const* w, const float* const* r, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_scores_group_avx512(kind, ip, codes, cs, n, d, nq, w, r, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_scores_group_avx2(kind, ip, codes, cs, n, d, nq, w, r, out);
#endif
        default: return sq_scores_group_scalar(kind, ip, codes, cs, n, d, nq, w, r, out);
    }
}

void sq_scores(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
               const float* r, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_scores_avx512(kind, ip, codes, cs, n, d, w, r, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_scores_avx2(kind, ip, codes, cs, n, d, w, r, out);
#endif
        default: return sq_scores_scalar(kind, ip, codes, cs, n, d, w, r, out);
    }
}

void sq_scores_gather(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                      const float* w, const float* r, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_scores_gather_avx512(kind, ip, codes, cs, n, d, w, r, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_scores_gather_avx2(kind, ip, codes, cs, n, d, w, r, out);
#endif
        default: return sq_scores_gather_scalar(kind, ip, codes, cs, n, d, w, r, out);
    }
}

namespace {
// The widths the SIMD codebook kernels are built for (EDEN's 5 to 7 bits
// take the scalar one).
bool simd_codebook_bits(size_t bits) { return bits <= 4 || bits == 8; }
}  // namespace

void sq_codebook_scores(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* q,
                        const float* t, float* out) {
    if (!simd_codebook_bits(bits)) return sq_codebook_scores_scalar(bits, ip, codes, cs, n, d, q, t, out);
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_codebook_scores_avx512(bits, ip, codes, cs, n, d, q, t, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_codebook_scores_avx2(bits, ip, codes, cs, n, d, q, t, out);
#endif
        default: return sq_codebook_scores_scalar(bits, ip, codes, cs, n, d, q, t, out);
    }
}

void sq_codebook_scores_group(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                              const float* const* q, const float* t, float* out) {
    if (!simd_codebook_bits(bits)) return sq_codebook_scores_group_scalar(bits, ip, codes, cs, n, d, nq, q, t, out);
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_codebook_scores_group_avx512(bits, ip, codes, cs, n, d, nq, q, t, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_codebook_scores_group_avx2(bits, ip, codes, cs, n, d, nq, q, t, out);
#endif
        default: return sq_codebook_scores_group_scalar(bits, ip, codes, cs, n, d, nq, q, t, out);
    }
}

void sq_codebook_scores_gather(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d, const float* q,
                               const float* t, float* out) {
    if (!simd_codebook_bits(bits)) return sq_codebook_scores_gather_scalar(bits, ip, codes, n, d, q, t, out);
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_codebook_scores_gather_avx512(bits, ip, codes, n, d, q, t, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_codebook_scores_gather_avx2(bits, ip, codes, n, d, q, t, out);
#endif
        default: return sq_codebook_scores_gather_scalar(bits, ip, codes, n, d, q, t, out);
    }
}

void sq8_int_scores(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx512:  // AVX2's: 32 dimensions a step measured no faster (bound by reading the codes)
        case SimdLevel::avx2: return sq8_int_scores_avx2(ip, codes, cs, n, d, q, out);
#endif
        default: return sq8_int_scores_scalar(ip, codes, cs, n, d, q, out);
    }
}

}  // namespace nearly
