#include "nearly/index_flat_codes.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "nearly/parallel.h"

namespace nearly {

void IndexFlatCodes::add(idx_t n, const float* x) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    check_add_args(n, x);
    if (n == 0) return;
    std::vector<uint8_t> codes(size_t(n) * code_size());
    encode(size_t(n), x, codes.data());
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    if (lay.block == 1) {
        codes_.insert(codes_.end(), codes.begin(), codes.end());
    } else {
        codes_.resize(lay.bytes(size_t(ntotal + n)));
        for (size_t i = 0; i < size_t(n); i++) lay.put(codes_.data(), size_t(ntotal) + i, &codes[i * lay.code_size]);
    }
    ntotal += n;
    if (verbose) std::printf("Index%s::add: added %lld vectors\n", type_name().c_str(), (long long)n);
}

void IndexFlatCodes::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before sa_decode()");
    const size_t cs = code_size();
    parallel_for((size_t(n) + 255) / 256, [&](size_t b) {
        for (size_t i = b * 256; i < std::min(size_t(n), b * 256 + 256); i++) decode(bytes + i * cs, x + i * d);
    });
}

void IndexFlatCodes::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (key < 0 || key >= ntotal) throw OutOfRange("key " + std::to_string(key) + " not found");
    std::vector<uint8_t> code(code_size());
    layout().get(codes_.data(), size_t(key), code.data());
    decode(code.data(), out);
}

size_t IndexFlatCodes::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    std::vector<uint8_t> code(lay.code_size);
    size_t keep = 0;
    for (size_t i = 0; i < size_t(ntotal); i++) {
        if (sel.is_member(idx_t(i))) continue;
        if (keep != i) {
            lay.get(codes_.data(), i, code.data());
            lay.put(codes_.data(), keep, code.data());
        }
        keep++;
    }
    const size_t removed = size_t(ntotal) - keep;
    codes_.resize(lay.bytes(keep));
    ntotal = idx_t(keep);
    return removed;
}

void IndexFlatCodes::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    codes_.clear();
    ntotal = 0;
}

std::vector<uint8_t> IndexFlatCodes::get_codes() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    if (lay.block == 1) return codes_;
    std::vector<uint8_t> out(size_t(ntotal) * lay.code_size);
    for (size_t i = 0; i < size_t(ntotal); i++) lay.get(codes_.data(), i, &out[i * lay.code_size]);
    return out;
}

}  // namespace nearly
