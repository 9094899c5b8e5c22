#include "nearly/io.h"

#include <cerrno>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nearly/binary_recurrent.h"
#include "nearly/flat.h"
#include "nearly/flat_panorama.h"
#include "nearly/hnsw.h"
#include "nearly/hnsw_on_storage.h"
#include "nearly/hnsw_pq.h"
#include "nearly/hnsw_sq.h"
#include "nearly/nn_descent.h"
#include "nearly/nsg.h"
#include "nearly/binary_hnsw.h"
#include "nearly/binary_ivf.h"
#include "nearly/idmap.h"
#include "nearly/index_pq.h"
#include "nearly/index_random.h"
#include "nearly/index_2layer.h"
#include "nearly/index_lattice.h"
#include "nearly/index_lsh.h"
#include "nearly/index_rabitq.h"
#include "nearly/ivf_rabitq.h"
#include "nearly/index_residual_quantizer.h"
#include "nearly/index_residual_quantizer_fast_scan.h"
#include "nearly/index_eden.h"
#include "nearly/index_sq.h"
#include "nearly/ivf_residual_quantizer.h"
#include "nearly/ivf_residual_quantizer_fast_scan.h"
#include "nearly/ivf_flat.h"
#include "nearly/ivf_independent_quantizer.h"
#include "nearly/ivf_flat_panorama.h"
#include "nearly/ivf_flat_dedup.h"
#include "nearly/ivf_eden.h"
#include "nearly/ivf_spectral_hash.h"
#include "nearly/ivf_sq.h"
#include "nearly/ivfpq.h"
#include "nearly/ivfpqr.h"
#include "nearly/ivfpq_fast_scan.h"
#include "nearly/multi_index_quantizer.h"
#include "nearly/residual_coarse_quantizer.h"
#include "nearly/index_pq_fast_scan.h"
#include "nearly/refine.h"
#include "nearly/transform.h"

namespace nearly {

namespace {
constexpr char kMagic[8] = {'N', 'E', 'A', 'R', 'L', 'Y', 'I', 'X'};
constexpr size_t kHeaderSize = 8 + 4 + 4 + 8;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t mix(uint64_t h, uint64_t w) { return rotl(h ^ (w * 0x9E3779B97F4A7C15ull), 31) * 0xC2B2AE3D27D4EB4Full; }

struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};
}  // namespace

// Four independent lanes over 8-byte words, so hashing a large index runs at
// memory speed; any flipped bit changes the result.
// Tags from a corrupt file may hold any bytes; error messages must stay text.
std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 32 && c < 127) {
            out += char(c);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

void Checksum64::update(const uint8_t* data, size_t n) {
    n_ += n;
    auto block = [this](const uint8_t* b) {
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            std::memcpy(&w, b + 8 * l, 8);
            h_[l] = mix(h_[l], w);
        }
    };
    if (npending_ > 0) {
        const size_t take = std::min(n, 32 - npending_);
        std::memcpy(pending_ + npending_, data, take);
        npending_ += take;
        data += take;
        n -= take;
        if (npending_ < 32) return;
        block(pending_);
        npending_ = 0;
    }
    for (; n >= 32; data += 32, n -= 32) block(data);
    std::memcpy(pending_, data, n);
    npending_ = n;
}

uint64_t Checksum64::digest() const {
    uint64_t r = h_[0] ^ rotl(h_[1], 17) ^ rotl(h_[2], 29) ^ rotl(h_[3], 43);
    for (size_t i = 0; i < npending_; i++) r = mix(r, pending_[i]);
    return mix(r, n_);
}

uint64_t checksum64(const uint8_t* data, size_t n) {
    Checksum64 sum;
    sum.update(data, n);
    return sum.digest();
}

Writer Writer::to_file(std::FILE* f, size_t at) {
    Writer w;
    w.mode_ = Mode::file;
    w.file_ = f;
    w.origin_ = at;
    w.buf_.reserve(kFileBuffer);
    return w;
}

void Writer::write_through(const uint8_t* b, size_t n) {
    sum_.update(b, n);
    if (std::fwrite(b, 1, n, file_) != n) throw std::runtime_error(std::string("could not write: ") + std::strerror(errno));
}

void Writer::flush() {
    if (mode_ != Mode::file || buf_.empty()) return;
    write_through(buf_.data(), buf_.size());
    buf_.clear();
}

void Reader::read_file(void* out, size_t n) {
    if (std::fread(out, 1, n, file_) != n) throw CorruptData("cannot read index: truncated index data");
    sum_.update(static_cast<const uint8_t*>(out), n);
}

void write_index_payload(const Index& index, Writer& w) {
    w.str(index.type_name());
    index.write_body(w);
}

namespace {
IndexPtr read_tagged(Reader& r, const std::string& tag);
}  // namespace

IndexPtr read_index_payload(Reader& r) {
    std::string tag = r.str();
    IndexPtr index = read_tagged(r, tag);
    index->read_only = r.read_only;
    return index;
}

namespace {
IndexPtr read_tagged(Reader& r, const std::string& tag) {
    if (tag == "Flat") return IndexFlat::read_body(r);
    if (tag == "FlatPanorama") return IndexFlatPanorama::read_body(r);
    if (tag == "RefinePanorama") return IndexRefinePanorama::read_body(r);
    if (tag == "IDMap") return IndexIDMap::read_body(r, false);
    if (tag == "IDMap2") return IndexIDMap::read_body(r, true);
    if (tag == "PreTransform") return IndexPreTransform::read_body(r);
    if (tag == "RefineFlat") return IndexRefineFlat::read_body(r);
    if (tag == "Refine") return IndexRefine::read_body(r);
    if (tag == "BinaryRecurrent") return IndexBinaryRecurrent::read_body(r);
    if (tag == "BinaryRecurrentHNSW") return IndexBinaryRecurrentHNSW::read_body(r);
    if (tag == "IVFBinaryRecurrent") return IndexIVFBinaryRecurrent::read_body(r);
    if (tag == "IVFFlat") return IndexIVFFlat::read_body(r);
    if (tag == "IVFIndependentQuantizer") return IndexIVFIndependentQuantizer::read_body(r);
    if (tag == "IVFFlatPanorama") return IndexIVFFlatPanorama::read_body(r);
    if (tag == "IVFFlatDedup") return IndexIVFFlatDedup::read_body(r);
    if (tag == "IVFPQ") return IndexIVFPQ::read_body(r);
    if (tag == "IVFPQR") return IndexIVFPQR::read_body(r);
    if (tag == "IVFPQFastScan") return IndexIVFPQFastScan::read_body(r);
    if (tag == "PQ") return IndexPQ::read_body(r);
    if (tag == "2Layer") return Index2Layer::read_body(r);
    if (tag == "PQFastScan") return IndexPQFastScan::read_body(r);
    if (tag == "ScalarQuantizer") return IndexScalarQuantizer::read_body(r);
    if (tag == "EDEN") return IndexEDEN::read_body(r);
    if (tag == "IVFEDEN") return IndexIVFEDEN::read_body(r);
    if (tag == "IVFSpectralHash") return IndexIVFSpectralHash::read_body(r);
    if (tag == "ResidualQuantizer") return IndexResidualQuantizer::read_body(r);
    if (tag == "ResidualQuantizerFastScan") return IndexResidualQuantizerFastScan::read_body(r);
    if (tag == "IVFResidualQuantizer") return IndexIVFResidualQuantizer::read_body(r);
    if (tag == "IVFResidualQuantizerFastScan") return IndexIVFResidualQuantizerFastScan::read_body(r);
    if (tag == "LSH") return IndexLSH::read_body(r);
    if (tag == "Lattice") return IndexLattice::read_body(r);
    if (tag == "MultiIndexQuantizer") return MultiIndexQuantizer::read_body(r);
    if (tag == "MultiIndexQuantizer2") return MultiIndexQuantizer2::read_body(r);
    if (tag == "ResidualCoarseQuantizer") return ResidualCoarseQuantizer::read_body(r);
    if (tag == "RaBitQ") return IndexRaBitQ::read_body(r);
    if (tag == "RaBitQFastScan") return IndexRaBitQFastScan::read_body(r);
    if (tag == "IVFRaBitQ") return IndexIVFRaBitQ::read_body(r);
    if (tag == "IVFRaBitQFastScan") return IndexIVFRaBitQFastScan::read_body(r);
    if (tag == "IVFScalarQuantizer") return IndexIVFScalarQuantizer::read_body(r);
    if (tag == "HNSWFlat") return IndexHNSWFlat::read_body(r, HNSWStorage::Flat);
    if (tag == "HNSWCagra") return IndexHNSWCagra::read_body(r);
    if (tag == "HNSWFlatPanorama") return IndexHNSWFlatPanorama::read_body(r);
    if (tag == "HNSWPQ") return IndexHNSWPQ::read_body(r);
    if (tag == "HNSWOnStorage") return IndexHNSWOnStorage::read_body(r);
    if (tag == "HNSW2Level") return IndexHNSW2Level::read_body(r);
    if (tag == "HNSWSQCodes") return IndexHNSWSQCodes::read_body(r);
    if (tag == "NSGFlat") return IndexNSGFlat::read_body(r);
    if (tag == "Random") return IndexRandom::read_body(r);
    if (tag == "NSGOnStorage") return IndexNSGOnStorage::read_body(r);
    if (tag == "NSGPQ") return IndexNSGPQ::read_body(r);
    if (tag == "NSGSQ") return IndexNSGSQ::read_body(r);
    if (tag == "NNDescentFlat") return IndexNNDescentFlat::read_body(r);
    if (tag == "HNSWSQ") {
        int kind = r.pod<int32_t>();
        r.check(kind == int(HNSWStorage::SQ8) || kind == int(HNSWStorage::FP16) || kind == int(HNSWStorage::BF16),
                "bad HNSW storage kind");
        return IndexHNSWFlat::read_body(r, HNSWStorage(kind));
    }
    if (tag == "binary")
        throw CorruptData("cannot read index: this is a binary index; use read_index_binary / deserialize_index_binary");
    throw CorruptData("cannot read index: unknown index type '" + printable(tag) + "'");
}
}  // namespace

namespace {
// Checks the framing's header (data: its first kHeaderSize bytes) for a
// file or buffer of n bytes; returns the payload size (and the version).
uint64_t check_header(const uint8_t* data, size_t n, uint32_t* version_out = nullptr) {
    if (n < kHeaderSize + 8 || std::memcmp(data, kMagic, 8) != 0) {
        if (n >= 4 && (std::memcmp(data, "IxFI", 4) == 0 || std::memcmp(data, "IxF2", 4) == 0 ||
                       std::memcmp(data, "IxFl", 4) == 0 || std::memcmp(data, "IxM", 3) == 0 ||
                       std::memcmp(data, "IBxF", 4) == 0 || std::memcmp(data, "IBMp", 4) == 0))
            throw CorruptData("cannot read index: this looks like a faiss index file; nearly reads its own format");
        throw CorruptData(n < kHeaderSize + 8 ? "cannot read index: data too short (truncated?)"
                                              : "cannot read index: not a nearly index (bad magic)");
    }
    Reader header(data + 8, kHeaderSize - 8);
    uint32_t version = header.pod<uint32_t>();
    uint32_t flags = header.pod<uint32_t>();
    uint64_t size = header.pod<uint64_t>();
    if (version == 0 || version > kFormatVersion)
        throw CorruptData("cannot read index: format version " + std::to_string(version) +
                          " is not supported by this nearly (it reads versions up to " +
                          std::to_string(kFormatVersion) + ")");
    if (flags != 0) throw CorruptData("cannot read index: unknown flags in the header (corrupt, or a newer format)");
    if (size != n - kHeaderSize - 8)
        throw CorruptData("cannot read index: size mismatch (file truncated or has trailing data)");
    if (version_out) *version_out = version;
    return size;
}

void header_bytes(uint8_t out[kHeaderSize], uint64_t payload_size) {
    Writer w;
    w.bytes(kMagic, 8);
    w.pod<uint32_t>(kFormatVersion);
    w.pod<uint32_t>(0);
    w.pod<uint64_t>(payload_size);
    std::memcpy(out, w.buffer().data(), kHeaderSize);
}

// Format 2's checksum: of the header, then of the payload's checksum (the
// payload is hashed as it streams, before its size is known).
uint64_t frame_checksum(const uint8_t* header, uint64_t payload_sum) {
    Checksum64 sum;
    sum.update(header, kHeaderSize);
    uint8_t b[8];
    std::memcpy(b, &payload_sum, 8);
    sum.update(b, 8);
    return sum.digest();
}

IndexPtr read_index_checked(Reader& r) {
    IndexPtr index;
    try {
        index = read_index_payload(r);
    } catch (const InvalidArgument& e) {  // a forged body that passed the checksum
        throw CorruptData(std::string("cannot read index: ") + e.what());
    } catch (const std::length_error& e) {
        throw CorruptData("cannot read index: impossible sizes in the data");
    }
    r.check(r.remaining() == 0, "trailing bytes after the index");
    return index;
}
}  // namespace

std::vector<uint8_t> serialize_framed(const std::function<void(Writer&)>& payload) {
    // One buffer: room for the header, the payload after it, the header
    // filled in once the size is known, the checksum appended.
    Writer w;
    w.buffer().resize(kHeaderSize);
    w.set_origin(kHeaderSize);
    payload(w);
    std::vector<uint8_t>& bytes = w.buffer();
    const uint64_t size = bytes.size() - kHeaderSize;
    header_bytes(bytes.data(), size);
    const uint64_t sum = frame_checksum(bytes.data(), checksum64(bytes.data() + kHeaderSize, size));
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&sum);
    bytes.insert(bytes.end(), b, b + 8);
    return std::move(bytes);
}

namespace {
// faiss honours IO_FLAG_SKIP_STORAGE on a graph index written as the whole
// file, not on indexes nested in another (an IVF's HNSW quantizer keeps its
// vectors), and ignores it on other kinds.
bool skips_storage(const Index& index, int io_flags) {
    return (io_flags & kIOFlagSkipStorage) != 0 && dynamic_cast<const HNSWGraph*>(&index) != nullptr;
}
}  // namespace

std::vector<uint8_t> serialize_index(const Index& index, int io_flags) {
    return serialize_framed([&](Writer& w) {
        w.skip_storage = skips_storage(index, io_flags);
        write_index_payload(index, w);
    });
}

Reader unframe_payload(const uint8_t* data, size_t n) {
    uint32_t version = 0;
    const uint64_t size = check_header(data, n, &version);
    const uint8_t* body = data + kHeaderSize;
    uint64_t stored;
    std::memcpy(&stored, body + size, 8);
    const uint64_t sum = version >= 2 ? frame_checksum(data, checksum64(body, size)) : checksum64(data, kHeaderSize + size);
    if (stored != sum) throw CorruptData("cannot read index: checksum mismatch (corrupt data)");
    return Reader(body, size, version, kHeaderSize);
}

IndexPtr deserialize_index(const uint8_t* data, size_t n, bool read_only, bool skip_tables) {
    Reader r = unframe_payload(data, n);
    r.read_only = read_only;
    r.skip_precompute_tables = skip_tables;
    return read_index_checked(r);
}

void write_framed_file(const std::string& path, const std::function<void(Writer&)>& payload) {
    // A name of this write's own: two writes to one path each complete
    // their file, the last rename wins.
    static std::atomic<uint64_t> writes{0};
    const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(writes++);
    std::unique_ptr<FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw std::runtime_error("could not open " + path + " for writing: " + std::strerror(errno));
    auto fail = [&](const std::string& why) {
        f.reset();
        std::remove(tmp.c_str());
        throw std::runtime_error("could not write " + path + ": " + why);
    };
    try {
        uint8_t header[kHeaderSize];
        header_bytes(header, 0);  // the size is filled in at the end
        if (std::fwrite(header, 1, kHeaderSize, f.get()) != kHeaderSize) fail(std::strerror(errno));
        Writer w = Writer::to_file(f.get(), kHeaderSize);
        payload(w);
        w.flush();
        header_bytes(header, w.written());
        const uint64_t sum = frame_checksum(header, w.checksum());
        if (std::fwrite(&sum, 1, 8, f.get()) != 8 || std::fseek(f.get(), 0, SEEK_SET) != 0 ||
            std::fwrite(header, 1, kHeaderSize, f.get()) != kHeaderSize || std::fflush(f.get()) != 0)
            fail(std::strerror(errno));
    } catch (...) {
        f.reset();
        std::remove(tmp.c_str());
        throw;
    }
    if (std::fclose(f.release()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("could not write " + path + ": " + std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        std::remove(tmp.c_str());
        throw std::runtime_error("could not write " + path + ": " + std::strerror(err));
    }
}

void write_index(const Index& index, const std::string& path, int io_flags) {
    write_framed_file(path, [&](Writer& w) {
        w.skip_storage = skips_storage(index, io_flags);
        write_index_payload(index, w);
    });
}

namespace {
// A bad file's error names the file (the caller may read many).
[[noreturn]] void rethrow_naming(const CorruptData& e, const std::string& path) {
    throw CorruptData(std::string(e.what()) + " (reading " + path + ")");
}

void read_framed_file_unnamed(const std::string& path, bool read_only, const std::function<void(Reader&)>& read);
}  // namespace

void read_framed_file(const std::string& path, bool read_only, const std::function<void(Reader&)>& read) {
    try {
        read_framed_file_unnamed(path, read_only, read);
    } catch (const CorruptData& e) {
        rethrow_naming(e, path);
    }
}

namespace {
void read_framed_file_unnamed(const std::string& path, bool read_only, const std::function<void(Reader&)>& read) {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) {
        if (errno == ENOENT) throw FileMissing("could not open " + path + " for reading: No such file or directory");
        throw std::runtime_error("could not open " + path + " for reading: " + std::strerror(errno));
    }
    // The file's size, by seeking: a directory or a pipe has none.
    if (std::fseek(f.get(), 0, SEEK_END) != 0) throw std::runtime_error("could not read " + path + ": not a regular file");
    const long end = std::ftell(f.get());
    if (end < 0 || std::fseek(f.get(), 0, SEEK_SET) != 0)
        throw std::runtime_error("could not read " + path + ": " + std::strerror(errno));
    const size_t n = size_t(end);
    uint8_t header[kHeaderSize] = {};
    const size_t got = std::fread(header, 1, kHeaderSize, f.get());
    if (got < kHeaderSize && std::ferror(f.get())) throw std::runtime_error("could not read " + path + ": " + std::strerror(errno));
    uint32_t version = 0;
    const uint64_t size = check_header(header, got < kHeaderSize ? got : n, &version);
    Checksum64 before;  // format 1 hashes the header with the payload
    if (version < 2) before.update(header, kHeaderSize);
    Reader r(f.get(), size, version, kHeaderSize, before);
    r.read_only = read_only;
    r.source_path = path;
    read(r);
    uint64_t stored = 0;
    if (std::fread(&stored, 1, 8, f.get()) != 8) throw CorruptData("cannot read index: truncated index data");
    const uint64_t sum = version >= 2 ? frame_checksum(header, r.file_checksum()) : r.file_checksum();
    if (stored != sum) throw CorruptData("cannot read index: checksum mismatch (corrupt data)");
}
}  // namespace

IndexPtr read_index(const std::string& path, bool read_only, bool lists_same_dir, bool skip_tables) {
    IndexPtr index;
    read_framed_file(path, read_only, [&](Reader& r) {
        r.lists_same_dir = lists_same_dir;
        r.skip_precompute_tables = skip_tables;
        index = read_index_checked(r);
    });
    return index;
}

namespace {
// A whole file mapped read-only; unmapped when the last index using it goes.
struct FileMapping {
    const uint8_t* data = nullptr;
    size_t size = 0;
    ~FileMapping() {
        if (data) munmap(const_cast<uint8_t*>(data), size);
    }
};
}  // namespace

IndexPtr read_index_mapped(const std::string& path, bool lists_same_dir, bool skip_tables) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) throw FileMissing("could not open " + path + " for reading: No such file or directory");
        throw std::runtime_error("could not open " + path + " for reading: " + std::strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ::close(fd);
        return read_index(path, true, lists_same_dir, skip_tables);  // not a regular file: read it, do not map it
    }
    auto mapping = std::make_shared<FileMapping>();
    mapping->size = size_t(sb.st_size);
    if (mapping->size > 0) {
        void* p = mmap(nullptr, mapping->size, PROT_READ, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) return read_index(path, true, lists_same_dir, skip_tables);
        mapping->data = static_cast<const uint8_t*>(p);
    } else {
        ::close(fd);
    }
    const uint8_t* data = mapping->data;
    uint32_t version = 0;
    try {
        // The structure is checked as always; the checksum is not: it would
        // read every page of the file, which mapping it is meant to avoid.
        const uint64_t size = check_header(data, mapping->size, &version);
        Reader r(data + kHeaderSize, size, version, kHeaderSize);
        r.read_only = true;
        r.source_path = path;
        r.lists_same_dir = lists_same_dir;
        r.skip_precompute_tables = skip_tables;
        r.map_arrays(mapping);
        return read_index_checked(r);
    } catch (const CorruptData& e) {
        rethrow_naming(e, path);
    }
}

}  // namespace nearly
