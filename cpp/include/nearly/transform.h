// Vector transforms applied before an index sees the vectors ("L2norm,Flat";
// later PCA, OPQ), and the index that chains them.
#pragma once
#include <vector>

#include "nearly/index.h"

namespace nearly {

class Reader;

struct VectorTransform {
    int d_in, d_out;
    bool is_trained = true;
    VectorTransform(int d_in, int d_out) : d_in(d_in), d_out(d_out) {}
    virtual ~VectorTransform() = default;
    virtual std::string type_name() const = 0;
    virtual void train(idx_t, const float*) {}
    virtual void apply(idx_t n, const float* x, float* out) const = 0;
    virtual void reverse(idx_t n, const float* x, float* out) const;
    virtual void write_body(Writer& w) const = 0;
};

using TransformPtr = std::shared_ptr<VectorTransform>;
// A transform as tag + dimensions + body (inside an index's body).
void write_transform_payload(const VectorTransform& t, Writer& w);
TransformPtr read_transform_payload(Reader& r);

// Scales each vector to unit L2 norm (zero vectors stay zero).
struct NormalizationTransform : VectorTransform {
    explicit NormalizationTransform(int d) : VectorTransform(d, d) {}
    std::string type_name() const override { return "L2norm"; }
    void apply(idx_t n, const float* x, float* out) const override;
    void reverse(idx_t n, const float* x, float* out) const override;  // identity, like faiss
    void write_body(Writer&) const override {}
};

struct IndexPreTransform : Index {
    std::vector<TransformPtr> chain;
    IndexPtr index;

    IndexPreTransform(TransformPtr transform, IndexPtr index);
    IndexPreTransform(std::vector<TransformPtr> chain, IndexPtr index);
    // faiss's prepend_transform: t feeds the current chain (t->d_out == d).
    void prepend_transform(TransformPtr t);
    void set_trained(bool trained) override;

    std::string type_name() const override { return "PreTransform"; }
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    // The inner index's, fed the transformed query.
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    void merge_from(Index& other, idx_t add_id = 0) override;
    // The inner index's codes of the transformed vectors; decoding goes back
    // through the transforms' reverse, like faiss.
    size_t sa_code_size() const override { return index->sa_code_size(); }
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexPreTransform> read_body(Reader& r);
    // ntotal and is_trained taken again from the inner index, changed
    // behind this one's back (faiss's merge_ondisk replaces its lists).
    void refresh_from_inner();

   protected:
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override;

   private:
    std::vector<float> reverse_chain(idx_t n, std::vector<float> y) const;
    std::vector<float> apply_chain(idx_t n, const float* x) const;
    void sync_from_inner();
};

}  // namespace nearly
