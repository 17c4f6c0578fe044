#!/usr/bin/env bash
# Regenerate benchmarks/cpu and benchmarks/profile_ParT (the tables in docs/benchmarks.md).
# THREADS (default 1), DEVICE (cpu|cuda; default cpu), OUT (default benchmarks/<device>). About 30 min on 2 CPU cores.
# Timing: torch.utils.benchmark adaptive autorange, at most --max-seconds timed per configuration (its own
# block-size estimation is the warm-up of the slow runs: --warmup 0). On a GPU machine see scripts/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-cpu}
OUT=${OUT:-benchmarks/${DEVICE}}
common=(--threads "${THREADS}" --device "${DEVICE}" --baseline ParT --out "${OUT}")
dtypes=fp32,int8; [[ "${DEVICE}" == cuda ]] && dtypes=fp32,bf16

"${PY}" analysis/benchmark.py --models ParT,ParT-plain,ParTFlash,LinformerParT,ReformerParT,MambaParT,PN,PFN,PCNN \
    --lengths 128 --batch-sizes 1,64 --dtypes "${dtypes}" --warmup 2 --max-seconds 10 --stem n128_b1_b64 "${common[@]}"
"${PY}" analysis/benchmark.py --models ParT,ParT-plain,LinformerParT,ReformerParT,MambaParT,PN,PFN,PCNN \
    --lengths 128,256,512,1024 --batch-sizes 8 --dtypes fp32 --warmup 0 --max-seconds 20 --stem scaling_b8 "${common[@]}"
"${PY}" analysis/benchmark.py --models ParT,LinformerParT,MambaParT,ParT-plain \
    --lengths 128 --batch-sizes 512 --dtypes fp32 --warmup 0 --max-seconds 30 --no-memory --stem n128_b512 "${common[@]}"
"${PY}" analysis/profile_model.py --model ParT --length 128 --batch-size 64 --threads "${THREADS}" --device "${DEVICE}" \
    --iterations 1 --warmup 1 --top 20 --out "benchmarks/profile_ParT$([[ ${DEVICE} == cpu ]] || echo _${DEVICE})"
