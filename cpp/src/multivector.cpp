#include "nearly/multivector.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "nearly/chamfer.h"
#include "nearly/half.h"
#include "nearly/io.h"
#include "nearly/maxsim.h"
#include "nearly/parallel.h"
#include "nearly/ragged.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr char kMagic[8] = {'N', 'E', 'A', 'R', 'L', 'Y', 'M', 'V'};
constexpr uint32_t kStoreVersion = 1;
// Candidates are scored in groups of about this many vectors, copied (and
// decoded from fp16) together so that one multiply serves the group.
constexpr size_t kGroupRows = 1024;
// Brute force: documents per pass bounded by this many scores and rows.
constexpr size_t kMaxScoresPerPass = size_t(1) << 24;
constexpr size_t kMaxRowsPerPass = size_t(1) << 15;
constexpr double kMinParallelWork = 1 << 20;

struct HalfTable {
    float v[65536];
    HalfTable() {
        for (uint32_t h = 0; h < 65536; h++) {
            uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
            if (e == 0) {
                if (m == 0) {
                    x = sign;
                } else {
                    int shift = 0;
                    while (!(m & 0x400)) {
                        m <<= 1;
                        shift++;
                    }
                    x = sign | (uint32_t(127 - 15 + 1 - shift) << 23) | ((m & 0x3ff) << 13);
                }
            } else if (e == 31) {
                x = sign | 0x7f800000u | (m << 13);
            } else {
                x = sign | ((e - 15 + 127) << 23) | (m << 13);
            }
            std::memcpy(&v[h], &x, 4);
        }
    }
};
const HalfTable& half_table() {
    static const HalfTable t;
    return t;
}

bool parallel_worthwhile(double work) {
    return get_num_threads() > 1 && work >= kMinParallelWork && !in_parallel_region();
}

template <class F>
void for_tasks(size_t n, double work, F&& fn) {
    if (n > 1 && parallel_worthwhile(work)) {
        parallel_for(n, fn);
    } else {
        for (size_t t = 0; t < n; t++) fn(t);
    }
}

// Turns per-query heaps of (-score, position) into sorted results: scores
// descending, caller ids, padding -FLT_MAX / -1.
void finish_heap(float* D, idx_t* I, size_t k, const std::vector<idx_t>& ids) {
    TopK::sort(D, I, k);
    for (size_t j = 0; j < k; j++) {
        if (I[j] < 0) {
            D[j] = -FLT_MAX;
        } else {
            D[j] = -D[j];
            I[j] = ids[size_t(I[j])];
        }
    }
}
}  // namespace

uint16_t fp16_from_float(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xff, m = x & 0x7fffffu;
    if (e == 0xff) return uint16_t(sign | 0x7c00u | (m ? 0x200u : 0u));
    int exp = int(e) - 127 + 15;
    if (exp >= 31) return uint16_t(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return uint16_t(sign);
        m |= 0x800000u;
        uint32_t shift = uint32_t(14 - exp);
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) h++;
        return uint16_t(sign | h);
    }
    uint32_t h = (uint32_t(exp) << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;  // may carry into the exponent: correct rounding
    return uint16_t(sign | h);
}

float fp16_to_float(uint16_t h) { return half_table().v[h]; }

MultiVectorStore::MultiVectorStore(int d, TokenDtype dtype) : d_(d), dtype_(dtype) {
    NEARLY_CHECK_ARG(d > 0, "multi-vector index: d must be positive");
    NEARLY_CHECK_ARG(dtype == TokenDtype::Float32 || dtype == TokenDtype::Float16,
                     "multi-vector index: token dtype must be float32 or float16");
}

MultiVectorStore::MultiVectorStore(MultiVectorStore&& o) noexcept
    : d_(o.d_), dtype_(o.dtype_), f32_(std::move(o.f32_)), f16_(std::move(o.f16_)),
      offsets_(std::move(o.offsets_)), ids_(std::move(o.ids_)), keys_(std::move(o.keys_)), next_key_(o.next_key_) {}

size_t MultiVectorStore::n_docs() const { return offsets_.size() - 1; }
size_t MultiVectorStore::n_vectors() const { return offsets_.back(); }

std::vector<int64_t> MultiVectorStore::lengths() const {
    std::shared_lock<SharedMutex> lk(mu_);
    std::vector<int64_t> out(n_docs());
    for (size_t i = 0; i < out.size(); i++) out[i] = int64_t(offsets_[i + 1] - offsets_[i]);
    return out;
}

void MultiVectorStore::visit_raw(const RawVisitor& fn) const {
    std::shared_lock<SharedMutex> lk(mu_);
    const void* v = dtype_ == TokenDtype::Float32 ? static_cast<const void*>(f32_.data()) : f16_.data();
    fn(v, offsets_, ids_, keys_);
}

MultiVectorStore MultiVectorStore::clone() const {
    std::shared_lock<SharedMutex> lk(mu_);
    MultiVectorStore s(d_, dtype_);
    s.f32_ = f32_;
    s.f16_ = f16_;
    s.offsets_ = offsets_;
    s.ids_ = ids_;
    s.keys_ = keys_;
    s.next_key_ = next_key_;
    return s;
}

void MultiVectorStore::add(const float* x, size_t n_vectors, const int64_t* lengths, size_t n_sets, const idx_t* ids,
                           idx_t* keys_out) {
    const std::vector<size_t> off = ragged_offsets(lengths, n_sets, n_vectors, "documents");
    check_finite(x, n_vectors * size_t(d_), "the document vectors");
    std::unique_lock<SharedMutex> lk(mu_);
    const size_t base_rows = offsets_.back(), base_docs = n_docs(), d = size_t(d_);
    if (dtype_ == TokenDtype::Float32) {
        f32_.insert(f32_.end(), x, x + n_vectors * d);
    } else {
        f16_.resize((base_rows + n_vectors) * d);
        uint16_t* out = f16_.data() + base_rows * d;
        for_tasks(n_vectors, double(n_vectors) * d * 4, [&](size_t r) {
            for (size_t i = 0; i < d; i++) out[r * d + i] = fp16_from_float(x[r * d + i]);
        });
    }
    for (size_t s = 0; s < n_sets; s++) {
        offsets_.push_back(base_rows + off[s + 1]);
        ids_.push_back(ids ? ids[s] : idx_t(base_docs + s));
        keys_.push_back(next_key_);
        if (keys_out) keys_out[s] = next_key_;
        next_key_++;
    }
}

void MultiVectorStore::decode_rows(size_t p0, size_t p1, float* out) const {
    const size_t d = size_t(d_), r0 = offsets_[p0], r1 = offsets_[p1];
    if (dtype_ == TokenDtype::Float32) {
        std::memcpy(out, f32_.data() + r0 * d, (r1 - r0) * d * sizeof(float));
    } else {
        half_to_float(f16_.data() + r0 * d, (r1 - r0) * d, out);
    }
}

void MultiVectorStore::score_positions(const float* q, size_t nqv, const size_t* pos, size_t n, float* scores) const {
    // Few candidates per query: one document at a time, its rows straight
    // from the store (decoded into a small buffer when fp16) and read once
    // for all query vectors, which lie transposed across SIMD lanes. No
    // packing, no copy of the candidates, which cost more than the products
    // here.
    const size_t d = size_t(d_);
    const size_t mp = (nqv + kMaxSimLanes - 1) / kMaxSimLanes * kMaxSimLanes;
    std::vector<float> qt(d * mp), best(mp), buf;
    maxsim_transpose_queries(q, nqv, d, qt.data(), mp);
    for (size_t j = 0; j < n; j++) {
        const size_t p = pos[j], len = offsets_[p + 1] - offsets_[p];
        const float* x;
        if (dtype_ == TokenDtype::Float32) {
            x = f32_.data() + offsets_[p] * d;
        } else {
            buf.resize(len * d);
            decode_rows(p, p + 1, buf.data());
            x = buf.data();
        }
        const void* next = nullptr;
        size_t next_bytes = 0;
        if (j + 1 < n) {
            const size_t values = (offsets_[pos[j + 1] + 1] - offsets_[pos[j + 1]]) * d;
            if (dtype_ == TokenDtype::Float32) {
                next = f32_.data() + offsets_[pos[j + 1]] * d;
                next_bytes = values * sizeof(float);
            } else {
                next = f16_.data() + offsets_[pos[j + 1]] * d;
                next_bytes = values * sizeof(uint16_t);
            }
        }
        std::fill(best.begin(), best.end(), -FLT_MAX);
        maxsim_update(qt.data(), mp, d, x, len, best.data(), next, next_bytes);
        float sum = 0.f;
        for (size_t a = 0; a < nqv; a++) sum += best[a];
        scores[j] = sum;
    }
}

void MultiVectorStore::search(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq,
                              size_t k, float* D, idx_t* I) const {
    NEARLY_CHECK_ARG(k > 0, "k must be positive");
    const std::vector<size_t> qoff = ragged_offsets(query_lengths, nq, n_query_vectors, "query sets");
    check_finite(q, n_query_vectors * size_t(d_), "the query vectors");
    std::shared_lock<SharedMutex> lk(mu_);
    for (size_t i = 0; i < nq; i++) TopK::init(D + i * k, I + i * k, k);
    const size_t n = n_docs(), d = size_t(d_);
    if (nq == 0) return;
    InterruptPoll poll;
    std::vector<float> scores, buf;
    std::vector<int64_t> lens;
    for (size_t p0 = 0; p0 < n;) {
        // A pass over documents [p0, p1).
        size_t p1 = p0 + 1;
        const size_t max_docs = std::max<size_t>(1, kMaxScoresPerPass / nq);
        while (p1 < n && p1 - p0 < max_docs &&
               (dtype_ == TokenDtype::Float32 || offsets_[p1 + 1] - offsets_[p0] <= kMaxRowsPerPass))
            p1++;
        const size_t nd = p1 - p0, rows = offsets_[p1] - offsets_[p0];
        lens.resize(nd);
        for (size_t j = 0; j < nd; j++) lens[j] = int64_t(offsets_[p0 + j + 1] - offsets_[p0 + j]);
        const float* x;
        if (dtype_ == TokenDtype::Float32) {
            x = f32_.data() + offsets_[p0] * d;
        } else {
            buf.resize(rows * d);
            decode_rows(p0, p1, buf.data());
            x = buf.data();
        }
        scores.resize(nq * nd);
        chamfer_scores(q, n_query_vectors, query_lengths, nq, x, rows, lens.data(), nd, d, scores.data());
        for_tasks(nq, double(nq) * nd * 8, [&](size_t i) {
            float* Di = D + i * k;
            idx_t* Ii = I + i * k;
            const float* s = scores.data() + i * nd;
            for (size_t j = 0; j < nd; j++) TopK::push(Di, Ii, k, -s[j], idx_t(p0 + j));
        });
        poll();
        p0 = p1;
    }
    for_tasks(nq, double(nq) * k * 16, [&](size_t i) { finish_heap(D + i * k, I + i * k, k, ids_); });
}

void MultiVectorStore::rerank(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq,
                              const idx_t* cand_keys, size_t nc, size_t k, float* D, idx_t* I) const {
    NEARLY_CHECK_ARG(k > 0, "k must be positive");
    const std::vector<size_t> qoff = ragged_offsets(query_lengths, nq, n_query_vectors, "query sets");
    check_finite(q, n_query_vectors * size_t(d_), "the query vectors");
    std::shared_lock<SharedMutex> lk(mu_);
    const size_t d = size_t(d_);
    // Positions of each query's candidates, and groups of them to score.
    std::vector<std::vector<size_t>> pos(nq);
    std::vector<std::vector<float>> scores(nq);
    struct Group {
        size_t q, j0, j1;
    };
    std::vector<Group> groups;
    double work = 0;
    for (size_t i = 0; i < nq; i++) {
        std::vector<size_t>& p = pos[i];
        for (size_t c = 0; c < nc; c++) {
            const idx_t key = cand_keys[i * nc + c];
            if (key < 0) continue;
            auto it = std::lower_bound(keys_.begin(), keys_.end(), key);
            if (it != keys_.end() && *it == key) p.push_back(size_t(it - keys_.begin()));
        }
        std::sort(p.begin(), p.end());
        p.erase(std::unique(p.begin(), p.end()), p.end());
        scores[i].resize(p.size());
        size_t j0 = 0, rows = 0, total = 0;
        for (size_t j = 0; j < p.size(); j++) {
            const size_t len = offsets_[p[j] + 1] - offsets_[p[j]];
            if (j > j0 && rows + len > kGroupRows) {
                groups.push_back({i, j0, j});
                j0 = j;
                rows = 0;
            }
            rows += len;
            total += len;
        }
        if (j0 < p.size()) groups.push_back({i, j0, p.size()});
        work += double(total) * double(qoff[i + 1] - qoff[i]) * double(d);
    }
    InterruptPoll poll;
    for_tasks(groups.size(), work, [&](size_t g) {
        const Group& gr = groups[g];
        score_positions(q + qoff[gr.q] * d, qoff[gr.q + 1] - qoff[gr.q], pos[gr.q].data() + gr.j0, gr.j1 - gr.j0,
                        scores[gr.q].data() + gr.j0);
        poll();
    });
    for_tasks(nq, double(nq) * nc * 8, [&](size_t i) {
        float* Di = D + i * k;
        idx_t* Ii = I + i * k;
        TopK::init(Di, Ii, k);
        for (size_t j = 0; j < pos[i].size(); j++) TopK::push(Di, Ii, k, -scores[i][j], idx_t(pos[i][j]));
        finish_heap(Di, Ii, k, ids_);
    });
}

std::vector<idx_t> MultiVectorStore::remove_ids(const IDSelector& sel) {
    std::unique_lock<SharedMutex> lk(mu_);
    const size_t n = n_docs(), d = size_t(d_);
    std::vector<idx_t> removed;
    size_t w = 0, wrow = 0;
    for (size_t p = 0; p < n; p++) {
        if (sel.is_member(ids_[p])) {
            removed.push_back(keys_[p]);
            continue;
        }
        const size_t r0 = offsets_[p], len = offsets_[p + 1] - r0;
        if (w != p) {
            if (dtype_ == TokenDtype::Float32) {
                std::memmove(f32_.data() + wrow * d, f32_.data() + r0 * d, len * d * sizeof(float));
            } else {
                std::memmove(f16_.data() + wrow * d, f16_.data() + r0 * d, len * d * sizeof(uint16_t));
            }
            ids_[w] = ids_[p];
            keys_[w] = keys_[p];
        }
        offsets_[w] = wrow;
        wrow += len;
        w++;
    }
    offsets_[w] = wrow;
    offsets_.resize(w + 1);
    ids_.resize(w);
    keys_.resize(w);
    if (dtype_ == TokenDtype::Float32) {
        f32_.resize(wrow * d);
    } else {
        f16_.resize(wrow * d);
    }
    return removed;
}

void MultiVectorStore::reset() {
    std::unique_lock<SharedMutex> lk(mu_);
    f32_.clear();
    f16_.clear();
    offsets_.assign(1, 0);
    ids_.clear();
    keys_.clear();
}

std::vector<float> MultiVectorStore::document(size_t pos) const {
    std::shared_lock<SharedMutex> lk(mu_);
    if (pos >= n_docs()) throw OutOfRange("document " + std::to_string(pos) + " not in the index");
    std::vector<float> out((offsets_[pos + 1] - offsets_[pos]) * size_t(d_));
    decode_rows(pos, pos + 1, out.data());
    return out;
}

std::vector<uint8_t> MultiVectorStore::serialize() const {
    std::shared_lock<SharedMutex> lk(mu_);
    Writer w;
    w.bytes(kMagic, 8);
    w.pod<uint32_t>(kStoreVersion);
    w.pod<uint32_t>(uint32_t(dtype_));
    w.pod<int32_t>(d_);
    w.pod<int64_t>(next_key_);
    std::vector<uint64_t> off(offsets_.begin(), offsets_.end());
    w.vec(off);
    w.vec(ids_);
    w.vec(keys_);
    if (dtype_ == TokenDtype::Float32) {
        w.vec(f32_);
    } else {
        w.vec(f16_);
    }
    w.pod<uint64_t>(checksum64(w.buffer().data(), w.buffer().size()));
    return std::move(w.buffer());
}

MultiVectorStore MultiVectorStore::deserialize(const uint8_t* data, size_t n) {
    auto fail = [](const std::string& why) { throw CorruptData("cannot read multi-vector index: " + why); };
    if (n < 8 + 8 || std::memcmp(data, kMagic, 8) != 0) fail("not a nearly multi-vector store (bad magic)");
    uint64_t stored;
    std::memcpy(&stored, data + n - 8, 8);
    if (stored != checksum64(data, n - 8)) fail("checksum mismatch (truncated or corrupt data)");
    Reader r(data + 8, n - 16);
    const uint32_t version = r.pod<uint32_t>();
    if (version == 0 || version > kStoreVersion)
        fail("unsupported format version " + std::to_string(version) + " (this build reads up to " +
             std::to_string(kStoreVersion) + ")");
    const uint32_t dtype = r.pod<uint32_t>();
    if (dtype > 1) fail("unknown token dtype " + std::to_string(dtype));
    const int32_t d = r.pod<int32_t>();
    if (d <= 0) fail("bad dimension " + std::to_string(d));
    MultiVectorStore s(d, TokenDtype(dtype));
    s.next_key_ = r.pod<int64_t>();
    std::vector<uint64_t> off = r.vec<uint64_t>();
    s.ids_ = r.vec<idx_t>();
    s.keys_ = r.vec<idx_t>();
    if (dtype == 0) {
        s.f32_ = r.vec<float>();
    } else {
        s.f16_ = r.vec<uint16_t>();
    }
    if (r.remaining() != 0) fail("trailing bytes");
    if (off.empty() || off[0] != 0) fail("bad document offsets");
    for (size_t i = 1; i < off.size(); i++)
        if (off[i] <= off[i - 1]) fail("bad document offsets");
    const size_t nd = off.size() - 1;
    if (s.ids_.size() != nd || s.keys_.size() != nd) fail("ids do not match the documents");
    for (size_t i = 0; i < nd; i++)
        if (s.keys_[i] < 0 || (i > 0 && s.keys_[i] <= s.keys_[i - 1])) fail("bad document keys");
    if (nd > 0 && s.next_key_ <= s.keys_.back()) fail("bad next key");
    if (s.next_key_ < 0) fail("bad next key");
    const size_t values = dtype == 0 ? s.f32_.size() : s.f16_.size();
    if (values != off.back() * size_t(d)) fail("vector data does not match the documents");
    s.offsets_.assign(off.begin(), off.end());
    return s;
}

void ball_carve(const float* x, size_t n_vectors, const int64_t* lengths, size_t n_sets, size_t d, float tau,
                std::vector<float>& out_vectors, std::vector<int64_t>& out_lengths) {
    NEARLY_CHECK_ARG(d > 0, "ball carving: d must be positive");
    NEARLY_CHECK_ARG(std::isfinite(tau) && tau >= -1.f && tau <= 1.f, "ball carving: tau must be in [-1, 1]");
    const std::vector<size_t> off = ragged_offsets(lengths, n_sets, n_vectors, "query sets");
    check_finite(x, n_vectors * d, "the query vectors");
    // Per set: cluster of each vector, then the sums; sets in parallel.
    std::vector<std::vector<float>> sums(n_sets);
    for_tasks(n_sets, double(n_vectors) * 16 * d, [&](size_t s) {
        const float* v = x + off[s] * d;
        const size_t n = off[s + 1] - off[s];
        std::vector<size_t> centres;  // row of each cluster's first vector
        std::vector<float> norms(n);
        std::vector<float>& out = sums[s];
        for (size_t a = 0; a < n; a++) {
            double nn = 0;
            for (size_t i = 0; i < d; i++) nn += double(v[a * d + i]) * v[a * d + i];
            norms[a] = float(std::sqrt(nn));
            size_t best = centres.size();
            float best_cos = -FLT_MAX;
            for (size_t c = 0; c < centres.size(); c++) {
                const size_t b = centres[c];
                double ip = 0;
                for (size_t i = 0; i < d; i++) ip += double(v[a * d + i]) * v[b * d + i];
                const double den = double(norms[a]) * norms[b];
                const float cosv = den > 0 ? float(ip / den) : (norms[a] == 0 && norms[b] == 0 ? 1.f : 0.f);
                if (cosv >= tau && cosv > best_cos) {
                    best_cos = cosv;
                    best = c;
                }
            }
            if (best == centres.size()) {
                centres.push_back(a);
                out.resize(out.size() + d, 0.f);
            }
            float* sum = out.data() + best * d;
            for (size_t i = 0; i < d; i++) sum[i] += v[a * d + i];
        }
    });
    out_lengths.resize(n_sets);
    size_t total = 0;
    for (size_t s = 0; s < n_sets; s++) {
        out_lengths[s] = int64_t(sums[s].size() / d);
        total += sums[s].size();
    }
    out_vectors.resize(total);
    size_t at = 0;
    for (size_t s = 0; s < n_sets; s++) {
        std::copy(sums[s].begin(), sums[s].end(), out_vectors.begin() + at);
        at += sums[s].size();
    }
}

}  // namespace nearly
