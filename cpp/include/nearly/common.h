// Shared types and the error vocabulary of the core.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <chrono>
#include <string>
#include <thread>

namespace nearly {

using idx_t = int64_t;

// Values match faiss so that pickled metric ids and user code agree. Past L2
// and inner product: exact search only (extra_distances.h).
enum MetricType : int {
    METRIC_INNER_PRODUCT = 0,
    METRIC_L2 = 1,
    METRIC_L1 = 2,
    METRIC_Linf = 3,
    METRIC_Lp = 4,
    METRIC_Canberra = 20,
    METRIC_BrayCurtis = 21,
    METRIC_JensenShannon = 22,
    METRIC_Jaccard = 23,
    METRIC_NaNEuclidean = 24,
    METRIC_GOWER = 25,
};

// Bad arguments from the caller (shape, k, ids...). Mapped to a Python
// exception that is both ValueError and AssertionError, because faiss's
// Python layer raises AssertionError for these and callers catch either.
struct InvalidArgument : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
// The operation does not exist for this index type, or its state forbids it
// (untrained, read-only). Mapped to RuntimeError, like faiss.
struct NotSupported : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A serialized index that is truncated, corrupt or of an unknown version.
struct CorruptData : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A file that does not exist (RuntimeError and FileNotFoundError in Python).
struct FileMissing : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Raised when the interrupt callback reports a pending Ctrl-C.
struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("computation interrupted") {}

   protected:
    explicit Interrupted(const std::string& what) : std::runtime_error(what) {}
};
// Raised when a call runs past the deadline its thread set (faiss's
// TimeoutGuard). An Interrupted, so that a write cut short is rolled back
// (or keeps its done prefix) exactly as on Ctrl-C.
struct TimedOut : Interrupted {
    TimedOut() : Interrupted("computation timed out: the calling thread's TimeoutGuard deadline passed") {}
};

#define NEARLY_CHECK_ARG(cond, msg)                 \
    do {                                            \
        if (!(cond)) throw ::nearly::InvalidArgument(msg); \
    } while (0)

// Long loops call this from the thread that entered the core; the Python
// layer installs a callback that checks for pending signals.
using InterruptCallback = bool (*)();
void set_interrupt_callback(InterruptCallback cb);
void check_interrupt();  // throws TimedOut past this thread's deadline, Interrupted on Ctrl-C

// This thread's deadline for the calls it makes (TimeoutGuard), in seconds
// of the steady clock (steady_seconds()); 0: none. Per thread, so that one
// thread's guard never cuts another's work short.
double steady_seconds();
double thread_deadline();
void set_thread_deadline(double deadline);
void check_deadline(std::chrono::steady_clock::time_point now);  // throws TimedOut

// Polls for Ctrl-C during one long call: only on the thread that created it
// (the one that entered from Python), and at most every 200 ms, because the
// callback has to take the GIL. The thread's deadline is checked at every
// poll.
class InterruptPoll {
   public:
    InterruptPoll() : owner_(std::this_thread::get_id()), next_(std::chrono::steady_clock::now() + period()) {}
    void operator()() {
        if (std::this_thread::get_id() != owner_) return;
        auto now = std::chrono::steady_clock::now();
        check_deadline(now);  // at every poll: no GIL needed
        if (now < next_) return;
        next_ = now + period();
        check_interrupt();
    }

   private:
    static std::chrono::milliseconds period() { return std::chrono::milliseconds(200); }
    std::thread::id owner_;
    std::chrono::steady_clock::time_point next_;
};

// Throws InvalidArgument naming `what` when x holds a NaN or an infinity.
void check_finite(const float* x, size_t n, const char* what);

// An id or key outside the index (reconstruct, ...). RuntimeError like faiss,
// and also IndexError in Python.
struct OutOfRange : std::out_of_range {
    using std::out_of_range::out_of_range;
};

}  // namespace nearly
