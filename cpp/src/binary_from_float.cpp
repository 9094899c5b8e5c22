#include "nearly/binary_from_float.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "nearly/hamming.h"
#include "nearly/io.h"

namespace nearly {

void binary_to_real(size_t nbits, const uint8_t* codes, float* out) {
    for (size_t i = 0; i < nbits; i++) out[i] = ((codes[i >> 3] >> (i & 7)) & 1) ? 1.f : -1.f;
}

void real_to_binary(size_t nbits, const float* x, uint8_t* codes) {
    std::memset(codes, 0, (nbits + 7) / 8);
    for (size_t i = 0; i < nbits; i++)
        if (x[i] > 0) codes[i >> 3] |= uint8_t(1u << (i & 7));
}

namespace {
// Blocks of this many vectors are converted at a time: bounded memory.
constexpr idx_t kBlock = 16384;
}  // namespace

IndexBinaryFromFloat::IndexBinaryFromFloat(IndexPtr index_) : IndexBinary(index_ ? index_->d : 8), index(std::move(index_)) {
    // (IndexBinary has checked d: one float dimension per bit, a multiple of 8.)
    NEARLY_CHECK_ARG(index != nullptr, "IndexBinaryFromFloat: the float index is None");
    metric_type = index->metric_type;
    sync();
}

void IndexBinaryFromFloat::sync() {
    ntotal = index->ntotal;
    is_trained = index->is_trained;
}

void IndexBinaryFromFloat::train(idx_t n, const uint8_t* x) {
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xf(size_t(n) * size_t(d));
    binary_to_real(xf.size(), x, xf.data());
    index->train(n, xf.data());
    sync();
}

void IndexBinaryFromFloat::add(idx_t n, const uint8_t* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xf;
    for (idx_t i0 = 0; i0 < n; i0 += kBlock) {
        const idx_t m = std::min(kBlock, n - i0);
        xf.resize(size_t(m) * size_t(d));
        binary_to_real(xf.size(), x + size_t(i0) * size_t(code_size), xf.data());
        index->add(m, xf.data());
    }
    sync();
}

void IndexBinaryFromFloat::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                                  const SearchParameters* params) const {
    check_binary_search_args(n, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xf, df;
    for (idx_t i0 = 0; i0 < n; i0 += kBlock) {
        const idx_t m = std::min(kBlock, n - i0);
        xf.resize(size_t(m) * size_t(d));
        df.resize(size_t(m) * size_t(k));
        binary_to_real(xf.size(), x + size_t(i0) * size_t(code_size), xf.data());
        idx_t* Ib = I + size_t(i0) * size_t(k);
        index->search(m, xf.data(), k, df.data(), Ib, params);
        for (size_t j = 0; j < df.size(); j++)
            D[size_t(i0) * size_t(k) + j] = Ib[j] < 0 ? kHammingPad : int32_t(std::lround(df[j] / 4.0f));
    }
}

void IndexBinaryFromFloat::reconstruct(idx_t key, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> v(static_cast<size_t>(d));
    index->reconstruct(key, v.data());
    real_to_binary(size_t(d), v.data(), out);
}

void IndexBinaryFromFloat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->reset();
    sync();
}

void IndexBinaryFromFloat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_index_payload(*index, w);
}

std::unique_ptr<IndexBinaryFromFloat> IndexBinaryFromFloat::read_body(Reader& r) {
    IndexPtr inner = read_index_payload(r);
    r.check(inner->d % 8 == 0, "BFromFloat: the float index's d is not a multiple of 8");
    return std::make_unique<IndexBinaryFromFloat>(inner);
}

}  // namespace nearly
