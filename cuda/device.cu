// GPU presence, probed lazily: importing nearly must work with no GPU and no
// driver, so nothing here runs before get_num_gpus() is called.
#include <cuda_runtime.h>

namespace nearly {

int cuda_device_count() {
    int n = 0;
    // No driver or no device is an error here, and means "no GPU".
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

}  // namespace nearly
