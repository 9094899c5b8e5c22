#include "nearly/invlists.h"

#include <algorithm>
#include <string>

#include "nearly/io.h"

namespace nearly {

void InvertedLists::append(size_t l, const uint8_t* code, const CodeLayout& layout, idx_t id) {
    List& list = lists[l];
    list.codes.resize(layout.bytes(list.ids.size() + 1));
    layout.put(list.codes.data(), list.ids.size(), code);
    list.ids.push_back(id);
    if (direct_map_) where_[id] = {l, list.ids.size() - 1};
}

size_t InvertedLists::remove(const IDSelector& sel, const CodeLayout& layout) {
    std::vector<uint8_t> code(layout.code_size);
    size_t removed = 0;
    for (List& list : lists) {
        size_t keep = 0;
        for (size_t j = 0; j < list.ids.size(); j++) {
            if (sel.is_member(list.ids[j])) continue;
            if (keep != j) {
                list.ids[keep] = list.ids[j];
                layout.get(list.codes.data(), j, code.data());
                layout.put(list.codes.data(), keep, code.data());
            }
            keep++;
        }
        removed += list.ids.size() - keep;
        list.ids.resize(keep);
        list.codes.resize(layout.bytes(keep));
    }
    if (direct_map_ && removed) rebuild_direct_map();
    return removed;
}

void InvertedLists::clear() {
    for (List& list : lists) {
        list.codes.clear();
        list.ids.clear();
    }
    where_.clear();
}

void InvertedLists::set_direct_map(bool enable) {
    direct_map_ = enable;
    rebuild_direct_map();
}

void InvertedLists::rebuild_direct_map() {
    where_.clear();
    if (!direct_map_) return;
    for (size_t l = 0; l < lists.size(); l++)
        for (size_t j = 0; j < lists[l].ids.size(); j++) where_[lists[l].ids[j]] = {l, j};
}

std::pair<size_t, size_t> InvertedLists::locate(idx_t key) const {
    if (!direct_map_) throw NotSupported("direct map not initialized: call make_direct_map() before reconstruct()");
    auto it = where_.find(key);
    if (it == where_.end()) throw OutOfRange("key " + std::to_string(key) + " not found");
    return it->second;
}

void InvertedLists::write(Writer& w, size_t unit) const {
    for (const List& list : lists) {
        w.array(list.ids);
        w.pod<uint64_t>(list.codes.size() / unit);
        w.align(array_alignment(list.codes.size(), 1));
        w.bytes(list.codes.data(), list.codes.size());
    }
    w.pod<uint8_t>(direct_map_);
}

void InvertedLists::read(Reader& r, size_t unit, const CodeLayout& layout, idx_t total_expected,
                         const char* what) {
    const std::string w(what);
    size_t total = 0;
    for (List& list : lists) {
        r.array(list.ids);
        const uint64_t count = r.pod<uint64_t>();
        r.check(count <= r.remaining() / unit, "truncated or corrupt data (array larger than the file)");
        r.align(array_alignment(count * unit, 1));
        r.check(count <= r.remaining() / unit, "truncated or corrupt data (array larger than the file)");
        r.check(count * unit == layout.bytes(list.ids.size()), (w + " list sizes do not match").c_str());
        r.elements(list.codes, count * unit);
        total += list.ids.size();
    }
    r.check(total == size_t(total_expected), (w + " list sizes do not add up to ntotal").c_str());
    const uint8_t direct_map = r.pod<uint8_t>();
    r.check(direct_map <= 1, ("bad " + w + " direct map flag").c_str());
    set_direct_map(direct_map != 0);
}

}  // namespace nearly
