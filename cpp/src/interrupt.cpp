#include <atomic>
#include <chrono>
#include <cmath>

#include "nearly/common.h"

namespace nearly {

static std::atomic<InterruptCallback> g_interrupt_callback{nullptr};

void set_interrupt_callback(InterruptCallback cb) { g_interrupt_callback.store(cb); }

namespace {
thread_local double t_deadline = 0.0;  // steady-clock seconds; 0: none
thread_local std::chrono::steady_clock::time_point t_deadline_point;
}  // namespace

double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double thread_deadline() { return t_deadline; }

void set_thread_deadline(double deadline) {
    t_deadline = deadline > 0 ? deadline : 0.0;
    t_deadline_point = std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(t_deadline)));
}

void check_deadline(std::chrono::steady_clock::time_point now) {
    if (t_deadline > 0 && now >= t_deadline_point) throw TimedOut();
}

void check_interrupt() {
    check_deadline(std::chrono::steady_clock::now());
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
