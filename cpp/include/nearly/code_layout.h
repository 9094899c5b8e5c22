// Where entry j's code lies in an array of n codes of code_size bytes: one
// after the other (block = 1), or byte-transposed in blocks of `block`
// entries (4-bit fast-scan: byte p of the codes of a block's 32 entries sit
// side by side, so one SIMD load reads byte p of 32 codes). Either way a
// block takes block * code_size bytes; only the last one is padded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nearly {

struct CodeLayout {
    size_t code_size = 0;
    size_t block = 1;

    size_t bytes(size_t n) const { return (n + block - 1) / block * block * code_size; }

    void put(uint8_t* data, size_t j, const uint8_t* code) const {
        if (block == 1) {
            std::memcpy(data + j * code_size, code, code_size);
            return;
        }
        uint8_t* b = data + j / block * block * code_size + j % block;
        for (size_t p = 0; p < code_size; p++) b[p * block] = code[p];
    }

    void get(const uint8_t* data, size_t j, uint8_t* code) const {
        if (block == 1) {
            std::memcpy(code, data + j * code_size, code_size);
            return;
        }
        const uint8_t* b = data + j / block * block * code_size + j % block;
        for (size_t p = 0; p < code_size; p++) code[p] = b[p * block];
    }

    // Entries j0 .. j0 + n one after the other in out (n * code_size bytes):
    // the contiguous form the float-table scans read.
    void gather(const uint8_t* data, size_t j0, size_t n, uint8_t* out) const {
        if (block == 1) {
            std::memcpy(out, data + j0 * code_size, n * code_size);
            return;
        }
        for (size_t j = 0; j < n; j++) get(data, j0 + j, out + j * code_size);
    }
};

}  // namespace nearly
