#!/usr/bin/env bash
# One run on the device machine: build with CUDA, the GPU tests, then the
# bench/gpu.py suites named as arguments, each in its own process under the
# time left. Logs and JSON land in $OUT (the device tool brings back at most
# 8 files; copy the JSON into bench/results/).
#
#   here, once:   python bench/gpu.py --make-slice ../shared/data .devdata
#   device run:   bash bench/gpu_run.sh graph binary muvera      (carry: .devdata)
#   a rerun on the warm machine after a fix, only some tests, no suite:
#                 GPU_TESTS=tests/gpu/test_gpu_graph_build.py bash bench/gpu_run.sh
#
# BUDGET (seconds, default 560) bounds the whole run, so that the device
# tool's own limit never cuts it and everything measured comes back; SUITE_ARGS
# passes options to bench/gpu.py. The build targets only this device's chip.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/results}
BUDGET=${BUDGET:-560}
mkdir -p "$OUT"
t0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader | tee "$OUT/gpu-tests.log"
# A fixed build dir: a second call on the still-warm machine (after a fix)
# recompiles only what changed.
NEARLY_CUDA=ON python -m pip install --no-build-isolation --no-deps -q -Cbuild-dir=build/gpu \
  -Ccmake.define.NEARLY_CUDA_ARCHS="${arch:-90}" . >"$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
timeout -s INT -k 10 $(( $(left) * ${TEST_SHARE:-40} / 100 )) \
  python -m pytest ${GPU_TESTS:-tests/gpu} -q -p no:cacheprovider --maxfail 30 -rfE --durations 15 2>&1 \
  | tee -a "$OUT/gpu-tests.log" | tail -45
echo "tests: $(( $(date +%s) - t0 )) s"
n=$#
for s in "$@"; do
  # the suites share what is left, the earlier ones first in line
  t=$(( $(left) / n )); [ "$n" -gt 1 ] && t=$(( $(left) * 6 / 10 > t ? $(left) * 6 / 10 : t ))
  [ "$(left)" -lt 20 ] && { echo "no time left for $s"; break; }
  echo "== $s ($t s)" | tee -a "$OUT/bench.log"
  timeout -s INT -k 10 "$t" python bench/gpu.py "$s" ${SUITE_ARGS:-} --data .devdata --out "$OUT" 2>&1 \
    | tee -a "$OUT/bench.log" | tail -40
  n=$(( n - 1 ))
done
echo "total: $(( $(date +%s) - t0 )) s"
