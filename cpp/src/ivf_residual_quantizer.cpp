#include "nearly/ivf_residual_quantizer.h"

#include <cstdio>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "residual_list_scanner.h"

namespace nearly {

namespace {
// L2 by residual through tables: one table product per query, then per
// list the query's table minus the centroid's.
struct IVFRQTableScanner : InvertedListScanner {
    const IndexIVFResidualQuantizer& ix;
    const std::vector<float>& tables;
    RQScanner scan;
    const size_t d, ts;
    std::vector<float> qlut, c;
    const float* q = nullptr;

    IVFRQTableScanner(const IndexIVFResidualQuantizer& ix, const std::vector<float>& tables)
        : ix(ix), tables(tables), scan(ix.rq, METRIC_L2), d(size_t(ix.d)), ts(ix.rq.total_codebook_size), qlut(ts), c(d) {}
    void set_query(const float* x) override {
        q = x;
        ix.rq.compute_lut(x, qlut.data());
    }
    void set_list(size_t list_no, float) override {
        ix.quantizer->reconstruct(idx_t(list_no), c.data());
        double n2 = 0;
        for (size_t j = 0; j < d; j++) n2 += double(q[j] - c[j]) * double(q[j] - c[j]);
        scan.set_residual_from_tables(qlut.data(), tables.data() + list_no * ts, float(n2));
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override { scan.scores(codes, n, out); }
};
}  // namespace


IndexIVFResidualQuantizer::IndexIVFResidualQuantizer(IndexPtr quantizer_, int d, size_t nlist_, size_t M,
                                                     size_t nbits, MetricType metric,
                                                     ResidualQuantizer::SearchType search_type)
    : IndexIVFResidualQuantizer(std::move(quantizer_), d, nlist_, std::vector<size_t>(M, nbits), metric,
                                search_type) {}

IndexIVFResidualQuantizer::IndexIVFResidualQuantizer(IndexPtr quantizer_, int d, size_t nlist_,
                                                     const std::vector<size_t>& nbits, MetricType metric,
                                                     ResidualQuantizer::SearchType search_type)
    : IndexIVF(std::move(quantizer_), d, nlist_, 0, metric), rq(size_t(std::max(d, 1)), nbits, search_type) {
    code_size = rq.code_size;
    by_residual = true;
    refresh_trained();
}

void IndexIVFResidualQuantizer::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    // The beam search encodes a batch at once (its distances are a GEMM), so
    // the residuals are formed first.
    const size_t dd = size_t(d), nn = size_t(n);
    std::vector<float> r(x, x + nn * dd), c(by_residual ? nn * dd : 0);
    if (by_residual) {
        parallel_for((nn + 255) / 256, [&](size_t t) {
            const size_t i0 = t * 256, i1 = std::min(nn, i0 + 256);
            centroids_of(i1 - i0, list_nos + i0, &c[i0 * dd]);
            for (size_t i = i0 * dd; i < i1 * dd; i++) r[i] -= c[i];
        });
    }
    rq.compute_codes(r.data(), codes, nn, norm_includes_centroid() ? c.data() : nullptr);
}

void IndexIVFResidualQuantizer::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    rq.decode(code, out, 1);
    if (!by_residual) return;
    std::vector<float> c(d);
    quantizer->reconstruct(idx_t(list_no), c.data());
    for (int j = 0; j < d; j++) out[j] += c[j];
}

void IndexIVFResidualQuantizer::train_encoder(idx_t n, const float* x, const idx_t* assign) {
    if (verbose)
        std::printf("training a residual quantizer of %zd codebooks (%zd words) on %lld vectors in %dD\n", rq.M,
                    rq.total_codebook_size, (long long)n, d);
    rq.verbose = verbose;
    std::vector<float> c;
    if (norm_includes_centroid()) {
        c.resize(size_t(n) * size_t(d));
        centroids_of(size_t(n), assign, c.data());
    }
    rq.train(size_t(n), x, c.empty() ? nullptr : c.data());
    build_list_tables();
}

void IndexIVFResidualQuantizer::copy_from(const IndexIVFResidualQuantizer& orig) {
    std::shared_lock<SharedMutex> lk(orig.rw_mutex_);
    NEARLY_CHECK_ARG(orig.rq.M == rq.M && orig.rq.nbits == rq.nbits && orig.d == d && orig.nlist == nlist &&
                         orig.code_size == code_size,
                     "IndexIVFResidualQuantizer::copy_from: a different shape");
    {
        std::unique_lock<SharedMutex> mine(rw_mutex_);
        quantizer = orig.quantizer;
        rq = orig.rq;
        by_residual = orig.by_residual;
        verbose = orig.verbose;
        build_list_tables();
    }
    copy_lists_from(orig);
    std::unique_lock<SharedMutex> mine(rw_mutex_);
    is_trained = orig.is_trained;
}

void IndexIVFResidualQuantizer::build_list_tables() {
    list_tables_.clear();
    centroid_norms_.clear();
    const size_t ts = rq.total_codebook_size;
    constexpr size_t kMaxBytes = size_t(256) << 20;
    if (!rq.is_trained || !rq.uses_lut() || metric_type != METRIC_L2 || !by_residual || !quantizer ||
        !quantizer_places_lists(*quantizer, nlist))
        return;
    std::vector<float> centroids(nlist * size_t(d));
    list_centroids(*quantizer, nlist, 0, nlist, centroids.data());
    centroid_norms_.resize(nlist);
    norms_L2sqr(centroids.data(), nlist, size_t(d), centroid_norms_.data());
    if (nlist * ts * sizeof(float) > kMaxBytes) return;
    list_tables_.resize(nlist * ts);
    gemm_ip(centroids.data(), nlist, rq.codebooks.data(), ts, size_t(d), list_tables_.data());
}

float IndexIVFResidualQuantizer::centroid_norm(size_t list_no) const {
    if (list_no < centroid_norms_.size()) return centroid_norms_[list_no];
    std::vector<float> c(static_cast<size_t>(d));
    quantizer->reconstruct(idx_t(list_no), c.data());
    return simd().inner_product(c.data(), c.data(), c.size());
}

std::unique_ptr<InvertedListScanner> IndexIVFResidualQuantizer::get_scanner() const {
    if (has_list_tables() && by_residual && metric_type == METRIC_L2)
        return std::make_unique<IVFRQTableScanner>(*this, list_tables_);
    return std::make_unique<ResidualListScanner<RQScanner>>(*this, RQScanner(rq, metric_type));
}

void IndexIVFResidualQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<uint8_t>(by_residual);
    rq.write(w);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFResidualQuantizer> IndexIVFResidualQuantizer::read_body(Reader& r) {
    return read_with(r, "IVFResidualQuantizer", [](const Header& h, const ResidualQuantizer& rq) {
        return std::make_unique<IndexIVFResidualQuantizer>(h.quantizer, h.d, h.nlist, rq.nbits, h.metric,
                                                           rq.search_type);
    });
}

std::unique_ptr<IndexIVFResidualQuantizer> IndexIVFResidualQuantizer::read_with(Reader& r, const char* what,
                                                                                const Maker& make) {
    const std::string who(what);
    Header h = read_header(r, what);
    const uint8_t by_residual = r.pod<uint8_t>();
    r.check(by_residual <= 1, ("bad " + who + " header").c_str());
    ResidualQuantizer rq = ResidualQuantizer::read(r, what);
    r.check(rq.d == size_t(h.d), (who + " d does not match the index").c_str());
    std::unique_ptr<IndexIVFResidualQuantizer> index;
    try {
        index = make(h, rq);
    } catch (const std::exception& e) {  // a quantizer this class refuses
        r.check(false, (who + ": " + e.what()).c_str());
        throw;
    }
    index->by_residual = by_residual;
    index->nprobe = h.nprobe;
    index->rq = std::move(rq);
    index->read_lists(r, 1, h.ntotal, what);
    r.check(h.ntotal == 0 || index->rq.is_trained, (who + " holds codes but is not trained").c_str());
    index->refresh_trained();
    index->build_list_tables();
    return index;
}

}  // namespace nearly
