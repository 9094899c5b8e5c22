#include "nearly/ivf.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>

#include "nearly/extra_distances.h"
#include "nearly/idmap.h"
#include "nearly/io.h"
#include "nearly/multi_index_quantizer.h"
#include "nearly/parallel.h"
#include "nearly/random.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// Distances are computed this many list entries at a time (stack buffer).
constexpr size_t kScanChunk = 256;
// Queries per task at most: enough work to amortize a task, small enough to
// share a batch of queries over the pool (items_per_task).
constexpr size_t kQueriesPerTask = 8;
constexpr size_t kMaxPairResults = size_t(16) << 20;
// add() assigns and encodes this many vectors at a time: bounded memory, and
// Ctrl-C / verbose progress between blocks (faiss uses the same size).
constexpr size_t kAddBlock = 65536;

}  // namespace

void InvertedListScanner::scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids,
                                     bool labels_are_ids, bool ip, const IDSelector* sel, float* D, idx_t* I,
                                     size_t k) {
    float buf[kScanChunk];
    for (size_t j0 = 0; j0 < size; j0 += kScanChunk) {
        const size_t m = std::min(kScanChunk, size - j0);
        if (sel && codes_one_by_one) {
            // The selector first, once per code; a selective one has only
            // the codes it keeps scored (gathered), else all are scored.
            kept_.clear();
            for (size_t j = 0; j < m; j++)
                if (sel->is_member(ids[j0 + j])) kept_.push_back(uint32_t(j));
            const bool gather = kept_.size() * 2 <= m;
            if (gather) {
                gathered_.resize(kept_.size() * code_size);
                for (size_t i = 0; i < kept_.size(); i++)
                    std::memcpy(&gathered_[i * code_size], codes + (j0 + kept_[i]) * code_size, code_size);
                distances(kept_.size(), gathered_.data(), buf);
            } else {
                distances(m, codes + j0 * code_size, buf);
            }
            for (size_t i = 0; i < kept_.size(); i++) {
                const float v = buf[gather ? i : kept_[i]], s = ip ? -v : v;
                const size_t j = j0 + kept_[i];
                if (s <= D[0]) TopK::push(D, I, k, s, labels_are_ids ? ids[j] : idx_t(j));
            }
            continue;
        }
        distances(m, codes + j0 * code_size, buf);
        if (ip)
            for (size_t j = 0; j < m; j++) buf[j] = -buf[j];
        for (size_t j = 0; j < m; j++) {
            if (buf[j] > D[0] || (sel && !sel->is_member(ids[j0 + j]))) continue;
            TopK::push(D, I, k, buf[j], labels_are_ids ? ids[j0 + j] : idx_t(j0 + j));
        }
    }
}

void InvertedListScanner::scan_range(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool ip,
                                     float radius, const IDSelector* sel,
                                     std::vector<std::pair<idx_t, float>>& hits) {
    float buf[kScanChunk];
    for (size_t j0 = 0; j0 < size; j0 += kScanChunk) {
        const size_t m = std::min(kScanChunk, size - j0);
        distances(m, codes + j0 * code_size, buf);
        for (size_t j = 0; j < m; j++) {
            const idx_t id = ids[j0 + j];
            if ((ip ? buf[j] > radius : buf[j] < radius) && (!sel || sel->is_member(id))) hits.emplace_back(id, buf[j]);
        }
    }
}

IndexIVF::IndexIVF(IndexPtr quantizer_, int d, size_t nlist_, size_t code_size_, MetricType metric,
                   bool extra_metrics)
    : Index(d, metric, extra_metrics), quantizer(std::move(quantizer_)), nlist(nlist_), code_size(code_size_), lists_(nlist_) {
    NEARLY_CHECK_ARG(quantizer != nullptr, "IndexIVF: the quantizer is None");
    NEARLY_CHECK_ARG(quantizer->d == d, "IndexIVF: the quantizer's dimension " + std::to_string(quantizer->d) +
                                            " differs from d=" + std::to_string(d));
    NEARLY_CHECK_ARG(nlist_ > 0, "IndexIVF: nlist must be positive");
    if (const auto* miq = dynamic_cast<const MultiIndexQuantizer*>(quantizer.get())) {
        NEARLY_CHECK_ARG(miq->pq.M * miq->pq.nbits < 63 && nlist_ == size_t(1) << (miq->pq.M * miq->pq.nbits),
                         "IndexIVF: nlist must be the MultiIndexQuantizer's ksub^M = " +
                             std::to_string(size_t(1) << (miq->pq.M * miq->pq.nbits)) + " cells");
        // Its scores are L2 distances, which the inner-product scanners
        // would take for <q, c>.
        if (metric != METRIC_L2)
            throw NotSupported("IndexIVF: a MultiIndexQuantizer ranks lists by L2; the index must be METRIC_L2");
    }
    cp.niter = 10;
    cp.spherical = metric == METRIC_INNER_PRODUCT;
    // Families call refresh_trained() once their encoder exists.
    is_trained = false;
}

void IndexIVF::encode_each(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes,
                           const std::function<void(const float*, uint8_t*)>& encode_one) const {
    const size_t dd = d;
    constexpr size_t kBlock = 256;
    InterruptPoll poll;
    parallel_for((size_t(n) + kBlock - 1) / kBlock, [&](size_t t) {
        std::vector<float> r(dd);
        const size_t i0 = t * kBlock, i1 = std::min(size_t(n), i0 + kBlock);
        std::vector<float> centroids;
        if (by_residual) {
            centroids.resize((i1 - i0) * dd);
            centroids_of(i1 - i0, list_nos + i0, centroids.data());
        }
        for (size_t i = i0; i < i1; i++) {
            uint8_t* code = codes + i * code_size;
            const float* xi = x + i * dd;
            if (list_nos[i] < 0) {  // not stored (see add_core)
                std::memset(code, 0, code_size);
                continue;
            }
            if (by_residual) {
                const float* c = centroids.data() + (i - i0) * dd;
                for (size_t j = 0; j < dd; j++) r[j] = xi[j] - c[j];
                xi = r.data();
            }
            encode_one(xi, code);
        }
        poll();
    });
}

bool quantizer_places_lists(const Index& q, size_t nlist) {
    if (!q.is_trained || q.ntotal <= 0 || size_t(q.ntotal) > nlist) return false;
    const auto* m = dynamic_cast<const IndexIDMap*>(&q);
    if (!m) return size_t(q.ntotal) == nlist;
    // Its ids are the list numbers: they must name distinct lists, and a
    // quantizer holding only some lists must find their centroids by number
    // (for residuals), which only the reverse map does.
    if (size_t(q.ntotal) != nlist && !m->has_reverse_map()) return false;
    std::vector<bool> seen(nlist);
    for (const idx_t id : m->id_map) {
        if (id < 0 || size_t(id) >= nlist || seen[size_t(id)]) return false;
        seen[size_t(id)] = true;
    }
    return true;
}

void list_centroids(const Index& q, size_t nlist, size_t l0, size_t nl, float* out) {
    const size_t dd = size_t(q.d);
    const auto* m = dynamic_cast<const IndexIDMap*>(&q);
    if (size_t(q.ntotal) == nlist || !m) {
        q.reconstruct_n(idx_t(l0), idx_t(nl), out);
        return;
    }
    std::fill(out, out + nl * dd, 0.f);
    for (const idx_t id : m->id_map)
        if (id >= idx_t(l0) && id < idx_t(l0 + nl)) q.reconstruct(id, out + size_t(id - idx_t(l0)) * dd);
}

void IndexIVF::centroids_of(size_t n, const idx_t* list_nos, float* out) const {
    const size_t dd = d;
    for (size_t i = 0; i < n; i++) {
        if (list_nos[i] < 0)
            std::fill(out + i * dd, out + (i + 1) * dd, 0.f);
        else
            quantizer->reconstruct(list_nos[i], out + i * dd);
    }
}

namespace {
// The codes of one list (n entries laid out by from) laid out by to.
std::vector<uint8_t> relaid(const InvertedLists::List& list, const CodeLayout& from, const CodeLayout& to) {
    const size_t n = list.ids.size();
    std::vector<uint8_t> codes(to.bytes(n), 0), code(from.code_size);
    for (size_t j = 0; j < n; j++) {
        from.get(list.codes.data(), j, code.data());
        to.put(codes.data(), j, code.data());
    }
    return codes;
}

bool same_layout(const CodeLayout& a, const CodeLayout& b) {
    return a.block == b.block && a.run == b.run && a.levels == b.levels;
}
}  // namespace

void IndexIVF::copy_lists_from(const IndexIVF& other) {
    NEARLY_CHECK_ARG(other.nlist == nlist && other.code_size == code_size,
                     "copy_lists_from: the lists must have the same number and code size");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(ntotal == 0, "copy_lists_from: into an empty index");
    const CodeLayout from = other.layout(), to = layout();
    lists_.set_direct_map(false);
    // Lists in a file are copied one at a time (a list may move the file's mapping).
    auto copy = [&](size_t l) {
        const List& src = other.lists_[l];
        const std::vector<uint8_t> codes = relaid(src, from, to);
        lists_.assign(l, src.ids.data(), src.ids.size(), codes.data(), to);
    };
    if (lists_.file())
        for (size_t l = 0; l < nlist; l++) copy(l);
    else
        parallel_for(nlist, copy);
    ntotal = other.ntotal;
    nprobe = other.nprobe;
}

void IndexIVF::check_code_size(const CodeLayout& their_layout, const char* what) const {
    NEARLY_CHECK_ARG(their_layout.code_size == code_size,
                     std::string(what) + ": the lists' code_size must be the index's (" + std::to_string(code_size) +
                         ", got " + std::to_string(their_layout.code_size) + ")");
}

void IndexIVF::recount_lists(bool direct_map) {
    ntotal = 0;
    for (size_t l = 0; l < nlist; l++) ntotal += idx_t(lists_[l].ids.size());
    lists_.set_direct_map(direct_map);
}

void IndexIVF::replace_lists(InvertedLists&& lists, const CodeLayout& their_layout) {
    check_writable();
    NEARLY_CHECK_ARG(lists.nlist() == nlist, "replace_invlists: the lists must be nlist = " + std::to_string(nlist) +
                                                 " (got " + std::to_string(lists.nlist()) + ")");
    check_code_size(their_layout, "replace_invlists");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    const bool dm = lists_.has_direct_map();
    lists_ = std::move(lists);
    lists_.set_direct_map(false);
    if (!same_layout(their_layout, lay)) {  // entries re-laid into this family's layout
        for (size_t l = 0; l < nlist; l++) {
            const List& list = lists_[l];
            if (list.ids.empty()) continue;
            const std::vector<uint8_t> codes = relaid(list, their_layout, lay);
            const std::vector<idx_t> ids(list.ids.begin(), list.ids.end());
            lists_.assign(l, ids.data(), ids.size(), codes.data(), lay);
        }
    }
    recount_lists(dm);
}

void IndexIVF::permute_lists(const idx_t* perm) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.permute(perm);
    permute_list_state(perm);
    rebuild_centroid_state();
}

void IndexIVF::replace_list_range(size_t l0, const InvertedLists& lists, const CodeLayout& their_layout) {
    check_writable();
    NEARLY_CHECK_ARG(l0 <= nlist && lists.nlist() <= nlist - l0,
                     "set_invlist_range: lists [" + std::to_string(l0) + ", " + std::to_string(l0 + lists.nlist()) +
                         ") out of the index's [0, " + std::to_string(nlist) + ")");
    check_code_size(their_layout, "set_invlist_range");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    const bool dm = lists_.has_direct_map();
    lists_.set_direct_map(false);  // rebuilt once at the end, not per list
    for (size_t i = 0; i < lists.nlist(); i++) {
        const List& list = lists[i];
        if (same_layout(their_layout, lay)) {
            lists_.assign(l0 + i, list.ids.data(), list.ids.size(), list.codes.data(), lay);
        } else {
            const std::vector<uint8_t> codes = relaid(list, their_layout, lay);
            lists_.assign(l0 + i, list.ids.data(), list.ids.size(), codes.data(), lay);
        }
    }
    recount_lists(dm);
}

void IndexIVF::refresh_trained() {
    is_trained = quantizer_places_lists(*quantizer, nlist) && encoder_trained();
}

void IndexIVF::assume_encoder_trained() {
    NEARLY_CHECK_ARG(encoder_trained(), type_name() + ": is_trained = True needs a trained encoder: call train()");
}

void IndexIVF::set_trained(bool trained) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (!trained) {
        is_trained = false;
        return;
    }
    NEARLY_CHECK_ARG(quantizer_places_lists(*quantizer, nlist),
                     "is_trained = True needs a trained quantizer holding nlist = " + std::to_string(nlist) +
                         " centroids; it holds " + std::to_string(quantizer->ntotal) +
                         " (a shard's IndexIDMap2 quantizer may hold fewer, under distinct list numbers)");
    assume_encoder_trained();
    is_trained = true;
}

void IndexIVF::set_metric_type(MetricType m) {
    if (m == metric_type) return;
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (!metric_settable())
        throw NotSupported(type_name() + ": metric_type is fixed when the index is built in nearly; build it with "
                                         "metric " + std::to_string(int(m)));
    NEARLY_CHECK_ARG(m == METRIC_L2 || m == METRIC_INNER_PRODUCT,
                     type_name() + ": metric_type can be set to METRIC_L2 or METRIC_INNER_PRODUCT; pass other metrics "
                                   "to the constructor");
    if (is_trained || ntotal > 0)
        throw NotSupported(type_name() + ": metric_type can only change before train() (the trained state and the "
                                         "codes follow the metric)");
    metric_type = m;
}

void IndexIVF::set_clustering_index(IndexPtr index) {
    NEARLY_CHECK_ARG(!index || index->d == d, "clustering_index has d=" + std::to_string(index ? index->d : 0) +
                                                  ", the IVF index d=" + std::to_string(d));
    NEARLY_CHECK_ARG(index.get() != this, "an IVF index cannot be its own clustering_index");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    clustering_index_ = std::move(index);
}

void IndexIVF::set_quantizer(IndexPtr q) {
    check_writable();
    NEARLY_CHECK_ARG(q != nullptr, "the quantizer cannot be None");
    NEARLY_CHECK_ARG(q->d == d, "the quantizer has d=" + std::to_string(q->d) + ", the IVF index d=" +
                                    std::to_string(d));
    NEARLY_CHECK_ARG(q.get() != this, "an IVF index cannot be its own quantizer");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (q == quantizer) return;
    if (is_trained)
        NEARLY_CHECK_ARG(quantizer_places_lists(*q, nlist),
                         "the index is trained: its new quantizer must be trained and hold nlist = " +
                             std::to_string(nlist) + " centroids, or be an IndexIDMap2 whose ids are distinct list "
                             "numbers (it holds " + std::to_string(q->ntotal) + ")");
    if (ntotal > 0 && codes_depend_on_centroids()) {
        // The stored codes are relative to the old centroids: the new
        // quantizer must reconstruct the same ones for every list that holds
        // entries (a shard's quantizer holds only its own lists).
        std::vector<float> a(size_t(nlist) * size_t(d)), b(a.size());
        try {
            list_centroids(*quantizer, nlist, 0, nlist, a.data());
            list_centroids(*q, nlist, 0, nlist, b.data());
        } catch (const std::exception& e) {
            throw NotSupported(std::string("the index holds codes stored relative to its centroids (by residual, "
                                           "or thresholds at them), so its new quantizer must hold the same "
                                           "centroids, which could not be compared: ") + e.what());
        }
        double worst = 0, scale = 0;
        for (size_t l = 0; l < nlist; l++) {
            if (lists_[l].ids.empty()) continue;
            for (size_t j = l * size_t(d); j < (l + 1) * size_t(d); j++) {
                worst = std::max(worst, double(std::fabs(a[j] - b[j])));
                scale = std::max(scale, double(std::fabs(a[j])));
            }
        }
        NEARLY_CHECK_ARG(worst <= 1e-6 * std::max(scale, 1.0),
                         "the index holds codes stored relative to its centroids (by residual, or thresholds at "
                         "them); the new quantizer's centroids differ (by up to " + std::to_string(worst) +
                             "): set the quantizer before adding, or reset() the index");
    }
    quantizer = std::move(q);
    rebuild_centroid_state();
}

IndexPtr IndexIVF::get_quantizer() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return quantizer;
}

IndexPtr IndexIVF::get_clustering_index() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return clustering_index_;
}

void IndexIVF::train(idx_t n, const float* x) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (verbose) std::printf("Training level-1 quantizer\n");
    if (quantizer_places_lists(*quantizer, nlist)) {
        if (verbose) std::printf("IVF quantizer does not need training.\n");
    } else if (quantizer_trains_alone == 1 || quantizer->trains_alone()) {
        if (verbose) std::printf("IVF quantizer trains alone...\n");
        quantizer->verbose = verbose;
        quantizer->train(n, x);
        if (size_t(quantizer->ntotal) != nlist)
            throw InvalidArgument("IndexIVF: the quantizer trained alone holds " + std::to_string(quantizer->ntotal) +
                                  " centroids, not nlist = " + std::to_string(nlist));
    } else {
        if (verbose) std::printf("Training level-1 quantizer on %lld vectors in %dD\n", (long long)n, d);
        Clustering clus(d, int(nlist), cp);
        // faiss clusters with the quantizer's search: its metric decides the
        // assignment (means stay means); an extra metric's argument is the
        // IVF index's, the quantizer takes it too.
        if (quantizer->metric_type == metric_type) quantizer->metric_arg = metric_arg;
        if (const IndexPtr ci = clustering_index_) {
            IndexAssignStep step(*ci);
            clus.train(n, x, ci->metric_type, &step, ci->metric_arg);
        } else {
            clus.train(n, x, quantizer->metric_type, nullptr, quantizer->metric_arg);
        }
        quantizer->reset();
        quantizer->train(idx_t(nlist), clus.centroids.data());
        quantizer->add(idx_t(nlist), clus.centroids.data());
    }
    train_encoder_locked(n, x, nullptr);
    std::fflush(stdout);
    refresh_trained();
}

void IndexIVF::train_encoder_with_assignment(idx_t n, const float* x, const idx_t* assign) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0 && x, "train_encoder_with_assignment: n vectors expected");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(quantizer_places_lists(*quantizer, nlist),
                     "train_encoder_with_assignment: the quantizer must hold the nlist centroids first");
    check_assign(n, 1, assign, "train_encoder_with_assignment");
    train_encoder_locked(n, x, assign);
    refresh_trained();
}

void IndexIVF::train_encoder_locked(idx_t n, const float* x, const idx_t* given_assign) {
    const idx_t max_nt = train_encoder_num_vectors();
    if (max_nt > 0) {
        if (verbose) std::printf("Training IVF residual\n");
        check_finite(x, size_t(n) * d, "training data");
        // faiss's fvecs_maybe_subsample: the first max_nt of a permutation
        // seeded 1234, so both libraries train the encoder on the same points.
        const size_t dd = d;
        std::vector<float> sample;
        const float* xt = x;
        size_t nt = size_t(n);
        std::vector<idx_t> assign;
        if (nt > size_t(max_nt)) {
            if (verbose)
                std::printf("  Input training set too big (max size is %lld), sampling %lld / %zu vectors\n",
                            (long long)max_nt, (long long)max_nt, nt);
            std::vector<int> perm(nt);
            rand_perm(perm.data(), nt, 1234);
            nt = size_t(max_nt);
            sample.resize(nt * dd);
            for (size_t i = 0; i < nt; i++)
                std::copy(x + size_t(perm[i]) * dd, x + size_t(perm[i] + 1) * dd, &sample[i * dd]);
            xt = sample.data();
            if (given_assign)
                for (size_t i = 0; i < nt; i++) assign.push_back(given_assign[perm[i]]);
        } else if (given_assign) {
            assign.assign(given_assign, given_assign + nt);
        }
        if (!given_assign) {
            assign.resize(nt);
            std::vector<float> dis(nt);
            quantizer->search(idx_t(nt), xt, 1, dis.data(), assign.data());
        }
        std::vector<float> residuals;
        if (by_residual) {
            residuals.resize(nt * dd);
            centroids_of(nt, assign.data(), residuals.data());
            for (size_t i = 0; i < nt * dd; i++) residuals[i] = xt[i] - residuals[i];
            xt = residuals.data();
        }
        train_encoder(idx_t(nt), xt, assign.data());
    }
}

void IndexIVF::add(idx_t n, const float* x) { add_core(n, x, nullptr); }

void IndexIVF::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_core(n, x, ids); }

void IndexIVF::add_core(idx_t n, const float* x, const idx_t* ids, const idx_t* list_nos) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: the IVF index must be trained before adding");
    check_add_args(n, x);
    if (n == 0) return;
    if (list_nos)
        for (idx_t i = 0; i < n; i++)
            NEARLY_CHECK_ARG(list_nos[i] >= -1 && list_nos[i] < idx_t(nlist),
                             "add_core: list number " + std::to_string(list_nos[i]) + " of vector " +
                                 std::to_string(i) + " is outside [-1, nlist = " + std::to_string(nlist) + ")");
    InterruptPoll poll;
    const size_t dd = d;
    size_t added = 0;
    std::vector<float> dis;
    std::vector<idx_t> list_of;
    std::vector<uint8_t> codes;
    for (size_t i0 = 0; i0 < size_t(n); i0 += kAddBlock) {
        const size_t m = std::min(kAddBlock, size_t(n) - i0);
        const float* xb = x + i0 * dd;
        // Assign and encode outside the lock: searches go on meanwhile.
        dis.resize(m);
        list_of.resize(m);
        codes.resize(m * code_size);
        if (list_nos)
            std::copy(list_nos + i0, list_nos + i0 + m, list_of.begin());
        else
            quantizer->search(idx_t(m), xb, 1, dis.data(), list_of.data());
        encode_vectors(idx_t(m), xb, list_of.data(), codes.data());
        poll();
        std::unique_lock<SharedMutex> lk(rw_mutex_);
        added += store_entries(m, list_of.data(), codes.data(), code_size, ids ? ids + i0 : nullptr, ntotal);
        ntotal += idx_t(m);
        if (verbose && size_t(n) > kAddBlock)
            std::printf("  add: %zu / %lld vectors\n", i0 + m, (long long)n);
    }
    if (verbose) std::printf("Index%s::add_core: added %zu / %lld vectors\n", type_name().c_str(), added, (long long)n);
}

void IndexIVF::update_vectors(idx_t n, const idx_t* ids, const float* x) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: the IVF index must be trained");
    check_add_args(n, x);
    if (!has_direct_map())
        throw NotSupported("update_vectors needs a direct map: call make_direct_map() first (faiss's rule)");
    std::vector<idx_t> sorted(ids, ids + n);
    std::sort(sorted.begin(), sorted.end());
    NEARLY_CHECK_ARG(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                     "update_vectors: an id appears twice");
    // Assign and encode outside the lock, as add does.
    std::vector<float> dis(static_cast<size_t>(n));
    std::vector<idx_t> list_of(static_cast<size_t>(n));
    std::vector<uint8_t> codes(size_t(n) * code_size);
    quantizer->search(n, x, 1, dis.data(), list_of.data());
    encode_vectors(n, x, list_of.data(), codes.data());
    for (idx_t i = 0; i < n; i++)
        if (list_of[i] < 0 || size_t(list_of[i]) >= nlist)
            throw NotSupported("update_vectors: the quantizer could not place vector " + std::to_string(i));
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    for (idx_t i = 0; i < n; i++) lists_.locate(ids[i]);  // every id is stored (raises otherwise)
    IDSelectorArray sel(sorted);
    const CodeLayout lay = layout();
    lists_.remove(sel, lay);
    for (idx_t i = 0; i < n; i++) lists_.append(size_t(list_of[i]), &codes[size_t(i) * code_size], lay, ids[i]);
}

void IndexIVF::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    const std::vector<size_t> list_of = lists_of_sa_codes(size_t(n), codes, "add_sa_codes");
    append_codes(size_t(n), list_of.data(), codes + coarse_code_size(), sa_code_size(), ids);
}

void IndexIVF::append_codes(size_t n, const size_t* list_of, const uint8_t* codes, size_t stride, const idx_t* ids) {
    const std::vector<idx_t> lists(list_of, list_of + n);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    store_entries(n, lists.data(), codes, stride, ids, ntotal);
    ntotal += idx_t(n);
}

size_t IndexIVF::store_entries(size_t n, const idx_t* list_of, const uint8_t* codes, size_t stride, const idx_t* ids,
                               idx_t first_id) {
    const CodeLayout lay = layout();
    // In-memory lists without a direct map: each thread appends to its own
    // lists (l % tasks), every list in entry order, as faiss's add does. The
    // copies are as much of a Flat add as the assignment.
    const size_t tasks = 4 * size_t(get_num_threads());
    if (n >= 4096 && tasks > 4 && !in_parallel_region() && !lists_.file() && !lists_.has_direct_map()) {
        std::vector<size_t> stored_by(tasks, 0);
        parallel_for(tasks, [&](size_t t) {
            for (size_t i = 0; i < n; i++) {
                const idx_t l = list_of[i];
                if (l < 0 || size_t(l) >= nlist || size_t(l) % tasks != t) continue;
                lists_.append(size_t(l), codes + i * stride, lay, ids ? ids[i] : first_id + idx_t(i));
                stored_by[t]++;
            }
        });
        size_t stored = 0;
        for (size_t s : stored_by) stored += s;
        return stored;
    }
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        const idx_t l = list_of[i];
        if (l < 0 || size_t(l) >= nlist) continue;  // faiss skips vectors the quantizer cannot place
        lists_.append(size_t(l), codes + i * stride, lay, ids ? ids[i] : first_id + idx_t(i));
        stored++;
    }
    return stored;
}

void IndexIVF::put_list_number(uint8_t* b, size_t list_no) const {
    for (size_t c = 0, cc = coarse_code_size(); c < cc; c++) b[c] = uint8_t(uint64_t(list_no) >> (8 * c));
}

void IndexIVF::add_entries(size_t list_no, size_t n, const uint8_t* codes, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    const std::vector<idx_t> lists(n, idx_t(list_no));
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    store_entries(n, lists.data(), codes, code_size, ids, ntotal);
    ntotal += idx_t(n);
}

IndexIVFStats indexIVF_stats;

namespace {
std::mutex ivf_stats_mutex;
double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

void IndexIVFStats::add(const IndexIVFStats& o) {
    nq += o.nq;
    nlist += o.nlist;
    ndis += o.ndis;
    nheap_updates += o.nheap_updates;
    quantization_time += o.quantization_time;
    search_time += o.search_time;
}

void record_ivf_stats(const IndexIVFStats& s) {
    std::lock_guard<std::mutex> lk(ivf_stats_mutex);
    indexIVF_stats.add(s);
}

// The lists n queries probe (np each; -1: none): how many are non-empty and
// how many codes they hold. The caller holds the lists' lock.
IndexIVFStats IndexIVF::probe_stats(idx_t n, size_t np, const idx_t* coarse) const {
    IndexIVFStats st;
    st.nq = size_t(n);
    for (size_t i = 0; i < size_t(n) * np; i++) {
        if (coarse[i] < 0 || coarse[i] >= idx_t(nlist)) continue;
        const size_t size = searched_size(lists_[size_t(coarse[i])].ids.size());
        st.nlist += size > 0;
        st.ndis += size;
    }
    return st;
}

// The codes of the distinct lists probed. probe_stats' ndis over this is
// how often each code is scored: where lists are unequal (a few big ones
// that many queries probe) the codes are reused by many queries although
// the probes per list are few on average, and the list-by-list scan, which
// loads a list once for all its queries, is the faster one.
size_t IndexIVF::distinct_codes(idx_t n, size_t np, const idx_t* coarse) const {
    std::vector<uint8_t> seen(nlist, 0);
    size_t codes = 0;
    for (size_t i = 0; i < size_t(n) * np; i++) {
        const idx_t l = coarse[i];
        if (l < 0 || l >= idx_t(nlist) || seen[size_t(l)]) continue;
        seen[size_t(l)] = 1;
        codes += searched_size(lists_[size_t(l)].ids.size());
    }
    return codes;
}

void IndexIVF::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    search_sorted_or_not(n, x, k, D, I, params, true);
}

void IndexIVF::search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                const SearchParameters* params) const {
    search_sorted_or_not(n, x, k, D, I, params, false);
}

void IndexIVF::search_sorted_or_not(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                    const SearchParameters* params, bool sorted) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    size_t np = effective_nprobe(params);
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params); p && p->max_lists_num > 0)
        np = std::min(np, p->ensure_topk_full ? std::max(p->max_lists_num, size_t(k)) : p->max_lists_num);
    if (n == 0) return;

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> coarse_dis(size_t(n) * np);
    std::vector<idx_t> coarse(size_t(n) * np);
    quantizer->search(n, x, idx_t(np), coarse_dis.data(), coarse.data(), quantizer_params_of(params));
    IndexIVFStats times;
    times.quantization_time = ms_since(t0);

    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_lists(n, x, k, np, coarse.data(), coarse_dis.data(), params, D, I, sorted);
    times.search_time = ms_since(t0);
    record_ivf_stats(times);
}

void IndexIVF::check_assign(idx_t n, size_t np, const idx_t* assign, const char* what) const {
    NEARLY_CHECK_ARG(np >= 1, std::string(what) + ": at least one list per query");
    for (size_t i = 0; i < size_t(n) * np; i++)
        if (assign[i] < -1 || assign[i] >= idx_t(nlist))
            throw InvalidArgument(std::string(what) + ": list " + std::to_string(assign[i]) + " of an index with " +
                                  std::to_string(nlist) + " lists");
}

// The quantizer's own scores of the given centroids.
void IndexIVF::coarse_scores(idx_t n, const float* x, size_t np, const idx_t* assign, float* dis) const {
    std::fill(dis, dis + size_t(n) * np, 0.f);
    std::vector<float> c(d);
    const SimdKernels& K = simd();
    for (size_t i = 0; i < size_t(n) * np; i++) {
        if (assign[i] < 0) continue;
        quantizer->reconstruct(assign[i], c.data());
        const float* xq = x + i / np * size_t(d);
        if (metric_type == METRIC_L2)
            dis[i] = K.l2sqr(xq, c.data(), d);
        else if (metric_type == METRIC_INNER_PRODUCT)
            dis[i] = K.inner_product(xq, c.data(), d);
        else
            extra_distances_ny(metric_type, metric_arg, xq, c.data(), d, 1, &dis[i]);
    }
}

void IndexIVF::search_preassigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* assign,
                                  const float* centroid_dis, float* D, idx_t* I,
                                  const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    check_assign(n, np, assign, "search_preassigned");
    if (n == 0) return;
    std::vector<float> dis;
    if (!centroid_dis) {
        dis.resize(size_t(n) * np);
        coarse_scores(n, x, np, assign, dis.data());
        centroid_dis = dis.data();
    }
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_lists(n, x, k, np, assign, centroid_dis, params, D, I, true);
}

void IndexIVF::search_lists(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                            const float* coarse_dis, const SearchParameters* params, float* D, idx_t* I,
                            bool sorted) const {
    const IDSelector* search_sel = params ? params->sel.get() : nullptr;
    const std::unique_ptr<IDSelector> entry_sel = entry_selector(search_sel);
    const IDSelector* sel = entry_sel ? entry_sel.get() : search_sel;
    const CodeBudget budget = code_budget(params, size_t(k));
    if (budget.max_codes > 0) {
        // Each query stops on its own count: query by query, which counts
        // what it scanned in indexIVF_stats.
        const std::unique_ptr<QueryBatch> batch = prepare_queries(n, x, params);
        search_by_query(n, x, k, np, coarse, coarse_dis, sel, D, I, batch.get(), budget);
        finish_search(n, k, D, I, search_sel);
        return;
    }
    const IndexIVFStats probed = probe_stats(n, np, coarse);
    const size_t mq = min_queries_per_list();
    if (search_assigned(n, x, k, np, coarse, coarse_dis, sel, D, I, sorted)) {
        // the family's own scan (fast-scan)
    } else if (mq > 0 && (size_t(n) * np >= mq * std::min(nlist, size_t(n) * np) ||
                          // a code is scored at most n times: fewer queries
                          // never reuse it mq times (no count for them)
                          (size_t(n) >= mq && probed.ndis >= mq * distinct_codes(n, np, coarse)))) {
        // Per-pair partial results take n * nprobe * k slots: big batches go
        // in slices so that stays bounded (about 200 MB).
        const size_t per_slice = std::max<size_t>(1, kMaxPairResults / (np * size_t(k)));
        for (size_t q0 = 0; q0 < size_t(n); q0 += per_slice) {
            const size_t m = std::min(per_slice, size_t(n) - q0);
            search_by_list(idx_t(m), x + q0 * d, k, np, coarse + q0 * np, coarse_dis + q0 * np, sel, D + q0 * k,
                           I + q0 * k);
        }
    } else {
        const std::unique_ptr<QueryBatch> batch = prepare_queries(n, x, params);
        search_by_query(n, x, k, np, coarse, coarse_dis, sel, D, I, batch.get(), CodeBudget());
    }
    finish_search(n, k, D, I, search_sel);
    record_ivf_stats(probed);  // searches that completed
}

IndexIVF::CodeBudget IndexIVF::code_budget(const SearchParameters* params, size_t k) const {
    CodeBudget b;
    b.max_codes = max_codes;
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) {
        b.max_codes = p->max_codes;
        // faiss: the budget becomes at least k codes that pass the
        // selector, and lists are scanned whole
        if (p->ensure_topk_full && b.max_codes > 0) {
            b.max_codes = std::max(b.max_codes, k);
            b.whole_lists = true;
        }
    }
    return b;
}

// Few queries per list: each query walks its lists with its own scanner,
// scores straight into its heap.
void IndexIVF::search_by_query(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                               const float* coarse_dis, const IDSelector* sel, float* D, idx_t* I,
                               const QueryBatch* batch, CodeBudget budget) const {
    const size_t dd = d, kk = k;
    const bool ip = is_similarity_metric(metric_type);
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    std::mutex stats_mutex;
    IndexIVFStats scanned;  // with a budget: what was scanned, as faiss counts it
    scanned.nq = size_t(n);
    const CodeLayout lay = layout();
    const size_t per_task = items_per_task(size_t(n), kQueriesPerTask);
    parallel_for((n + per_task - 1) / per_task, [&](size_t t) {
        std::unique_ptr<InvertedListScanner> sc = get_scanner_for(batch);
        sc->codes_one_by_one = code_block == 1;
        size_t task_lists = 0, task_codes = 0;
        for (size_t q = t * per_task; q < std::min(size_t(n), (t + 1) * per_task); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);  // scores: a distance, or a negated similarity
            sc->set_query(x + q * dd);
            size_t nscan = 0;
            for (size_t p = 0; p < np; p++) {
                const idx_t l = coarse[q * np + p];
                if (l < 0) continue;
                const List& list = lists_[l];
                const ListSpan span = list_span(list, sel);
                if (span.j1 <= span.j0) continue;
                const idx_t* ids = list.ids.data() + span.j0;
                size_t size = span.j1 - span.j0;
                if (budget.max_codes > 0) {
                    // a prefix of the list within the budget; the codes
                    // that pass the selector count against it
                    if (!budget.whole_lists) size = std::min(size, budget.max_codes - nscan);
                    size_t counted = size;
                    if (span.sel) {
                        counted = 0;
                        for (size_t j = 0; j < size; j++) counted += span.sel->is_member(ids[j]);
                    }
                    nscan += counted;
                    task_lists++;
                }
                // The next list's first codes and ids start coming from
                // memory while this one is scanned (a jump the hardware
                // prefetcher cannot guess).
                if (p + 1 < np && coarse[q * np + p + 1] >= 0) {
                    const List& next = lists_[coarse[q * np + p + 1]];
                    for (size_t b = 0; b < std::min<size_t>(next.codes.size(), 8192); b += 64)
                        __builtin_prefetch(next.codes.data() + b);
                    const char* ids_bytes = reinterpret_cast<const char*>(next.ids.data());
                    for (size_t b = 0; b < std::min<size_t>(next.ids.size() * sizeof(idx_t), 2048); b += 64)
                        __builtin_prefetch(ids_bytes + b);
                }
                sc->set_list(size_t(l), coarse_dis[q * np + p]);
                sc->scan_codes(size, list.codes.data() + lay.offset(span.j0), code_size, ids, true, ip, span.sel, Dq,
                               Iq, kk);
                if (budget.max_codes > 0 && nscan >= budget.max_codes) break;
            }
            task_codes += nscan;
            sc->finish_query(Dq, Iq, kk);
            TopK::finish(Dq, Iq, kk, ip, pad);
            poll();
        }
        if (budget.max_codes > 0) {
            std::lock_guard<std::mutex> lk(stats_mutex);
            scanned.nlist += task_lists;
            scanned.ndis += task_codes;
        }
    });
    if (budget.max_codes > 0) record_ivf_stats(scanned);
}

// The generic list-batch scan: one query after the other with a scanner.
void IndexIVF::scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq,
                               const float* xq, const float* coarse_dis, size_t k, const IDSelector* sel, float* dis,
                               idx_t* pos) const {
    const bool ip = is_similarity_metric(metric_type);
    std::unique_ptr<InvertedListScanner> sc = get_scanner();
    sc->codes_one_by_one = code_block == 1;
    for (size_t i = 0; i < nq; i++) {
        float* Dq = dis + i * k;
        idx_t* Iq = pos + i * k;
        TopK::init(Dq, Iq, k);
        sc->set_query(xq + i * size_t(d));
        sc->set_list(l, coarse_dis[i]);
        sc->scan_codes(size, codes, code_size, ids, false, ip, sel, Dq, Iq, k);
        sc->finish_query(Dq, Iq, k);
        TopK::sort(Dq, Iq, k);
        if (ip)
            for (size_t j = 0; j < k; j++) Dq[j] = -Dq[j];
    }
}

// Many queries per list: the queries probing a list are gathered and scanned
// against it together (the family's scan_list_batch: Flat uses the blocked
// GEMM engine), one list per task; each (query, probe) pair gets its own k
// best, merged per query at the end. Turns the scan from memory-bound into
// compute-bound.
void IndexIVF::search_by_list(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                              const float* coarse_dis, const IDSelector* sel, float* D, idx_t* I) const {
    const size_t dd = d, kk = k, npairs = size_t(n) * np;
    // Pairs bucketed by list.
    std::vector<size_t> start(nlist + 1, 0);
    for (size_t i = 0; i < npairs; i++)
        if (coarse[i] >= 0) start[coarse[i] + 1]++;
    for (size_t l = 0; l < nlist; l++) start[l + 1] += start[l];
    std::vector<size_t> pairs(start[nlist]), fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < npairs; i++)
        if (coarse[i] >= 0) pairs[fill[coarse[i]]++] = i;
    // Lists with work, biggest first, so the pool ends evenly.
    std::vector<size_t> order;
    for (size_t l = 0; l < nlist; l++)
        if (start[l + 1] > start[l] && !lists_[l].ids.empty()) order.push_back(l);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return (start[a + 1] - start[a]) * lists_[a].ids.size() > (start[b + 1] - start[b]) * lists_[b].ids.size();
    });

    std::vector<float> pD(npairs * kk);
    std::vector<idx_t> pI(npairs * kk, -1);
    const CodeLayout lay = layout();
    InterruptPoll poll;
    parallel_for(order.size(), [&](size_t t) {
        const size_t l = order[t];
        const List& list = lists_[l];
        const size_t nq = start[l + 1] - start[l];
        std::vector<float> xq(nq * dd), dis(nq * kk), cdis(nq);
        std::vector<idx_t> pos(nq * kk);
        for (size_t i = 0; i < nq; i++) {
            const size_t pair = pairs[start[l] + i];
            const float* src = x + (pair / np) * dd;
            std::copy(src, src + dd, &xq[i * dd]);
            cdis[i] = coarse_dis[pair];
        }
        const ListSpan span = list_span(list, sel);
        const idx_t* ids = list.ids.data() + span.j0;
        if (span.j1 > span.j0)
            scan_list_batch(l, list.codes.data() + lay.offset(span.j0), ids, span.j1 - span.j0, nq, xq.data(),
                            cdis.data(), kk, span.sel, dis.data(), pos.data());
        else
            std::fill(pos.begin(), pos.end(), idx_t(-1));
        for (size_t i = 0; i < nq; i++) {
            const size_t pair = pairs[start[l] + i];
            for (size_t j = 0; j < kk; j++) {
                const idx_t p = pos[i * kk + j];
                pD[pair * kk + j] = dis[i * kk + j];
                pI[pair * kk + j] = p < 0 ? -1 : ids[p];
            }
        }
        poll();
    });

    const bool ip = is_similarity_metric(metric_type);
    const float pad = missing_distance(metric_type);
    parallel_for((n + 63) / 64, [&](size_t t) {
        for (size_t q = t * 64; q < std::min(size_t(n), t * 64 + 64); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            for (size_t c = q * np * kk; c < (q + 1) * np * kk; c++)
                if (pI[c] >= 0) TopK::push(Dq, Iq, kk, ip ? -pD[c] : pD[c], pI[c]);
            TopK::finish(Dq, Iq, kk, ip, pad);
        }
    });
}

const SearchParameters* quantizer_params_of(const SearchParameters* params) {
    auto* ivf = dynamic_cast<const SearchParametersIVF*>(params);
    return ivf ? ivf->quantizer_params.get() : nullptr;
}

size_t IndexIVF::effective_nprobe(const SearchParameters* params) const {
    size_t np = nprobe;
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) np = p->nprobe;
    NEARLY_CHECK_ARG(np > 0, "nprobe must be positive");
    return std::min(np, nlist);  // faiss clips too
}

void IndexIVF::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                            const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    const size_t np = effective_nprobe(params);
    std::vector<float> coarse_dis(size_t(n) * np);
    std::vector<idx_t> coarse(size_t(n) * np);
    if (n > 0) quantizer->search(n, x, idx_t(np), coarse_dis.data(), coarse.data(), quantizer_params_of(params));
    range_search_lists(n, x, radius, np, coarse.data(), coarse_dis.data(), result, params);
}

void IndexIVF::range_search_preassigned(idx_t n, const float* x, float radius, size_t np, const idx_t* assign,
                                        const float* centroid_dis, RangeSearchResult& result,
                                        const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    check_assign(n, np, assign, "range_search_preassigned");
    std::vector<float> dis;
    if (!centroid_dis) {
        dis.resize(size_t(n) * np);
        coarse_scores(n, x, np, assign, dis.data());
        centroid_dis = dis.data();
    }
    range_search_lists(n, x, radius, np, assign, centroid_dis, result, params);
}

void IndexIVF::range_search_lists(idx_t n, const float* x, float radius, size_t np, const idx_t* coarse,
                                  const float* coarse_dis, RangeSearchResult& result,
                                  const SearchParameters* params) const {
    const IDSelector* search_sel = params ? params->sel.get() : nullptr;
    const auto* ivf_params = dynamic_cast<const SearchParametersIVF*>(params);
    const size_t max_empty = ivf_params ? ivf_params->max_empty_result_buckets : 0;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const std::unique_ptr<IDSelector> entry_sel = entry_selector(search_sel);
    const IDSelector* sel = entry_sel ? entry_sel.get() : search_sel;
    const size_t dd = d;
    const bool ip = is_similarity_metric(metric_type);
    const CodeLayout lay = layout();
    std::vector<std::vector<std::pair<idx_t, float>>> hits(n);
    // The lists each query visited (an early stop skips the rest), counted
    // as probe_stats counts them: non-empty lists and their codes.
    std::vector<size_t> visited_lists(n, 0), visited_codes(n, 0);
    InterruptPoll poll;
    const std::unique_ptr<QueryBatch> batch = prepare_queries(n, x, params);
    const size_t per_task = items_per_task(size_t(n), kQueriesPerTask);
    parallel_for((n + per_task - 1) / per_task, [&](size_t t) {
        std::unique_ptr<InvertedListScanner> sc = get_scanner_for(batch.get());
        for (size_t q = t * per_task; q < std::min(size_t(n), (t + 1) * per_task); q++) {
            sc->set_query(x + q * dd);
            size_t empty_run = 0;  // lists in a row that added no hit
            for (size_t p = 0; p < np; p++) {
                const idx_t l = coarse[q * np + p];
                if (l < 0 || l >= idx_t(nlist)) continue;
                if (max_empty > 0 && empty_run >= max_empty) break;
                const size_t before = hits[q].size();
                empty_run++;
                const List& list = lists_[l];
                const size_t size = searched_size(list.ids.size());
                visited_lists[q] += size > 0;
                visited_codes[q] += size;
                const ListSpan span = list_span(list, sel);
                if (span.j1 <= span.j0) continue;
                sc->set_list(size_t(l), coarse_dis[q * np + p]);
                sc->scan_range(span.j1 - span.j0, list.codes.data() + lay.offset(span.j0), code_size,
                               list.ids.data() + span.j0, ip, radius, span.sel, hits[q]);
                if (hits[q].size() > before) empty_run = 0;
            }
            poll();
        }
    });
    finish_range_search(hits, search_sel);
    result.lims.assign(size_t(n) + 1, 0);
    result.labels.clear();
    result.distances.clear();
    for (size_t q = 0; q < size_t(n); q++) {
        for (const auto& h : hits[q]) {
            result.labels.push_back(h.first);
            result.distances.push_back(h.second);
        }
        result.lims[q + 1] = result.labels.size();
    }
    IndexIVFStats st;
    st.nq = size_t(n);
    for (size_t q = 0; q < size_t(n); q++) st.nlist += visited_lists[q], st.ndis += visited_codes[q];
    record_ivf_stats(st);
}

IndexIVF::ListSpan IndexIVF::list_span(const List& list, const IDSelector* sel) const {
    const size_t n = searched_size(list.ids.size());
    const auto* range = dynamic_cast<const IDSelectorRange*>(sel);
    if (!range || !range->assume_sorted || !std::is_sorted(list.ids.begin(), list.ids.begin() + n)) return {0, n, sel};
    const auto [j0, j1] = range->sorted_ids_bounds(list.ids.data(), n);
    if (code_block == 1) return {j0, j1, nullptr};
    return {j0 / code_block * code_block, j1, sel};
}

bool IndexIVF::check_ids_sorted() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    for (size_t l = 0; l < nlist; l++)
        if (!std::is_sorted(lists_[l].ids.begin(), lists_[l].ids.end())) return false;
    return true;
}

size_t IndexIVF::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t removed = lists_.remove(sel, layout());
    ntotal -= idx_t(removed);
    return removed;
}

void IndexIVF::check_compatible_for_merge(const Index& other_base) const {
    const auto* other = dynamic_cast<const IndexIVF*>(&other_base);
    if (!other || other->type_name() != type_name())
        throw NotSupported("merge_from: the other index must be an Index" + type_name());
    if (other->d != d || other->metric_type != metric_type || other->nlist != nlist ||
        other->code_size != code_size || other->by_residual != by_residual)
        throw NotSupported("merge_from: the other index differs in d, metric, nlist, code size or by_residual");
    if (!is_trained || !other->is_trained) throw NotSupported("merge_from: both indexes must be trained");
    constexpr size_t kRows = 4096;  // compared a block at a time: the cells may be many
    std::vector<float> mine, theirs;
    for (size_t l0 = 0; l0 < nlist; l0 += kRows) {
        const size_t nl = std::min(kRows, nlist - l0);
        mine.resize(nl * size_t(d));
        theirs.resize(nl * size_t(d));
        list_centroids(*quantizer, nlist, l0, nl, mine.data());
        list_centroids(*other->quantizer, nlist, l0, nl, theirs.data());
        if (mine != theirs) throw NotSupported("merge_from: the two indexes have different coarse centroids");
    }
    Writer a, b;
    write_encoder_state(a);
    other->write_encoder_state(b);
    if (a.buffer() != b.buffer()) throw NotSupported("merge_from: the two indexes were trained apart (different encoders)");
}

void IndexIVF::merge_from(Index& other_base, idx_t add_id) {
    check_writable();
    other_base.check_writable();
    if (&other_base == this) throw NotSupported("merge_from: an index cannot be merged into itself");
    check_compatible_for_merge(other_base);
    auto& other = static_cast<IndexIVF&>(other_base);
    std::scoped_lock lk(rw_mutex_, other.rw_mutex_);
    // The same family may lay its lists out otherwise (Panorama's batch size, levels).
    const CodeLayout lay = layout(), from_lay = other.layout();
    std::vector<uint8_t> code(code_size);
    for (size_t l = 0; l < nlist; l++) {
        const List& from = other.lists_[l];
        for (size_t p = 0; p < from.ids.size(); p++) {
            from_lay.get(from.codes.data(), p, code.data());
            lists_.append(l, code.data(), lay, from.ids[p] + add_id);
        }
    }
    ntotal += other.ntotal;
    merge_family_state(other, add_id);
    other.lists_.clear();
    other.ntotal = 0;
}

void IndexIVF::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.clear();
    ntotal = 0;
}

void IndexIVF::make_direct_map(bool enable) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.set_direct_map(enable);
}

void IndexIVF::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const auto where = lists_.locate(key);
    std::vector<uint8_t> code(code_size);
    layout().get(lists_[where.first].codes.data(), where.second, code.data());
    decode_vector(where.first, code.data(), out);
}

void IndexIVF::visit_result_codes(size_t nk, const idx_t* I,
                                  const std::function<void(size_t, size_t, const uint8_t*)>& found) const {
    std::unordered_map<idx_t, std::vector<size_t>> where;  // id -> result slots
    for (size_t j = 0; j < nk; j++)
        if (I[j] >= 0) where[I[j]].push_back(j);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    // An id stored twice (add_with_ids allows it) is its first copy, as the
    // lookup of the direct map would find.
    visit_entries([&](idx_t id) { return where.count(id) > 0; },
                  [&](size_t l, idx_t id, const uint8_t* code) {
                      auto it = where.find(id);
                      if (it == where.end()) return;
                      for (size_t j : it->second) found(j, l, code);
                      where.erase(it);
                  });
}

void IndexIVF::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                      const SearchParameters* params) const {
    search(n, x, k, D, I, params);
    const size_t nk = size_t(n) * size_t(k), dd = d;
    // Missing results, and ids removed by a write between the search and
    // the lookup, stay NaN.
    std::fill(R, R + nk * dd, std::numeric_limits<float>::quiet_NaN());
    visit_result_codes(nk, I, [&](size_t j, size_t l, const uint8_t* code) { decode_vector(l, code, R + j * dd); });
}

void IndexIVF::search_and_return_codes(idx_t n, const float* x, idx_t k, float* D, idx_t* I, uint8_t* codes,
                                       bool include_listnos, const SearchParameters* params) const {
    search(n, x, k, D, I, params);
    const size_t nk = size_t(n) * size_t(k), cc = include_listnos ? coarse_code_size() : 0, cs = cc + code_size;
    // Missing results (and ids removed meanwhile) are all ones, as faiss's.
    std::fill(codes, codes + nk * cs, uint8_t(0xff));
    visit_result_codes(nk, I, [&](size_t j, size_t l, const uint8_t* code) {
        uint8_t* b = codes + j * cs;
        if (cc) put_list_number(b, l);
        std::memcpy(b + cc, code, code_size);
    });
}

void IndexIVF::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    NEARLY_CHECK_ARG(ni >= 0, "ni must be non-negative");
    if (i0 < 0 || i0 + ni > ntotal)
        throw OutOfRange("reconstruct_n: range [" + std::to_string(i0) + ", " + std::to_string(i0 + ni) +
                         ") is outside the index (ntotal=" + std::to_string(ntotal) + ")");
    const size_t dd = d;
    std::fill(out, out + size_t(ni) * dd, std::numeric_limits<float>::quiet_NaN());
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    // An id stored twice decodes as its copy in the later list.
    visit_entries([&](idx_t id) { return id >= i0 && id < i0 + ni; },
                  [&](size_t l, idx_t id, const uint8_t* code) { decode_vector(l, code, out + size_t(id - i0) * dd); });
}

void IndexIVF::visit_entries(const std::function<bool(idx_t)>& wanted,
                             const std::function<void(size_t, idx_t, const uint8_t*)>& visit) const {
    std::vector<std::vector<size_t>> hits(nlist);
    parallel_for(nlist, [&](size_t l) {
        const auto& ids = lists_[l].ids;
        for (size_t p = 0; p < ids.size(); p++)
            if (wanted(ids[p])) hits[l].push_back(p);
    });
    const CodeLayout lay = layout();
    std::vector<uint8_t> code(code_size);
    for (size_t l = 0; l < nlist; l++)
        for (size_t p : hits[l]) {
            lay.get(lists_[l].codes.data(), p, code.data());
            visit(l, lists_[l].ids[p], code.data());
        }
}

size_t IndexIVF::coarse_code_size() const {
    size_t bytes = 0;
    for (size_t l = nlist - 1; l > 0; l >>= 8) bytes++;
    return bytes;
}

void IndexIVF::encode_standalone(idx_t n, const float* x, uint8_t* bytes) const {
    const size_t cc = coarse_code_size(), cs = sa_code_size();
    std::vector<float> dis;
    std::vector<idx_t> list_of;
    std::vector<uint8_t> codes;
    for (size_t i0 = 0; i0 < size_t(n); i0 += kAddBlock) {
        const size_t m = std::min(kAddBlock, size_t(n) - i0);
        dis.resize(m);
        list_of.resize(m);
        codes.resize(m * code_size);
        quantizer->search(idx_t(m), x + i0 * d, 1, dis.data(), list_of.data());
        encode_vectors(idx_t(m), x + i0 * d, list_of.data(), codes.data());
        for (size_t i = 0; i < m; i++) {
            if (list_of[i] < 0) throw NotSupported("sa_encode: the coarse quantizer could not place a vector");
            uint8_t* b = bytes + (i0 + i) * cs;
            put_list_number(b, size_t(list_of[i]));
            std::memcpy(b + cc, &codes[i * code_size], code_size);
        }
    }
}

std::vector<size_t> IndexIVF::lists_of_sa_codes(size_t n, const uint8_t* codes, const char* what) const {
    const size_t cc = coarse_code_size(), cs = sa_code_size();
    std::vector<size_t> list_of(n);
    for (size_t i = 0; i < n; i++) {
        uint64_t l = 0;
        for (size_t c = 0; c < cc; c++) l |= uint64_t(codes[i * cs + c]) << (8 * c);
        if (l >= nlist)
            throw InvalidArgument(std::string(what) + ": code " + std::to_string(i) + " names list " +
                                  std::to_string(l) + " of an index with " + std::to_string(nlist) + " lists");
        list_of[i] = size_t(l);
    }
    return list_of;
}

void IndexIVF::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before sa_decode()");
    const size_t cc = coarse_code_size(), cs = sa_code_size();
    const std::vector<size_t> list_of = lists_of_sa_codes(size_t(n), bytes, "sa_decode");
    parallel_for_blocks(size_t(n), 256, [&](size_t i) { decode_vector(list_of[i], bytes + i * cs + cc, x + i * d); });
}

size_t IndexIVF::list_size(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return lists_[list_no].ids.size();
}

size_t IndexIVF::copy_subset_to(IndexIVF& other, int subset_type, idx_t a1, idx_t a2) const {
    NEARLY_CHECK_ARG(&other != this, "copy_subset_to: the destination must be another index");
    NEARLY_CHECK_ARG(other.nlist == nlist && other.code_size == code_size && other.type_name() == type_name(),
                     "copy_subset_to: the destination must be an index of the same type, nlist and code size");
    NEARLY_CHECK_ARG(subset_type >= 0 && subset_type <= 4,
                     "copy_subset_to: subset type " + std::to_string(subset_type) + " not implemented");
    NEARLY_CHECK_ARG((subset_type != 1 && subset_type != 3) || a1 > 0,
                     "copy_subset_to: a1 must be positive for subset types 1 and 3");
    // The chosen entries of each list, taken under one read lock (one
    // consistent state), then appended to the other index's same list.
    std::vector<std::vector<uint8_t>> codes(nlist);
    std::vector<std::vector<idx_t>> ids(nlist);
    {
        std::shared_lock<SharedMutex> lk(rw_mutex_);
        const CodeLayout lay = layout();
        size_t total = 0;
        for (size_t l = 0; l < nlist; l++) total += lists_[l].ids.size();
        size_t accu_n = 0, accu_a1 = 0, accu_a2 = 0;
        for (size_t l = 0; l < nlist; l++) {
            const List& list = lists_[l];
            const size_t n = list.ids.size();
            auto take = [&](size_t i) {
                ids[l].push_back(list.ids[i]);
                codes[l].resize(ids[l].size() * code_size);
                lay.get(list.codes.data(), i, &codes[l][(ids[l].size() - 1) * code_size]);
            };
            if (subset_type == 0) {  // ids in [a1, a2)
                for (size_t i = 0; i < n; i++)
                    if (a1 <= list.ids[i] && list.ids[i] < a2) take(i);
            } else if (subset_type == 1) {  // id % a1 == a2
                for (size_t i = 0; i < n; i++)
                    if (list.ids[i] % a1 == a2) take(i);
            } else if (subset_type == 2) {  // the share [a1, a2) of ntotal, spread over the lists as faiss does
                const size_t next_n = accu_n + n;
                using u128 = unsigned __int128;  // faiss's integer shares, without overflow
                const size_t next_a1 = total ? size_t(u128(next_n) * u128(std::max<idx_t>(a1, 0)) / total) : 0;
                const size_t next_a2 = total ? size_t(u128(next_n) * u128(std::max<idx_t>(a2, 0)) / total) : 0;
                const size_t i1 = next_a1 - accu_a1, i2 = next_a2 - accu_a2;
                for (size_t i = i1; i < std::min(i2, n); i++) take(i);
                accu_a1 = next_a1;
                accu_a2 = next_a2;
            } else if (subset_type == 3) {  // part a2 of a1 of every list
                for (size_t i = n * size_t(a2) / size_t(a1); i < n * size_t(a2 + 1) / size_t(a1) && i < n; i++) take(i);
            } else if (idx_t(l) >= a1 && idx_t(l) < a2) {  // whole lists [a1, a2)
                for (size_t i = 0; i < n; i++) take(i);
            }
            accu_n += n;
        }
    }
    size_t added = 0;
    for (size_t l = 0; l < nlist; l++) {
        if (ids[l].empty()) continue;
        other.add_entries(l, ids[l].size(), codes[l].data(), ids[l].data());
        added += ids[l].size();
    }
    return added;
}

std::vector<idx_t> IndexIVF::list_ids(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const auto& ids = lists_[list_no].ids;
    return std::vector<idx_t>(ids.begin(), ids.end());
}

std::vector<uint8_t> IndexIVF::list_codes_copy(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const List& list = lists_[list_no];
    if (code_block == 1) return std::vector<uint8_t>(list.codes.begin(), list.codes.end());
    std::vector<uint8_t> out(list.ids.size() * code_size);
    for (size_t j = 0; j < list.ids.size(); j++) layout().get(list.codes.data(), j, &out[j * code_size]);
    return out;
}

std::vector<uint8_t> IndexIVF::list_stored_copy(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const List& list = lists_[list_no];
    return std::vector<uint8_t>(list.codes.begin(), list.codes.end());
}

const uint8_t* IndexIVF::list_codes(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    return lists_[list_no].codes.data();
}

const idx_t* IndexIVF::list_ids_ptr(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    return lists_[list_no].ids.data();
}

void IndexIVF::write_header(Writer& w) const {
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    if (is_extra_metric(metric_type)) w.pod<float>(metric_arg);  // L2 / IP files unchanged
    w.pod<uint64_t>(nlist);
    w.pod<uint64_t>(nprobe);
    w.pod<int64_t>(ntotal);
    write_index_payload(*quantizer, w);
}

IndexIVF::Header IndexIVF::read_header(Reader& r, const char* what) {
    Header h;
    h.d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const bool extra = is_extra_metric(MetricType(metric));
    h.metric_arg = extra ? r.pod<float>() : 0.f;
    h.nlist = r.pod<uint64_t>();
    h.nprobe = r.pod<uint64_t>();
    h.ntotal = r.pod<int64_t>();
    r.check(h.d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT || extra) && std::isfinite(h.metric_arg) &&
                h.ntotal >= 0 && h.nprobe > 0 &&
                h.nlist > 0 && h.nlist <= r.remaining() / 16,
            (std::string("bad ") + what + " header").c_str());
    h.metric = MetricType(metric);
    h.quantizer = read_index_payload(r);
    r.check(h.quantizer->d == h.d, (std::string(what) + " quantizer dimension does not match").c_str());
    return h;
}

void IndexIVF::write_lists(Writer& w, size_t unit) const {
    // faiss cannot write its stop-words or capped lists either; a search
    // setting of this process, not a property of the stored lists.
    if (!list_limits_.empty())
        throw NotSupported("the index searches its lists through StopWordsInvertedLists / CappedInvertedLists, which "
                           "cannot be written: give it back its own lists first (index.replace_invlists(il.il0))");
    lists_.write(w, unit);
}

void IndexIVF::set_list_limits(std::vector<ListLimit> limits) {
    for (const ListLimit& lim : limits)
        NEARLY_CHECK_ARG(lim.maxsize > 0 || lim.stop_words, "a list cap must be positive");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    list_limits_ = std::move(limits);
}

std::vector<IndexIVF::ListLimit> IndexIVF::list_limits() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return list_limits_;
}

void IndexIVF::read_lists(Reader& r, size_t unit, idx_t total_expected, const char* what) {
    lists_.read(r, unit, layout(), total_expected, what);
    ntotal = total_expected;
}

}  // namespace nearly
