#include "nearly/index_lattice.h"

#include <cmath>
#include <mutex>

#include "nearly/bitstring.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
int checked_nsq(int d, int nsq) {
    NEARLY_CHECK_ARG(d > 0 && nsq > 0 && d % nsq == 0, "IndexLattice: d = " + std::to_string(d) +
                                                           " must be a positive multiple of nsq = " +
                                                           std::to_string(nsq));
    return nsq;
}
}  // namespace

IndexLattice::IndexLattice(int d, int nsq, int scale_nbit, int r2)
    : IndexFlatCodes(d, METRIC_L2),
      nsq(checked_nsq(d, nsq)),
      dsq(size_t(d / nsq)),
      zn_sphere_codec(d / nsq, r2),
      scale_nbit(scale_nbit) {
    NEARLY_CHECK_ARG(scale_nbit >= 0 && scale_nbit <= 32, "IndexLattice: scale_nbit must be in [0, 32]");
    while ((uint64_t(1) << lattice_nbit) < zn_sphere_codec.nv) {
        lattice_nbit++;
        NEARLY_CHECK_ARG(lattice_nbit < 64, "IndexLattice: more than 2^63 lattice points per sub-vector");
    }
    code_size_ = (size_t(lattice_nbit + scale_nbit) * size_t(nsq) + 7) / 8;
    is_trained = false;
}

void IndexLattice::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n > 0, "IndexLattice: training needs at least one vector");
    check_finite(x, size_t(n) * size_t(d), "training data");
    std::vector<float> lo(nsq, HUGE_VALF), hi(nsq, -1.f);
    const SimdKernels& K = simd();
    for (size_t i = 0; i < size_t(n); i++) {
        for (int j = 0; j < nsq; j++) {
            const float* s = x + i * size_t(d) + size_t(j) * dsq;
            const float norm2 = K.inner_product(s, s, dsq);
            lo[j] = std::min(lo[j], norm2);
            hi[j] = std::max(hi[j], norm2);
        }
    }
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    trained.resize(2 * size_t(nsq));
    for (int j = 0; j < nsq; j++) {
        trained[j] = std::sqrt(lo[j]);
        trained[nsq + j] = std::sqrt(hi[j]);
    }
    is_trained = true;
}

void IndexLattice::encode(size_t n, const float* x, uint8_t* codes) const {
    const size_t cs = code_size_;
    const float* lo = trained.data();
    const float* hi = lo + nsq;
    const float levels = float(uint64_t(1) << scale_nbit);
    const SimdKernels& K = simd();
    std::fill(codes, codes + n * cs, uint8_t(0));
    parallel_for_blocks(n, 256, [&](size_t i) {
        BitWriter w{codes + i * cs};
        for (int j = 0; j < nsq; j++) {
            const float* s = x + i * size_t(d) + size_t(j) * dsq;
            // faiss's float arithmetic, so the levels are the same; a flat
            // range (0 / 0) is level 0, as faiss's cast of NaN leaves it
            float level = (std::sqrt(K.inner_product(s, s, dsq)) - lo[j]) * levels / (hi[j] - lo[j]);
            if (!(level >= 0)) level = 0;
            if (level >= levels) level = levels - 1;
            w.write(uint64_t(level), size_t(scale_nbit));
            w.write(zn_sphere_codec.encode(s), size_t(lattice_nbit));
        }
    });
}

void IndexLattice::decode(const uint8_t* code, float* out) const {
    const float* lo = trained.data();
    const float* hi = lo + nsq;
    const float levels = float(uint64_t(1) << scale_nbit);
    const float radius = std::sqrt(float(zn_sphere_codec.r2));
    BitReader rd{code};
    for (int j = 0; j < nsq; j++) {
        // the middle of the level, in double as faiss computes it
        float norm = float((double(rd.read(size_t(scale_nbit))) + 0.5) * (hi[j] - lo[j]) / levels + lo[j]);
        norm /= radius;
        float* s = out + size_t(j) * dsq;
        zn_sphere_codec.decode(rd.read(size_t(lattice_nbit)), s);
        for (size_t l = 0; l < dsq; l++) s[l] *= norm;
    }
}

void IndexLattice::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: IndexLattice is not trained");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_with_scorers(n, x, k, D, I, params ? params->sel.get() : nullptr, [&] { return DecodedScorer{this}; });
}

void IndexLattice::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(nsq);
    w.pod<int32_t>(scale_nbit);
    w.pod<int32_t>(zn_sphere_codec.r2);
    w.vec(trained);
}

void IndexLattice::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(nsq);
    w.pod<int32_t>(scale_nbit);
    w.pod<int32_t>(zn_sphere_codec.r2);
    w.pod<uint8_t>(is_trained);
    w.vec(trained);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<IndexLattice> IndexLattice::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), nsq = r.pod<int32_t>(), scale_nbit = r.pod<int32_t>(), r2 = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && nsq > 0 && d % nsq == 0 && d / nsq <= 64 && scale_nbit >= 0 && scale_nbit <= 32 && r2 >= 0 &&
                r2 <= 512 && trained <= 1,
            "bad Lattice header");
    auto index = std::make_unique<IndexLattice>(d, nsq, scale_nbit, r2);
    index->trained = r.vec<float>();
    r.check(index->trained.size() == 2 * size_t(nsq) || (index->trained.empty() && !trained),
            "Lattice norm ranges do not match nsq");
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->code_size(),
            "Lattice code count does not match ntotal");
    r.check(ntotal == 0 || trained, "Lattice holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
