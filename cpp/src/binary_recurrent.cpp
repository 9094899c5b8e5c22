#include "nearly/binary_recurrent.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
std::mutex g_trainer_mutex;
RecurrentTrainer g_trainer;

std::vector<float> transpose(const std::vector<float>& a, size_t rows, size_t cols, const char* what) {
    NEARLY_CHECK_ARG(a.size() == rows * cols, std::string("RecurrentBinarizer: ") + what + " has the wrong shape");
    std::vector<float> t(a.size());
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
    return t;
}
}  // namespace

void set_recurrent_trainer(RecurrentTrainer trainer) {
    std::lock_guard<std::mutex> g(g_trainer_mutex);
    g_trainer = std::move(trainer);
}

EncoderMap EncoderMap::from_layers(const std::vector<int>& dims, const std::vector<std::vector<float>>& A,
                                   const std::vector<std::vector<float>>& a, const char* what) {
    const std::string w = std::string("RecurrentBinarizer: map ") + what;
    NEARLY_CHECK_ARG(dims.size() >= 2 && A.size() == dims.size() - 1 && a.size() == A.size(),
                     w + ": expected one (matrix, bias) pair per layer");
    for (int v : dims) NEARLY_CHECK_ARG(v > 0, w + ": layer widths must be positive");
    EncoderMap map;
    map.dims = dims;
    for (size_t l = 0; l < A.size(); l++) {
        map.At.push_back(transpose(A[l], size_t(dims[l]), size_t(dims[l + 1]), what));
        NEARLY_CHECK_ARG(a[l].size() == size_t(dims[l + 1]), w + ": bias of the wrong size");
        for (float v : a[l]) NEARLY_CHECK_ARG(std::isfinite(v), w + ": bias is not finite");
        for (float v : A[l]) NEARLY_CHECK_ARG(std::isfinite(v), w + ": weights are not finite");
        map.bias.push_back(a[l]);
    }
    return map;
}

void EncoderMap::apply(size_t n, const float* x, float* y, std::vector<float>& tmp) const {
    const float* in = x;
    std::vector<float> cur;
    for (size_t l = 0; l < At.size(); l++) {
        const size_t di = size_t(dims[l]), dout = size_t(dims[l + 1]);
        const bool last = l + 1 == At.size();
        float* o = y;
        if (!last) {
            tmp.resize(n * dout);
            o = tmp.data();
        }
        gemm_ip(in, n, At[l].data(), dout, di, o);
        const float* bl = bias[l].data();
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < dout; k++) {
                float v = o[i * dout + k] + bl[k];
                o[i * dout + k] = last ? v : std::max(v, 0.f);
            }
        if (!last) {
            cur.swap(tmp);  // the next layer reads cur, writes tmp (or y)
            in = cur.data();
        }
    }
}

RecurrentEncoder::RecurrentEncoder(int d_, int m_, int nb_) : d(d_), m(m_), nb(nb_) {
    NEARLY_CHECK_ARG(d > 0, "RecurrentBinarizer: d must be positive");
    sdc_check_shape(m, nb);
}

void RecurrentEncoder::set_params(const std::vector<float>& mean_, const std::vector<float>& W_, float alpha_,
                                  const std::vector<std::vector<float>>& B_, const std::vector<std::vector<float>>& c,
                                  const std::vector<std::vector<float>>& R_, const std::vector<std::vector<float>>& r,
                                  const std::vector<float>& D, const std::vector<float>& e) {
    const size_t u = size_t(nb - 1);
    NEARLY_CHECK_ARG(B_.size() == u && c.size() == u && R_.size() == u && r.size() == u,
                     "RecurrentBinarizer: expected bits_per_dim - 1 residual maps");
    EncoderMap Wm = EncoderMap::from_layers({d, m}, {W_}, {std::vector<float>(m, 0.f)}, "W");
    std::vector<EncoderMap> Bm, Rm;
    for (size_t i = 0; i < u; i++) {
        Bm.push_back(EncoderMap::from_layers({m, d}, {B_[i]}, {c[i]}, "B"));
        Rm.push_back(EncoderMap::from_layers({d, m}, {R_[i]}, {r[i]}, "R"));
    }
    set_maps(mean_, std::move(Wm), std::move(Bm), std::move(Rm), false, alpha_, D, e);
}

void RecurrentEncoder::set_maps(const std::vector<float>& mean_, EncoderMap W_, std::vector<EncoderMap> B_,
                                std::vector<EncoderMap> R_, bool normalize, float alpha_, const std::vector<float>& D,
                                const std::vector<float>& e) {
    const size_t u = size_t(nb - 1);
    NEARLY_CHECK_ARG(mean_.size() == size_t(d), "RecurrentBinarizer: mean has the wrong size");
    NEARLY_CHECK_ARG(B_.size() == u && R_.size() == u, "RecurrentBinarizer: expected bits_per_dim - 1 residual maps");
    NEARLY_CHECK_ARG(std::isfinite(alpha_) && alpha_ > 0, "RecurrentBinarizer: alpha must be positive");
    NEARLY_CHECK_ARG(W_.in() == d && W_.out() == m, "RecurrentBinarizer: W must map d to m dims");
    for (size_t i = 0; i < u; i++) {
        NEARLY_CHECK_ARG(B_[i].in() == m && B_[i].out() == d, "RecurrentBinarizer: B must map m to d dims");
        NEARLY_CHECK_ARG(R_[i].in() == d && R_[i].out() == m, "RecurrentBinarizer: R must map d to m dims");
    }
    NEARLY_CHECK_ARG(e.size() == size_t(d), "RecurrentBinarizer: decoder bias of the wrong size");
    Dt = transpose(D, m, d, "D");
    Dc = e;
    mean = mean_;
    W = std::move(W_);
    B = std::move(B_);
    R = std::move(R_);
    normalize_f = normalize;
    alpha = alpha_;
    is_trained = true;
}

void RecurrentEncoder::train(idx_t n, const float* x, const RecurrentTrainer& trainer) {
    NEARLY_CHECK_ARG(n > 0, "RecurrentBinarizer: train needs at least one vector");
    check_finite(x, size_t(n) * d, "the training vectors");
    RecurrentTrainer t = trainer;
    if (!t) {
        std::lock_guard<std::mutex> g(g_trainer_mutex);
        t = g_trainer;
    }
    if (!t) throw NotSupported("RecurrentBinarizer: no trainer registered (import nearly)");
    t(*this, n, x);
    if (!is_trained) throw NotSupported("RecurrentBinarizer: the trainer did not set the parameters");
}

void RecurrentEncoder::encode(idx_t n, const float* x, uint8_t* codes) const {
    if (!is_trained) throw NotSupported("RecurrentBinarizer: not trained: call train() before encode()");
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    check_finite(x, size_t(n) * d, "the vectors to encode");
    const size_t cs = code_size(), P = size_t(m) / 8, dd = size_t(d), mm = size_t(m);
    constexpr size_t chunk = 256;
    const size_t ntasks = (size_t(n) + chunk - 1) / chunk;
    parallel_for(ntasks, [&](size_t t) {
        const size_t i0 = t * chunk, nn = std::min(size_t(n), i0 + chunk) - i0;
        const float* xs = x + i0 * dd;
        uint8_t* cd = codes + i0 * cs;
        std::fill(cd, cd + nn * cs, uint8_t(0));
        std::vector<float> e(nn * dd), z(nn * mm), b(nn * mm), f(nn * dd), tmp;
        for (size_t i = 0; i < nn; i++)
            for (size_t l = 0; l < dd; l++) e[i * dd + l] = xs[i * dd + l] - mean[l];
        W.apply(nn, e.data(), z.data(), tmp);
        auto set_plane = [&](int plane, float scale) {
            for (size_t i = 0; i < nn; i++)
                for (size_t k = 0; k < mm; k++) {
                    bool pos = z[i * mm + k] >= 0;
                    if (pos) cd[i * cs + plane * P + k / 8] |= uint8_t(1u << (k % 8));
                    b[i * mm + k] += pos ? scale : -scale;
                }
        };
        set_plane(0, 1.f);
        for (int s = 1; s < nb; s++) {
            B[s - 1].apply(nn, b.data(), f.data(), tmp);
            if (normalize_f)
                for (size_t i = 0; i < nn; i++) {
                    float* fi = f.data() + i * dd;
                    double ss = 0;
                    for (size_t l = 0; l < dd; l++) ss += double(fi[l]) * fi[l];
                    const float inv = float(1.0 / std::max(std::sqrt(ss), 1e-12));
                    for (size_t l = 0; l < dd; l++) fi[l] *= inv;
                }
            for (size_t i = 0; i < nn; i++)
                for (size_t l = 0; l < dd; l++) e[i * dd + l] = xs[i * dd + l] - f[i * dd + l];
            R[s - 1].apply(nn, e.data(), z.data(), tmp);
            set_plane(s, std::ldexp(1.f, -s));
        }
    });
}

void RecurrentEncoder::decode(idx_t n, const uint8_t* codes, float* out) const {
    if (!is_trained) throw NotSupported("RecurrentBinarizer: not trained: call train() before decode()");
    const size_t cs = code_size(), P = size_t(m) / 8, dd = size_t(d), mm = size_t(m);
    constexpr size_t chunk = 256;
    parallel_for((size_t(n) + chunk - 1) / chunk, [&](size_t t) {
        const size_t i0 = t * chunk, nn = std::min(size_t(n), i0 + chunk) - i0;
        std::vector<float> b(nn * mm, 0.f);
        for (size_t i = 0; i < nn; i++)
            for (int s = 0; s < nb; s++)
                for (size_t k = 0; k < mm; k++) {
                    bool pos = (codes[(i0 + i) * cs + s * P + k / 8] >> (k % 8)) & 1;
                    b[i * mm + k] += pos ? std::ldexp(1.f, -s) : -std::ldexp(1.f, -s);
                }
        float* o = out + i0 * dd;
        gemm_ip(b.data(), nn, Dt.data(), dd, mm, o);
        for (size_t i = 0; i < nn; i++)
            for (size_t l = 0; l < dd; l++) o[i * dd + l] += Dc[l];
    });
}

namespace {
// Header byte after the shape: 0 untrained, 1 linear maps (the first format,
// still written when the maps are linear), 2 layer stacks.
constexpr uint8_t kUntrained = 0, kLinear = 1, kLayered = 2;
constexpr uint32_t kMaxLayers = 64;

void write_map(Writer& w, const EncoderMap& map) {
    w.pod<uint32_t>(uint32_t(map.layers()));
    for (int v : map.dims) w.pod<int32_t>(v);
    for (size_t l = 0; l < map.layers(); l++) {
        w.vec(map.At[l]);
        w.vec(map.bias[l]);
    }
}

EncoderMap read_map(Reader& r, int in, int out) {
    EncoderMap map;
    const uint32_t nl = r.pod<uint32_t>();
    r.check(nl >= 1 && nl <= kMaxLayers, "bad recurrent encoder map");
    for (uint32_t l = 0; l <= nl; l++) map.dims.push_back(r.pod<int32_t>());
    r.check(map.dims.front() == in && map.dims.back() == out, "recurrent encoder map shape does not match");
    for (uint32_t l = 0; l < nl; l++) {
        r.check(map.dims[l] > 0 && map.dims[l + 1] > 0, "bad recurrent encoder layer width");
        map.At.push_back(r.vec<float>());
        map.bias.push_back(r.vec<float>());
        r.check(map.At[l].size() == size_t(map.dims[l]) * size_t(map.dims[l + 1]) &&
                    map.bias[l].size() == size_t(map.dims[l + 1]),
                "recurrent encoder layer sizes do not match");
    }
    return map;
}
}  // namespace

void RecurrentEncoder::write(Writer& w) const {
    w.pod<int32_t>(d);
    w.pod<int32_t>(m);
    w.pod<int32_t>(nb);
    bool linear = is_trained && W.plain() && !normalize_f;
    if (linear)
        for (float v : W.bias[0]) linear = linear && v == 0.f;
    for (int s = 0; linear && s + 1 < nb; s++) linear = B[s].plain() && R[s].plain();
    w.pod<uint8_t>(!is_trained ? kUntrained : linear ? kLinear : kLayered);
    if (!is_trained) return;
    w.pod<float>(alpha);
    w.vec(mean);
    if (linear) {
        w.vec(W.At[0]);
        for (int s = 0; s + 1 < nb; s++) {
            w.vec(B[s].At[0]); w.vec(B[s].bias[0]); w.vec(R[s].At[0]); w.vec(R[s].bias[0]);
        }
    } else {
        w.pod<uint8_t>(normalize_f);
        write_map(w, W);
        for (int s = 0; s + 1 < nb; s++) {
            write_map(w, B[s]);
            write_map(w, R[s]);
        }
    }
    w.vec(Dt);
    w.vec(Dc);
}

std::shared_ptr<RecurrentEncoder> RecurrentEncoder::read(Reader& r) {
    int d = r.pod<int32_t>(), m = r.pod<int32_t>(), nb = r.pod<int32_t>();
    r.check(d > 0 && m > 0 && m % 8 == 0 && nb >= 1 && nb <= 4, "bad recurrent encoder header");
    auto enc = std::make_shared<RecurrentEncoder>(d, m, nb);
    const uint8_t kind = r.pod<uint8_t>();
    r.check(kind == kUntrained || kind == kLinear || kind == kLayered, "bad recurrent encoder kind");
    if (kind == kUntrained) return enc;
    enc->alpha = r.pod<float>();
    const size_t dd = size_t(d), mm = size_t(m);
    enc->mean = r.vec<float>();
    r.check(enc->mean.size() == dd, "recurrent encoder sizes do not match");
    if (kind == kLinear) {
        auto plain = [&](int in, int out, bool with_bias) {
            EncoderMap map;
            map.dims = {in, out};
            map.At.push_back(r.vec<float>());
            map.bias.push_back(with_bias ? r.vec<float>() : std::vector<float>(size_t(out), 0.f));
            r.check(map.At[0].size() == size_t(in) * size_t(out) && map.bias[0].size() == size_t(out),
                    "recurrent encoder sizes do not match");
            return map;
        };
        enc->W = plain(d, m, false);
        for (int s = 0; s + 1 < nb; s++) {
            enc->B.push_back(plain(m, d, true));
            enc->R.push_back(plain(d, m, true));
        }
    } else {
        enc->normalize_f = r.pod<uint8_t>() != 0;
        enc->W = read_map(r, d, m);
        for (int s = 0; s + 1 < nb; s++) {
            enc->B.push_back(read_map(r, m, d));
            enc->R.push_back(read_map(r, d, m));
        }
    }
    enc->Dt = r.vec<float>();
    enc->Dc = r.vec<float>();
    r.check(enc->Dt.size() == dd * mm && enc->Dc.size() == dd, "recurrent encoder sizes do not match");
    enc->is_trained = true;
    return enc;
}

// ---- IndexBinaryRecurrent ---------------------------------------------------

IndexBinaryRecurrent::IndexBinaryRecurrent(int d, int m, int nb, MetricType metric)
    : Index(d, metric), encoder(std::make_shared<RecurrentEncoder>(d, m, nb)) {
    is_trained = false;
}

void IndexBinaryRecurrent::train(idx_t n, const float* x) { train(n, x, RecurrentTrainer()); }

void IndexBinaryRecurrent::train(idx_t n, const float* x, const RecurrentTrainer& trainer) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(n > 0, "IndexBinaryRecurrent: train needs at least one vector");
    check_finite(x, size_t(n) * d, "the training vectors");
    encoder->train(n, x, trainer);
    is_trained = encoder->is_trained;
}

void IndexBinaryRecurrent::add(idx_t n, const float* x) {
    check_add_args(n, x);
    add_codes(n, x, nullptr);
}

void IndexBinaryRecurrent::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    add_codes(n, x, ids);
}

// ---- the terms of D (shared with the GPU twin) -------------------------------

float recurrent_score_scale(const RecurrentEncoder& enc) {
    return enc.alpha * enc.alpha * std::ldexp(1.f, -2 * (enc.nb - 1));
}

void recurrent_vector_terms(const RecurrentEncoder& enc, MetricType metric, idx_t n, const float* x, float* vt) {
    const SimdKernels& K = simd();
    const float* mu = enc.mean.data();
    const int d = enc.d;
    for (idx_t i = 0; i < n; i++) {
        const float* v = x + size_t(i) * d;
        float xm = K.inner_product(v, mu, d);
        vt[i] = metric == METRIC_L2 ? K.inner_product(v, v, d) - 2 * xm : xm;
    }
}

void recurrent_query_terms(const RecurrentEncoder& enc, MetricType metric, idx_t n, const float* x, float* qt) {
    const SimdKernels& K = simd();
    const int d = enc.d;
    const float mm = K.inner_product(enc.mean.data(), enc.mean.data(), d);
    for (idx_t i = 0; i < n; i++) {
        const float* xq = x + size_t(i) * d;
        const float qm = K.inner_product(xq, enc.mean.data(), d);
        qt[i] = metric == METRIC_L2 ? K.inner_product(xq, xq, d) - 2 * qm + 2 * mm : qm - mm;
    }
}

// This file is compiled with -ffp-contract=off (CMakeLists.txt): a fused
// multiply-add here would round differently from the GPU twin.
float recurrent_key(bool l2, float a, int32_t s, float qt, float vt) {
    const float fs = float(s);
    return l2 ? qt + vt - 2 * a * fs : -(a * fs + qt + vt);
}

void IndexBinaryRecurrent::add_codes(idx_t n, const float* x, const idx_t* ids) {
    const size_t cs = code_size();
    std::vector<uint8_t> codes(size_t(n) * cs);
    encoder->encode(n, x, codes.data());
    std::vector<float> terms(n);
    recurrent_vector_terms(*encoder, metric_type, n, x, terms.data());
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t nt = size_t(ntotal) + size_t(n);
    blocks_.resize((nt + kSdcBlock - 1) / kSdcBlock * kSdcBlock * cs, 0);
    sdc_to_blocks(codes.data(), size_t(n), cs, blocks_.data(), size_t(ntotal));
    vterm_.insert(vterm_.end(), terms.begin(), terms.end());
    for (idx_t i = 0; i < n; i++) ids_.push_back(ids ? ids[i] : ntotal + i);
    ntotal = idx_t(nt);
    generation_++;
}

void IndexBinaryRecurrent::sdc_scores(idx_t n, const float* x, int32_t* out) const {
    if (!is_trained) throw NotSupported("the index is not trained: call train() before search()");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = code_size(), nblocks = (size_t(ntotal) + kSdcBlock - 1) / kSdcBlock;
    std::vector<uint8_t> qc(size_t(n) * cs);
    encoder->encode(n, x, qc.data());
    std::vector<int32_t> tmp(nblocks * kSdcBlock);
    SdcQuery sq;
    for (idx_t q = 0; q < n; q++) {
        sdc_prepare(qc.data() + q * cs, encoder->m, encoder->nb, sq);
        sdc_scan(sq, blocks_.data(), nblocks, tmp.data(), use_popcount);
        std::copy(tmp.begin(), tmp.begin() + ntotal, out + size_t(q) * ntotal);
    }
}

// The per-vector term in score units, rounded down, so that the pre-filter
// compares integers: s + off_j >= bound (IP: vt / a, L2: -vt / (2a)).
std::shared_ptr<const std::vector<int32_t>> IndexBinaryRecurrent::offsets(float a) const {
    std::lock_guard<std::mutex> g(off_mutex_);
    if (off_ && off_a_ == a && off_gen_ == generation_) return off_;
    const bool l2 = metric_type == METRIC_L2;
    auto v = std::make_shared<std::vector<int32_t>>(vterm_.size());
    for (size_t j = 0; j < vterm_.size(); j++) {
        double o = l2 ? -double(vterm_[j]) / (2.0 * a) : double(vterm_[j]) / a;
        (*v)[j] = int32_t(std::floor(std::min(std::max(o, -1e9), 1e9)));
    }
    off_ = v;
    off_a_ = a;
    off_gen_ = generation_;
    return off_;
}

void IndexBinaryRecurrent::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("the index is not trained: call train() before search()");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const RecurrentEncoder& enc = *encoder;
    const size_t cs = code_size(), kk = size_t(k), dd = size_t(d);
    std::vector<uint8_t> qc(size_t(n) * cs);
    enc.encode(n, x, qc.data());
    const float a = recurrent_score_scale(enc);
    const bool l2 = metric_type == METRIC_L2;
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const float pad = missing_distance(metric_type);
    // Queries in groups, the database in chunks of 64 blocks (2,048 codes,
    // 96 KiB at 2 bits x 384 dims) that stay in cache while every query of the
    // group scans them.
    // Groups of up to 64 queries walk the database once; inside a chunk the
    // multi-query kernel runs 4 queries at a time, whose scores (32 KiB) are
    // filtered at once.
    constexpr size_t kChunkBlocks = 64, kGroup = 64, kSub = 4;
    const size_t nblocks = (size_t(ntotal) + kSdcBlock - 1) / kSdcBlock;
    const size_t ngroups = (size_t(n) + kGroup - 1) / kGroup;
    const std::shared_ptr<const std::vector<int32_t>> voffp = offsets(a);
    const std::vector<int32_t>& voff = *voffp;
    const bool par = n > 1 && size_t(n) * size_t(ntotal) * cs > (1u << 20);
    // Enough groups for every thread.
    const size_t nth = size_t(get_num_threads());
    const size_t group = par && ngroups < nth ? std::max<size_t>(1, (size_t(n) + nth - 1) / nth) : kGroup;
    const size_t ntasks = (size_t(n) + group - 1) / group;
    InterruptPoll poll;
    parallel_for(par ? ntasks : (n ? 1 : 0), [&](size_t t) {
        const size_t q0 = par ? t * group : 0, q1 = par ? std::min(size_t(n), q0 + group) : size_t(n);
        std::vector<int32_t> sc(kSub * kChunkBlocks * kSdcBlock);
        for (size_t g0 = q0; g0 < q1; g0 += kGroup) {
            const size_t g1 = std::min(q1, g0 + kGroup);
            std::vector<SdcQuery> sq(g1 - g0);
            std::vector<float> qterm(g1 - g0);
            recurrent_query_terms(enc, metric_type, idx_t(g1 - g0), x + g0 * dd, qterm.data());
            for (size_t q = g0; q < g1; q++) {
                sdc_prepare(qc.data() + q * cs, enc.m, enc.nb, sq[q - g0]);
                TopK::init(D + q * kk, I + q * kk, kk);
            }
            for (size_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
                const size_t nbk = std::min(kChunkBlocks, nblocks - b0);
                const uint8_t* blk = blocks_.data() + b0 * kSdcBlock * cs;
                const size_t j0 = b0 * kSdcBlock, j1 = std::min(size_t(ntotal), j0 + nbk * kSdcBlock);
                for (size_t s0 = g0; s0 < g1; s0 += kSub) {
                const size_t s1 = std::min(g1, s0 + kSub);
                const SdcQuery* qptr[kSub];
                int32_t* optr[kSub];
                for (size_t q = s0; q < s1; q++) {
                    qptr[q - s0] = &sq[q - g0];
                    optr[q - s0] = sc.data() + (q - s0) * kChunkBlocks * kSdcBlock;
                }
                sdc_scan_multi(qptr, s1 - s0, blk, nbk, optr, use_popcount);
                for (size_t q = s0; q < s1; q++) {
                    const int32_t* scq = optr[q - s0];
                    float* Dq = D + q * kk;
                    idx_t* Iq = I + q * kk;
                    const float qt = qterm[q - g0];
                    // Integer pre-filter: s + off_j below smin cannot beat the
                    // current k-th result (off_j is the per-vector term rounded
                    // down; two units of margin for rounding).
                    auto bound = [&]() -> int32_t {
                        const double root = Dq[0];
                        if (!std::isfinite(root)) return INT32_MIN;
                        const double b = l2 ? (double(qt) - root) / (2.0 * a) : (-root - qt) / a;
                        if (!(b > -2e9)) return INT32_MIN;
                        if (b > 2e9) return INT32_MAX;
                        return int32_t(std::floor(b)) - 2;
                    };
                    int32_t smin = bound();
                    const size_t nj = j1 - j0;
                    const int32_t* offc = voff.data() + j0;
                    for (size_t jj = sdc_next_at_least_off(scq, offc, 0, nj, smin); jj < nj;
                         jj = sdc_next_at_least_off(scq, offc, jj + 1, nj, smin)) {
                        const size_t j = j0 + jj;
                        const float v = recurrent_key(l2, a, scq[jj], qt, vterm_[j]);
                        if (!TopK::worse(Dq[0], Iq[0], v, ids_[j])) continue;
                        if (sel && !sel->is_member(ids_[j])) continue;
                        TopK::push(Dq, Iq, kk, v, ids_[j]);
                        smin = bound();
                    }
                }
                }
                poll();
            }
            for (size_t q = g0; q < g1; q++) {
                float* Dq = D + q * kk;
                idx_t* Iq = I + q * kk;
                TopK::sort(Dq, Iq, kk);
                for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (l2 ? Dq[i] : -Dq[i]);
            }
        }
    });
}

void IndexBinaryRecurrent::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto it = std::find(ids_.begin(), ids_.end(), key);
    if (it == ids_.end()) throw OutOfRange("key " + std::to_string(key) + " is not in the index");
    std::vector<uint8_t> code(code_size());
    sdc_from_blocks(blocks_.data(), size_t(it - ids_.begin()), 1, code_size(), code.data());
    encoder->decode(1, code.data(), out);
}

std::vector<uint8_t> IndexBinaryRecurrent::codes() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<uint8_t> out(size_t(ntotal) * code_size());
    sdc_from_blocks(blocks_.data(), 0, size_t(ntotal), code_size(), out.data());
    return out;
}

std::vector<idx_t> IndexBinaryRecurrent::ids() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return ids_;
}

IndexBinaryRecurrent::Contents IndexBinaryRecurrent::contents() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    Contents c;
    c.encoder = std::make_shared<RecurrentEncoder>(*encoder);
    c.codes.resize(size_t(ntotal) * code_size());
    sdc_from_blocks(blocks_.data(), 0, size_t(ntotal), code_size(), c.codes.data());
    c.terms = vterm_;
    c.ids = ids_;
    return c;
}

std::shared_ptr<IndexBinaryRecurrent> IndexBinaryRecurrent::from_contents(MetricType metric, const Contents& c) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT, "metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
    NEARLY_CHECK_ARG(c.encoder != nullptr, "IndexBinaryRecurrent: no encoder");
    const RecurrentEncoder& enc = *c.encoder;
    auto index = std::make_shared<IndexBinaryRecurrent>(enc.d, enc.m, enc.nb, metric);
    index->encoder = c.encoder;
    index->is_trained = enc.is_trained;
    const size_t n = c.ids.size(), cs = enc.code_size();
    NEARLY_CHECK_ARG(c.terms.size() == n && c.codes.size() == n * cs, "IndexBinaryRecurrent: contents of mismatched sizes");
    NEARLY_CHECK_ARG(n == 0 || enc.is_trained, "IndexBinaryRecurrent: codes without a trained encoder");
    index->blocks_.assign((n + kSdcBlock - 1) / kSdcBlock * kSdcBlock * cs, 0);
    sdc_to_blocks(c.codes.data(), n, cs, index->blocks_.data(), 0);
    index->vterm_ = c.terms;
    index->ids_ = c.ids;
    index->ntotal = idx_t(n);
    return index;
}

size_t IndexBinaryRecurrent::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = code_size();
    std::vector<uint8_t> all(size_t(ntotal) * cs);
    sdc_from_blocks(blocks_.data(), 0, size_t(ntotal), cs, all.data());
    size_t j = 0;
    for (size_t i = 0; i < size_t(ntotal); i++) {
        if (sel.is_member(ids_[i])) continue;
        if (i != j) {
            std::copy(all.begin() + i * cs, all.begin() + (i + 1) * cs, all.begin() + j * cs);
            ids_[j] = ids_[i];
            vterm_[j] = vterm_[i];
        }
        j++;
    }
    const size_t removed = size_t(ntotal) - j;
    ids_.resize(j);
    vterm_.resize(j);
    blocks_.assign((j + kSdcBlock - 1) / kSdcBlock * kSdcBlock * cs, 0);
    sdc_to_blocks(all.data(), j, cs, blocks_.data(), 0);
    ntotal = idx_t(j);
    generation_++;
    return removed;
}

void IndexBinaryRecurrent::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    blocks_.clear();
    vterm_.clear();
    ids_.clear();
    ntotal = 0;
    generation_++;
}

void IndexBinaryRecurrent::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(use_popcount);
    encoder->write(w);
    w.pod<int64_t>(ntotal);
    w.vec(blocks_);
    w.vec(vterm_);
    w.vec(ids_);
}

std::unique_ptr<IndexBinaryRecurrent> IndexBinaryRecurrent::read_body(Reader& r) {
    int d = r.pod<int32_t>();
    int metric = r.pod<int32_t>();
    bool pop = r.pod<uint8_t>() != 0;
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT), "bad BinaryRecurrent header");
    auto enc = RecurrentEncoder::read(r);
    r.check(enc->d == d, "BinaryRecurrent encoder dimension does not match");
    auto index = std::make_unique<IndexBinaryRecurrent>(d, enc->m, enc->nb, MetricType(metric));
    index->encoder = enc;
    index->use_popcount = pop;
    index->is_trained = enc->is_trained;
    idx_t n = r.pod<int64_t>();
    index->blocks_ = r.vec<uint8_t>();
    index->vterm_ = r.vec<float>();
    index->ids_ = r.vec<idx_t>();
    const size_t cs = enc->code_size();
    r.check(n >= 0 && index->vterm_.size() == size_t(n) && index->ids_.size() == size_t(n) &&
                index->blocks_.size() == (size_t(n) + kSdcBlock - 1) / kSdcBlock * kSdcBlock * cs &&
                (n == 0 || enc->is_trained),
            "BinaryRecurrent sizes do not match");
    index->ntotal = n;
    return index;
}

}  // namespace nearly
