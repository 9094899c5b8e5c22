// IndexIVF::search_grouped: the fast-scan families' search of a batch whose
// query tables serve every list (ivf.h).
#include <algorithm>

#include "nearly/ivf.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"

namespace nearly {

namespace {
// Grouping pays once lists are probed by a few queries of a slice on average.
constexpr size_t kMinGroupedPairsPerList = 2;
// Probe ranks are visited in rounds: [0, 1), [1, 4), [4, nprobe).
constexpr size_t kRounds = 3;
inline size_t round_of(size_t rank) { return rank < 1 ? 0 : (rank < 4 ? 1 : 2); }
}  // namespace

bool IndexIVF::search_grouped(idx_t n, idx_t k, size_t np, const idx_t* coarse, const IDSelector* sel, float* D,
                              idx_t* I, bool sorted, size_t table_bytes, const TableMaker& make_tables,
                              const std::function<float(size_t)>& offset) const {
    // Slices: their tables fit in half of a 2 MB L2, and every thread gets
    // as many.
    const size_t threads = size_t(std::max(1, get_num_threads()));
    const size_t max_slice = std::max<size_t>(1, (size_t(1) << 20) / table_bytes);
    const size_t waves = (size_t(n) + threads * max_slice - 1) / (threads * max_slice);
    const size_t slice = (size_t(n) + threads * waves - 1) / (threads * waves);
    // Too few queries per list to share the loads: one query after the other.
    if (slice * np < kMinGroupedPairsPerList * nlist) return false;

    const size_t kk = size_t(k), nslices = (size_t(n) + slice - 1) / slice;
    InterruptPoll poll;
    parallel_for(nslices, [&](size_t s) {
        const size_t q0 = s * slice, m = std::min(slice, size_t(n) - q0);
        std::vector<PQ4Table> tables(m);
        make_tables(q0, m, tables.data());
        std::vector<TopKReservoir> found(m);
        for (auto& f : found) f.reset(kk);
        // The slice's (query, probe) pairs bucketed by (round, list): each
        // query's nearest lists come in the first rounds, so its threshold is
        // tight before the bulk of its lists is scanned.
        const size_t nb = kRounds * nlist;
        auto bucket = [&](size_t j) { return round_of(j % np) * nlist + size_t(coarse[j]); };
        std::vector<uint32_t> start(nb + 1, 0);
        for (size_t j = q0 * np; j < (q0 + m) * np; j++)
            if (coarse[j] >= 0) start[bucket(j) + 1]++;
        for (size_t b = 0; b < nb; b++) start[b + 1] += start[b];
        std::vector<uint32_t> pairs(start[nb]), fill(start.begin(), start.end() - 1);
        for (size_t j = q0 * np; j < (q0 + m) * np; j++)
            if (coarse[j] >= 0) pairs[fill[bucket(j)]++] = uint32_t(j - q0 * np);

        std::vector<const PQ4Table*> tabs;
        std::vector<TopKReservoir*> outs;
        std::vector<float> offsets;
        size_t next = 0;
        auto advance = [&](size_t b) {
            while (b < nb && (start[b + 1] == start[b] || searched_size(list_at(b % nlist).ids.size()) == 0)) b++;
            return b;
        };
        for (size_t b = advance(0); b < nb; b = next) {
            next = advance(b + 1);
            const InvertedLists::List& list = list_at(b % nlist);
            // The next list's codes start coming from memory while this one
            // is scanned.
            if (next < nb) {
                const InvertedLists::List& nl = list_at(next % nlist);
                for (size_t o = 0; o < std::min<size_t>(nl.codes.size(), 16384); o += 64)
                    __builtin_prefetch(nl.codes.data() + o);
            }
            tabs.clear();
            outs.clear();
            offsets.clear();
            for (uint32_t j = start[b]; j < start[b + 1]; j++) {
                const size_t i = pairs[j] / np;
                tabs.push_back(&tables[i]);
                outs.push_back(&found[i]);
                offsets.push_back(offset(q0 * np + pairs[j]));
            }
            pq4_scan_queries(list.codes.data(), searched_size(list.ids.size()), tabs.size(), tabs.data(), offsets.data(),
                             list.ids.data(), 0, sel, outs.data());
        }
        for (size_t i = 0; i < m; i++)
            pq4_take_results(found[i], kk, sorted, metric_type, D + (q0 + i) * kk, I + (q0 + i) * kk);
        poll();
    });
    return true;
}

}  // namespace nearly
