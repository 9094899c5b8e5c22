#include "nearly/lattice.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "nearly/common.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

constexpr int kMaxRepeatsDim = 100;  // faiss's binomial table holds n < 100 too
constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

// C(n, k) for n, k <= kMaxRepeatsDim, saturated at 2^64 - 1: the (de)coders
// only use values below a count() that fits, and a saturated one still
// compares as "too large".
uint64_t binom(int n, int k) {
    static const std::vector<uint64_t> table = [] {
        const int m = kMaxRepeatsDim + 1;
        std::vector<uint64_t> t(size_t(m) * m, 0);
        for (int i = 0; i < m; i++) {
            t[size_t(i) * m] = 1;
            for (int j = 1; j <= i; j++) {
                const uint64_t a = t[size_t(i - 1) * m + j], b = t[size_t(i - 1) * m + j - 1];
                t[size_t(i) * m + j] = a > kSaturated - b ? kSaturated : a + b;
            }
        }
        return t;
    }();
    if (k < 0 || k > n) return 0;
    return table[size_t(n) * (kMaxRepeatsDim + 1) + k];
}

uint64_t checked_mul(uint64_t a, uint64_t b, const char* what) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) throw InvalidArgument(std::string(what) + ": more than 2^64 lattice points");
    return r;
}

uint64_t checked_add(uint64_t a, uint64_t b, const char* what) {
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) throw InvalidArgument(std::string(what) + ": more than 2^64 lattice points");
    return r;
}

size_t bytes_for(uint64_t nv) {  // faiss's code_size: the bytes of nv itself
    size_t bytes = 0;
    for (; nv > 0; nv >>= 8) bytes++;
    return bytes;
}

// The atoms in faiss's order: each component from its largest possible
// value down, so the list is in decreasing lexicographic order.
void list_atoms(int remaining, int vmax, int left, std::vector<float>& cur, std::vector<float>& voc) {
    if (left == 0) {
        if (remaining == 0) voc.insert(voc.end(), cur.begin(), cur.end());
        return;
    }
    for (int v = std::min(vmax, int(std::sqrt(double(remaining))) + 1); v >= 0; v--) {
        if (v * v > remaining) continue;
        if (left * v * v < remaining) break;  // the rest cannot reach the sphere with components <= v
        cur.push_back(float(v));
        list_atoms(remaining - v * v, v, left - 1, cur, voc);
        cur.pop_back();
    }
}

// n values on the stack up to 64 (the sub-vectors IndexLattice codes), else
// on the heap: decoding a sub-vector is too quick for an allocation.
template <class T>
class SmallBuffer {
   public:
    explicit SmallBuffer(size_t n) : heap_(n > 64 ? n : 0), p_(n > 64 ? heap_.data() : stack_) {}
    T& operator[](size_t i) { return p_[i]; }

   private:
    T stack_[64];
    std::vector<T> heap_;
    T* p_;
};

}  // namespace

Repeats::Repeats(int dim, const float* c) : dim(dim) {
    NEARLY_CHECK_ARG(dim >= 0 && dim <= kMaxRepeatsDim, "Repeats: dim must be in [0, 100]");
    for (int i = 0; i < dim; i++) {
        NEARLY_CHECK_ARG(std::isfinite(c[i]), "Repeats: the values must be finite");
        auto it = std::find_if(repeats.begin(), repeats.end(), [&](const Repeat& r) { return r.val == c[i]; });
        if (it == repeats.end())
            repeats.push_back({c[i], 1});
        else
            it->n++;
    }
    (void)count();  // raises when the arrangements do not fit 64 bits
}

uint64_t Repeats::count() const {
    uint64_t total = 1;
    int remain = dim;
    for (const Repeat& r : repeats) {
        total = checked_mul(total, binom(remain, r.n), "Repeats");
        remain -= r.n;
    }
    return total;
}

// Each value's positions among the slots the earlier values left free, as a
// combination number (sum of C(rank, j) over its j-th position); the values'
// numbers are the digits of the code, in mixed radix C(free, n).
uint64_t Repeats::encode(const float* c) const {
    bool taken[kMaxRepeatsDim] = {};
    uint64_t code = 0, radix = 1;
    int nfree = dim;
    for (const Repeat& r : repeats) {
        uint64_t digit = 0;
        int rank = 0, seen = 0;
        for (int i = 0; i < dim && seen < r.n; i++) {
            if (taken[i]) continue;
            if (c[i] == r.val) {
                seen++;
                digit += binom(rank, seen);
                taken[i] = true;
            }
            rank++;
        }
        NEARLY_CHECK_ARG(seen == r.n, "Repeats.encode: the vector is not an arrangement of the Repeats' values");
        code += radix * digit;
        radix *= binom(nfree, r.n);
        nfree -= r.n;
    }
    return code;
}

void Repeats::decode(uint64_t code, float* c) const {
    NEARLY_CHECK_ARG(code < count(), "Repeats.decode: code " + std::to_string(code) + " out of range (count " +
                                         std::to_string(count()) + ")");
    bool taken[kMaxRepeatsDim] = {};
    int ranks[kMaxRepeatsDim];
    int nfree = dim;
    for (const Repeat& r : repeats) {
        const uint64_t radix = binom(nfree, r.n);
        uint64_t digit = code % radix;
        code /= radix;
        // The combination's ranks, largest first: the largest t with C(t, j) <= digit.
        int top = nfree;
        for (int j = r.n; j >= 1; j--) {
            while (binom(top, j) > digit) top--;
            digit -= binom(top, j);
            ranks[j - 1] = top;
        }
        int rank = 0, next = 0;
        for (int i = 0; i < dim && next < r.n; i++) {
            if (taken[i]) continue;
            if (rank == ranks[next]) {
                c[i] = r.val;
                taken[i] = true;
                next++;
            }
            rank++;
        }
        nfree -= r.n;
    }
}

ZnSphereSearch::ZnSphereSearch(int dim, int r2) : dimS(dim), r2(r2) {
    NEARLY_CHECK_ARG(dim > 0 && dim <= 64, "ZnSphereSearch: dim must be in [1, 64]");
    NEARLY_CHECK_ARG(r2 >= 0 && r2 <= 512, "ZnSphereSearch: r2 must be in [0, 512]");
    std::vector<float> cur;
    list_atoms(r2, r2, dim, cur, voc);
    natom = int(voc.size() / size_t(dim));
    NEARLY_CHECK_ARG(natom > 0, "ZnSphereSearch: no point of Z^" + std::to_string(dim) +
                                    " has squared norm " + std::to_string(r2));
}

// The closest direction: x's absolute values sorted decreasing meet each
// atom (sorted the same way) at their largest inner product; the best atom
// is then put back in x's order with x's signs.
float ZnSphereSearch::search(const float* x, float* c, int* atom) const {
    const int dim = dimS;
    int order[64];
    float xabs[64], xsorted[64];
    for (int i = 0; i < dim; i++) {
        order[i] = i;
        xabs[i] = std::fabs(x[i]);
    }
    std::sort(order, order + dim, [&](int a, int b) { return xabs[a] > xabs[b]; });
    for (int i = 0; i < dim; i++) xsorted[i] = xabs[order[i]];
    const SimdKernels& K = simd();
    int best = -1;
    float best_ip = -100.f;
    for (int i = 0; i < natom; i++) {
        const float ip = K.inner_product(voc.data() + size_t(i) * dim, xsorted, size_t(dim));
        if (ip > best_ip) {
            best_ip = ip;
            best = i;
        }
    }
    NEARLY_CHECK_ARG(best >= 0, "ZnSphereSearch: the vector must be finite");
    const float* a = voc.data() + size_t(best) * dim;
    for (int i = 0; i < dim; i++) c[order[i]] = std::copysign(a[i], x[order[i]]);
    if (atom) *atom = best;
    return best_ip;
}

void EnumeratedVectors::encode_multi(size_t n, const float* x, uint64_t* codes) const {
    parallel_for_blocks(n, 1024, [&](size_t i) { codes[i] = encode(x + i * size_t(dim)); });
}

void EnumeratedVectors::decode_multi(size_t n, const uint64_t* codes, float* c) const {
    parallel_for_blocks(n, 1024, [&](size_t i) { decode(codes[i], c + i * size_t(dim)); });
}

ZnSphereCodec::ZnSphereCodec(int dim, int r2) : ZnSphereSearch(dim, r2), EnumeratedVectors(dim) {
    uint64_t total = 0;
    for (int i = 0; i < natom; i++) {
        CodeSegment seg{Repeats(dim, voc.data() + size_t(i) * dim), total, dim};
        const Repeats::Repeat& last = seg.repeats.repeats.back();  // the smallest value
        if (last.val == 0) seg.signbits = dim - last.n;
        const uint64_t count = seg.repeats.count();
        NEARLY_CHECK_ARG(seg.signbits < 64 && count <= (kSaturated >> seg.signbits),
                         "ZnSphereCodec: more than 2^64 lattice points");
        total = checked_add(total, count << seg.signbits, "ZnSphereCodec");
        code_segments.push_back(std::move(seg));
    }
    nv = total;
    code_size = bytes_for(nv);
}

uint64_t ZnSphereCodec::encode(const float* x) const {
    float c[64], cabs[64];
    int atom;
    search(x, c, &atom);
    uint64_t signs = 0;
    int nonzero = 0;
    for (int i = 0; i < dimS; i++) {
        cabs[i] = std::fabs(c[i]);
        if (c[i] != 0) {
            if (c[i] < 0) signs |= uint64_t(1) << nonzero;
            nonzero++;
        }
    }
    const CodeSegment& seg = code_segments[size_t(atom)];
    return seg.c0 + signs + (seg.repeats.encode(cabs) << seg.signbits);
}

void ZnSphereCodec::decode(uint64_t code, float* c) const {
    NEARLY_CHECK_ARG(code < nv, "ZnSphereCodec.decode: code " + std::to_string(code) + " out of range (nv " +
                                    std::to_string(nv) + ")");
    const auto seg = std::prev(std::upper_bound(code_segments.begin(), code_segments.end(), code,
                                                [](uint64_t v, const CodeSegment& s) { return v < s.c0; }));
    code -= seg->c0;
    const uint64_t signs = code;
    seg->repeats.decode(code >> seg->signbits, c);
    int nonzero = 0;
    for (int i = 0; i < dimS; i++) {
        if (c[i] != 0) {
            if (signs & (uint64_t(1) << nonzero)) c[i] = -c[i];
            nonzero++;
        }
    }
}

// all_nv[ld][s]: points of Z^(2^ld) of squared norm s. A point of Z^(2^ld)
// is two halves (norms a + b = s): numbered by a first (the cumulative
// table), then the first half's number, then the second's.
ZnSphereCodecRec::ZnSphereCodecRec(int dim, int r2) : EnumeratedVectors(dim), r2(r2) {
    NEARLY_CHECK_ARG(dim > 0 && (dim & (dim - 1)) == 0, "ZnSphereCodecRec: dim must be a power of 2");
    NEARLY_CHECK_ARG(r2 >= 0, "ZnSphereCodecRec: r2 must be non-negative");
    while ((1 << log2_dim) < dim) log2_dim++;
    const size_t w = size_t(r2) + 1;
    NEARLY_CHECK_ARG(size_t(log2_dim + 1) * w * w <= (size_t(1) << 27),
                     "ZnSphereCodecRec: r2 too large (its tables would exceed 1 GB)");
    all_nv.assign(size_t(log2_dim + 1) * w, 0);
    all_nv_cum.assign(size_t(log2_dim + 1) * w * w, 0);
    for (int s = 0; s <= r2; s++) {
        const int r = int(std::lround(std::sqrt(double(s))));
        all_nv[size_t(s)] = s == 0 ? 1 : r * r == s ? 2 : 0;  // 0, or +-r
    }
    for (int ld = 1; ld <= log2_dim; ld++) {
        for (int s = 0; s <= r2; s++) {
            uint64_t acc = 0;
            for (int a = 0; a <= s; a++) {
                all_nv_cum[(size_t(ld) * w + s) * w + a] = acc;
                acc = checked_add(acc, checked_mul(get_nv(ld - 1, a), get_nv(ld - 1, s - a), "ZnSphereCodecRec"),
                                  "ZnSphereCodecRec");
            }
            all_nv[size_t(ld) * w + s] = acc;
        }
    }
    nv = get_nv(log2_dim, r2);
    code_size = bytes_for(nv);
    // The last levels of decode come from a table of the points of
    // Z^8 (faiss's level), or of a lower level when that table would pass
    // 2^22 floats (16 MB).
    for (int level = std::min(3, log2_dim - 1); level > 0; level--) {
        size_t floats = 0;
        for (int t = 0; t <= r2; t++) floats += size_t(get_nv(level, t)) << level;
        if (floats > (size_t(1) << 22)) continue;
        decode_cache.assign(size_t(r2) + 1, {});
        for (int t = 0; t <= r2; t++) {
            std::vector<float>& table = decode_cache[size_t(t)];
            table.resize(size_t(get_nv(level, t)) << level);
            for (uint64_t i = 0; i < get_nv(level, t); i++) decode_sub(level, t, i, 0, table.data() + (i << level));
        }
        decode_cache_ld = level;
        break;
    }
}

uint64_t ZnSphereCodecRec::encode_centroid(const float* c) const {
    // per node of the current level: its number and squared norm (dim <= 64
    // on the stack: IndexLattice's sub-vectors)
    SmallBuffer<uint64_t> codes{size_t(dim)};
    SmallBuffer<int> norms{size_t(dim)};
    int64_t total = 0;
    for (int i = 0; i < dim; i++) {
        NEARLY_CHECK_ARG(std::isfinite(c[i]) && c[i] == std::round(c[i]) && std::fabs(c[i]) <= r2,
                         "ZnSphereCodecRec.encode_centroid: c must be a point of Z^dim on the sphere of squared "
                         "radius r2");
        norms[i] = int(c[i] * c[i]);
        codes[i] = c[i] < 0 ? 1 : 0;
        total += norms[i];
    }
    NEARLY_CHECK_ARG(total == r2, "ZnSphereCodecRec.encode_centroid: c has squared norm " + std::to_string(total) +
                                      ", not r2 = " + std::to_string(r2));
    for (int ld = 1, half = dim / 2; ld <= log2_dim; ld++, half /= 2) {
        for (int i = 0; i < half; i++) {
            const int a = norms[2 * i], b = norms[2 * i + 1];
            codes[i] = get_nv_cum(ld, a + b, a) + codes[2 * i] * get_nv(ld - 1, b) + codes[2 * i + 1];
            norms[i] = a + b;
        }
    }
    return codes[0];
}

void ZnSphereCodecRec::decode_sub(int ld, int s, uint64_t code, int stop, float* c) const {
    const size_t leaves = size_t(1) << (ld - stop);
    SmallBuffer<uint64_t> codes{leaves};
    SmallBuffer<int> norms{leaves};
    codes[0] = code;
    norms[0] = s;
    const size_t w = size_t(r2) + 1;
    for (size_t nodes = 1; ld > stop; ld--, nodes *= 2) {
        for (size_t i = nodes; i-- > 0;) {  // from the end: node i's halves go to 2i and 2i + 1
            const int si = norms[i];
            const uint64_t* cum = &all_nv_cum[(size_t(ld) * w + si) * w];
            const int a = int(std::upper_bound(cum, cum + si + 1, codes[i]) - cum) - 1;  // last cum[a] <= code
            const uint64_t rest = codes[i] - cum[a], nb = get_nv(ld - 1, si - a);
            codes[2 * i] = rest / nb;
            codes[2 * i + 1] = rest % nb;
            norms[2 * i] = a;
            norms[2 * i + 1] = si - a;
        }
    }
    if (stop == 0) {
        for (size_t i = 0; i < leaves; i++) {
            const float r = float(std::sqrt(double(norms[i])));
            c[i] = norms[i] == 0 ? 0.f : codes[i] == 0 ? r : -r;
        }
        return;
    }
    const size_t sub = size_t(1) << stop;
    for (size_t i = 0; i < leaves; i++)
        std::copy_n(decode_cache[size_t(norms[i])].data() + codes[i] * sub, sub, c + i * sub);
}

void ZnSphereCodecRec::decode(uint64_t code, float* c) const {
    NEARLY_CHECK_ARG(code < nv, "ZnSphereCodecRec.decode: code " + std::to_string(code) + " out of range (nv " +
                                    std::to_string(nv) + ")");
    decode_sub(log2_dim, r2, code, decode_cache_ld, c);
}

ZnSphereCodecAlt::ZnSphereCodecAlt(int dim, int r2) : ZnSphereCodec(dim, r2), use_rec((dim & (dim - 1)) == 0) {
    if (use_rec) rec.emplace_back(dim, r2);
}

uint64_t ZnSphereCodecAlt::encode(const float* x) const {
    if (!use_rec) return ZnSphereCodec::encode(x);
    float c[64];
    search(x, c);
    return rec[0].encode_centroid(c);
}

void ZnSphereCodecAlt::decode(uint64_t code, float* c) const {
    if (!use_rec) return ZnSphereCodec::decode(code, c);
    rec[0].decode(code, c);
}

}  // namespace nearly
