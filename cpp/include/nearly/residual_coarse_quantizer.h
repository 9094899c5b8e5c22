// faiss's ResidualCoarseQuantizer: the coarse quantizer of an IVF whose
// 2^(sum of nbits) centroids are the sums of one codeword from each of the M
// codebooks of a residual quantizer ("IVF65536(RCQ2x8),...", or of mixed
// widths, "RCQ1x3_1x4_1x5"). Training is the residual quantizer's (seconds,
// where k-means on 65,536 centroids takes minutes); centroid t is the sum
// over m of codebook m's word given by t's bits nbits[0] + .. + nbits[m-1]
// up (least significant first), so no centroid is stored. A search is a beam
// search through the codebooks (beam_factor x k candidates kept at each
// step), scored through tables (the query's <x, word> and the codebooks'
// cross products: no d-dimensional residual is formed; on the residuals
// when the cross products would pass 256 MiB, RCQ2x16), or with beam_factor
// < 0 an exhaustive scan of every centroid, each scored through the query's
// table of <x, word> (one add per centroid, no centroid decoded).
//
// Local search mode (faiss's LocalSearchCoarseQuantizer, "LSCQ2x4"): the
// codebooks are an LSQ++'s (rq in local search mode, learnt jointly), so a
// centroid is still the sum of one word per codebook, but the codebooks are
// not residual: a beam through them is no search. Every search is the
// exhaustive scan (beam_factor -1, a beam refused), as faiss's.
#pragma once
#include <memory>
#include <vector>

#include "nearly/index.h"
#include "nearly/residual_quantizer.h"

namespace nearly {

class Reader;

// faiss's SearchParametersResidualCoarseQuantizer.
struct SearchParametersResidualCoarseQuantizer : SearchParameters {
    float beam_factor = 4.f;
    std::unique_ptr<SearchParameters> clone() const override {
        return std::make_unique<SearchParametersResidualCoarseQuantizer>(*this);
    }
};

struct ResidualCoarseQuantizer : Index {
    ResidualQuantizer rq;  // ST_decompress: the centroids are decoded, no norm is stored
    float beam_factor = 4.f;

    // M * nbits (the sum of nbits) at most 40 (2^40 virtual centroids; an
    // exhaustive search needs all their norms).
    ResidualCoarseQuantizer(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2);
    ResidualCoarseQuantizer(int d, const std::vector<size_t>& nbits, MetricType metric = METRIC_L2,
                            bool local_search = false);

    // The file tag; rq's local search flag says which of faiss's two
    // classes it is (as IndexResidualQuantizer's for LSQ).
    std::string type_name() const override { return "ResidualCoarseQuantizer"; }
    bool local_search() const { return rq.local_search; }
    bool trains_alone() const override { return true; }
    // Trains rq; then ntotal = 2^(sum of nbits) centroids.
    void train(idx_t n, const float* x) override;
    // After rq.codebooks were set by hand and rq marked trained.
    void set_trained(bool trained) override;
    // faiss's `rcq.rq = other` (`lscq.lsq = other`): a copy of another
    // residual quantizer of the same codebook widths, d and mode (plain, or
    // local search); trained, it is the centroids.
    void set_rq(const ResidualQuantizer& other);
    // beam_factor >= 1, or < 0 for the exhaustive scan (whose L2 needs the
    // centroids' norms, computed then). Local search mode: < 0 only.
    void set_beam_factor(float bf);
    // L2: squared distances, ascending; inner product: the beam (searched
    // by L2) re-scored by <x, c>, descending; the exhaustive scan ranks all
    // centroids by the metric. Ties to the smaller centroid number.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    // The centroids are virtual: nothing to add (faiss's text) or reset.
    void add(idx_t n, const float* x) override;
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<ResidualCoarseQuantizer> read_body(Reader& r);

   private:
    const char* name() const { return local_search() ? "LocalSearchCoarseQuantizer" : "ResidualCoarseQuantizer"; }
    void check_beam_factor(float bf) const;
    bool beam_wants_tables() const;
    void check_key(idx_t key) const;
    void compute_centroid_norms();
    void search_exhaustive(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const;
    void search_beam(idx_t n, const float* x, idx_t k, float bf, float* D, idx_t* I) const;
    std::vector<float> centroid_norms_;  // L2 exhaustive scan: ||c_t||^2 for every t
};

}  // namespace nearly
