#include "nearly/list_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nearly {

namespace {
constexpr uint64_t kSlotAlign = 64;
constexpr uint64_t kMinFileSize = uint64_t(1) << 20;

std::string os_error(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}
}  // namespace

// One mapping of the file; views of the lists hold it, so it stays mapped
// until the last of them is taken again from a newer one.
struct ListFile::Mapping {
    uint8_t* data = nullptr;
    size_t size = 0;
    ~Mapping() {
        if (data) munmap(data, size);
    }
};

uint8_t* ListFile::base() const { return mapping_ ? mapping_->data : nullptr; }

uint64_t ListFile::slot_bytes(uint64_t capacity, const CodeLayout& layout) {
    if (capacity == 0) return 0;
    const uint64_t b = capacity * sizeof(idx_t) + layout.bytes(capacity);
    return (b + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
}

std::shared_ptr<ListFile> ListFile::create(const std::string& path, size_t nlist) {
    std::shared_ptr<ListFile> f(new ListFile());
    f->path_ = path;
    f->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f->fd_ < 0) throw std::runtime_error(os_error("could not create the lists file", path));
    if (flock(f->fd_, LOCK_EX | LOCK_NB) != 0)
        throw NotSupported("the lists file " + path + " is open in another index (this process or another): it "
                           "cannot be emptied for new lists under it");
    if (ftruncate(f->fd_, 0) != 0) throw std::runtime_error(os_error("could not empty the lists file", path));
    f->slots_.resize(nlist);
    return f;
}

std::shared_ptr<ListFile> ListFile::open(const std::string& path, std::vector<Slot> slots, uint64_t end,
                                         const CodeLayout& layout, bool writable) {
    std::shared_ptr<ListFile> f(new ListFile());
    f->path_ = path;
    f->fd_ = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (f->fd_ < 0 && writable && (errno == EACCES || errno == EROFS)) {
        writable = false;
        f->read_only_reason_ = "the lists file " + path + " cannot be written (" + std::strerror(errno) + ")";
        f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (f->fd_ < 0) {
        if (errno == ENOENT)
            throw FileMissing("the lists file " + path + " that the index names does not exist (moved? read with "
                              "IO_FLAG_ONDISK_SAME_DIR to look beside the index file)");
        throw std::runtime_error(os_error("could not open the lists file", path));
    }
    if (writable && flock(f->fd_, LOCK_EX | LOCK_NB) != 0) {
        writable = false;
        f->read_only_reason_ = "the lists file " + path + " is open for writing by another index (this process or "
                               "another): this index can search it but not change it";
    }
    // A reader holds a shared lock where it can, so that no index creates
    // the file anew under it (OnDiskInvertedLists empties an existing file).
    if (!writable) (void)flock(f->fd_, LOCK_SH | LOCK_NB);
    if (!writable && f->read_only_reason_.empty())
        f->read_only_reason_ = "the lists file " + path + " was opened read-only";
    struct stat sb;
    if (fstat(f->fd_, &sb) != 0) throw std::runtime_error(os_error("could not stat the lists file", path));
    const uint64_t size = uint64_t(sb.st_size);
    auto corrupt = [&](const std::string& why) {
        throw CorruptData("cannot read index: the lists file " + path + " does not match the index (" + why + ")");
    };
    if (end > size) corrupt("it is shorter than the lists it should hold");
    // Slots in file order: each inside [0, end), after the previous one; the
    // gaps are the free stretches.
    std::vector<size_t> order;
    for (size_t l = 0; l < slots.size(); l++) {
        const Slot& s = slots[l];
        if (s.size > s.capacity) corrupt("a list larger than its slot");
        if (s.capacity > (uint64_t(1) << 40) || s.bytes > (uint64_t(1) << 56)) corrupt("a slot too large");
        if (s.bytes < slot_bytes(s.capacity, layout)) corrupt("a slot too small for its capacity");
        if (s.bytes && s.offset % kSlotAlign) corrupt("a misaligned slot");
        if (s.bytes) order.push_back(l);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slots[a].offset < slots[b].offset; });
    uint64_t at = 0;
    for (size_t l : order) {
        const uint64_t bytes = slots[l].bytes;
        if (slots[l].offset < at) corrupt("overlapping slots");
        if (slots[l].offset > end || bytes > end - slots[l].offset) corrupt("a slot past the end");
        if (slots[l].offset > at) f->free_[at] = slots[l].offset - at;
        at = slots[l].offset + bytes;
    }
    if (end > at) f->free_[at] = end - at;
    f->slots_ = std::move(slots);
    f->end_ = end;
    if (size > 0) {
        auto m = std::make_shared<Mapping>();
        void* p = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, f->fd_, 0);
        if (p == MAP_FAILED) throw std::runtime_error(os_error("could not map the lists file", path));
        m->data = static_cast<uint8_t*>(p);
        m->size = size;
        f->mapping_ = std::move(m);
    }
    f->file_size_ = size;
    return f;
}

ListFile::~ListFile() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock; the mapping lives on with the last view of it
}

void ListFile::check_writable() const {
    if (!read_only_reason_.empty()) throw NotSupported(read_only_reason_);
}

void ListFile::map(uint64_t file_size) {
    if (ftruncate(fd_, off_t(file_size)) != 0) throw std::runtime_error(os_error("could not grow the lists file", path_));
    auto m = std::make_shared<Mapping>();
    if (file_size > 0) {
        void* p = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) throw std::runtime_error(os_error("could not map the lists file", path_));
        m->data = static_cast<uint8_t*>(p);
        m->size = file_size;
    }
    mapping_ = std::move(m);
    file_size_ = file_size;
    generation_++;
}

uint64_t ListFile::allocate(uint64_t bytes) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->second < bytes) continue;
        const uint64_t at = it->first, rest = it->second - bytes;
        free_.erase(it);
        if (rest) free_[at + bytes] = rest;
        return at;
    }
    // The end of the file, less a free stretch that ends there.
    uint64_t at = end_;
    if (!free_.empty()) {
        auto last = std::prev(free_.end());
        if (last->first + last->second == end_) {
            at = last->first;
            free_.erase(last);
        }
    }
    if (at + bytes > file_size_) map(std::max({at + bytes, file_size_ * 2, kMinFileSize}));
    end_ = at + bytes;
    return at;
}

void ListFile::release(uint64_t offset, uint64_t bytes) {
    if (bytes == 0) return;
    auto next = free_.lower_bound(offset);
    if (next != free_.end() && offset + bytes == next->first) {
        bytes += next->second;
        next = free_.erase(next);
    }
    if (next != free_.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == offset) {
            offset = prev->first;
            bytes += prev->second;
            free_.erase(prev);
        }
    }
    if (offset + bytes == end_) {
        end_ = offset;  // the file keeps its size; the stretch is taken again first
        return;
    }
    free_[offset] = bytes;
}

void ListFile::reserve(size_t l, size_t n, const CodeLayout& layout) {
    check_writable();
    Slot& s = slots_[l];
    if (n <= s.capacity && slot_bytes(s.capacity, layout) <= s.bytes) return;
    uint64_t capacity = std::max<uint64_t>(s.capacity, 1);
    while (capacity < n) capacity *= 2;
    const uint64_t bytes = slot_bytes(capacity, layout);
    const uint64_t at = allocate(bytes);  // may map the file anew: take base() after
    uint8_t* b = base();
    if (s.size) {
        std::memmove(b + at, b + s.offset, s.size * sizeof(idx_t));
        std::memmove(b + at + capacity * sizeof(idx_t), b + s.offset + s.capacity * sizeof(idx_t),
                     layout.bytes(s.size));
    }
    const uint64_t old_offset = s.offset, old_bytes = s.bytes;
    s.offset = at;
    s.capacity = capacity;
    s.bytes = bytes;
    release(old_offset, old_bytes);
}

void ListFile::set_size(size_t l, size_t n) {
    check_writable();
    slots_[l].size = std::min<uint64_t>(n, slots_[l].capacity);
}

void ListFile::allocate_exact(const std::vector<size_t>& sizes, const CodeLayout& layout) {
    check_writable();
    NEARLY_CHECK_ARG(sizes.size() == slots_.size(), "allocate_exact: one size per list");
    uint64_t at = 0;
    for (size_t l = 0; l < sizes.size(); l++) {
        const uint64_t bytes = slot_bytes(sizes[l], layout);
        slots_[l] = Slot{bytes ? at : 0, 0, sizes[l], bytes};
        at += bytes;
    }
    free_.clear();
    end_ = at;
    map(std::max(at, kMinFileSize));
}

void ListFile::clear() {
    check_writable();
    for (Slot& s : slots_) s = Slot{};
    free_.clear();
    end_ = 0;
    // The file keeps its size: another index mapping it (read-only, opened
    // while this one wrote) would fault on pages past a shorter end. Its
    // blocks are given back where the file system can (a hole reads as zeros).
#ifdef FALLOC_FL_PUNCH_HOLE
    if (file_size_) (void)fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(file_size_));
#endif
}

void ListFile::sync() const {
    if (mapping_ && mapping_->data && read_only_reason_.empty() && msync(mapping_->data, mapping_->size, MS_SYNC) != 0)
        throw std::runtime_error(os_error("could not write back the lists file", path_));
}

}  // namespace nearly
