#include "nearly/index_lsh.h"

#include <algorithm>
#include <mutex>

#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

IndexLSH::IndexLSH(int d, int nbits, bool rotate_data, bool train_thresholds)
    : IndexFlatCodes(d, METRIC_L2),
      nbits(nbits),
      rotate_data(rotate_data),
      train_thresholds(train_thresholds),
      rrot(d, std::max(nbits, 1)) {
    NEARLY_CHECK_ARG(nbits > 0, "IndexLSH: nbits must be positive");
    NEARLY_CHECK_ARG(rotate_data || nbits <= d, "IndexLSH: without rotate_data, nbits must be <= d");
    if (rotate_data) rrot.init(5);
    is_trained = !train_thresholds;
}

std::vector<float> IndexLSH::project(size_t n, const float* x) const {
    const size_t nb = size_t(nbits), dd = size_t(d);
    std::vector<float> xt(n * nb);
    if (rotate_data) {
        rrot.apply(idx_t(n), x, xt.data());
    } else {
        for (size_t i = 0; i < n; i++) std::copy(x + i * dd, x + i * dd + nb, &xt[i * nb]);
    }
    if (!thresholds.empty())
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < nb; j++) xt[i * nb + j] -= thresholds[j];
    return xt;
}

void IndexLSH::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    check_finite(x, size_t(n) * d, "training data");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (train_thresholds) {
        NEARLY_CHECK_ARG(n > 0, "IndexLSH: cannot learn thresholds from 0 vectors");
        thresholds.clear();
        const std::vector<float> xt = project(size_t(n), x);
        std::vector<float> t(nbits);
        parallel_for(size_t(nbits), [&](size_t j) {
            std::vector<float> col(static_cast<size_t>(n));
            for (size_t i = 0; i < size_t(n); i++) col[i] = xt[i * nbits + j];
            std::sort(col.begin(), col.end());
            const size_t h = size_t(n) / 2;
            t[j] = n % 2 ? col[h] : (col[h - 1] + col[h]) / 2;  // the median, faiss's way
        });
        thresholds = std::move(t);
    }
    is_trained = true;
}

void IndexLSH::encode(size_t n, const float* x, uint8_t* codes) const {
    const size_t nb = size_t(nbits), cs = code_size();
    const std::vector<float> xt = project(n, x);
    std::fill(codes, codes + n * cs, uint8_t(0));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nb; j++)
            if (xt[i * nb + j] >= 0) codes[i * cs + j / 8] |= uint8_t(1u << (j % 8));
}

void IndexLSH::decode(const uint8_t* code, float* out) const {
    std::vector<float> xt(nbits);
    for (int j = 0; j < nbits; j++) {
        xt[j] = (code[j / 8] >> (j % 8)) & 1 ? 1.f : -1.f;
        if (!thresholds.empty()) xt[j] += thresholds[j];
    }
    if (rotate_data) {
        rrot.reverse(1, xt.data(), out);
    } else {
        std::copy(xt.begin(), xt.end(), out);
        std::fill(out + nbits, out + d, 0.f);
    }
}

void IndexLSH::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const size_t cs = code_size();
    std::vector<uint8_t> q(size_t(n) * cs);
    encode(size_t(n), x, q.data());
    std::vector<int32_t> Di(size_t(n) * size_t(k));
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    knn_hamming(q.data(), size_t(n), codes_.data(), size_t(ntotal), cs, size_t(k), Di.data(), I, sel);
    for (size_t i = 0; i < Di.size(); i++) D[i] = float(Di[i]);  // the pad becomes 2147483647.f, as in faiss
}

void IndexLSH::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(nbits);
    w.pod<uint8_t>(rotate_data);
    rrot.write_body(w);
    w.vec(thresholds);
}

void IndexLSH::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(nbits);
    w.pod<uint8_t>(rotate_data);
    w.pod<uint8_t>(train_thresholds);
    w.pod<uint8_t>(is_trained);
    rrot.write_body(w);
    w.vec(thresholds);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<IndexLSH> IndexLSH::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), nbits = r.pod<int32_t>();
    const uint8_t rotate = r.pod<uint8_t>(), train_t = r.pod<uint8_t>(), trained = r.pod<uint8_t>();
    r.check(d > 0 && nbits > 0 && nbits <= (1 << 20) && rotate <= 1 && train_t <= 1 && trained <= 1 &&
                (rotate || nbits <= d),
            "bad LSH header");
    auto index = std::make_unique<IndexLSH>(d, nbits, rotate != 0, train_t != 0);
    index->rrot.read_linear_body(r);
    r.check(!rotate || (index->rrot.is_trained && index->rrot.is_orthonormal), "LSH rotation missing");
    index->thresholds = r.vec<float>();
    r.check(index->thresholds.empty() || index->thresholds.size() == size_t(nbits), "LSH thresholds do not match nbits");
    r.check(!trained || !train_t || !index->thresholds.empty(), "LSH marked trained without its thresholds");
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->code_size(),
            "LSH code count does not match ntotal");
    r.check(ntotal == 0 || trained, "LSH holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
