#include <atomic>
#include <cmath>

#include "nearly/common.h"

namespace nearly {

static std::atomic<InterruptCallback> g_interrupt_callback{nullptr};

void set_interrupt_callback(InterruptCallback cb) { g_interrupt_callback.store(cb); }

void check_interrupt() {
    InterruptCallback cb = g_interrupt_callback.load(std::memory_order_relaxed);
    if (cb && cb()) throw Interrupted();
}

void check_finite(const float* x, size_t n, const char* what) {
    // An exponent of all ones means NaN or inf; the integer reduction
    // vectorizes, a float one would not without -ffast-math.
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(x);
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= ((bits[i] & 0x7f800000u) == 0x7f800000u);
    if (bad) throw InvalidArgument(std::string(what) + " contains NaN or inf");
}

}  // namespace nearly
