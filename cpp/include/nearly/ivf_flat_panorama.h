// faiss's IndexIVFFlatPanorama: IVF-Flat whose lists lie in Panorama's
// layout (code_layout.h: batches of batch_size vectors, level-major, each
// batch followed by its vectors' tail norms), so that a list scan reads a
// level at a time and drops a vector once its bound shows it cannot enter
// the query's k best (panorama.h). Same results as IndexIVFFlat; faster when
// the vectors' energy sits in their first dimensions (after PCA, say).
// Each list is padded to whole batches, as in faiss: with short lists a
// batch_size near their length keeps the memory down.
#pragma once
#include <memory>

#include "nearly/ivf_flat.h"
#include "nearly/panorama.h"

namespace nearly {

struct IndexIVFFlatPanorama : IndexIVFFlat {
    static constexpr size_t kDefaultBatchSize = 1024;  // faiss's Panorama::kDefaultBatchSize

    // L2 or inner product; n_levels in [1, d].
    IndexIVFFlatPanorama(IndexPtr quantizer, int d, size_t nlist, size_t n_levels, MetricType metric = METRIC_L2,
                         size_t batch_size = kDefaultBatchSize);

    size_t n_levels() const { return pano_.n_levels; }
    size_t batch_size() const { return code_block; }
    CodeLayout layout() const override {
        return CodeLayout{code_size, code_block, pano_.width * sizeof(float), pano_.n_levels};
    }

    std::string type_name() const override { return "IVFFlatPanorama"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFFlatPanorama> read_body(Reader& r);

   protected:
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // Few queries per list: each scans its lists itself (pruning needs its
    // own k-th best). Many: a list's rows are gathered once and scored for
    // all of them by IndexIVFFlat's matrix products, then faster (bench/panorama.py).
    size_t min_queries_per_list() const override { return kProductQueriesPerList; }
    static constexpr size_t kProductQueriesPerList = 8;
    void scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq, const float* xq,
                         const float* coarse_dis, size_t k, const IDSelector* sel, float* dis,
                         idx_t* pos) const override;

   private:
    Panorama pano_;
};

}  // namespace nearly
