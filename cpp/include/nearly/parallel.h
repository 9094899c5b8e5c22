// Our own small thread pool (no OpenMP: no libomp clashes with torch, no
// oversubscription). The calling thread works too; a call made while the pool
// is busy (another Python thread, or from inside a task) runs serially on the
// calling thread instead of waiting.
#pragma once
#include <cstddef>
#include <functional>

namespace nearly {

int get_num_threads();       // threads a parallel call may use, caller included
void set_num_threads(int n);  // n >= 1; waits for a running parallel call to end

// Runs fn(0) ... fn(ntasks - 1), in parallel when worthwhile, and returns when
// all are done. The first exception thrown by a task is rethrown here; tasks
// not yet started are then skipped.
void parallel_for(size_t ntasks, const std::function<void(size_t)>& fn);

// fn(0) ... fn(n - 1) in parallel, `block` at a time: for work items too
// small to be a task each (one vector's decode or copy).
template <class Fn>
void parallel_for_blocks(size_t n, size_t block, const Fn& fn) {
    parallel_for((n + block - 1) / block, [&](size_t b) {
        const size_t end = n < (b + 1) * block ? n : (b + 1) * block;
        for (size_t i = b * block; i < end; i++) fn(i);
    });
}

// How many of n items (queries) a task takes: at most `most` (neighbours
// share cache lines, and a task costs), fewer when that would leave threads
// idle (10 queries, 2 threads, at most 8: 5 + 5, not 8 + 2).
inline size_t items_per_task(size_t n, size_t most) {
    const size_t threads = size_t(get_num_threads());
    const size_t even = (n + threads - 1) / threads;
    return even < 1 ? 1 : even > most ? most : even;
}

// True inside a task run by parallel_for (also on the calling thread).
bool in_parallel_region();

}  // namespace nearly
