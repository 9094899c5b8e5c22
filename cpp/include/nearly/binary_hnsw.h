// HNSW graphs over binary codes, on the graph code of hnsw.h (HNSWGraph):
//  - IndexBinaryHNSW: faiss's IndexBinaryHNSW, 1-bit codes of d bits walked
//    and ranked by Hamming distance (int32, exact; missing results as
//    (2147483647, -1) like the other binary indexes);
//  - IndexBinaryRecurrentHNSW: recurrent binary codes (BEBR, binary_recurrent.h)
//    walked on their SDC scores, the graph form of IndexBinaryRecurrent
//    (factory "HNSW{M},RBE{m}x{bits}"): the same scores, from a graph walk
//    instead of a scan of every code.
// A node's block holds the code itself, next to its level-0 links.
#pragma once
#include <memory>

#include "nearly/binary_flat.h"
#include "nearly/binary_recurrent.h"
#include "nearly/hnsw.h"

namespace nearly {

struct IndexBinaryHNSW : IndexBinary, HNSWGraph {
    IndexBinaryHNSW(int d, int M = 32);

    std::string type_name() const override { return "BHNSW"; }
    void add(idx_t n, const uint8_t* x) override;  // ids 0, 1, ... (add_with_ids: wrap in IndexBinaryIDMap, like faiss)
    // params: SearchParametersHNSW (efSearch, sel) or plain SearchParameters (sel).
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, uint8_t* out) const override;
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryHNSW> read_body(Reader& r);
};

struct IndexBinaryRecurrentHNSW : Index, HNSWGraph {
    std::shared_ptr<RecurrentEncoder> encoder;

    IndexBinaryRecurrentHNSW(int d, int m, int nb, int M = 32, MetricType metric = METRIC_INNER_PRODUCT);

    std::string type_name() const override { return "BinaryRecurrentHNSW"; }
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // D: the estimate IndexBinaryRecurrent reports for the same pair (its SDC
    // score and centering terms), for the ef best nodes of the walk.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;  // decode of the stored code
    size_t remove_ids(const IDSelector& sel) override;       // with graph repair, like IndexHNSWFlat
    void reset() override;
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryRecurrentHNSW> read_body(Reader& r);

    size_t code_size() const { return encoder->code_size(); }

   private:
    void add_impl(idx_t n, const float* x, const idx_t* ids);
};

}  // namespace nearly
