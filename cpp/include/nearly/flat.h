// Exact search over float vectors stored as they are.
#pragma once
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/huge_pages.h"
#include "nearly/index.h"
#include "nearly/mapped_array.h"

namespace nearly {

struct IndexFlat : Index {
    explicit IndexFlat(int d, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "Flat"; }
    void add(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    // Compacts the storage: later ids shift down, like faiss.
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    void merge_from(Index& other, idx_t add_id = 0) override;
    size_t sa_code_size() const override { return size_t(d) * sizeof(float); }  // the raw float bytes, as faiss
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    // Row i becomes old row perm[i] (faiss's IndexFlatCodes.permute_entries).
    void permute_entries(const idx_t* perm);
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexFlat> read_body(class Reader& r);

    const MappedArray<float, HugePageAllocator<float>>& vectors() const { return xb_; }

   protected:
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override;

   private:
    MappedArray<float, HugePageAllocator<float>> xb_;  // read at random by re-ranking; or a mapped file's
    std::vector<float> norms_;  // squared norms, METRIC_L2 only
};

// faiss's names for the two metrics; serialized indexes come back as these.
struct IndexFlatL2 : IndexFlat {
    explicit IndexFlatL2(int d) : IndexFlat(d, METRIC_L2) {}
};
struct IndexFlatIP : IndexFlat {
    explicit IndexFlatIP(int d) : IndexFlat(d, METRIC_INNER_PRODUCT) {}
};

}  // namespace nearly
