#include "nearly/selector.h"

#include <algorithm>

namespace nearly {

std::pair<size_t, size_t> IDSelectorRange::sorted_ids_bounds(const idx_t* ids, size_t n) const {
    const size_t j0 = size_t(std::lower_bound(ids, ids + n, imin) - ids);
    const size_t j1 = size_t(std::lower_bound(ids + j0, ids + n, imax) - ids);
    return {j0, std::max(j0, j1)};
}

namespace {
inline uint64_t bloom_hash(idx_t id) { return uint64_t(id) * 0x9E3779B97F4A7C15ull; }
}  // namespace

IDSelectorBatch::IDSelectorBatch(std::vector<idx_t> ids) : sorted_(std::move(ids)) {
    std::sort(sorted_.begin(), sorted_.end());
    sorted_.erase(std::unique(sorted_.begin(), sorted_.end()), sorted_.end());
    // About 16 bits per id, a power of two so the position is a mask.
    size_t bits = 64;
    while (bits < sorted_.size() * 16) bits <<= 1;
    bloom_.assign(bits / 64, 0);
    bloom_mask_ = bits - 1;
    for (idx_t id : sorted_) {
        uint64_t h = bloom_hash(id) >> 20 & bloom_mask_;
        bloom_[h >> 6] |= uint64_t(1) << (h & 63);
    }
}

bool IDSelectorBatch::is_member(idx_t id) const {
    uint64_t h = bloom_hash(id) >> 20 & bloom_mask_;
    if (!((bloom_[h >> 6] >> (h & 63)) & 1)) return false;
    return std::binary_search(sorted_.begin(), sorted_.end(), id);
}

}  // namespace nearly
