// The serialized format of nearly indexes (write_index, serialize_index,
// pickle): little-endian, versioned, checksummed.
//
//   "NEARLYIX"            8-byte magic
//   u32 format version    kFormatVersion; newer files are refused
//   u32 flags             0
//   u64 payload size
//   payload               type tag (string) + the index's body, nested indexes inline
//   u64 checksum          of everything before it (header and payload)
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "nearly/index.h"

namespace nearly {

constexpr uint32_t kFormatVersion = 1;

uint64_t checksum64(const uint8_t* data, size_t n);

class Writer {
   public:
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
    void bytes(const void* p, size_t n) {
        const uint8_t* b = static_cast<const uint8_t*>(p);
        buf_.insert(buf_.end(), b, b + n);
    }
    std::vector<uint8_t>& buffer() { return buf_; }

   private:
    std::vector<uint8_t> buf_;
};

// Every read checks the remaining size first, so a corrupt length can never
// make us allocate or read past the data.
class Reader {
   public:
    Reader(const uint8_t* data, size_t n) : p_(data), n_(n) {}
    bool read_only = false;  // mark every index read as read-only
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
    std::string str() {
        uint64_t len = pod<uint64_t>();
        check(len <= n_ - pos_ && len < 4096, "truncated or corrupt data (bad string)");
        std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
        return s;
    }
    void bytes(void* out, size_t n) {
        check(n <= n_ - pos_, "truncated index data");
        std::memcpy(out, p_ + pos_, n);
        pos_ += n;
    }
    void check(bool ok, const char* what) const {
        if (!ok) throw CorruptData(std::string("cannot read index: ") + what);
    }
    size_t remaining() const { return n_ - pos_; }

   private:
    const uint8_t* p_;
    size_t n_, pos_ = 0;
};

// Nested indexes (IDMap, PreTransform) write and read their children with these.
void write_index_payload(const Index& index, Writer& w);
IndexPtr read_index_payload(Reader& r);

// The framing shared by every serialized family: header + payload + checksum.
std::vector<uint8_t> frame_payload(const std::vector<uint8_t>& payload);
// Checks magic, version, size and checksum; returns a reader over the payload.
Reader unframe_payload(const uint8_t* data, size_t n);
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

std::vector<uint8_t> serialize_index(const Index& index);
IndexPtr deserialize_index(const uint8_t* data, size_t n, bool read_only = false);
void write_index(const Index& index, const std::string& path);
IndexPtr read_index(const std::string& path, bool read_only = false);

// Bytes of s with anything outside printable ASCII escaped as \xNN.
std::string printable(const std::string& s);

}  // namespace nearly
