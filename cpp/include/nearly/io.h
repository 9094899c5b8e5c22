// The serialized format of nearly indexes (write_index, serialize_index,
// pickle): little-endian, versioned, checksummed.
//
//   "NEARLYIX"            8-byte magic
//   u32 format version    kFormatVersion; newer files are refused
//   u32 flags             0
//   u64 payload size
//   payload               type tag (string) + the index's body, nested indexes inline
//   u64 checksum          format 2: checksum64(header, checksum64(payload)); format 1:
//                         checksum64 of everything before it
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "nearly/index.h"
#include "nearly/mapped_array.h"

namespace nearly {

// 2: arrays start at file offsets aligned for their elements (a mapped file
// is used in place), and the checksum is that of the header and of the
// payload's own checksum (a file is written in one pass, its size filled in
// at the end). 3: an HNSW graph's node blocks and side copies start on
// 64-byte boundaries (mapped, they are used in place). 4: a residual
// quantizer records its slices (product mode). 5: and its local search mode
// and settings (LSQ). 6: additive fast-scan indexes record norm_scale. 7: PQ
// and IVFPQ indexes record their polysemous settings. 8: inverted lists say
// whether they are inline or in a lists file of their own. 1 to 7 are still
// read.
constexpr uint32_t kFormatVersion = 8;
constexpr size_t kMaxAlignment = 64;
// faiss's IO_FLAG_SKIP_STORAGE (Writer::skip_storage).
constexpr int kIOFlagSkipStorage = 1;

// Where an array of `bytes` bytes of elements aligned to `element` starts
// (an empty one needs nothing).
inline size_t array_alignment(size_t bytes, size_t element) { return bytes == 0 ? 1 : element; }

uint64_t checksum64(const uint8_t* data, size_t n);

// checksum64 of bytes fed in pieces: the same value as one call over their
// concatenation (files are written and read in streams).
class Checksum64 {
   public:
    void update(const uint8_t* data, size_t n);
    uint64_t digest() const;

   private:
    uint64_t h_[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull};
    uint8_t pending_[32];
    size_t npending_ = 0;
    uint64_t n_ = 0;
};

// Where written bytes go: memory (buffer()), or a file (through a small
// buffer, checksummed on the way, so writing an index takes no copy of it).
class Writer {
   public:
    Writer() = default;
    // f: where the payload goes, from file offset `at` (its arrays are
    // aligned from the file's start); checksum() covers what it wrote.
    static Writer to_file(std::FILE* f, size_t at);
    Writer(Writer&&) = default;
    Writer& operator=(Writer&&) = default;

    template <class T>
    void pod(const T& v) {
        static_assert(std::is_trivially_copyable<T>::value, "pod");
        bytes(&v, sizeof(T));
    }
    template <class T, class Alloc>
    void vec(const std::vector<T, Alloc>& v) {
        pod<uint64_t>(v.size());
        bytes(v.data(), v.size() * sizeof(T));
    }
    void str(const std::string& s) {
        pod<uint64_t>(s.size());
        bytes(s.data(), s.size());
    }
    // A big array: its count, zeros up to the file offset its elements
    // align to, then its elements, so that a mapped file can be used in
    // place (Reader::array).
    template <class T>
    void array(const T* p, size_t count) {
        pod<uint64_t>(count);
        align(array_alignment(count * sizeof(T), alignof(T)));
        bytes(p, count * sizeof(T));
    }
    // Zeros up to the next multiple of `boundary` from the file's start.
    void align(size_t boundary) {
        static const uint8_t zeros[kMaxAlignment] = {};
        bytes(zeros, (boundary - (origin_ + written_) % boundary) % boundary);
    }
    template <class T, class Alloc>
    void array(const std::vector<T, Alloc>& v) {
        array(v.data(), v.size());
    }
    template <class T, class Alloc>
    void array(const MappedArray<T, Alloc>& v) {
        array(v.data(), v.size());
    }
    void bytes(const void* p, size_t n) {
        written_ += n;
        const uint8_t* b = static_cast<const uint8_t*>(p);
        if (mode_ == Mode::file && buf_.size() + n > kFileBuffer) {
            flush();
            if (n >= kFileBuffer) return write_through(b, n);
        }
        buf_.insert(buf_.end(), b, b + n);
    }
    std::vector<uint8_t>& buffer() { return buf_; }
    // faiss's IO_FLAG_SKIP_STORAGE: graph indexes write their links without
    // the vectors (IndexHNSWFlat::set_vectors puts them back).
    bool skip_storage = false;
    size_t written() const { return written_; }  // bytes given so far, in every mode
    // Memory mode: its bytes start at file offset `at` (arrays are aligned from the file's start).
    void set_origin(size_t at) { origin_ = at; }
    // File mode: writes out what is buffered; the checksum of every byte so far.
    void flush();
    uint64_t checksum() const { return sum_.digest(); }
    bool writes_file() const { return mode_ == Mode::file; }

   private:
    enum class Mode { memory, file };
    static constexpr size_t kFileBuffer = size_t(1) << 22;
    void write_through(const uint8_t* b, size_t n);
    Mode mode_ = Mode::memory;
    std::FILE* file_ = nullptr;
    std::vector<uint8_t> buf_;
    size_t written_ = 0;
    size_t origin_ = 0;  // the file offset of the first byte written
    Checksum64 sum_;
};

// Every read checks the remaining size first, so a corrupt length can never
// make us allocate or read past the data.
class Reader {
   public:
    // data: n bytes at offset `origin` of the file, whose format is `version`.
    Reader(const uint8_t* data, size_t n, uint32_t version = kFormatVersion, size_t origin = 0)
        : p_(data), n_(n), version_(version), origin_(origin) {}
    // n bytes read from f as they are asked for (each array straight into
    // its place: reading an index takes no copy of the file), checksummed on
    // the way, after `sum` (what came before them); file_checksum() is the
    // result.
    Reader(std::FILE* f, size_t n, uint32_t version, size_t origin, const Checksum64& sum)
        : p_(nullptr), n_(n), version_(version), origin_(origin), file_(f), sum_(sum) {}
    // Arrays read with array() view the data in place (it is a file mapped
    // for as long as keep is held) instead of copying it.
    void map_arrays(std::shared_ptr<const void> keep) { mapping_ = std::move(keep); }
    uint64_t file_checksum() const { return sum_.digest(); }
    bool read_only = false;  // mark every index read as read-only
    // The index file read (empty: memory), and IO_FLAG_ONDISK_SAME_DIR: a
    // lists file named by the index is looked for beside the index file.
    std::string source_path;
    bool lists_same_dir = false;
    // faiss's IO_FLAG_SKIP_PRECOMPUTE_TABLE: tables a reader would compute
    // are left out (an IVFPQ's precomputed table, a residual coarse
    // quantizer's beam tables: its searches are then exhaustive, as faiss's).
    bool skip_precompute_tables = false;
    template <class T>
    T pod() {
        T v;
        bytes(&v, sizeof(T));
        return v;
    }
    template <class T>
    std::vector<T> vec() {
        uint64_t count = pod<uint64_t>();
        check(count <= (n_ - pos_) / sizeof(T), "truncated or corrupt data (array larger than the file)");
        std::vector<T> v(count);
        bytes(v.data(), count * sizeof(T));
        return v;
    }
    // Writer::array: the count, the padding (format 2), the elements, into
    // v: a view of the mapped file where arrays are mapped and the elements
    // lie aligned for T, a copy otherwise.
    template <class T, class Alloc>
    void array(MappedArray<T, Alloc>& v) {
        const uint64_t count = pod<uint64_t>();
        check(count <= n_ / sizeof(T), "truncated or corrupt data (array larger than the file)");
        align(array_alignment(count * sizeof(T), alignof(T)));
        elements(v, count);
    }
    template <class T, class Alloc>
    void array(std::vector<T, Alloc>& v) {
        const uint64_t count = pod<uint64_t>();
        check(count <= n_ / sizeof(T), "truncated or corrupt data (array larger than the file)");
        align(array_alignment(count * sizeof(T), alignof(T)));
        check(count <= (n_ - pos_) / sizeof(T), "truncated or corrupt data (array larger than the file)");
        v.resize(count);
        bytes(v.data(), count * sizeof(T));
    }
    // count elements at the current position into v (viewed or copied).
    template <class T, class Alloc>
    void elements(MappedArray<T, Alloc>& v, uint64_t count) {
        check(count <= (n_ - pos_) / sizeof(T), "truncated or corrupt data (array larger than the file)");
        if (mapping_ && reinterpret_cast<uintptr_t>(p_ + pos_) % alignof(T) == 0) {
            v.view(reinterpret_cast<const T*>(p_ + pos_), count, mapping_);
            pos_ += count * sizeof(T);
            return;
        }
        auto& own = v.vec();
        own.resize(count);
        bytes(own.data(), count * sizeof(T));
    }
    // Writer::align's zeros (none in format 1).
    void align(size_t boundary) {
        if (version_ < 2) return;
        uint8_t pad[kMaxAlignment];
        const size_t n = (boundary - (origin_ + pos_) % boundary) % boundary;
        bytes(pad, n);
        for (size_t i = 0; i < n; i++) check(pad[i] == 0, "corrupt data (padding)");
    }
    std::string str() {
        uint64_t len = pod<uint64_t>();
        check(len <= n_ - pos_ && len < 4096, "truncated or corrupt data (bad string)");
        std::string s(len, '\0');
        bytes(&s[0], len);
        return s;
    }
    void bytes(void* out, size_t n) {
        check(n <= n_ - pos_, "truncated index data");
        if (file_)
            read_file(out, n);
        else
            std::memcpy(out, p_ + pos_, n);
        pos_ += n;
    }
    void check(bool ok, const char* what) const {
        if (!ok) throw CorruptData(std::string("cannot read index: ") + what);
    }
    size_t remaining() const { return n_ - pos_; }
    uint32_t version() const { return version_; }
    // n bytes at the current position seen in place where the data is a
    // mapped file (keep then holds the mapping), else null: read them.
    const uint8_t* view_bytes(size_t n, std::shared_ptr<const void>* keep) {
        if (!mapping_) return nullptr;
        check(n <= n_ - pos_, "truncated index data");
        const uint8_t* p = p_ + pos_;
        pos_ += n;
        *keep = mapping_;
        return p;
    }

   private:
    void read_file(void* out, size_t n);
    const uint8_t* p_;
    size_t n_, pos_ = 0;
    uint32_t version_;
    size_t origin_;  // the file offset of p_[0]
    std::shared_ptr<const void> mapping_;
    std::FILE* file_ = nullptr;
    Checksum64 sum_;
};

// Nested indexes (IDMap, PreTransform) write and read their children with these.
void write_index_payload(const Index& index, Writer& w);
IndexPtr read_index_payload(Reader& r);

// The framing shared by every serialized family: header + payload + checksum.
// Checks magic, version, size and checksum; returns a reader over the payload.
Reader unframe_payload(const uint8_t* data, size_t n);
// A framed file written as it is serialized (in one pass: the header's size
// is filled in at the end), under a temporary name renamed into place when
// complete.
void write_framed_file(const std::string& path, const std::function<void(Writer&)>& payload);
// The same framing in memory, one buffer of the exact size.
std::vector<uint8_t> serialize_framed(const std::function<void(Writer&)>& payload);
// Reads a framed file with read(reader) as the file streams in, then checks
// that nothing is left and the checksum (a mismatch raises, whatever read
// made of the bytes).
void read_framed_file(const std::string& path, bool read_only, const std::function<void(Reader&)>& read);

std::vector<uint8_t> serialize_index(const Index& index, int io_flags = 0);
// skip_tables: IO_FLAG_SKIP_PRECOMPUTE_TABLE (Reader::skip_precompute_tables).
IndexPtr deserialize_index(const uint8_t* data, size_t n, bool read_only = false, bool skip_tables = false);
void write_index(const Index& index, const std::string& path, int io_flags = 0);
// lists_same_dir: IO_FLAG_ONDISK_SAME_DIR (a lists file is looked for beside the index file).
IndexPtr read_index(const std::string& path, bool read_only = false, bool lists_same_dir = false,
                    bool skip_tables = false);
// IO_FLAG_MMAP: the file mapped read-only and the index's big arrays (flat
// vectors and codes, inverted lists) used in place: the pages are the page
// cache's, loaded as searches touch them and shared by every process that
// maps the file. Read-only; the checksum is not verified (it would read the
// whole file), the structure is.
IndexPtr read_index_mapped(const std::string& path, bool lists_same_dir = false, bool skip_tables = false);

// Bytes of s with anything outside printable ASCII escaped as \xNN.
std::string printable(const std::string& s);

}  // namespace nearly
