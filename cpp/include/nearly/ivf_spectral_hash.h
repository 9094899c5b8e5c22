// faiss's IndexIVFSpectralHash: an IVF index whose codes are nbit bits of a
// transform of the vector (a random rotation d -> nbit by default; ITQ or PCA
// from the factory), searched by Hamming distance within the probed lists.
// Bit j of a vector y = vt(x) is floor((y_j - c_j) * 2 / period) mod 2: the
// axis is cut into intervals of period / 2 that alternate 0 and 1 around a
// threshold c_j, which is 0 (Thresh_global), the list centroid's transform
// (Thresh_centroid; Thresh_centroid_half shifts it by period / 4) or the
// median of the list's training vectors (Thresh_median). A period larger
// than the data's spread gives plain sign bits (the factory's default,
// -1e10: 1 where y_j > c_j).
#pragma once
#include <memory>
#include <vector>

#include "nearly/ivf.h"
#include "nearly/transform.h"

namespace nearly {

struct IndexIVFSpectralHash : IndexIVF {
    enum ThresholdType { Thresh_global = 0, Thresh_centroid = 1, Thresh_centroid_half = 2, Thresh_median = 3 };

    const int nbit;

    // vt starts as faiss's RandomRotationMatrix(d, nbit) drawn with seed 1234.
    IndexIVFSpectralHash(IndexPtr quantizer, int d, size_t nlist, int nbit, float period);

    std::string type_name() const override { return "IVFSpectralHash"; }

    // The transform d -> nbit (trained by train() when it is not yet).
    TransformPtr vt() const;
    // faiss's replace_vt: another transform d -> nbit, only while the index
    // holds no codes; the thresholds go back to Thresh_global (faiss's rule),
    // and the index is trained when the quantizer and the transform are.
    void replace_vt(TransformPtr vt);
    // faiss's replace_vt(IndexPreTransform): the transform of an encoder made
    // of one transform and an IndexLSH that only takes signs ("ITQ16,LSH"),
    // whose codes this index then reproduces with a period far larger than
    // the data (negative: sign bits are 1 above the threshold).
    void replace_vt(const IndexPreTransform& encoder);
    float period() const { return period_; }
    ThresholdType threshold_type() const { return threshold_type_; }
    // Both change what a code means, so only while the index holds no codes.
    // A change that needs learning again (Thresh_median) leaves the index
    // untrained; the centroid thresholds are derived at once when the
    // quantizer and transform are trained.
    void set_period(float period);
    void set_threshold_type(ThresholdType t);
    // The thresholds c, nlist x nbit (empty for Thresh_global), a copy.
    std::vector<float> trained_thresholds() const;

    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFSpectralHash> read_body(Reader& r);

   protected:
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    // The bits keep no magnitude: faiss cannot decode these codes either.
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    // faiss trains on every training vector; nothing to learn once the
    // transform is trained and the thresholds need no data.
    idx_t train_encoder_num_vectors() const override;
    bool encoder_trained() const override;
    // is_trained = True after filling the quantizer by hand: centroid
    // thresholds are derived then; medians need train().
    void assume_encoder_trained() override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    std::unique_ptr<QueryBatch> prepare_queries(idx_t n, const float* x, const SearchParameters* params) const override;
    std::unique_ptr<InvertedListScanner> get_scanner_for(const QueryBatch* batch) const override;
    void rebuild_centroid_state() override;
    void permute_list_state(const idx_t* perm) override;
    bool codes_depend_on_centroids() const override {
        return threshold_type_ == Thresh_centroid || threshold_type_ == Thresh_centroid_half;
    }
    void write_encoder_state(Writer& w) const override;

   private:
    TransformPtr vt_;
    float period_;
    ThresholdType threshold_type_ = Thresh_global;
    std::vector<float> trained_;  // nlist x nbit thresholds; empty for Thresh_global

    // The centroid thresholds from the quantizer's centroids (when both are trained).
    void thresholds_from_centroids();
    void check_settable(const char* what) const;
    // 2 / period, in float as faiss computes it: intervals per unit.
    float frequency() const { return float(2.0 / double(period_)); }
};

// Bit j of code = floor((y_j - c_j) * freq) mod 2 for j < nbit (c null: 0),
// the rest of the last byte zero; faiss's binarize_with_freq.
void binarize_with_freq(size_t nbit, float freq, const float* y, const float* c, uint8_t* code);

}  // namespace nearly
