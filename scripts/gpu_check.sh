#!/usr/bin/env bash
# One prepared GPU check (issue 8, item 10): on one NVIDIA H200 (Python 3.12, torch 2.11 CUDA 13, Triton, nvcc,
# no internet), in under 8 minutes:
#   1. install the wheels carried in .whl/ (made on a CPU machine by scripts/gpu_wheels.sh);
#   2. build the `gpu` extra's kernels from the carried sdists (mamba-ssm, causal-conv1d) with nvcc for sm_90
#      only, in the background at low priority, timed; skipped (and said so) when it cannot finish in time;
#   3. run every CUDA test (`pytest -m cuda`) while the build runs, then the mamba-ssm ones again once built;
#   4. run a CUDA benchmark subset (ParT, ParTFlash, MambaParT; N = 128, 1024; fp32, bf16) once the build is over.
# Everything goes to one folder: GPU_CHECK_DIR (default output/gpu_check). When $OUT is set (the device tool),
# the summary, junit files, benchmark table and a tarball of the whole folder are copied there (it returns at
# most 8 files). Each step's exit status and duration are recorded in summary.tsv; a failed step does not stop
# the others; the script exits 1 if any step failed (a build skipped or stopped for lack of time is reported,
# not counted as a failure).
#
#   bash scripts/gpu_check.sh                 # on the GPU machine (see docs/benchmarks.md, "GPU check")
#   DRY_RUN=1 bash scripts/gpu_check.sh       # anywhere: print the plan, run nothing (tested on CPU)
#
# Knobs: PYTHON (python3), WHEELS_DIR (.whl), BUDGET_S (total, 470), BUILD_BUDGET_S (cap for the build, 330),
# SKIP_BUILD=1, MIN_BUILD_S (no build started with less time than this, 120), MAX_JOBS (16), CUDA_ARCH (9.0), BENCH_MODELS, BENCH_LENGTHS, BENCH_DTYPES, BENCH_BATCHES,
# BENCH_MAX_SECONDS (per configuration, 1).
set -uo pipefail  # no -e: every step runs and reports its own status
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
DRY=${DRY_RUN:-0}
WHEELS=${WHEELS_DIR:-.whl}
RES=${GPU_CHECK_DIR:-output/gpu_check}
BUDGET=${BUDGET_S:-470}
BUILD_CAP=${BUILD_BUDGET_S:-330}
ARCH=${CUDA_ARCH:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
MODELS=${BENCH_MODELS:-ParT,ParTFlash,MambaParT}
LENGTHS=${BENCH_LENGTHS:-128,1024}
DTYPES=${BENCH_DTYPES:-fp32,bf16}
BATCHES=${BENCH_BATCHES:-1,64}
KERNELS=/tmp/partx-kernels  # where the built kernels are installed
SITE=/tmp/partx-site        # where the carried wheels are installed
SECONDS=0

rm -rf "$RES" && mkdir -p "$RES"
SUMMARY=$RES/summary.tsv
printf 'step\tstatus\tseconds\tnote\n' >"$SUMMARY"
FAILED=0

say() { echo "[gpu_check ${SECONDS}s] $*" | tee -a "$RES/gpu_check.log"; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$SUMMARY"; }

# step NAME LOG CMD...: run CMD (or print it under DRY_RUN) with output in $RES/LOG; record status and time
step() {
    local name=$1 log=$2 t0=$SECONDS rc
    shift 2
    say "$name: $*"
    if [[ $DRY == 1 ]]; then
        record "$name" dry-run 0
        return 0
    fi
    "$@" >"$RES/$log" 2>&1
    rc=$?
    record "$name" "$rc" $((SECONDS - t0)) "$log"
    [[ $rc == 0 ]] || { FAILED=1; say "$name FAILED (exit $rc), see $RES/$log"; }
    return $rc
}

# ---------------------------------------------------------------- 1. environment and carried wheels
env_report() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
    "$PY" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
    nvcc --version | tail -2
    nproc
}
step env env.txt env_report

install_wheels() {
    shopt -s nullglob
    local whl=("$WHEELS"/*.whl)
    ((${#whl[@]})) || { echo "no wheels in $WHEELS: run scripts/gpu_wheels.sh on a machine with internet and carry .whl"; return 1; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${whl[@]}"
}
step wheels wheels.log install_wheels
export PYTHONPATH="$REPO:$KERNELS:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# ---------------------------------------------------------------- 2. build mamba-ssm + causal-conv1d (background)
# Both setup.py files hard-code -gencode pairs for every architecture nvcc knows (9 with CUDA 13), whatever
# TORCH_CUDA_ARCH_LIST says; scripts/sm_only.py cuts them to sm_$ARCH (checked to leave exactly one).
build_one() {  # build_one SDIST: unpack, restrict to one architecture, build and install into $KERNELS, timed
    local sdist=$1 src t0=$SECONDS
    src=$(mktemp -d /tmp/partx-build.XXXX)
    tar -xzf "$sdist" -C "$src" || return 1
    src=$(echo "$src"/*/)
    "$PY" "$REPO/scripts/sm_only.py" "$src/setup.py" "${ARCH/./}" || return 1
    TORCH_CUDA_ARCH_LIST=$ARCH MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE \
        nice -n 19 "$PY" -m pip install -v --no-index --no-deps --no-build-isolation --no-cache-dir --target "$KERNELS" "$src"
    local rc=$?
    echo "built $(basename "$sdist") in $((SECONDS - t0)) s (exit $rc)"
    return $rc
}

BUILD_PIDS=()
BUILD_NAMES=()
start_build() {
    shopt -s nullglob
    local sdists=("$WHEELS"/mamba_ssm-*.tar.gz "$WHEELS"/causal_conv1d-*.tar.gz)
    if [[ ${SKIP_BUILD:-0} == 1 ]]; then
        say "build: skipped (SKIP_BUILD=1): mamba-ssm CUDA tests skip, MambaParT runs its PyTorch scan"
        record build skipped 0 SKIP_BUILD=1
        return
    fi
    if ((${#sdists[@]} == 0)); then
        say "build: skipped, no mamba_ssm-*/causal_conv1d-*.tar.gz in $WHEELS"
        record build skipped 0 "no sdists"
        return
    fi
    local left=$((BUDGET - SECONDS - 150))  # keep ~150 s for the mamba tests and the benchmark
    BUILD_LIMIT=$((left < BUILD_CAP ? left : BUILD_CAP))
    if ((BUILD_LIMIT < ${MIN_BUILD_S:-120})); then
        say "build: skipped, only ${BUILD_LIMIT}s of the ${BUDGET}s budget left for it (mamba-ssm needs minutes)"
        record build skipped 0 "no time"
        return
    fi
    for sdist in "${sdists[@]}"; do
        local name
        name=$(basename "$sdist" .tar.gz)
        say "build: $name in the background (nice 19, MAX_JOBS=$MAX_JOBS, TORCH_CUDA_ARCH_LIST=$ARCH, at most ${BUILD_LIMIT}s)"
        if [[ $DRY == 1 ]]; then
            record "build $name" dry-run 0
            continue
        fi
        timeout --signal=TERM --kill-after=10 "$BUILD_LIMIT" bash -c "$(declare -f build_one); build_one '$sdist'" \
            >"$RES/build_$name.log" 2>&1 &
        BUILD_PIDS+=($!)
        BUILD_NAMES+=("$name")
    done
    BUILD_T0=$SECONDS
}
export PY ARCH KERNELS REPO
start_build

# ---------------------------------------------------------------- 3. every CUDA test (while the build runs)
step pytest-cuda pytest_cuda.log "$PY" -m pytest -m cuda -q -rs -p no:cacheprovider --junitxml="$RES/junit_cuda.xml" tests

wait_build() {
    local i rc built=0
    for i in "${!BUILD_PIDS[@]}"; do
        wait "${BUILD_PIDS[$i]}"
        rc=$?
        local note="build_${BUILD_NAMES[$i]}.log"
        if [[ $rc == 124 || $rc == 137 ]]; then  # did not fit: said, not counted as a failure
            note="stopped after ${BUILD_LIMIT}s: did not fit the budget, mamba-ssm tests skip; $note"
        elif [[ $rc != 0 ]]; then
            FAILED=1
        else
            built=$((built + 1))
        fi
        record "build ${BUILD_NAMES[$i]}" "$rc" $((SECONDS - BUILD_T0)) "$note"
        say "build ${BUILD_NAMES[$i]}: exit $rc after $((SECONDS - BUILD_T0))s since the build started ($note)"
    done
    ((${#BUILD_PIDS[@]})) && ((built == ${#BUILD_PIDS[@]}))
}
if ((${#BUILD_PIDS[@]})) && wait_build; then
    step pytest-cuda-mamba pytest_cuda_mamba.log "$PY" -m pytest -m cuda -q -rs -p no:cacheprovider \
        --junitxml="$RES/junit_cuda_mamba.xml" tests/test_mamba.py
    step mamba-backend mamba_backend.txt "$PY" -c \
        'from partx.nn.mamba import scan_cuda; print("mamba1 kernel:", scan_cuda.available("mamba1"), "mamba2 kernel:", scan_cuda.available("mamba2"))'
elif [[ $DRY == 1 ]]; then
    step pytest-cuda-mamba pytest_cuda_mamba.log "$PY" -m pytest -m cuda tests/test_mamba.py
fi

# ---------------------------------------------------------------- 4. CUDA benchmark subset (after the build: quiet CPU)
say "benchmark: $((BUDGET - SECONDS))s of the ${BUDGET}s budget left"
step benchmark benchmark.log "$PY" analysis/benchmark.py --models "$MODELS" --lengths "$LENGTHS" --dtypes "$DTYPES" \
    --batch-sizes "$BATCHES" --device cuda --warmup 2 --min-run-time 0.2 --max-seconds "${BENCH_MAX_SECONDS:-1}" \
    --baseline ParT --no-progress --out "$RES/benchmark" --stem cuda_subset
# benchmark.py fails only when no configuration ran; a row that errored (e.g. a kernel that failed) fails here
step benchmark-rows benchmark_rows.txt "$PY" -c '
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
bad = [r for r in rows if r.get("status") != "ok"]
for r in bad:
    print(r["model"], "N=%s" % r["N"], "B=%s" % r["batch"], r["dtype"], r["status"])
print(len(rows) - len(bad), "of", len(rows), "configurations ok")
sys.exit(1 if bad else 0)' "$RES/benchmark/cuda_subset.json"

# ---------------------------------------------------------------- summary, and what goes back through $OUT
{
    echo "gpu_check: ${SECONDS}s in all (budget ${BUDGET}s); failed steps: $FAILED"
    column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
    grep -h "^built " "$RES"/build_*.log 2>/dev/null
    [[ -f $RES/benchmark_rows.txt ]] && cat "$RES/benchmark_rows.txt"
    [[ -f $RES/pytest_cuda.log ]] && tail -n 3 "$RES/pytest_cuda.log"
    [[ -f $RES/benchmark/cuda_subset.md ]] && sed -n '/^## Results/,/^## Scaling/p' "$RES/benchmark/cuda_subset.md"
} >"$RES/summary.txt"
if [[ -n ${OUT:-} && $DRY != 1 ]]; then
    tar -czf "$OUT/gpu_check.tar.gz" -C "$(dirname "$RES")" "$(basename "$RES")"
    cp "$RES/summary.txt" "$OUT/"
    for f in junit_cuda.xml junit_cuda_mamba.xml benchmark/cuda_subset.md; do
        [[ -f $RES/$f ]] && cp "$RES/$f" "$OUT/"
    done
fi
cat "$RES/summary.txt"
exit "$FAILED"
