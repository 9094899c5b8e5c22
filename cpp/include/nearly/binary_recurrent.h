// Recurrent binary embeddings (BEBR, Gan et al. KDD 2023) and the index that
// scores them with Symmetric Distance Calculation (binary_sdc.h).
//
// Encoder, for a float vector x (d dims) into m dims x nb = u + 1 bit planes:
//     b_0 = sign(W(x - mean))                        W: d -> m
//     for i = 1..u:  f = B_i(b)                      B_i: m -> d  (decode of the code so far;
//                                                                  unit-normalized if normalize_f)
//                    d_i = sign(R_i(x - f))          R_i: d -> m  (binarize the residual)
//                    b  = b + 2^-i d_i
// sign(0) = +1. Each map is affine, or a stack of affine layers with ReLU
// between them (the authors' MLP blocks, BatchNorm folded into the layers).
// Trainers: numpy (nearly.binary: centering, PCA + ITQ-style rotation for W,
// least squares for B_i / R_i; linear maps) and torch (nearly.binary_torch:
// the authors' model, contrastive loss). decode(b) = b D + e (least-squares
// decoder). alpha: <x - mean, y - mean> ~ alpha^2 <b_x, b_y>.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "nearly/binary_sdc.h"
#include "nearly/index.h"

namespace nearly {

class Reader;

// One map of the encoder: y = L_k(relu(... relu(L_1(x)))), L_l(v) = v A_l + a_l.
struct EncoderMap {
    std::vector<int> dims;                // in, hidden widths..., out
    std::vector<std::vector<float>> At;   // per layer: dims[l+1] x dims[l] (A_l transposed)
    std::vector<std::vector<float>> bias; // per layer: dims[l+1]

    // From layers in natural orientation: A[l] is dims[l] x dims[l+1], row-major.
    static EncoderMap from_layers(const std::vector<int>& dims, const std::vector<std::vector<float>>& A,
                                  const std::vector<std::vector<float>>& a, const char* what);
    int in() const { return dims.front(); }
    int out() const { return dims.back(); }
    size_t layers() const { return At.size(); }
    bool plain() const { return At.size() == 1; }  // one affine layer
    // y (n x out) = map(x (n x in)); tmp is scratch.
    void apply(size_t n, const float* x, float* y, std::vector<float>& tmp) const;
};

struct RecurrentEncoder {
    int d, m, nb;
    bool is_trained = false;
    bool normalize_f = false;       // f = B_i(b) / |B_i(b)| (the authors' model)
    float alpha = 1;
    std::vector<float> mean;        // d
    EncoderMap W;                   // d -> m, applied to x - mean
    std::vector<EncoderMap> B, R;   // per step 1..u: m -> d, d -> m
    std::vector<float> Dt, Dc;      // d x m, d

    RecurrentEncoder(int d, int m, int nb);
    size_t code_size() const { return sdc_code_size(m, nb); }

    // Linear maps, natural orientations (row-major): W d x m (no bias),
    // B[i] m x d, c[i] d, R[i] d x m, r[i] m, D m x d, e d; B / c / R / r hold
    // u = nb - 1 entries.
    void set_params(const std::vector<float>& mean, const std::vector<float>& W, float alpha,
                    const std::vector<std::vector<float>>& B, const std::vector<std::vector<float>>& c,
                    const std::vector<std::vector<float>>& R, const std::vector<std::vector<float>>& r,
                    const std::vector<float>& D, const std::vector<float>& e);
    // Any maps (layer stacks), checked for shape.
    void set_maps(const std::vector<float>& mean, EncoderMap W, std::vector<EncoderMap> B, std::vector<EncoderMap> R,
                  bool normalize_f, float alpha, const std::vector<float>& D, const std::vector<float>& e);
    // Through trainer when given, else the registered one.
    void train(idx_t n, const float* x, const std::function<void(RecurrentEncoder&, idx_t, const float*)>& trainer = {});
    void encode(idx_t n, const float* x, uint8_t* codes) const;  // all threads
    void decode(idx_t n, const uint8_t* codes, float* out) const;

    void write(class Writer& w) const;
    static std::shared_ptr<RecurrentEncoder> read(Reader& r);
};

// The trainer fits an encoder's maps on n training vectors. The Python
// package registers its numpy trainer at import.
using RecurrentTrainer = std::function<void(RecurrentEncoder& enc, idx_t n, const float* x)>;
void set_recurrent_trainer(RecurrentTrainer trainer);

// How a search turns an SDC score S into D. The GPU twin
// (cuda/gpu_binary_recurrent.cu) repeats these float operations one for one,
// so both indexes rank alike; change them together.
//     a = alpha^2 4^-u (the score scale)
//     inner product: D = (a S + qt) + vt          qt = <q, mean> - |mean|^2,  vt = <x, mean>
//     L2:            D = (qt + vt) - (2a) S       qt = |q|^2 - 2 <q, mean> + 2 |mean|^2,  vt = |x|^2 - 2 <x, mean>
// The key a search keeps the k smallest of is D (L2) or -D (inner product).
float recurrent_score_scale(const RecurrentEncoder& enc);
void recurrent_vector_terms(const RecurrentEncoder& enc, MetricType metric, idx_t n, const float* x, float* vt);
void recurrent_query_terms(const RecurrentEncoder& enc, MetricType metric, idx_t n, const float* x, float* qt);
float recurrent_key(bool l2, float a, int32_t s, float qt, float vt);

struct IndexBinaryRecurrent : Index {
    std::shared_ptr<RecurrentEncoder> encoder;
    // Scan with the bit-plane popcount kernel instead of the nibble LUT
    // (same scores; for benchmarks).
    bool use_popcount = false;

    IndexBinaryRecurrent(int d, int m, int nb, MetricType metric = METRIC_INNER_PRODUCT);

    std::string type_name() const override { return "BinaryRecurrent"; }
    void train(idx_t n, const float* x) override;
    void train(idx_t n, const float* x, const RecurrentTrainer& trainer);  // e.g. the torch trainer
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // D: the SDC estimate of the inner product (descending) or squared L2
    // (ascending): alpha^2 4^-u S plus exact per-vector / per-query terms of
    // the centering.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;  // decode of the vector with id key
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryRecurrent> read_body(Reader& r);

    size_t code_size() const { return encoder->code_size(); }
    std::vector<uint8_t> codes() const;  // canonical codes, ntotal x code_size
    std::vector<idx_t> ids() const;
    // Everything a twin of this index holds (the GPU copy), taken under one
    // lock, in insertion order: a copy of the encoder, canonical codes, the
    // per-vector terms of D, ids.
    struct Contents {
        std::shared_ptr<RecurrentEncoder> encoder;
        std::vector<uint8_t> codes;
        std::vector<float> terms;
        std::vector<idx_t> ids;
    };
    Contents contents() const;
    static std::shared_ptr<IndexBinaryRecurrent> from_contents(MetricType metric, const Contents& c);
    // Raw SDC integer scores S of n query vectors against every stored code.
    void sdc_scores(idx_t n, const float* x, int32_t* out) const;

   private:
    void add_codes(idx_t n, const float* x, const idx_t* ids);
    std::vector<uint8_t> blocks_;
    std::vector<float> vterm_;  // per-vector term: <x, mean> (IP) or |x|^2 - 2 <x, mean> (L2)
    std::vector<idx_t> ids_;
    // The pre-filter's per-vector offsets (search), rebuilt when the stored
    // vectors or the score scale change.
    std::shared_ptr<const std::vector<int32_t>> offsets(float a) const;
    uint64_t generation_ = 0;  // bumped by every write
    mutable std::mutex off_mutex_;
    mutable std::shared_ptr<const std::vector<int32_t>> off_;
    mutable float off_a_ = 0;
    mutable uint64_t off_gen_ = ~uint64_t(0);
};

}  // namespace nearly
