// Spherical codes on the integer lattice Z^dim (faiss's lattice_Zn): the
// points of Z^dim on the sphere of squared radius r2, each given a number in
// [0, nv). A vector is encoded as the point whose direction is closest to
// its own. The numbering is faiss's, so codes are equal to faiss's.
//
// ZnSphereCodec numbers a point as (its "atom", the sorted absolute values;
// the arrangement of those values; the signs of its non-zero components).
// ZnSphereCodecRec numbers it recursively by halves (dim a power of 2),
// without listing atoms. ZnSphereCodecAlt searches like the first and
// numbers like the second where dim is a power of 2 (IndexLattice's codec).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

// A multiset of dim values (first-appearance order) and the arrangements of
// it: encode numbers a vector holding exactly these values (0 <= code <
// count()), decode writes the arrangement of a number.
struct Repeats {
    struct Repeat {
        float val;
        int n;
    };
    int dim = 0;
    std::vector<Repeat> repeats;

    Repeats() = default;
    Repeats(int dim, const float* c);
    uint64_t count() const;  // dim! / prod(n!), checked for overflow
    uint64_t encode(const float* c) const;
    void decode(uint64_t code, float* c) const;
};

// The points of Z^dim with non-increasing, non-negative components on the
// sphere of squared radius r2 ("atoms", natom x dim in voc), largest first.
struct ZnSphereSearch {
    int dimS, r2;
    int natom = 0;
    std::vector<float> voc;

    ZnSphereSearch(int dim, int r2);
    // Writes into c the sphere point of largest inner product with x and
    // returns that inner product; atom: which atom c is a signed arrangement of.
    float search(const float* x, float* c, int* atom = nullptr) const;
};

// Numbers of sphere points for a codec; encode maps any vector to the
// number of its closest point (for the Rec codec: of x itself, a point).
struct EnumeratedVectors {
    uint64_t nv = 0;
    int dim;
    explicit EnumeratedVectors(int dim) : dim(dim) {}
    virtual ~EnumeratedVectors() = default;
    virtual uint64_t encode(const float* x) const = 0;
    virtual void decode(uint64_t code, float* c) const = 0;
    void encode_multi(size_t n, const float* x, uint64_t* codes) const;
    void decode_multi(size_t n, const uint64_t* codes, float* c) const;
};

struct ZnSphereCodec : ZnSphereSearch, EnumeratedVectors {
    // The numbers of one atom's points start at c0: the arrangement number
    // times 2^signbits plus the sign bits of its non-zero components.
    struct CodeSegment {
        Repeats repeats;
        uint64_t c0;
        int signbits;
    };
    std::vector<CodeSegment> code_segments;
    size_t code_size = 0;  // bytes of nv (faiss's rule)

    ZnSphereCodec(int dim, int r2);
    uint64_t encode(const float* x) const override;
    void decode(uint64_t code, float* c) const override;
};

struct ZnSphereCodecRec : EnumeratedVectors {
    int r2;
    int log2_dim = 0;
    size_t code_size = 0;

    ZnSphereCodecRec(int dim, int r2);
    // c must be a point of the sphere (integer components, squared norm r2).
    uint64_t encode_centroid(const float* c) const;
    uint64_t encode(const float* x) const override { return encode_centroid(x); }
    void decode(uint64_t code, float* c) const override;
    // Points of Z^(2^ld) with squared norm r2a.
    uint64_t get_nv(int ld, int r2a) const { return all_nv[size_t(ld) * (r2 + 1) + r2a]; }
    // Points of Z^(2^ld) with squared norm r2t whose first half has a squared
    // norm below r2a: the first number of those whose first half has r2a.
    uint64_t get_nv_cum(int ld, int r2t, int r2a) const {
        return all_nv_cum[(size_t(ld) * (r2 + 1) + r2t) * (r2 + 1) + r2a];
    }

    int decode_cache_ld = 0;  // decode reads the points of Z^(2^decode_cache_ld) from a table

   private:
    std::vector<uint64_t> all_nv, all_nv_cum;
    // decode_cache[s]: every point of Z^(2^decode_cache_ld) of squared norm
    // s, by number (the last levels of decode, done once).
    std::vector<std::vector<float>> decode_cache;
    // Writes point `code` of Z^(2^ld) with squared norm s, splitting halves
    // down to level `stop` (then the cache, or signed roots at level 0).
    void decode_sub(int ld, int s, uint64_t code, int stop, float* c) const;
};

struct ZnSphereCodecAlt : ZnSphereCodec {
    bool use_rec;  // dim is a power of 2
    std::vector<ZnSphereCodecRec> rec;  // one, when use_rec

    ZnSphereCodecAlt(int dim, int r2);
    uint64_t encode(const float* x) const override;
    void decode(uint64_t code, float* c) const override;
};

}  // namespace nearly
