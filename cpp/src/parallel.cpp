#include "nearly/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "nearly/common.h"

namespace nearly {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

thread_local bool tls_in_task = false;

struct Job {
    const std::function<void(size_t)>* fn;
    size_t ntasks;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    int active = 0;  // workers inside this job; guarded by Pool::m
};

void run_tasks(Job& job) {
    bool was = tls_in_task;
    tls_in_task = true;
    for (size_t t; (t = job.next.fetch_add(1)) < job.ntasks;) {
        if (job.failed.load(std::memory_order_relaxed)) continue;
        try {
            (*job.fn)(t);
        } catch (...) {
            std::lock_guard<std::mutex> lk(job.error_mutex);
            if (!job.error) job.error = std::current_exception();
            job.failed = true;
        }
    }
    tls_in_task = was;
}

class Pool {
   public:
    explicit Pool(int nthreads) : nthreads_(nthreads) {}

    // Workers are never joined at exit: they may be blocked when the
    // interpreter tears down, and the process is ending anyway.
    ~Pool() = delete;

    int size() const { return nthreads_; }

    void resize(int n) {
        std::lock_guard<std::mutex> run(run_mutex_);
        // The same size again keeps the workers (and their warm caches and
        // malloc arenas): code often sets the thread count before every call.
        if (n == nthreads_) return;
        stop_workers();
        nthreads_ = n;
    }

    void run(size_t ntasks, const std::function<void(size_t)>& fn) {
        std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
        if (!run.owns_lock() || nthreads_ <= 1 || ntasks <= 1) {
            run_serial(ntasks, fn);
            return;
        }
        start_workers();
        Job job;
        job.fn = &fn;
        job.ntasks = ntasks;
        {
            std::lock_guard<std::mutex> lk(m_);
            job_ = &job;
            ++generation_;
        }
        cv_.notify_all();
        run_tasks(job);
        {
            std::unique_lock<std::mutex> lk(m_);
            job_ = nullptr;  // late wakers find no job
            done_cv_.wait(lk, [&] { return job.active == 0; });
        }
        if (job.error) std::rethrow_exception(job.error);
    }

   private:
    static void run_serial(size_t ntasks, const std::function<void(size_t)>& fn) {
        bool was = tls_in_task;
        tls_in_task = true;
        try {
            for (size_t t = 0; t < ntasks; t++) fn(t);
        } catch (...) {
            tls_in_task = was;
            throw;
        }
        tls_in_task = was;
    }

    // A new worker must take the job that run() is about to publish: it
    // starts from the generation before it (reading generation_ itself once
    // running could already see the new one and wait past this job).
    void start_workers() {
        const uint64_t before = generation_.load();
        while ((int)workers_.size() < nthreads_ - 1) workers_.emplace_back([this, before] { worker_loop(before); });
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
        stop_ = false;
    }

    // Spins a little before sleeping: back-to-back calls (one query at a
    // time from Python) then find the workers awake instead of paying a
    // futex wake-up each, which is as long as a small search.
    void spin_for_work(uint64_t seen) {
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; i++) cpu_relax();
            if (std::chrono::steady_clock::now() > until) return;
        }
    }

    void worker_loop(uint64_t seen) {
        std::unique_lock<std::mutex> lk(m_);
        while (true) {
            lk.unlock();
            spin_for_work(seen);
            lk.lock();
            cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            Job* job = job_;
            if (!job) continue;
            ++job->active;
            lk.unlock();
            run_tasks(*job);
            lk.lock();
            if (--job->active == 0) done_cv_.notify_all();
        }
    }

    int nthreads_;
    std::mutex run_mutex_;  // one parallel call at a time
    std::mutex m_;          // guards job_, generation_, stop_, Job::active
    std::condition_variable cv_, done_cv_;
    Job* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};  // written under m_, read by spinners
    std::atomic<bool> stop_{false};
    std::vector<std::thread> workers_;
};

int default_num_threads() {
    for (const char* var : {"NEARLY_NUM_THREADS", "OMP_NUM_THREADS"}) {
        if (const char* s = std::getenv(var)) {
            int n = std::atoi(s);
            if (n > 0) return n;
        }
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
}

// The pool is created on first use and deliberately leaked (see ~Pool). After
// fork() the child has none of the parent's threads, and its mutexes may be
// in any state: drop the pool and let the child build its own.
std::atomic<Pool*> g_pool{nullptr};
std::atomic<int> g_requested{0};
std::mutex* g_create_mutex = new std::mutex;

void after_fork_in_child() {
    g_pool.store(nullptr);
    g_create_mutex = new std::mutex;
}

Pool& pool() {
    Pool* p = g_pool.load(std::memory_order_acquire);
    if (p) return *p;
    std::lock_guard<std::mutex> lk(*g_create_mutex);
    p = g_pool.load();
    if (!p) {
        static bool registered = (pthread_atfork(nullptr, nullptr, after_fork_in_child), true);
        (void)registered;
        int n = g_requested.load();
        p = new Pool(n > 0 ? n : default_num_threads());
        g_pool.store(p, std::memory_order_release);
    }
    return *p;
}

}  // namespace

int get_num_threads() { return pool().size(); }

void set_num_threads(int n) {
    n = std::max(n, 1);  // like faiss (OpenMP), 0 or less means one thread
    g_requested.store(n);
    pool().resize(n);
}

void parallel_for(size_t ntasks, const std::function<void(size_t)>& fn) {
    if (ntasks == 0) return;
    if (tls_in_task) {  // nested: the outer call already uses every thread
        for (size_t t = 0; t < ntasks; t++) fn(t);
        return;
    }
    pool().run(ntasks, fn);
}

bool in_parallel_region() { return tls_in_task; }

}  // namespace nearly
