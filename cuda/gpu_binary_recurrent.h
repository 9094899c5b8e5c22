// GpuIndexBinaryRecurrent: an IndexBinaryRecurrent (BEBR codes, SDC) whose
// codes are scanned on the GPU, returning the CPU index's D and I.
//
// - Encoding stays on the host: queries and added vectors go through a copy
//   of the CPU index's encoder (the reference, so the codes are the CPU's).
// - The scores come from the popcount tile of sdc_knn (binary_gpu.h); each
//   tile is then turned into the search key with the float operations of
//   recurrent_key (binary_recurrent.h), and knn_exact keeps the k smallest.
//   The CPU pre-filter (integer bound with per-vector offsets, two units of
//   margin) only skips codes that cannot enter the k best, so both indexes
//   return the k smallest (key, id) pairs.
// - Ties: the CPU keeps the smaller id among equal keys, the GPU selection
//   the smaller row. Rows are therefore kept in ascending id order: an add
//   whose ids are not all >= the stored ones re-sorts the stored rows (a
//   round trip through host memory, O(ntotal)). Each row remembers its
//   insertion number, so to_cpu() gives back the CPU index's order.
// - Host or device arrays in and out (device queries are copied to the host
//   for encoding). No IDSelector; k <= 2048 (the GPU selection limit).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "gpu_resources.h"
#include "nearly/binary_recurrent.h"
#include "nearly/index.h"

namespace nearly::gpu {

struct GpuIndexBinaryRecurrent : Index {
    ResourcesPtr res;

    // A copy of cpu (encoder, codes, per-vector terms, ids): later changes
    // to either index are not shared, as with faiss's index_cpu_to_gpu.
    GpuIndexBinaryRecurrent(ResourcesPtr res, const IndexBinaryRecurrent& cpu);

    std::string type_name() const override { return "GpuBinaryRecurrent"; }
    // Trains a new encoder on the host (the registered trainer, like the CPU
    // index); stored codes are kept, as the CPU index does.
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;  // decode of the vector with id key
    size_t remove_ids(const IDSelector& sel) override;       // O(ntotal), through the host
    void reset() override;
    void write_body(Writer& w) const override;
    bool has_native_ids() const override { return true; }

    int device() const { return res->device(); }
    int m() const { return m_; }
    int bits_per_dim() const { return nb_; }
    size_t code_size() const { return sdc_code_size(m_, nb_); }
    // An IndexBinaryRecurrent with the same encoder (a copy), codes, terms
    // and ids, in insertion order.
    std::shared_ptr<IndexBinaryRecurrent> to_cpu() const;

   private:
    // The stored rows on the host, in row order (ascending id).
    struct Rows {
        std::vector<uint8_t> codes;
        std::vector<float> terms;
        std::vector<idx_t> ids, seq;
    };
    Rows download() const;
    void store(Rows rows);  // replaces the stored rows; rows.ids must be ascending
    void append(const Rows& rows);  // rows.ids ascending and >= every stored id
    void add_rows(idx_t n, const float* x, const idx_t* ids);
    // The rows in the given order (indexes into r).
    static Rows gather(const Rows& r, const std::vector<size_t>& order, size_t code_size);

    int m_ = 0, nb_ = 0;
    std::shared_ptr<const RecurrentEncoder> enc_;
    DeviceVector<uint32_t> codes_;  // canonical codes, code_size / 4 words each
    DeviceVector<float> terms_;     // per-vector terms of D
    std::vector<idx_t> ids_;        // per row, ascending
    std::vector<idx_t> seq_;        // per row: its insertion number
    idx_t next_seq_ = 0;
};

}  // namespace nearly::gpu
