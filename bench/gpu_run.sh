#!/usr/bin/env bash
# One run on the device machine: build with CUDA, the GPU tests, then the
# bench/gpu.py suites named as arguments. Logs and JSON land in $OUT (the
# device tool brings them back; copy the JSON into bench/results/).
#
#   here, once:   python bench/gpu.py --make-slice ../shared/data .devdata
#   device run:   bash bench/gpu_run.sh graph binary muvera      (carry: .devdata)
#   a rerun on the warm machine after a fix, only some tests, no suite:
#                 GPU_TESTS=tests/gpu/test_gpu_graph_build.py bash bench/gpu_run.sh
#
# The device time is short: the build is about 2 minutes on 16 cores, the
# tests about 2 more; name only the suites that fit in what is left.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
# A fixed build dir: a second call on the still-warm machine (after a fix)
# recompiles only what changed.
NEARLY_CUDA=ON python -m pip install --no-build-isolation --no-deps -q -Cbuild-dir=build/gpu . >"$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
python -m pytest ${GPU_TESTS:-tests/gpu} -q -p no:cacheprovider --timeout 300 --maxfail 30 2>&1 | tee "$OUT/gpu-tests.log" | tail -30
echo "tests: $(( $(date +%s) - t0 )) s"
if [ $# -gt 0 ]; then
  python bench/gpu.py "$@" --data .devdata --out "$OUT" 2>&1 | tee "$OUT/bench.log" | tail -60
fi
echo "total: $(( $(date +%s) - t0 )) s"
