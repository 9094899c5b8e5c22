#include "nearly/io.h"

#include <cerrno>
#include <cstdio>
#include <memory>

#include "nearly/binary_recurrent.h"
#include "nearly/flat.h"
#include "nearly/hnsw.h"
#include "nearly/hnsw_pq.h"
#include "nearly/hnsw_sq.h"
#include "nearly/nsg.h"
#include "nearly/binary_hnsw.h"
#include "nearly/binary_ivf.h"
#include "nearly/idmap.h"
#include "nearly/index_pq.h"
#include "nearly/index_lsh.h"
#include "nearly/index_rabitq.h"
#include "nearly/ivf_rabitq.h"
#include "nearly/index_residual_quantizer.h"
#include "nearly/index_sq.h"
#include "nearly/ivf_residual_quantizer.h"
#include "nearly/ivf_flat.h"
#include "nearly/ivf_sq.h"
#include "nearly/ivfpq.h"
#include "nearly/ivfpq_fast_scan.h"
#include "nearly/multi_index_quantizer.h"
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

uint64_t checksum64(const uint8_t* data, size_t n) {
    uint64_t h[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull, 0x082EFA98EC4E6C89ull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            std::memcpy(&w, data + i + 8 * l, 8);
            h[l] = mix(h[l], w);
        }
    uint64_t r = h[0] ^ rotl(h[1], 17) ^ rotl(h[2], 29) ^ rotl(h[3], 43);
    for (; i < n; i++) r = mix(r, data[i]);
    return mix(r, n);
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
    if (tag == "IDMap") return IndexIDMap::read_body(r, false);
    if (tag == "IDMap2") return IndexIDMap::read_body(r, true);
    if (tag == "PreTransform") return IndexPreTransform::read_body(r);
    if (tag == "RefineFlat") return IndexRefineFlat::read_body(r);
    if (tag == "Refine") return IndexRefine::read_body(r);
    if (tag == "BinaryRecurrent") return IndexBinaryRecurrent::read_body(r);
    if (tag == "BinaryRecurrentHNSW") return IndexBinaryRecurrentHNSW::read_body(r);
    if (tag == "IVFBinaryRecurrent") return IndexIVFBinaryRecurrent::read_body(r);
    if (tag == "IVFFlat") return IndexIVFFlat::read_body(r);
    if (tag == "IVFPQ") return IndexIVFPQ::read_body(r);
    if (tag == "IVFPQFastScan") return IndexIVFPQFastScan::read_body(r);
    if (tag == "PQ") return IndexPQ::read_body(r);
    if (tag == "PQFastScan") return IndexPQFastScan::read_body(r);
    if (tag == "ScalarQuantizer") return IndexScalarQuantizer::read_body(r);
    if (tag == "ResidualQuantizer") return IndexResidualQuantizer::read_body(r);
    if (tag == "IVFResidualQuantizer") return IndexIVFResidualQuantizer::read_body(r);
    if (tag == "LSH") return IndexLSH::read_body(r);
    if (tag == "MultiIndexQuantizer") return MultiIndexQuantizer::read_body(r);
    if (tag == "RaBitQ") return IndexRaBitQ::read_body(r);
    if (tag == "RaBitQFastScan") return IndexRaBitQFastScan::read_body(r);
    if (tag == "IVFRaBitQ") return IndexIVFRaBitQ::read_body(r);
    if (tag == "IVFRaBitQFastScan") return IndexIVFRaBitQFastScan::read_body(r);
    if (tag == "IVFScalarQuantizer") return IndexIVFScalarQuantizer::read_body(r);
    if (tag == "HNSWFlat") return IndexHNSWFlat::read_body(r, HNSWStorage::Flat);
    if (tag == "HNSWPQ") return IndexHNSWPQ::read_body(r);
    if (tag == "HNSWSQCodes") return IndexHNSWSQCodes::read_body(r);
    if (tag == "NSGFlat") return IndexNSGFlat::read_body(r);
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

std::vector<uint8_t> frame_payload(const std::vector<uint8_t>& body) {
    Writer out;
    out.buffer().reserve(kHeaderSize + body.size() + 8);
    out.bytes(kMagic, 8);
    out.pod<uint32_t>(kFormatVersion);
    out.pod<uint32_t>(0);
    out.pod<uint64_t>(body.size());
    out.bytes(body.data(), body.size());
    out.pod<uint64_t>(checksum64(out.buffer().data(), out.buffer().size()));  // header and payload
    return std::move(out.buffer());
}

std::vector<uint8_t> serialize_index(const Index& index) {
    Writer payload;
    write_index_payload(index, payload);
    return frame_payload(payload.buffer());
}

Reader unframe_payload(const uint8_t* data, size_t n) {
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
    const uint8_t* body = data + kHeaderSize;
    uint64_t stored;
    std::memcpy(&stored, body + size, 8);
    if (stored != checksum64(data, kHeaderSize + size)) throw CorruptData("cannot read index: checksum mismatch (corrupt data)");
    return Reader(body, size);
}

IndexPtr deserialize_index(const uint8_t* data, size_t n, bool read_only) {
    Reader r = unframe_payload(data, n);
    r.read_only = read_only;
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

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
    if (!f) throw std::runtime_error("could not open " + path + " for writing: " + std::strerror(errno));
    if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
        throw std::runtime_error("could not write " + path + ": " + std::strerror(errno));
}

void write_index(const Index& index, const std::string& path) { write_file_bytes(path, serialize_index(index)); }

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) {
        if (errno == ENOENT) throw FileMissing("could not open " + path + " for reading: No such file or directory");
        throw std::runtime_error("could not open " + path + " for reading: " + std::strerror(errno));
    }
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof(buf), f.get())) > 0) bytes.insert(bytes.end(), buf, buf + got);
    if (std::ferror(f.get())) throw std::runtime_error("could not read " + path + ": " + std::strerror(errno));
    return bytes;
}

IndexPtr read_index(const std::string& path, bool read_only) {
    std::vector<uint8_t> bytes = read_file_bytes(path);
    return deserialize_index(bytes.data(), bytes.size(), read_only);
}

}  // namespace nearly
