// Scalar reference of the Hamming distance: bit by bit, no popcount instruction.
#include "nearly/hamming.h"

namespace nearly {

void hamming_ny_scalar(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    for (size_t j = 0; j < ny; j++) {
        const uint8_t* c = x + j * cs;
        int32_t s = 0;
        for (size_t b = 0; b < cs; b++) {
            unsigned v = q[b] ^ c[b];
            for (; v; v >>= 1) s += v & 1;
        }
        out[j] = s;
    }
}

void generalized_hamming_ny_scalar(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    for (size_t j = 0; j < ny; j++) {
        const uint8_t* y = x + j * cs;
        int32_t differ = 0;
        for (size_t b = 0; b < cs; b++) differ += q[b] != y[b];
        out[j] = differ;
    }
}

}  // namespace nearly
