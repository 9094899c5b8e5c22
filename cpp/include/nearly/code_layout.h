// Where entry j's code lies in an array of n codes of code_size bytes: one
// after the other (block = 1), or in blocks of `block` entries whose codes
// are cut into runs of `run` bytes, each run of the block's entries side by
// side: run = 1 is 4-bit fast-scan (byte p of the codes of a block's 32
// entries together, so one SIMD load reads byte p of 32 codes); a Panorama
// layout (levels > 0: the codes are float vectors, a run a level's
// dimensions, the last one maybe shorter) also stores after each block its
// entries' tail norms, level-major, so that a scan reads level by level.
// Only the last block is padded.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nearly/panorama.h"

namespace nearly {

struct CodeLayout {
    size_t code_size = 0;
    size_t block = 1;
    size_t run = 1;     // bytes of a code kept together inside a block
    size_t levels = 0;  // Panorama: tail norms per entry (|v[l * run / 4:]|, l < levels)

    size_t block_bytes() const { return block * (code_size + levels * sizeof(float)); }
    size_t bytes(size_t n) const { return (n + block - 1) / block * block_bytes(); }
    // Where the block holding entry j begins (entry j itself when block = 1).
    size_t offset(size_t j) const { return j / block * block_bytes(); }

    void put(uint8_t* data, size_t j, const uint8_t* code) const {
        if (block == 1 && levels == 0) {
            std::memcpy(data + j * code_size, code, code_size);
            return;
        }
        uint8_t* b = data + offset(j);
        const size_t r = j % block;
        if (run == 1) {
            for (size_t p = 0; p < code_size; p++) b[p * block + r] = code[p];
            return;
        }
        for (size_t p = 0; p < code_size; p += run) {
            const size_t len = std::min(run, code_size - p);
            std::memcpy(b + p * block + r * len, code + p, len);
        }
        if (levels) put_tail_norms(b, r, code);
    }

    void get(const uint8_t* data, size_t j, uint8_t* code) const {
        if (block == 1 && levels == 0) {
            std::memcpy(code, data + j * code_size, code_size);
            return;
        }
        const uint8_t* b = data + offset(j);
        const size_t r = j % block;
        if (run == 1) {
            for (size_t p = 0; p < code_size; p++) code[p] = b[p * block + r];
            return;
        }
        for (size_t p = 0; p < code_size; p += run) {
            const size_t len = std::min(run, code_size - p);
            std::memcpy(code + p, b + p * block + r * len, len);
        }
    }

    // Entries j0 .. j0 + n one after the other in out (n * code_size bytes):
    // the contiguous form the float-table scans read.
    void gather(const uint8_t* data, size_t j0, size_t n, uint8_t* out) const {
        if (block == 1 && levels == 0) {
            std::memcpy(out, data + j0 * code_size, n * code_size);
            return;
        }
        for (size_t j = 0; j < n; j++) get(data, j0 + j, out + j * code_size);
    }

   private:
    // Panorama's own definition (panorama.h), on an aligned copy of the code
    // (standalone codes may start at any byte).
    void put_tail_norms(uint8_t* b, size_t r, const uint8_t* code) const {
        thread_local std::vector<float> v;
        v.resize(code_size / sizeof(float));
        std::memcpy(v.data(), code, code_size);
        panorama_tail_norms(v.data(), v.size(), run / sizeof(float), levels,
                            reinterpret_cast<float*>(b + block * code_size) + r, block);
    }
};

}  // namespace nearly
