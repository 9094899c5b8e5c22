#include "nearly/eden.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "nearly/common.h"
#include "nearly/parallel.h"
#include "nearly/sq_scan.h"
#include "simd/sq_codes.h"

namespace nearly {

namespace {
ScalarQuantizer::QuantizerType eden_qtype(size_t bits) {
    NEARLY_CHECK_ARG(bits >= 1 && bits <= 8, "EDEN: nb_bits must be 1 to 8 (got " + std::to_string(bits) + ")");
    return ScalarQuantizer::eden_type(bits);
}
}  // namespace

EdenCodec::EdenCodec(size_t d_, size_t bits, bool biased_) : d(d_), biased(biased_), sq(d_, eden_qtype(bits)) {
    sq.train(0, nullptr);  // the codebook takes no data
}

void EdenCodec::factors(const uint8_t* code, size_t packed, float& l2_norm_term, float& scale) {
    std::memcpy(&l2_norm_term, code + packed, sizeof(float));
    std::memcpy(&scale, code + packed + sizeof(float), sizeof(float));
}

void EdenCodec::encode(size_t n, const float* x, const float* center, uint8_t* codes) const {
    const size_t cs = code_size(), packed = packed_size();
    const float sqrt_d = std::sqrt(float(d));
    const float* cb = sq.centroids();
    constexpr size_t kBlock = 256;
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        std::vector<float> r(d), z(d);
        for (size_t i = t * kBlock; i < std::min(n, (t + 1) * kBlock); i++) {
            const float* xi = x + i * d;
            uint8_t* code = codes + i * cs;
            std::memset(code, 0, cs);
            // Sums in double over four interleaved partial sums: no long
            // chain of dependent additions (three such loops per vector
            // made adding 2.4x slower at 1 bit).
            double norm2[4] = {0, 0, 0, 0};
            for (size_t j = 0; j < d; j++) {
                r[j] = xi[j] - (center ? center[j] : 0.f);
                norm2[j & 3] += double(r[j]) * r[j];
            }
            const float norm_sqr = float((norm2[0] + norm2[1]) + (norm2[2] + norm2[3]));
            float l2_norm_term = 0.f, scale = 0.f;
            if (norm_sqr > FLT_EPSILON) {  // a residual of 0 (or nearly): the center itself
                const float inv_norm = 1.f / std::sqrt(norm_sqr);
                for (size_t j = 0; j < d; j++) z[j] = r[j] * sqrt_d * inv_norm;
                sq.encode(z.data(), code);
                double qq4[4] = {0, 0, 0, 0}, qr4[4] = {0, 0, 0, 0};
                for (size_t j = 0; j < d; j++) {
                    const double q = cb[sq_codebook_index(code, j, sq.bits)];
                    qq4[j & 3] += q * q;
                    qr4[j & 3] += q * r[j];
                }
                const double qq = (qq4[0] + qq4[1]) + (qq4[2] + qq4[3]);
                const double qr = (qr4[0] + qr4[1]) + (qr4[2] + qr4[3]);
                if (biased) {
                    scale = float(qr / qq);
                    l2_norm_term = float(double(scale) * scale * qq);
                } else {
                    scale = float(double(norm_sqr) / qr);
                    l2_norm_term = norm_sqr;
                }
                if (!std::isfinite(scale)) scale = l2_norm_term = 0.f;
            }
            std::memcpy(code + packed, &l2_norm_term, sizeof(float));
            std::memcpy(code + packed + sizeof(float), &scale, sizeof(float));
        }
    });
}

void EdenCodec::decode(size_t n, const uint8_t* codes, const float* center, float* x) const {
    const size_t cs = code_size(), packed = packed_size();
    for (size_t i = 0; i < n; i++) {
        const uint8_t* code = codes + i * cs;
        float l2, scale;
        factors(code, packed, l2, scale);
        float* xi = x + i * d;
        sq.decode(code, xi, 1);  // the cells' centroids
        for (size_t j = 0; j < d; j++) xi[j] = (center ? center[j] : 0.f) + scale * xi[j];
    }
}

EdenScorer::EdenScorer(const EdenCodec& codec, MetricType metric, const float* center)
    : codec_(&codec), ip_(metric == METRIC_INNER_PRODUCT), center_(center), dq_(codec.d) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT, "EDEN: L2 or inner product only");
    const size_t k = size_t(1) << codec.bits();
    table_.assign(std::max<size_t>(k, 16), 0.f);
    std::copy(codec.sq.centroids(), codec.sq.centroids() + k, table_.begin());
}

void EdenScorer::set_query(const float* q) {
    const size_t d = codec_->d;
    double base = 0;
    for (size_t j = 0; j < d; j++) {
        const float c = center_ ? center_[j] : 0.f;
        if (ip_) {
            dq_[j] = q[j];
            base += double(q[j]) * c;
        } else {
            dq_[j] = q[j] - c;
            base += double(dq_[j]) * dq_[j];
        }
    }
    base_ = float(base);
}

void EdenScorer::finish(const uint8_t* codes, size_t n, float* out) const {
    const size_t cs = codec_->code_size(), packed = codec_->packed_size();
    for (size_t i = 0; i < n; i++) {
        float l2, scale;
        EdenCodec::factors(codes + i * cs, packed, l2, scale);
        out[i] = ip_ ? base_ + scale * out[i] : base_ + l2 - 2.f * scale * out[i];
    }
}

void EdenScorer::scores(const uint8_t* codes, size_t n, float* out) const {
    sq_codebook_scores(codec_->bits(), true, codes, codec_->code_size(), n, codec_->d, dq_.data(), table_.data(),
                       out);
    finish(codes, n, out);
}

void EdenScorer::scores_group(const EdenScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out) {
    if (nq == 0) return;
    std::vector<const float*> q(nq);
    for (size_t i = 0; i < nq; i++) q[i] = s[i].dq_.data();
    const EdenCodec& c = *s[0].codec_;
    sq_codebook_scores_group(c.bits(), true, codes, c.code_size(), n, c.d, nq, q.data(), s[0].table_.data(), out);
    for (size_t i = 0; i < nq; i++) s[i].finish(codes, n, out + i * n);
}

}  // namespace nearly
