#include "nearly/ivfpqr.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr size_t kRefineAddBlock = 65536;

[[noreturn]] void refused(const std::string& what) {
    throw NotSupported("IndexIVFPQR: " + what +
                       " is not supported (its refinement codes are kept by id, beside the lists)");
}
}  // namespace

IndexIVFPQR::IndexIVFPQR(IndexPtr quantizer_, int d_, size_t nlist_, size_t M, size_t nbits, size_t M_refine,
                         size_t nbits_refine)
    : IndexIVFPQ(std::move(quantizer_), d_, nlist_, M, nbits, METRIC_L2), refine_pq(size_t(d_), M_refine, nbits_refine) {
    refine_pq.cp.max_points_per_centroid = 1000;  // faiss's
    refresh_trained();
}

idx_t IndexIVFPQR::train_encoder_num_vectors() const {
    return std::max(idx_t(pq.cp.max_points_per_centroid) * idx_t(pq.ksub),
                    idx_t(refine_pq.cp.max_points_per_centroid) * idx_t(refine_pq.ksub));
}

void IndexIVFPQR::train_encoder(idx_t n, const float* x, const idx_t* assign) {
    IndexIVFPQ::train_encoder(n, x, assign);
    if (verbose)
        std::printf("training %zdx%zd 2nd level PQ quantizer on %lld %dD-vectors\n", refine_pq.M, refine_pq.ksub,
                    (long long)n, d);
    // What the first PQ leaves of the (residual) training vectors.
    const size_t nn = size_t(n), dd = d;
    std::vector<uint8_t> codes(nn * pq.code_size);
    pq.compute_codes(x, codes.data(), nn);
    std::vector<float> residual(nn * dd);
    pq.decode(codes.data(), residual.data(), nn);
    for (size_t i = 0; i < nn * dd; i++) residual[i] = x[i] - residual[i];
    refine_pq.verbose = verbose;
    refine_pq.train(nn, residual.data());
    refine_trained_ = true;
}

void IndexIVFPQR::assume_encoder_trained() {
    IndexIVFPQ::assume_encoder_trained();
    check_finite(refine_pq.centroids.data(), refine_pq.centroids.size(), "the refinement PQ centroids");
    refine_pq.sync_transposed_centroids();
    refine_trained_ = true;
}

void IndexIVFPQR::set_refine_pq(const ProductQuantizer& other) {
    check_writable();
    std::unique_lock<SharedMutex> rk(refine_mutex_);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    refine_pq.check_replacement(other, type_name(), ntotal);
    std::copy(other.centroids.begin(), other.centroids.end(), refine_pq.centroids.begin());
    refine_pq.sync_transposed_centroids();
    refine_trained_ = true;
    refresh_trained();
}

void IndexIVFPQR::write_encoder_state(Writer& w) const {
    IndexIVFPQ::write_encoder_state(w);
    w.pod<uint64_t>(refine_pq.M);
    w.pod<uint64_t>(refine_pq.nbits);
    w.vec(refine_pq.centroids);
}

void IndexIVFPQR::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    std::unique_lock<SharedMutex> rk(refine_mutex_);
    const idx_t n0 = ntotal;
    if (ids)
        for (idx_t i = 0; i < n; i++)
            if (ids[i] != n0 + i)
                throw NotSupported("IndexIVFPQR keeps its refinement codes by id: the ids must be ntotal, ntotal + "
                                   "1, ... (" + std::to_string(n0) + ", ...; got " + std::to_string(ids[i]) +
                                   " at " + std::to_string(i) + "), as in faiss");
    InterruptPoll poll;
    const size_t dd = d, rcs = refine_pq.code_size;
    std::vector<float> dis, y, e;
    std::vector<idx_t> list_of;
    std::vector<uint8_t> codes, rcodes;
    for (size_t i0 = 0; i0 < size_t(n); i0 += kRefineAddBlock) {
        const size_t m = std::min(kRefineAddBlock, size_t(n) - i0);
        const float* xb = x + i0 * dd;
        dis.resize(m);
        list_of.resize(m);
        quantizer->search(idx_t(m), xb, 1, dis.data(), list_of.data());
        for (size_t i = 0; i < m; i++)
            if (list_of[i] < 0 || size_t(list_of[i]) >= nlist)
                throw NotSupported("IndexIVFPQR: the quantizer could not place vector " + std::to_string(i0 + i));
        codes.resize(m * code_size);
        encode_vectors(idx_t(m), xb, list_of.data(), codes.data());
        // y: the IVFPQ reconstruction; the refinement codes what it misses.
        y.resize(m * dd);
        parallel_for(m, [&](size_t i) { decode_vector(size_t(list_of[i]), &codes[i * code_size], &y[i * dd]); });
        e.resize(m * dd);
        for (size_t i = 0; i < m * dd; i++) e[i] = xb[i] - y[i];
        rcodes.resize(m * rcs);
        refine_pq.compute_codes(e.data(), rcodes.data(), m);
        refine_pq.decode(rcodes.data(), e.data(), m);
        const size_t at = refine_bias.size();
        refine_bias.resize(at + m);
        for (size_t i = 0; i < m; i++) {
            double ee = 0, ye = 0;
            for (size_t j = 0; j < dd; j++) {
                ee += double(e[i * dd + j]) * e[i * dd + j];
                ye += double(y[i * dd + j]) * e[i * dd + j];
            }
            refine_bias[at + i] = float(ee + 2 * ye);
        }
        refine_codes.insert(refine_codes.end(), rcodes.begin(), rcodes.end());
        const std::vector<size_t> lists(list_of.begin(), list_of.end());
        append_codes(m, lists.data(), codes.data(), code_size, nullptr);
        if (verbose && size_t(n) > kRefineAddBlock)
            std::printf("  add: %zu / %lld vectors\n", i0 + m, (long long)n);
        poll();
    }
}

void IndexIVFPQR::refine_decode_add(idx_t id, float* out) const {
    if (id < 0 || size_t(id) >= refine_bias.size()) return;
    std::vector<float> e(d);
    refine_pq.decode(&refine_codes[size_t(id) * refine_pq.code_size], e.data());
    for (int j = 0; j < d; j++) out[j] += e[j];
}

idx_t IndexIVFPQR::candidates(idx_t k) const { return std::max<idx_t>(k, idx_t(double(k) * double(k_factor))); }

void IndexIVFPQR::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    const idx_t k1 = candidates(k);
    std::vector<float> D1(size_t(n) * size_t(k1));
    std::vector<idx_t> I1(size_t(n) * size_t(k1));
    IndexIVFPQ::search(n, x, k1, D1.data(), I1.data(), params);
    rerank(n, x, k, k1, D1.data(), I1.data(), D, I);
}

void IndexIVFPQR::search_preassigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* assign,
                                     const float* centroid_dis, float* D, idx_t* I,
                                     const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    const idx_t k1 = candidates(k);
    std::vector<float> D1(size_t(n) * size_t(k1));
    std::vector<idx_t> I1(size_t(n) * size_t(k1));
    IndexIVFPQ::search_preassigned(n, x, k1, np, assign, centroid_dis, D1.data(), I1.data(), params);
    rerank(n, x, k, k1, D1.data(), I1.data(), D, I);
}

void IndexIVFPQR::rerank(idx_t n, const float* x, idx_t k, idx_t k1, const float* D1, const idx_t* I1, float* D,
                         idx_t* I) const {
    const size_t nref = refine_bias.size(), rcs = refine_pq.code_size, kk = size_t(k);
    const float pad = std::numeric_limits<float>::max();
    parallel_for(size_t(n), [&](size_t q) {
        std::vector<float> tab(refine_pq.M * refine_pq.ksub);
        refine_pq.compute_inner_prod_table(x + q * size_t(d), tab.data());
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        TopK::init(Dq, Iq, kk);
        for (size_t j = 0; j < size_t(k1); j++) {
            const idx_t id = I1[q * size_t(k1) + j];
            if (id < 0) continue;
            float dis = D1[q * size_t(k1) + j];
            if (size_t(id) < nref) {
                float xe;
                refine_pq.adc(tab.data(), &refine_codes[size_t(id) * rcs], 1, &xe);
                dis += refine_bias[size_t(id)] - 2 * xe;
            }
            TopK::push(Dq, Iq, kk, dis, id);
        }
        TopK::finish(Dq, Iq, kk, false, pad);
    });
}

void IndexIVFPQR::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                         const SearchParameters* params) const {
    IndexIVF::search_and_reconstruct(n, x, k, D, I, R, params);
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    for (size_t j = 0; j < size_t(n) * size_t(k); j++)
        if (I[j] >= 0 && !std::isnan(R[j * size_t(d)])) refine_decode_add(I[j], R + j * size_t(d));
}

void IndexIVFPQR::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    IndexIVFPQ::reconstruct(key, out);
    refine_decode_add(key, out);
}

void IndexIVFPQR::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    IndexIVFPQ::reconstruct_n(i0, ni, out);
    for (idx_t i = 0; i < ni; i++)
        if (!std::isnan(out[size_t(i) * size_t(d)])) refine_decode_add(i0 + i, out + size_t(i) * size_t(d));
}

size_t IndexIVFPQR::remove_ids(const IDSelector&) { refused("remove_ids"); }
void IndexIVFPQR::update_vectors(idx_t, const idx_t*, const float*) { refused("update_vectors"); }
void IndexIVFPQR::add_sa_codes(idx_t, const uint8_t*, const idx_t*) { refused("add_sa_codes"); }
void IndexIVFPQR::add_entries(size_t, size_t, const uint8_t*, const idx_t*) { refused("add_entries"); }
void IndexIVFPQR::replace_lists(InvertedLists&&, const CodeLayout&) { refused("replace_invlists"); }
void IndexIVFPQR::replace_list_range(size_t, const InvertedLists&, const CodeLayout&) { refused("set_invlist_range"); }

void IndexIVFPQR::merge_from(Index& other_base, idx_t add_id) {
    if (&other_base == this) throw NotSupported("merge_from: an index cannot be merged into itself");
    auto* other = dynamic_cast<IndexIVFPQR*>(&other_base);
    if (!other) throw NotSupported("merge_from: an IndexIVFPQR merges only another IndexIVFPQR");
    std::scoped_lock rk(refine_mutex_, other->refine_mutex_);
    if (add_id != ntotal)
        throw NotSupported("IndexIVFPQR keeps its refinement codes by id: merge_from needs add_id = ntotal (" +
                           std::to_string(ntotal) + ", got " + std::to_string(add_id) + ")");
    if (other->refine_bias.size() != size_t(other->ntotal))
        throw NotSupported("merge_from: the other IndexIVFPQR has entries without refinement codes");
    IndexIVF::merge_from(other_base, add_id);
    refine_codes.insert(refine_codes.end(), other->refine_codes.begin(), other->refine_codes.end());
    refine_bias.insert(refine_bias.end(), other->refine_bias.begin(), other->refine_bias.end());
    other->refine_codes.clear();
    other->refine_bias.clear();
}

void IndexIVFPQR::reset() {
    std::unique_lock<SharedMutex> rk(refine_mutex_);
    IndexIVFPQ::reset();
    refine_codes.clear();
    refine_bias.clear();
}

void IndexIVFPQR::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> rk(refine_mutex_);
    IndexIVFPQ::write_body(w);
    w.pod<uint64_t>(refine_pq.M);
    w.pod<uint64_t>(refine_pq.nbits);
    w.pod<uint8_t>(refine_trained_);
    w.vec(refine_pq.centroids);
    w.pod<float>(k_factor);
    w.array(refine_codes);
    w.array(refine_bias);
}

std::unique_ptr<IndexIVFPQR> IndexIVFPQR::read_body(Reader& r) {
    std::unique_ptr<IndexIVFPQR> index;
    read_pq_body(r, "IVFPQR", [&](const Header& h, size_t M, size_t nbits) -> IndexIVFPQ* {
        index = std::make_unique<IndexIVFPQR>(h.quantizer, h.d, h.nlist, M, nbits, 1, 8);
        return index.get();
    });
    const uint64_t M = r.pod<uint64_t>();
    const uint64_t nbits = r.pod<uint64_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(M > 0 && M <= uint64_t(index->d) && index->d % M == 0 && nbits >= 1 && nbits <= 16 && trained <= 1,
            "bad IVFPQR refinement header");
    r.check(trained || index->ntotal == 0, "IVFPQR codes without a trained refinement PQ");
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == size_t(index->d) << nbits, "IVFPQR refinement centroids do not match d and nbits");
    index->refine_pq = ProductQuantizer(size_t(index->d), size_t(M), size_t(nbits));
    index->refine_pq.cp.max_points_per_centroid = 1000;
    index->refine_pq.centroids = std::move(centroids);
    index->refine_pq.sync_transposed_centroids();
    index->refine_trained_ = trained;
    index->k_factor = r.pod<float>();
    r.check(index->k_factor > 0 && index->k_factor < 1e6f, "bad IVFPQR k_factor");
    r.array(index->refine_codes);
    r.array(index->refine_bias);
    r.check(index->refine_bias.size() == size_t(index->ntotal) &&
                index->refine_codes.size() == index->refine_bias.size() * index->refine_pq.code_size,
            "IVFPQR refinement codes do not match ntotal");
    index->refresh_trained();
    return index;
}

}  // namespace nearly
