#include "nearly/ivfpq.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/multi_index_quantizer.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// The position of the first smallest of n floats: the SIMD nearest-centroid
// kernel over zero dimensions, whose scores are then the "norms" alone.
size_t first_min(const float* row, size_t n) {
    float score;
    return simd().nearest_transposed(nullptr, 0, nullptr, row, n, &score);
}
}  // namespace


void IndexIVFPQ::copy_from(const IndexIVFPQ& orig) {
    std::shared_lock<SharedMutex> lk(orig.rw_mutex_);
    NEARLY_CHECK_ARG(orig.pq.M == pq.M && orig.pq.nbits == pq.nbits && orig.d == d && orig.nlist == nlist,
                     "IndexIVFPQ::copy_from: a different shape");
    {
        std::unique_lock<SharedMutex> mine(rw_mutex_);
        quantizer = orig.quantizer;
        pq = orig.pq;
        pq_trained_ = orig.pq_trained_;
        by_residual = orig.by_residual;
        use_precomputed_table = orig.use_precomputed_table;
        precomputed_table = orig.precomputed_table;
        cp = orig.cp;
        verbose = orig.verbose;
    }
    copy_lists_from(orig);
    std::unique_lock<SharedMutex> mine(rw_mutex_);
    is_trained = orig.is_trained;
}

IndexIVFPQ::IndexIVFPQ(IndexPtr quantizer_, int d, size_t nlist_, size_t M, size_t nbits, MetricType metric)
    : IndexIVFPQ(std::move(quantizer_), d, nlist_, M, nbits, metric, 0) {}

IndexIVFPQ::IndexIVFPQ(IndexPtr quantizer_, int d, size_t nlist_, size_t M, size_t nbits, MetricType metric,
                       size_t required_nbits)
    : IndexIVF(std::move(quantizer_), d, nlist_, 0, metric), pq(size_t(d), M, nbits) {
    if (required_nbits && nbits != required_nbits)
        throw NotSupported("Error: 'nbits == 4' failed: fast-scan codes have 4 bits");
    code_size = pq.code_size;
    by_residual = true;
    refresh_trained();
}

void IndexIVFPQ::assume_encoder_trained() {
    check_finite(pq.centroids.data(), pq.centroids.size(), "the PQ centroids");
    pq_trained_ = true;
    build_precomputed_table();
}

void IndexIVFPQ::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    encode_each(n, x, list_nos, codes, [&](const float* v, uint8_t* code) { pq.compute_code(v, code); });
}

void IndexIVFPQ::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    pq.decode(code, out);
    if (!by_residual) return;
    std::vector<float> c(d);
    quantizer->reconstruct(idx_t(list_no), c.data());
    for (int j = 0; j < d; j++) out[j] += c[j];
}

void IndexIVFPQ::train_encoder(idx_t n, const float* x, const idx_t*) {
    if (verbose) std::printf("training %zdx%zd product quantizer on %lld vectors in %dD\n", pq.M, pq.ksub,
                             (long long)n, d);
    pq.verbose = verbose;
    const PolysemousTraining defaults;
    const PolysemousTraining& pt = polysemous_training ? *polysemous_training : defaults;
    if (do_polysemous_training) pt.check(pq);  // before minutes of k-means
    pq.train(size_t(n), x);
    if (do_polysemous_training) {
        if (verbose) std::printf("doing polysemous training for PQ\n");
        pt.optimize_pq_for_hamming(pq, size_t(n), x);
    }
    pq_trained_ = true;
    if (by_residual) build_precomputed_table();
}

void IndexIVFPQ::precompute_table() {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    build_precomputed_table();
}

void IndexIVFPQ::set_by_residual(bool v) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (v == by_residual) return;
    if (ntotal > 0) throw NotSupported("IndexIVFPQ: by_residual cannot change once vectors are added");
    by_residual = v;
    if (!v)
        precomputed_table.clear();  // only residual scans use it
    else if (pq_trained_)
        build_precomputed_table();
}

void IndexIVFPQ::set_pq_centroids(const float* c) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    install_pq_centroids(c);
}

void IndexIVFPQ::set_pq(const ProductQuantizer& other) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    pq.check_replacement(other, type_name(), ntotal);
    install_pq_centroids(other.centroids.data());
}

void IndexIVFPQ::install_pq_centroids(const float* c) {
    std::copy(c, c + pq.centroids.size(), pq.centroids.begin());
    pq.sync_transposed_centroids();
    pq_trained_ = true;
    if (by_residual) build_precomputed_table();
    refresh_trained();
}

// faiss's rule: a table only for L2 by residual (IP needs none), and only when
// it fits in precomputed_table_max_bytes; -1 turns it off.
void IndexIVFPQ::build_precomputed_table() {
    precomputed_table.clear();
    // No centroids yet (the PQ set before the quantizer is trained): the
    // table is built when the quantizer comes (rebuild_centroid_state).
    if (use_precomputed_table == -1 || !pq_trained_ || !quantizer_places_lists(*quantizer, nlist)) return;
    const size_t ts = pq.M * pq.ksub;
    const auto* miq = dynamic_cast<const MultiIndexQuantizer*>(quantizer.get());
    const bool decomposes = miq && pq.M % miq->pq.M == 0;
    if (use_precomputed_table == 0) {
        if (!(metric_type == METRIC_L2 && by_residual)) return;
        if (decomposes) {
            use_precomputed_table = 2;
        } else {
            if (nlist * ts * sizeof(float) > precomputed_table_max_bytes) return;
            use_precomputed_table = 1;
        }
    }
    if (use_precomputed_table == 2 && !decomposes)
        throw NotSupported("use_precomputed_table = 2 needs a MultiIndexQuantizer whose M divides the PQ's M");
    if (verbose) std::printf("precomputing IVFPQ tables type %d\n", use_precomputed_table);
    // ||c_m,j||^2 are the PQ's own centroid_norms; each group of lists gets
    // its tables in one compute_tables call, so a block of a wide codebook
    // is read once per group rather than once per list.
    const float* r_norms = pq.centroid_norms.data();
    if (use_precomputed_table == 2) {
        // faiss's type 2: a cell's centroid is its sub-centroids side by
        // side, and the rows of the PQ subspaces inside sub-quantizer m''s
        // block depend on that sub-centroid j alone. Kept per (m', j): the
        // table of the vector that is sub-centroid j in block m' and zero
        // elsewhere, its block's rows only (the values type 1 would hold).
        const size_t qM = miq->pq.M, qk = miq->pq.ksub, rows = pq.M / qM, part = rows * pq.ksub;
        precomputed_table.resize(qM * qk * part);
        parallel_for(qM * qk, [&](size_t mj) {
            const size_t m = mj / qk, j = mj % qk;
            std::vector<float> c(d, 0.f), tab(ts);
            std::copy_n(&miq->pq.centroids[(m * qk + j) * miq->pq.dsub], miq->pq.dsub, &c[m * miq->pq.dsub]);
            pq.compute_tables(c.data(), 1, true, tab.data());
            float* out = &precomputed_table[mj * part];
            for (size_t i = 0; i < part; i++) out[i] = r_norms[m * part + i] + 2.f * tab[m * part + i];
        });
        return;
    }
    precomputed_table.resize(nlist * ts);
    std::vector<float> centroids(nlist * size_t(d));
    list_centroids(*quantizer, nlist, 0, nlist, centroids.data());
    constexpr size_t kLists = 8;
    parallel_for((nlist + kLists - 1) / kLists, [&](size_t g) {
        const size_t l0 = g * kLists, nl = std::min(kLists, nlist - l0);
        float* tab = &precomputed_table[l0 * ts];
        pq.compute_tables(&centroids[l0 * size_t(d)], nl, true, tab);
        for (size_t l = 0; l < nl; l++)
            for (size_t i = 0; i < ts; i++) tab[l * ts + i] = r_norms[i] + 2.f * tab[l * ts + i];
    });
}

IVFPQScanner::IVFPQScanner(const IndexIVFPQ& ix)
    : ix(ix),
      pq(ix.pq),
      ip(ix.metric_type == METRIC_INNER_PRODUCT),
      residual(ix.by_residual),
      coarse_ip(ix.quantizer->metric_type == METRIC_INNER_PRODUCT),
      precomputed(ix.by_residual && !ip && ix.use_precomputed_table >= 1 && !ix.precomputed_table.empty()),
      miq(ix.use_precomputed_table == 2 ? dynamic_cast<const MultiIndexQuantizer*>(ix.quantizer.get()) : nullptr),
      qtab(pq.M * pq.ksub),
      ht(ix.has_polysemous_search() ? ix.polysemous_ht : 0) {
    if (residual && !ip) ltab.resize(qtab.size());
    if (residual) {  // residuals for the tables (L2 without precomputed ones) or the polysemous filter
        centroid.resize(pq.d);
        resid.resize(pq.d);
    }
}

void IVFPQScanner::set_query(const float* x) {
    q = x;
    dis0 = 0.f;
    if (ht > 0 && !residual) {
        qcode.resize(pq.code_size);
        pq.compute_code(x, qcode.data());
    }
    qt = tab = qtab.data();
    if (!(ip || precomputed || !residual)) return;  // L2 on residuals: a table per list
    const bool inner = ip || precomputed;
    const size_t d = pq.d, tsize = pq.M * pq.ksub;
    if (const std::ptrdiff_t row = batch ? batch->row_of(x, d) : -1; row >= 0) {
        const size_t i = size_t(row);
        if (i < group_first || i >= group_first + group_size) {
            group_first = i;
            group_size = std::min(kGroup, batch->n - i);
            group.resize(kGroup * tsize);
            pq.compute_tables(x, group_size, inner, group.data());
        }
        qt = tab = group.data() + (i - group_first) * tsize;
        return;
    }
    pq.compute_tables(x, 1, inner, qtab.data());
}

void IVFPQScanner::set_list(size_t list, float coarse_dis) {
    if (!residual) return;
    if (ip) {
        // <q, c>: the coarse score where the quantizer ranks by inner
        // product, else from the centroid (an L2 quantizer's score is a
        // distance; faiss always takes it from the centroid).
        if (coarse_ip) {
            dis0 = coarse_dis;
        } else {
            ix.quantizer->reconstruct(idx_t(list), centroid.data());
            dis0 = simd().inner_product(q, centroid.data(), pq.d);
        }
        if (ht > 0) {  // the residual's code, from scratch (the tables hold inner products)
            compute_residual(list);
            qcode.resize(pq.code_size);
            pq.compute_code(resid.data(), qcode.data());
        }
        return;
    }
    if (precomputed) {
        // ||q - c||^2 + (||r||^2 + 2 <c, r>) - 2 <q, r>
        dis0 = coarse_dis;
        list_no = list;
        table_pending = true;
        if (!lazy_table || ht > 0) build_list_table();
    } else {
        compute_residual(list);
        pq.compute_distance_table(resid.data(), ltab.data());
        tab = ltab.data();
    }
    if (ht > 0) {
        // The residual's code is the argmin of each field's row of the
        // list's L2 table (up to a constant per field, the distances of the
        // residual's subvector to the centroids): M x ksub comparisons
        // instead of encoding the residual (faiss does the same with its
        // precomputed tables).
        qcode.assign(pq.code_size, 0);
        BitWriter w{qcode.data()};
        for (size_t m = 0; m < pq.M; m++) w.write(first_min(tab + m * pq.ksub, pq.ksub), pq.nbits);
    }
}

void IVFPQScanner::compute_residual(size_t list) {
    ix.quantizer->reconstruct(idx_t(list), centroid.data());
    for (size_t i = 0; i < pq.d; i++) resid[i] = q[i] - centroid[i];
}

const float* IVFPQScanner::precomputed_rows(size_t m) const {
    if (!miq) return ix.precomputed_table.data() + (list_no * pq.M + m) * pq.ksub;
    // type 2: field m lies in sub-quantizer m / rows's block, whose rows
    // depend on the list's sub-centroid there
    const size_t rows = pq.M / miq->pq.M, mq = m / rows;
    return ix.precomputed_table.data() +
           ((mq * miq->pq.ksub + miq->sub_cell(idx_t(list_no), mq)) * rows + (m - mq * rows)) * pq.ksub;
}

void IVFPQScanner::build_list_table() const {
    for (size_t m = 0; m < pq.M; m++) {
        const float* pt = precomputed_rows(m);
        const float* qm = qt + m * pq.ksub;
        float* lm = ltab.data() + m * pq.ksub;
        for (size_t i = 0; i < pq.ksub; i++) lm[i] = pt[i] - 2.f * qm[i];
    }
    tab = ltab.data();
    table_pending = false;
}

void IVFPQScanner::distances(size_t n, const uint8_t* codes, float* out) const {
    if (table_pending && n * 16 < pq.ksub) {
        // A few codes: each field's two table entries are read directly.
        const float* rows[64];
        const size_t M = pq.M;
        for (size_t m0 = 0; m0 < M; m0 += 64) {
            const size_t mb = std::min<size_t>(64, M - m0);
            for (size_t m = 0; m < mb; m++) rows[m] = precomputed_rows(m0 + m);
            for (size_t j = 0; j < n; j++) {
                const uint8_t* code = codes + j * pq.code_size;
                float s = m0 == 0 ? 0.f : out[j];
                for (size_t m = 0; m < mb; m++) {
                    const size_t c = pq.code_at(code, m0 + m);
                    s += rows[m][c] - 2.f * qt[(m0 + m) * pq.ksub + c];
                }
                out[j] = s;
            }
        }
    } else {
        if (table_pending) build_list_table();
        pq.adc(tab, codes, n, out);
    }
    if (dis0 != 0.f)
        for (size_t j = 0; j < n; j++) out[j] += dis0;
}

namespace {
constexpr size_t kFilterChunk = 256;
}  // namespace

void IVFPQScanner::filter(size_t n, const uint8_t* codes, const idx_t* ids, const IDSelector* sel) {
    const size_t cs = pq.code_size;
    hd.resize(n);
    hamming_ny_kernel()(qcode.data(), codes, cs, n, hd.data());
    kept.clear();
    for (size_t j = 0; j < n; j++)
        if (hd[j] < ht && (!sel || sel->is_member(ids[j]))) kept.push_back(uint32_t(j));
    kept_codes.resize(kept.size() * cs);
    for (size_t i = 0; i < kept.size(); i++) std::memcpy(&kept_codes[i * cs], codes + size_t(kept[i]) * cs, cs);
}

void IVFPQScanner::scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids,
                              bool labels_are_ids, bool ip_, const IDSelector* sel, float* D, idx_t* I, size_t k) {
    if (ht <= 0) return InvertedListScanner::scan_codes(size, codes, code_size, ids, labels_are_ids, ip_, sel, D, I, k);
    float buf[kFilterChunk];
    for (size_t j0 = 0; j0 < size; j0 += kFilterChunk) {
        const size_t m = std::min(kFilterChunk, size - j0);
        filter(m, codes + j0 * code_size, ids + j0, sel);
        distances(kept.size(), kept_codes.data(), buf);
        for (size_t i = 0; i < kept.size(); i++) {
            const float s = ip_ ? -buf[i] : buf[i];
            const size_t j = j0 + kept[i];
            if (s <= D[0]) TopK::push(D, I, k, s, labels_are_ids ? ids[j] : idx_t(j));
        }
    }
}

void IVFPQScanner::scan_range(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool ip_,
                              float radius, const IDSelector* sel, std::vector<std::pair<idx_t, float>>& hits) {
    if (ht <= 0) return InvertedListScanner::scan_range(size, codes, code_size, ids, ip_, radius, sel, hits);
    float buf[kFilterChunk];
    for (size_t j0 = 0; j0 < size; j0 += kFilterChunk) {
        const size_t m = std::min(kFilterChunk, size - j0);
        filter(m, codes + j0 * code_size, ids + j0, sel);
        distances(kept.size(), kept_codes.data(), buf);
        for (size_t i = 0; i < kept.size(); i++)
            if (ip_ ? buf[i] > radius : buf[i] < radius) hits.emplace_back(ids[j0 + kept[i]], buf[i]);
    }
}

std::unique_ptr<InvertedListScanner> IndexIVFPQ::get_scanner() const { return std::make_unique<IVFPQScanner>(*this); }

std::unique_ptr<IVFQueryBatch> IndexIVFPQ::prepare_queries(idx_t n, const float* x, const SearchParameters* params) const {
    auto batch = std::make_unique<IVFPQQueries>();
    batch->x = x;
    batch->n = size_t(n);
    batch->polysemous_ht = polysemous_ht;
    if (const auto* p = dynamic_cast<const SearchParametersIVFPQ*>(params)) batch->polysemous_ht = p->polysemous_ht;
    NEARLY_CHECK_ARG(batch->polysemous_ht >= 0, "polysemous_ht must be non-negative");
    if (batch->polysemous_ht > 0 && !has_polysemous_search())
        throw NotSupported(type_name() + ": no polysemous search (polysemous_ht must be 0)");
    return batch;
}

std::unique_ptr<InvertedListScanner> IndexIVFPQ::get_scanner_for(const QueryBatch* batch) const {
    std::unique_ptr<InvertedListScanner> sc = get_scanner();  // fast-scan's derives from IVFPQScanner
    auto& pqs = static_cast<IVFPQScanner&>(*sc);
    pqs.batch = dynamic_cast<const IVFPQQueries*>(batch);
    if (pqs.batch) pqs.ht = has_polysemous_search() ? pqs.batch->polysemous_ht : 0;
    return sc;
}

void IndexIVFPQ::write_encoder_state(Writer& w) const {
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.vec(pq.centroids);
}

void IndexIVFPQ::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.pod<uint8_t>(by_residual);
    w.pod<int32_t>(use_precomputed_table);
    w.pod<uint8_t>(pq_trained_);
    w.vec(pq.centroids);
    write_lists(w, 1);
    w.pod<int32_t>(polysemous_ht);
    w.pod<uint8_t>(do_polysemous_training);
}

std::unique_ptr<IndexIVFPQ> IndexIVFPQ::read_body(Reader& r) {
    std::unique_ptr<IndexIVFPQ> index;
    read_pq_body(r, "IVFPQ", [&](const Header& h, size_t M, size_t nbits) {
        index = std::make_unique<IndexIVFPQ>(h.quantizer, h.d, h.nlist, M, nbits, h.metric);
        return index.get();
    });
    return index;
}

void IndexIVFPQ::read_pq_body(Reader& r, const char* what,
                              const std::function<IndexIVFPQ*(const Header&, size_t, size_t)>& make) {
    Header h = read_header(r, what);
    const uint64_t M = r.pod<uint64_t>();
    const uint64_t nbits = r.pod<uint64_t>();
    const uint8_t by_residual = r.pod<uint8_t>();
    const int32_t upt = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(M > 0 && M <= uint64_t(h.d) && h.d % M == 0 && nbits >= 1 && nbits <= 16 && by_residual <= 1 &&
                upt >= -1 && upt <= 2 && trained <= 1,
            "bad IVFPQ header");
    r.check(trained || h.ntotal == 0, "IVFPQ codes without a trained PQ");
    // The codebook is read (its length checked against the file) before
    // the index allocates one of d x 2^nbits floats.
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == size_t(h.d) << nbits, "IVFPQ centroids do not match d and nbits");
    IndexIVFPQ* index = make(h, size_t(M), size_t(nbits));
    index->nprobe = h.nprobe;
    index->by_residual = by_residual;
    index->use_precomputed_table = upt;
    index->pq.centroids = std::move(centroids);
    index->pq.sync_transposed_centroids();
    index->pq_trained_ = trained;
    index->read_lists(r, 1, h.ntotal, what);
    if (r.version() >= 7) {  // files before hold no polysemous settings (0, false)
        const int32_t ht = r.pod<int32_t>();
        const uint8_t polysemous = r.pod<uint8_t>();
        r.check(ht >= 0 && polysemous <= 1, "bad IVFPQ polysemous settings");
        index->polysemous_ht = ht;
        index->do_polysemous_training = polysemous;
    }
    if (r.skip_precompute_tables)
        index->use_precomputed_table = 0;  // as faiss: decided again by precompute_table()
    else if (index->pq_trained_ && upt >= 1)
        index->precompute_table();
    index->refresh_trained();
}

}  // namespace nearly
