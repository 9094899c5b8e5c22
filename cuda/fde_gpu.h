// MUVERA FDE encoding on the GPU, bit for bit equal to FdeEncoder::encode:
// the same matrices (drawn on the host by the same generator), every sum in
// the CPU's order, products and sums rounded separately (no fused
// multiply-add), one thread per output coordinate so nothing is reordered by
// atomics.
#pragma once
#include <cstdint>
#include <memory>

#include "gpu_resources.h"
#include "nearly/fde.h"

namespace nearly::gpu {

class GpuFdeEncoder {
   public:
    GpuFdeEncoder(ResourcesPtr res, std::shared_ptr<const FdeEncoder> cpu);
    // vectors: host or device (n_vectors x d); lengths: host; out: host or
    // device (n_sets x output_dimension).
    void encode(FdeEncoding encoding, const float* vectors, size_t n_vectors, const int64_t* lengths, size_t n_sets,
                float* out) const;
    size_t output_dimension() const { return cpu_->output_dimension(); }

   private:
    ResourcesPtr res_;
    std::shared_ptr<const FdeEncoder> cpu_;
    DeviceVector<float> simhash_, ams_sign_, final_sign_;
    DeviceVector<uint32_t> ams_start_, ams_input_, final_start_, final_input_;
};

}  // namespace nearly::gpu
