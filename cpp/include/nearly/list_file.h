// Inverted lists kept in a file of their own instead of memory (faiss's
// OnDiskInvertedLists): the file is mapped shared, so searches read it
// through the page cache (the lists may be larger than memory) and adds
// write into it. write_index then records the file's name and the lists'
// places in it, not the lists.
//
// Each list owns a slot of the file with room for `capacity` entries: the
// ids (8 bytes each), then the codes in the owner's layout. A list that
// outgrows its slot moves to a free stretch twice as large (first fit, or
// the end of the file, which grows by doubling and stays sparse), and its
// old slot is freed. One object writes a file at a time: a writable open
// takes an exclusive advisory lock (flock); where another holds it, the
// file is opened read-only and any change raises.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/common.h"

namespace nearly {

class ListFile {
   public:
    // Offset and bytes in the file; size and capacity in entries (the
    // capacity ids, then the codes: the capacity's codes fit in the bytes
    // under the owner's layout, which an index's replace_invlists may change).
    struct Slot {
        uint64_t offset = 0, size = 0, capacity = 0, bytes = 0;
    };

    // A new file at path (an existing one is emptied) for nlist empty lists.
    static std::shared_ptr<ListFile> create(const std::string& path, size_t nlist);
    // The file an index file names, with the slots it recorded: each slot
    // must lie inside the file and none may overlap (CorruptData otherwise).
    static std::shared_ptr<ListFile> open(const std::string& path, std::vector<Slot> slots, uint64_t end,
                                          const CodeLayout& layout, bool writable);
    ListFile(const ListFile&) = delete;
    ListFile& operator=(const ListFile&) = delete;
    ~ListFile();

    const std::string& path() const { return path_; }
    // Why changes are refused (read-only open, or the lock held elsewhere); empty when they are not.
    const std::string& read_only_reason() const { return read_only_reason_; }
    void check_writable() const;
    size_t nlist() const { return slots_.size(); }
    const std::vector<Slot>& slots() const { return slots_; }
    uint64_t end() const { return end_; }  // bytes of the file in use

    // Room for n entries in list l under layout (the first slot(l).size
    // entries kept; the list moves if its slot is too small).
    void reserve(size_t l, size_t n, const CodeLayout& layout);
    void set_size(size_t l, size_t n);
    // Every slot laid out anew one after the other with room for exactly
    // sizes[l] entries, every list empty (a merge into an empty file).
    void allocate_exact(const std::vector<size_t>& sizes, const CodeLayout& layout);
    void clear();  // every list empty, the file truncated

    idx_t* ids(size_t l) { return reinterpret_cast<idx_t*>(base() + slots_[l].offset); }
    uint8_t* codes(size_t l) { return base() + slots_[l].offset + slots_[l].capacity * sizeof(idx_t); }
    // What a view into the current mapping keeps alive; generation()
    // changes whenever the file is mapped anew (every view must then be
    // taken again).
    std::shared_ptr<const void> mapping() const { return mapping_; }
    uint64_t generation() const { return generation_; }
    // Writes the mapped pages back to the file (before an index file names it).
    void sync() const;

   private:
    struct Mapping;
    ListFile() = default;
    uint8_t* base() const;
    static uint64_t slot_bytes(uint64_t capacity, const CodeLayout& layout);
    uint64_t allocate(uint64_t bytes);
    void release(uint64_t offset, uint64_t bytes);
    void map(uint64_t file_size);

    std::string path_, read_only_reason_;
    int fd_ = -1;
    std::vector<Slot> slots_;
    std::map<uint64_t, uint64_t> free_;  // offset -> bytes, coalesced
    uint64_t end_ = 0, file_size_ = 0, generation_ = 0;
    std::shared_ptr<Mapping> mapping_;
};

}  // namespace nearly
