// faiss's bit strings (BitstringWriter / PQEncoderGeneric): fields of any
// width packed least significant bit first, byte after byte, so an 8-bit
// field is a byte and a 16-bit one a little-endian uint16. The PQ and RQ
// codes of any nbits use this layout, which keeps them byte-equal to faiss's.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace nearly {

// Writes into a zeroed buffer (it ORs bits in).
struct BitWriter {
    uint8_t* code;
    size_t i = 0;  // next bit
    void write(uint64_t x, size_t nbit) {
        while (nbit > 0) {
            const size_t used = i & 7, take = std::min<size_t>(8 - used, nbit);
            code[i >> 3] |= uint8_t((x & ((uint64_t(1) << take) - 1)) << used);
            x >>= take;
            i += take;
            nbit -= take;
        }
    }
};

struct BitReader {
    const uint8_t* code;
    size_t i = 0;  // next bit
    uint64_t read(size_t nbit) {
        uint64_t x = 0;
        size_t got = 0;
        while (got < nbit) {
            const size_t used = i & 7, take = std::min<size_t>(8 - used, nbit - got);
            x |= uint64_t((code[i >> 3] >> used) & ((1u << take) - 1)) << got;
            got += take;
            i += take;
        }
        return x;
    }
};

// The nbit-wide field (nbit <= 25) that starts at bit `bit`: reads only the
// bytes the field covers, so the last code of an array is safe.
inline uint32_t read_bits(const uint8_t* code, size_t bit, size_t nbit) {
    const uint8_t* p = code + (bit >> 3);
    const size_t shift = bit & 7, bytes = (shift + nbit + 7) >> 3;
    uint32_t w = 0;
    for (size_t b = 0; b < bytes; b++) w |= uint32_t(p[b]) << (8 * b);
    return (w >> shift) & ((uint32_t(1) << nbit) - 1);
}

}  // namespace nearly
