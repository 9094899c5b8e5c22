// Product quantization (Jégou et al., faiss's ProductQuantizer): a vector is
// cut into M subvectors of dsub = d / M dims, each replaced by the number of
// its nearest of ksub = 2^nbits centroids learned by k-means on that
// subspace. Distances to a query are then sums of M table lookups (ADC).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nearly/bitstring.h"
#include "nearly/common.h"
#include "nearly/kmeans.h"

namespace nearly {

struct ProductQuantizer {
    size_t d, M, nbits;
    size_t dsub, ksub, code_size;
    // faiss's layout: M x ksub x dsub (subquantizer m, centroid j at
    // (m * ksub + j) * dsub).
    std::vector<float> centroids;
    // k-means settings per subspace: faiss's defaults (25 iterations, at most
    // 256 points per centroid, seed 1234).
    ClusteringParameters cp;
    bool verbose = false;
    // faiss's train types (and values): Train_hot_start: k-means starts from
    // the current centroids (OPQ retrains the codebooks a few iterations at
    // a time); Train_shared: one codebook for every subspace, trained on all
    // the subvectors at once; Train_hypercube / Train_hypercube_pca: k-means
    // starts from the vertices of a hypercube around the mean, along the
    // first nbits axes or the first nbits principal directions (scaled by
    // their standard deviations): the start polysemous codes want. A
    // hypercube needs dsub >= nbits, else the default start (faiss says so
    // too).
    enum TrainType { Train_default, Train_hot_start, Train_shared, Train_hypercube, Train_hypercube_pca };
    TrainType train_type = Train_default;
    // Derived from centroids by sync_transposed_centroids() (train() calls
    // it; whoever writes centroids directly must too): each subquantizer's
    // centroids transposed, in column blocks of column_block() centroids
    // (block b of subspace m is dsub x column_block() floats at
    // transposed_block(m, b)), and their squared norms (M x ksub). Tables
    // and encoding then run as vector-matrix products, a block wide, instead
    // of ksub dot products of dsub dims. A block (64 KiB at dsub 16) stays in
    // cache while a group of queries reads it: a whole subspace of 2^16
    // words (4 MiB) would come from memory again for every query.
    static constexpr size_t kColumnBlock = 1024;
    size_t column_block() const { return ksub < kColumnBlock ? ksub : kColumnBlock; }
    const float* transposed_block(size_t m, size_t b) const {
        return transposed_centroids.data() + m * dsub * ksub + b * dsub * column_block();
    }
    std::vector<float> transposed_centroids;
    std::vector<float> centroid_norms;
    void sync_transposed_centroids();
    // Throws unless other can take this quantizer's place in the index `who`
    // holding ntotal codes: the same d, M and nbits, and no codes yet.
    void check_replacement(const ProductQuantizer& other, const std::string& who, int64_t ntotal) const;

    // nbits: 1 to 16, codes packed as faiss's bit strings (code_size =
    // ceil(M * nbits / 8) bytes); 17 to 24 (faiss's limit) raise NotSupported.
    ProductQuantizer(size_t d, size_t M, size_t nbits);

    // One k-means per subspace on the n training vectors, like faiss.
    void train(size_t n, const float* x);
    void compute_code(const float* x, uint8_t* code) const;
    void compute_codes(const float* x, uint8_t* codes, size_t n) const;  // parallel over vectors
    void decode(const uint8_t* code, float* x) const;
    void decode(const uint8_t* codes, float* x, size_t n) const;
    // tab (M x ksub): squared L2 distance / inner product of each subvector
    // of x with each centroid of its subspace.
    void compute_distance_table(const float* x, float* tab) const;
    void compute_inner_prod_table(const float* x, float* tab) const;
    // The tables of nx queries (rows of x, tabs nx x M x ksub), each equal to
    // the one-query version's; subspace by subspace, so each subspace's
    // centroids are read from memory once for all nx queries.
    void compute_tables(const float* x, size_t nx, bool inner_product, float* tabs) const;
    // ADC: out[j] = sum over m of tab[m * ksub + code_j[m]], summed in order m.
    void adc(const float* tab, const uint8_t* codes, size_t n, float* out) const;
    // The same sums, one code and one field at a time (what adc is tested
    // against, every width).
    void adc_reference(const float* tab, const uint8_t* codes, size_t n, float* out) const;

    const float* get_centroids(size_t m, size_t j) const { return centroids.data() + (m * ksub + j) * dsub; }
    // Subquantizer m's centroid number in a code.
    size_t code_at(const uint8_t* code, size_t m) const {
        switch (nbits) {
            case 8: return code[m];
            case 4: return m & 1 ? code[m >> 1] >> 4 : code[m >> 1] & 15;
            case 16: return size_t(code[2 * m]) | size_t(code[2 * m + 1]) << 8;
            default: return read_bits(code, m * nbits, nbits);
        }
    }
};

}  // namespace nearly
