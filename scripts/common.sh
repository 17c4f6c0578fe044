# Shared by the train_*.sh scripts: sourced, not run. Sets WEAVER_CMD, GPU_OPTS and helper functions.
# Everything here can be overridden from the environment; the scripts themselves stay thin.

PARTX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# env.sh holds the defaults; a DATADIR_* already set by the caller wins over it.
_caller_datadirs=$(for v in $(compgen -v DATADIR_ || true); do declare -p "$v"; done)
[[ -f "${PARTX_ROOT}/env.sh" ]] && source "${PARTX_ROOT}/env.sh"
eval "${_caller_datadirs}"

die() { echo "ERROR: $*" >&2; exit 2; }

# weaver from the project's virtualenv (where partx is importable), else from PATH.
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${PARTX_ROOT}/.venv/bin/python" ]]; then PYTHON="${PARTX_ROOT}/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi
"${PYTHON}" -c "import weaver, partx" 2>/dev/null \
    || die "weaver-core and partx are not importable with ${PYTHON}; run 'make env' first (or set PYTHON=)"

HAS_CUDA=$("${PYTHON}" -c "import torch; print(int(torch.cuda.is_available()))")

# GPUS: comma-separated device ids for weaver's --gpus; empty string = CPU. Default: GPU 0 if CUDA, else CPU.
if [[ -z "${GPUS+x}" ]]; then
    if [[ "${HAS_CUDA}" == 1 ]]; then GPUS=0; else GPUS=""; fi
fi

# DDP_NGPUS>1: one process per device via partx.launch (torch elastic, like torchrun): weaver's own
# nccl DDP on GPUs; on CPU the gloo backend (weaver 0.5.3 alone assumes CUDA for DDP).
NGPUS=${DDP_NGPUS:-1}
[[ "${NGPUS}" =~ ^[1-9][0-9]*$ ]] || die "DDP_NGPUS must be a positive integer, got '${NGPUS}'"
if (( NGPUS > 1 )); then
    if [[ "${HAS_CUDA}" == 1 && -n "${GPUS}" ]]; then ddp_backend=nccl; else ddp_backend=gloo; fi
    WEAVER_CMD=("${PYTHON}" -m partx.launch --nproc "${NGPUS}" --backend "${ddp_backend}")
else
    WEAVER_CMD=("${PYTHON}" -m weaver.train)
fi

# require_files DESCRIPTION GLOB...: fail with a pointer to get_datasets.py / the generator if a glob is empty.
require_files() {
    local what="$1"; shift
    local pattern
    for pattern in "$@"; do
        compgen -G "${pattern}" > /dev/null || die "no ${what} files match '${pattern}'.
  Get the real data with:      ./get_datasets.py ${DATASET_NAME:-<dataset>} -d ./datasets
  or generate a small one:     ${GENERATE_HINT:-see README.md}
  (the data directory is set by ${DATADIR_VAR:-DATADIR_<dataset>} in env.sh)"
    done
}

# has_arg FLAG ARGS...: true if FLAG is among ARGS.
has_arg() { local f="$1"; shift; local a; for a in "$@"; do [[ "$a" == "$f" ]] && return 0; done; return 1; }
