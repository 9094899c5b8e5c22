#include "nearly/invlists.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

void InvertedLists::check_writable() const {
    if (file_) file_->check_writable();
}

void InvertedLists::refresh(size_t l, const CodeLayout& layout) {
    if (file_->generation() != generation_) return refresh_all(layout);
    const ListFile::Slot& s = file_->slots()[l];
    List& list = lists[l];
    if (s.capacity == 0) {
        list.ids.clear();
        list.codes.clear();
        return;
    }
    list.ids.view(file_->ids(l), s.size, file_->mapping());
    list.codes.view(file_->codes(l), layout.bytes(s.size), file_->mapping());
}

void InvertedLists::refresh_all(const CodeLayout& layout) {
    generation_ = file_->generation();
    for (size_t l = 0; l < lists.size(); l++) refresh(l, layout);
}

void InvertedLists::append(size_t l, const uint8_t* code, const CodeLayout& layout, idx_t id) {
    if (file_) {
        file_->check_writable();
        const size_t n = file_->slots()[l].size;
        file_->reserve(l, n + 1, layout);
        uint8_t* codes = file_->codes(l);
        // A new block starts zeroed, as a vector's would (a freed slot holds old bytes).
        if (layout.bytes(n + 1) > layout.bytes(n))
            std::memset(codes + layout.bytes(n), 0, layout.bytes(n + 1) - layout.bytes(n));
        layout.put(codes, n, code);
        file_->ids(l)[n] = id;
        file_->set_size(l, n + 1);
        refresh(l, layout);
        if (direct_map_) where_[id] = {l, n};
        return;
    }
    List& list = lists[l];
    list.codes.resize(layout.bytes(list.ids.size() + 1));
    layout.put(list.codes.data(), list.ids.size(), code);
    list.ids.push_back(id);
    if (direct_map_) where_[id] = {l, list.ids.size() - 1};
}

void InvertedLists::assign(size_t l, const idx_t* ids, size_t n, const uint8_t* codes, const CodeLayout& layout) {
    check_writable();
    if (!file_) {
        lists[l].ids = std::vector<idx_t>(ids, ids + n);
        lists[l].codes = std::vector<uint8_t>(codes, codes + layout.bytes(n));
    } else {
        file_->set_size(l, 0);
        file_->reserve(l, n, layout);
        std::memcpy(file_->ids(l), ids, n * sizeof(idx_t));
        std::memcpy(file_->codes(l), codes, layout.bytes(n));
        file_->set_size(l, n);
        refresh(l, layout);
    }
    if (direct_map_) rebuild_direct_map();
}

void InvertedLists::permute(const idx_t* perm) {
    if (file_) throw NotSupported("permute_invlists: lists in a file are not permuted (faiss's OnDiskInvertedLists "
                                  "has no permute either)");
    std::vector<char> seen(lists.size(), 0);
    for (size_t i = 0; i < lists.size(); i++) {
        NEARLY_CHECK_ARG(perm[i] >= 0 && size_t(perm[i]) < lists.size() && !seen[size_t(perm[i])],
                         "permute_invlists: the map must be a permutation of 0 .. " + std::to_string(lists.size() - 1));
        seen[size_t(perm[i])] = 1;
    }
    std::vector<List> old;
    old.swap(lists);
    lists.resize(old.size());
    for (size_t i = 0; i < lists.size(); i++) lists[i] = std::move(old[size_t(perm[i])]);
    rebuild_direct_map();
}

void InvertedLists::move_to_file(std::shared_ptr<ListFile> file, const CodeLayout& layout) {
    NEARLY_CHECK_ARG(file && file->nlist() == lists.size(), "move_to_file: a file for as many lists");
    file->check_writable();
    std::vector<List> old;
    old.swap(lists);
    lists.resize(old.size());
    file_ = std::move(file);
    generation_ = file_->generation();
    const bool dm = direct_map_;
    direct_map_ = false;
    for (size_t l = 0; l < old.size(); l++)
        if (!old[l].ids.empty()) assign(l, old[l].ids.data(), old[l].ids.size(), old[l].codes.data(), layout);
    refresh_all(layout);
    set_direct_map(dm);
}

size_t InvertedLists::merge_from(const std::vector<Source>& sources, const CodeLayout& layout, size_t code_size,
                                 bool verbose) {
    check_writable();
    size_t total = 0;
    for (const List& list : lists) total += list.ids.size();
    if (total) throw NotSupported("merge_from_multiple works only on empty inverted lists");
    std::vector<size_t> sizes(lists.size(), 0);
    for (const Source& s : sources)
        for (size_t l = 0; l < lists.size(); l++) sizes[l] += s.size(l);
    for (size_t n : sizes) total += n;
    if (file_) {
        file_->allocate_exact(sizes, layout);
    } else {
        for (size_t l = 0; l < lists.size(); l++) {
            lists[l].ids = std::vector<idx_t>(sizes[l]);
            lists[l].codes = std::vector<uint8_t>(layout.bytes(sizes[l]), 0);
        }
    }
    InterruptPoll poll;
    std::atomic<size_t> done{0};
    // List by list in parallel: each writes its own slot (the file is not
    // mapped anew meanwhile: every slot is already in place).
    parallel_for(lists.size(), [&](size_t l) {
        idx_t* ids = file_ ? file_->ids(l) : lists[l].ids.data();
        uint8_t* codes = file_ ? file_->codes(l) : lists[l].codes.data();
        std::vector<idx_t> src_ids;
        std::vector<uint8_t> src_codes;
        size_t at = 0;
        for (const Source& s : sources) {
            s.fetch(l, src_ids, src_codes);
            NEARLY_CHECK_ARG(src_codes.size() == src_ids.size() * code_size && at + src_ids.size() <= sizes[l],
                             "merge_from_multiple: a source changed while being merged");
            for (size_t j = 0; j < src_ids.size(); j++) {
                ids[at + j] = src_ids[j] + s.shift;
                layout.put(codes, at + j, &src_codes[j * code_size]);
            }
            at += src_ids.size();
        }
        NEARLY_CHECK_ARG(at == sizes[l], "merge_from_multiple: a source changed while being merged");
        if (file_) file_->set_size(l, at);
        const size_t d = ++done;
        if (verbose && (d % 1024 == 0 || d == lists.size())) std::printf("merged %zu / %zu lists\r", d, lists.size());
    });
    if (verbose) std::printf("\n");
    poll();
    if (file_) refresh_all(layout);
    if (direct_map_) rebuild_direct_map();
    return total;
}

size_t InvertedLists::remove(const IDSelector& sel, const CodeLayout& layout) {
    check_writable();
    std::vector<uint8_t> code(layout.code_size);
    size_t removed = 0;
    if (file_) {  // each list with removals written anew into its slot
        std::vector<idx_t> ids;
        std::vector<uint8_t> codes;
        for (size_t l = 0; l < lists.size(); l++) {
            const List& list = lists[l];
            ids.clear();
            codes.clear();
            for (size_t j = 0; j < list.ids.size(); j++) {
                if (sel.is_member(list.ids[j])) continue;
                codes.resize(layout.bytes(ids.size() + 1));
                layout.get(list.codes.data(), j, code.data());
                layout.put(codes.data(), ids.size(), code.data());
                ids.push_back(list.ids[j]);
            }
            if (ids.size() == list.ids.size()) continue;
            removed += list.ids.size() - ids.size();
            const bool dm = direct_map_;
            direct_map_ = false;
            assign(l, ids.data(), ids.size(), codes.data(), layout);
            direct_map_ = dm;
        }
        if (direct_map_ && removed) rebuild_direct_map();
        return removed;
    }
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
    if (file_) {
        file_->clear();
        generation_ = file_->generation();
    }
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
    w.pod<uint64_t>(file_ && w.writes_file());  // 0: inline, 1: in a lists file
    if (file_ && w.writes_file()) {
        file_->sync();
        w.str(file_->path());
        w.vec(file_->slots());
        w.pod<uint64_t>(file_->end());
        w.pod<uint8_t>(direct_map_);
        return;
    }
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
    const uint64_t in_file = r.version() >= 8 ? r.pod<uint64_t>() : 0;
    r.check(in_file <= 1, ("bad " + w + " lists storage").c_str());
    if (in_file) {
        std::string path = r.str();
        std::vector<ListFile::Slot> slots = r.vec<ListFile::Slot>();
        const uint64_t end = r.pod<uint64_t>();
        r.check(slots.size() == lists.size(), (w + " lists file: wrong number of lists").c_str());
        if (r.lists_same_dir) {
            if (r.source_path.empty())
                throw NotSupported("IO_FLAG_ONDISK_SAME_DIR works when reading an index from a file");
            const size_t slash = r.source_path.find_last_of('/');
            const std::string dir = slash == std::string::npos ? "./" : r.source_path.substr(0, slash + 1);
            const size_t name = path.find_last_of('/');
            path = dir + (name == std::string::npos ? path : path.substr(name + 1));
        }
        for (const ListFile::Slot& s : slots) total += s.size;
        r.check(total == size_t(total_expected), (w + " list sizes do not add up to ntotal").c_str());
        file_ = ListFile::open(path, std::move(slots), end, layout, !r.read_only);
        refresh_all(layout);
        const uint8_t direct_map = r.pod<uint8_t>();
        r.check(direct_map <= 1, ("bad " + w + " direct map flag").c_str());
        set_direct_map(direct_map != 0);
        return;
    }
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
