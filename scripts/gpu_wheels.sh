#!/usr/bin/env bash
# Fill .whl/ with what the GPU machine lacks, for scripts/gpu_check.sh (run HERE, on a machine with internet).
#
# The lent H200 machine (Python 3.12, torch 2.11 + CUDA 13, no internet) has torch, numpy, scipy, pandas,
# pyarrow, numba, matplotlib, scikit-learn, tensorboard, tqdm, pyyaml, tabulate, onnx, onnxruntime, einops,
# pytest, ... but not the packages below (partx's imports and their requirements, compared with that image's
# package list). They are downloaded as cp312 manylinux wheels, --no-deps, at the versions pinned in
# constraints.txt (the tested ones); mamba-ssm and causal-conv1d (the `gpu` extra; PyPI has sources only) as
# sdists, built there by gpu_check.sh. (No flash-attn: partx's fused attention is torch SDPA / FlexAttention.)
#
#   bash scripts/gpu_wheels.sh            # -> .whl/*.whl, .whl/*.tar.gz (about 30 MB; the carry limit is 64 MiB)
#   DRY_RUN=1 bash scripts/gpu_wheels.sh  # print the commands only
#
# Each download is a step of its own: a failure is recorded and the others go on; the summary at the end lists
# every step's exit status, and the script exits 1 if any failed.
set -uo pipefail  # no -e: each step reports its own status
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python3
DEST=${WHEELS_DIR:-.whl}
DRY=${DRY_RUN:-0}
MAMBA_VERSION=${MAMBA_VERSION:-2.3.2.post1}
CAUSAL_CONV1D_VERSION=${CAUSAL_CONV1D_VERSION:-1.7.0}

# Missing on the GPU image: partx's direct imports (weaver-core, uproot, awkward, mplhep, mambapy, linformer,
# reformer-pytorch) and, recursively, their requirements that the image does not have.
PACKAGES=(
    weaver-core awkward awkward-cpp awkward0 uproot cramjam vector lz4 numexpr tables blosc2 ndindex
    pydantic pydantic-core annotated-types typing-inspection importlib-metadata lazy-importer
    mplhep mplhep-data uhi
    mambapy linformer reformer-pytorch axial-positional-embedding local-attention product-key-memory
    colt5-attention hyper-connections torch-einops-utils
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

STATUS=()
FAILED=0
run() {  # run NAME CMD...: one step, its status remembered
    local name=$1
    shift
    echo "+ $*"
    if [[ $DRY == 1 ]]; then
        STATUS+=("$name dry-run")
        return 0
    fi
    "$@"
    local rc=$?
    STATUS+=("$name $rc")
    ((rc == 0)) || FAILED=1
    return $rc
}

# NAME==VERSION from constraints.txt (names compared as PEP 503 normalises them), or NAME when not pinned
pinned() {
    local want norm line
    want=$(echo "$1" | tr 'A-Z_.' 'a-z--')
    while IFS= read -r line; do
        [[ $line == *==* ]] || continue
        norm=$(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--')
        [[ $norm == "$want" ]] && { echo "$1==${line#*==}"; return; }
    done <constraints.txt
    echo "$1"
}

mkdir -p "$DEST"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
for pkg in "${PACKAGES[@]}"; do
    spec=$(pinned "$pkg")
    [[ $spec == *==* ]] || echo "note: $pkg is not pinned in constraints.txt; taking the newest"
    run "$spec" "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platform_args[@]}" -d "$DEST" "$spec"
done
# sdists: pip prepares their metadata by running setup.py, which imports torch; the *_SKIP_CUDA_BUILD switches
# keep it from looking for nvcc here
export MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE
run "mamba-ssm==$MAMBA_VERSION (sdist)" "$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation \
    -d "$DEST" "mamba-ssm==$MAMBA_VERSION"
run "causal-conv1d==$CAUSAL_CONV1D_VERSION (sdist)" "$PY" -m pip download -q --no-deps --no-binary=:all: \
    --no-build-isolation -d "$DEST" "causal-conv1d==$CAUSAL_CONV1D_VERSION"

echo
echo "summary (exit status per download):"
printf '  %s\n' "${STATUS[@]}"
if [[ $DRY != 1 ]]; then
    n=$(find "$DEST" -maxdepth 1 -name '*.whl' | wc -l)
    echo "$DEST: $n wheels, $(du -sh "$DEST" | cut -f1) (carry limit 64 MiB with the rest of the tree)"
    dups=$(find "$DEST" -maxdepth 1 -name '*.whl' -printf '%f\n' | cut -d- -f1 | tr 'A-Z' 'a-z' | sort | uniq -d)
    [[ -z $dups ]] || { echo "error: several versions of: $dups (pip install stops on two); remove the old ones"; FAILED=1; }
fi
exit "$FAILED"
