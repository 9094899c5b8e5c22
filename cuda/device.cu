// GPU presence, probed lazily: importing nearly must work with no GPU and no
// driver, so nothing here runs before get_num_gpus() is called.
#include "gpu_resources.h"

namespace nearly {

int cuda_device_count() { return gpu::device_count(); }

}  // namespace nearly
