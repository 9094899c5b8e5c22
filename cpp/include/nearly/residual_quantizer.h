// faiss's ResidualQuantizer (an additive quantizer): a vector is the sum of M
// codewords, one from each of M codebooks of 2^nbits[m] entries, each codebook
// quantizing what the previous ones left (the residual). Encoding is a beam
// search: the max_beam_size best partial sums are kept from one codebook to
// the next, the best full one wins. Training is faiss's: codebook m is the
// k-means of the residuals of every beam entry (Train_progressive_dim, the
// default: k-means first in 1 dimension of a PCA basis, then in
// exponentially more, each warm-started from the last, 10 steps of 10
// iterations; Train_default: plain k-means; Train_top_beam: the best beam
// entry only). The codes are faiss's bit strings, least significant bit
// first: M indexes of nbits[m] bits, then the norm ||x_hat||^2 of the reconstruction
// in the search type's format:
//   ST_decompress      no norm; a search decodes and scores exactly
//   ST_LUT_nonorm      no norm; a search sums a table of <q, codeword>
//                      (inner product; for L2 only right on unit vectors)
//   ST_norm_from_LUT   no norm; L2 adds the norm computed from the
//                      codewords' norms and cross products
//   ST_norm_float      32-bit float norm
//   ST_norm_qint8/4    8 / 4 bits, uniform on [norm_min, norm_max]
//   ST_norm_cqint8/4   8 / 4 bits, the nearest of 2^bits 1-d k-means centroids
//   ST_norm_rq2x4      8 bits: the norm's own 1-d residual quantizer of two
//                      4-bit codebooks (fast-scan's norm: two more 4-bit
//                      tables, index_rq_fast_scan.h)
//   ST_norm_lsq2x4     the same 8 bits, the two codebooks trained by local
//                      search
// L2 through a table: ||q||^2 + ||x_hat||^2 - 2 sum_m <q, c_m>.
//
// Product mode (faiss's ProductResidualQuantizer, nsplits > 1): d is cut
// into nsplits slices, each with its own residual quantizer of M / nsplits
// codebooks, trained and beam-searched on its slice alone. The codebooks are
// kept at full width, zero outside their slice, so a code is decoded,
// tabled and normed exactly as a plain one (faiss's codes: the slices'
// indexes one after the other, then the norm of the whole vector).
//
// Local search mode (faiss's LocalSearchQuantizer, LSQ++, local_search =
// true): the same codes, codebooks and searches, but the codebooks are
// learnt jointly (least squares for the current codes, alternated with
// re-encoding) and a vector's M indexes are searched jointly by iterated
// conditional modes with random restarts (local_search_quantizer.cpp) rather
// than codebook after codebook. Slower to train and encode than the beam
// search, lower error for the same code size. With nsplits > 1 it is
// faiss's ProductLocalSearchQuantizer. The class keeps faiss's residual
// name; both are its AdditiveQuantizer.
#pragma once
#include <cstdint>
#include <vector>

#include "nearly/common.h"
#include "nearly/index.h"
#include "nearly/kmeans.h"

namespace nearly {

class Reader;
class Writer;

struct ResidualQuantizer {
    enum SearchType : int {
        ST_decompress = 0,
        ST_LUT_nonorm = 1,
        ST_norm_from_LUT = 2,
        ST_norm_float = 3,
        ST_norm_qint8 = 4,
        ST_norm_qint4 = 5,
        ST_norm_cqint8 = 6,
        ST_norm_cqint4 = 7,
        ST_norm_lsq2x4 = 8,
        ST_norm_rq2x4 = 9,
    };
    // faiss's train_type bits.
    static constexpr int Train_default = 0;
    static constexpr int Train_progressive_dim = 1;
    static constexpr int Train_refine_codebook = 2;  // then niter_codebook_refine least-squares refits
    static constexpr int Train_top_beam = 1024;
    static constexpr int Skip_codebook_tables = 2048;

    size_t d, M;
    // Bits of each codebook (faiss's per-codebook list): codebook m has
    // K(m) = 2^nbits[m] words, rows codebook_offsets[m] .. codebook_offsets[m
    // + 1] of codebooks, and tables (LUTs, norms) follow the same offsets.
    // Mixed widths (faiss's "RQ1x16_6x8") serve the beam search, its
    // training and every search type; local search, product mode and
    // fast-scan need one width for all.
    std::vector<size_t> nbits;
    std::vector<size_t> codebook_offsets;  // M + 1
    size_t total_codebook_size = 0;        // codebook_offsets[M]
    size_t tot_code_bits = 0;              // sum of nbits: the indexes' bits in a code
    SearchType search_type;
    size_t nsplits = 1;  // product mode when > 1 (see above)
    size_t norm_bits = 0, code_size = 0;
    int train_type = Train_progressive_dim;
    int max_beam_size = 5;
    // faiss's ProgressiveDimClusteringParameters: 10 iterations per step.
    ClusteringParameters cp;
    int progressive_dim_steps = 10;
    int niter_codebook_refine = 5;  // faiss's: refits under Train_refine_codebook
    // faiss's max_mem_distances: the bytes an encoding's beams may hold at
    // once (vectors are encoded in blocks that fit; at most 20,480 / beam).
    size_t max_mem_distances = size_t(5) << 30;
    bool apply_pca = true;
    bool verbose = false;
    bool is_trained = false;
    // faiss's use_beam_LUT: encode through tables (refine_beam_LUT) when the
    // cross products are there; the codes are the same up to float rounding
    // of near ties, the encoding cheaper when d is large next to the beam
    // and codebooks. A runtime setting: not saved.
    bool use_beam_LUT = false;

    // Local search mode (above) and faiss's LocalSearchQuantizer knobs.
    bool local_search = false;
    struct LocalSearchParams {
        int train_iters = 25;       // codebook updates in training
        int encode_ils_iters = 16;  // local search restarts when encoding
        int train_ils_iters = 8;    // restarts per training iteration
        int icm_iters = 4;          // conditional-mode sweeps per restart
        float p = 0.5f;             // the shake's decay: T = (1 - t / iters)^p
        float lambd = 1e-2f;        // ridge of the codebook least squares
        int chunk_size = 10000;     // vectors encoded at a time (their unary terms are held)
        int random_seed = 0x12345;
        int nperts = 4;             // indexes redrawn per restart
    } lsq;

    std::vector<float> codebooks;  // total_codebook_size rows of d
    float norm_min = 0.f, norm_max = 0.f;
    // ST_norm_cqint*: 2^norm_bits, ascending; ST_norm_rq2x4: the norm
    // quantizer's two codebooks of 16 (faiss's norm_tabs): a norm code c
    // stands for norm_centroids[c & 15] + norm_centroids[16 + (c >> 4)].
    std::vector<float> norm_centroids;
    // Each codeword's squared norm; for ST_norm_from_LUT also the inner
    // products of every word of codebooks 0..m-1 with codebook m's words,
    // for m = 1..M-1 (faiss's codebook_cross_products: codebook_offsets[m] x
    // K(m) each, one after the other).
    std::vector<float> centroid_norms, cross_products;

    ResidualQuantizer(size_t d, size_t M, size_t nbits, SearchType search_type = ST_decompress);
    // faiss's ResidualQuantizer(d, nbits): one codebook per entry of nbits.
    ResidualQuantizer(size_t d, const std::vector<size_t>& nbits, SearchType search_type = ST_decompress);
    // faiss's ProductResidualQuantizer(d, nsplits, Msub, nbits): nsplits
    // must divide d; M = nsplits * Msub.
    static ResidualQuantizer product(size_t d, size_t nsplits, size_t Msub, size_t nbits,
                                     SearchType search_type = ST_decompress);
    // faiss's initialize_from: this quantizer becomes other's codebooks
    // skip_M .. skip_M + M - 1 (their widths, other's settings, this one's
    // M and search type), trained when other is: a clipped quantizer whose
    // codes are a slice of other's. Search types whose norm coding is
    // learnt from data are refused (other's ranges would not fit).
    void initialize_from(const ResidualQuantizer& other, size_t skip_M = 0);
    // Product mode: the quantizer of slice s (d / nsplits dimensions, M /
    // nsplits codebooks cut from this one's, no norm), with this one's
    // training and encoding settings.
    ResidualQuantizer split(size_t s) const;

    size_t K(size_t m) const { return size_t(1) << nbits[m]; }
    // The width shared by every codebook, 0 when they differ.
    size_t uniform_nbits() const;
    // The width shared by every codebook and its words, for the code that
    // needs one width (local search, product mode, fast-scan): they throw
    // NotSupported when the widths differ.
    size_t one_nbits() const;
    size_t K() const { return size_t(1) << one_nbits(); }
    static bool valid_search_type(int st) {
        return st >= ST_decompress && st <= ST_norm_rq2x4;
    }
    // Changes the search type, and with it the norm stored in each code
    // (only while no codes exist: the caller's concern).
    void set_search_type(SearchType st);

    // With centroids (n x d), the norm format learns ||x_hat + centroid||^2,
    // the norms that compute_codes with those centroids will store.
    void train(size_t n, const float* x, const float* centroids = nullptr);
    // Codes of n vectors; with centroids (n x d), the norm stored is that of
    // x_hat + centroid (faiss's compute_codes_add_centroids).
    void compute_codes(const float* x, uint8_t* codes, size_t n, const float* centroids = nullptr) const;
    void decode(const uint8_t* codes, float* x, size_t n) const;
    // The sums of the codewords of n codes given as n x M indexes.
    void decode_unpacked(const int32_t* idx, float* x, size_t n) const;
    // The M indexes of a code.
    void unpack(const uint8_t* code, int32_t* idx) const;
    // The M indexes of centroid t, of the 2^tot_code_bits sums of one word
    // per codebook (faiss's numbering: codebook 0's word in the lowest
    // nbits[0] bits of t, and so on).
    void centroid_indexes(uint64_t t, int32_t* idx) const;

    // faiss's refine_beam for one step of beam search per codebook: the
    // beam_size best codes of each of n vectors (n x beam_size x M indexes,
    // best first) and their squared distances ||x - decode||^2; a beam
    // shorter than beam_size (K^M < beam_size) is padded with code -1 and
    // +inf. A plain residual quantizer only (not product, not LSQ).
    void refine_beam(size_t n, const float* x, size_t beam_size, int32_t* codes, float* distances) const;
    // The same beams through tables (faiss's refine_beam_LUT): each
    // candidate's distance is its beam entry's plus ||c||^2 - 2 <x, c> + 2
    // sum_l <c_l, c>, from the query's table of <x, every word> and the
    // cross products, instead of forming d-dimensional residuals; far
    // cheaper when the beam and codebooks are small next to d (a coarse
    // quantizer's search). Needs the cross products (has_beam_tables()).
    void refine_beam_LUT(size_t n, const float* x, size_t beam_size, int32_t* codes, float* distances) const;
    bool has_beam_tables() const;

    // Search through tables: lut = <q, every codeword> (total_codebook_size floats).
    void compute_lut(const float* q, float* lut) const;
    // centroid_norms and cross_products from the codebooks; the cross
    // products only when they are read (ST_norm_from_LUT; use_beam_LUT when
    // they fit) or asked for (faiss's compute_codebook_tables computes them
    // always).
    void compute_codebook_tables(bool cross_products_always = false);
    // Floats of the cross products, and whether the beam search through
    // tables may have them (at most 256 MiB; a plain quantizer).
    size_t cross_products_size() const;
    bool beam_tables_fit() const;
    // Replaces the codebooks (total_codebook_size rows of d) and what is derived
    // from them (faiss's `codebooks = ...`).
    void set_codebooks(const float* c);
    // faiss's `search_type = ...` on a built quantizer: only among the types
    // that store no norm (ST_decompress, ST_LUT_nonorm, ST_norm_from_LUT),
    // so that codes keep their layout; how they are scored changes.
    void set_search_type(int st);
    // Codes of n x M indexes; a stored norm is that of their decoding.
    void pack_codes(size_t n, const int32_t* idx, uint8_t* out) const;
    // sum_m lut[m][idx_m] for n codes.
    void lut_sums(const uint8_t* codes, size_t n, const float* lut, float* out) const;
    // The stored squared norm of a code (per the search type; ST_norm_from_LUT
    // computes it from the M indexes, unpacked into idx, M ints of scratch).
    float code_norm(const uint8_t* code, int32_t* idx) const;
    bool stores_norm() const { return norm_bits > 0; }
    bool uses_lut() const { return search_type != ST_decompress; }

    // What fast-scan needs of the quantizer (faiss's rules): 4-bit
    // codebooks; the norm as ST_norm_rq2x4 under L2, no norm (ST_LUT_nonorm)
    // under inner product. Throws otherwise.
    void check_fast_scan(MetricType metric) const;

    void write(Writer& w) const;
    static ResidualQuantizer read(Reader& r, const char* who);

    // The codebooks that minimise the error of n vectors with the given
    // codes (n x M indexes): faiss's ridge-regularised least squares (ridge
    // lsq.lambd), for local search's training and the refits below.
    void update_codebooks(const float* x, const int32_t* codes, size_t n);
    // faiss's retrain_AQ_codebook: the codes of x, then the codebooks that
    // fit x best with them (the codes are not changed; a norm coding learnt
    // from data is learnt again).
    void retrain_AQ_codebook(size_t n, const float* x);
    // The local search's terms in faiss's layouts (its tests check them):
    // binaries M x M x K x K, b[m][m'][k][k'] = 2 <c_mk, c_m'k'>; unaries of n
    // vectors M x n x K, ||c_mk||^2 - 2 <x_i, c_mk>; n_iters sweeps of
    // conditional modes over n codes (n x M indexes, improved in place).
    void compute_binary_terms(float* binaries) const;
    void compute_unary_terms(const float* x, float* unaries, size_t n) const;
    void icm_encode_step(int32_t* codes, const float* unaries, const float* binaries, size_t n,
                         size_t n_iters) const;

    // Trains the norm format (ranges, centroids, the 2x4 quantizer) on n
    // squared norms: train() calls it with those of the training points'
    // reconstructions.
    void train_norm(size_t n, const float* norms);

   private:
    static void check_search_type(SearchType st);
    void set_derived();
    void train_product(size_t n, const float* x, const float* centroids);
    // train_norm on the norms of x_i - res_i (+ centroid_i): res rows res_stride apart.
    void train_norm_of_reconstructions(size_t n, const float* x, const float* res, size_t res_stride,
                                       const float* centroids);
    void encode_product(size_t n, const float* x, int32_t* codes, float* residuals) const;
    // Local search mode (local_search_quantizer.cpp).
    void train_local_search(size_t n, const float* x, const float* centroids);
    void encode_local_search(size_t n, const float* x, int32_t* codes) const;
    uint32_t encode_norm(float norm) const;
    float decode_norm(uint32_t c) const;
    // Beam search for n vectors: the best code (M indexes) of each and,
    // optionally, its residual.
    void encode_unpacked(size_t n, const float* x, int32_t* codes, float* residuals) const;
    // Beams of beam_size through the M codebooks; the first nout entries of
    // each final beam (codes, residuals, distances: each optional but codes).
    void beam_search(size_t n, const float* x, size_t beam_size, size_t nout, int32_t* codes, float* residuals,
                     float* distances) const;
    void pack(size_t n, const int32_t* codes, const float* norms, uint8_t* out) const;
};

// One step of the beam search (faiss's beam_search_encode_step): each of n
// vectors has B residuals (n x B x d) and partial codes of m indexes (n x B
// x m); of the B * K candidates (residual - word of codebook cb, K x d with
// squared norms cbn) the B2 best (B2 <= B * K) are kept, best first (ties to
// the lower b * K + k): their residuals, codes of m + 1 indexes and,
// optionally (new_dist may be null), squared norms.
void beam_search_step(size_t d, size_t K, const float* cb, const float* cbn, size_t n, size_t B, const float* res,
                      const int32_t* codes, size_t m, size_t B2, float* new_res, int32_t* new_codes,
                      float* new_dist);

// One step of the beam search through tables (faiss's
// beam_search_encode_step_tab): each of n vectors has B codes of m indexes
// (n x B x m) with their squared distances; candidate k of codebook m (K
// words, squared norms cnorms) scores distance + cnorms[k] - 2 qcp[i][k] + 2
// sum_l cross[offsets[l] + code_l][k], where qcp (rows ldqc apart) holds
// <x_i, word k> and cross (rows ldc apart) the inner products of the
// previous codebooks' words (codebook l's from row offsets[l]) with this
// one's. The B2 best (B2 <= B * K) are kept, best first (ties to the lower b
// * K + k).
void beam_search_tab_step(size_t K, size_t n, size_t B, const float* cross, size_t ldc, const size_t* offsets,
                          const float* qcp, size_t ldqc, const float* cnorms, size_t m, const int32_t* codes,
                          const float* distances, size_t B2, int32_t* new_codes, float* new_distances);

// Scores of codes against one query (flat and IVF scans share it): smaller
// is better for L2, larger for inner product, as faiss reports them.
//   ST_decompress: exact distances to the decoded vectors;
//   inner product: sum_m <q, c_m> (+ the caller's coarse term);
//   L2: ||q||^2 + norm - 2 sum_m <q, c_m>, where ST_LUT_nonorm (no norm)
//       gives faiss's ||q||^2 - sum_m <q, c_m>.
class RQScanner {
   public:
    RQScanner(const ResidualQuantizer& rq, MetricType metric);
    void set_query(const float* q);  // the query, or its residual to a centroid
    // The residual q - c of a query whose table is qlut, through the table
    // clut of c: <q - c, w> = qlut - clut, with qnorm = ||q - c||^2 (the L2
    // scan of an IVF list without a table product per list). Table types only.
    void set_residual_from_tables(const float* qlut, const float* clut, float qnorm);
    void scores(const uint8_t* codes, size_t n, float* out) const;

   private:
    const ResidualQuantizer& rq_;
    bool ip_;
    const float* q_ = nullptr;
    float qnorm_ = 0.f;
    std::vector<float> lut_;
    mutable std::vector<float> dec_;
    mutable std::vector<int32_t> idx_;  // code_norm's scratch
};

}  // namespace nearly
