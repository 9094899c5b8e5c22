// Scalar reference of the SDC scan over blocked codes (see binary_sdc.h):
// each dimension's level decoded from its bits, products summed in order.
#include <vector>

#include "nearly/binary_sdc.h"

namespace nearly {

void sdc_scan_scalar(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    const size_t P = size_t(m) / 8, cs = size_t(nb) * P;
    std::vector<int32_t> Lq(m);
    for (int k = 0; k < m; k++) {
        int32_t v = 0;
        for (int i = 0; i < nb; i++) v += (((qcode[i * P + k / 8] >> (k % 8)) & 1) ? 1 : -1) * (1 << (nb - 1 - i));
        Lq[k] = v;
    }
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        for (size_t c = 0; c < kSdcBlock; c++) {
            int32_t s = 0;
            for (int k = 0; k < m; k++) {
                int32_t v = 0;
                for (int j = 0; j < nb; j++) {
                    int bit = (blk[(j * P + k / 8) * kSdcBlock + c] >> (k % 8)) & 1;
                    v += (bit ? 1 : -1) * (1 << (nb - 1 - j));
                }
                s += Lq[k] * v;
            }
            out[b * kSdcBlock + c] = s;
        }
    }
}

}  // namespace nearly
