# Shared by the train_*.sh scripts: sourced, not run. Finds the Python that has weaver and partx,
# sources env.sh (a DATADIR_* already set by the caller wins over it) and cds to the repository root.
# Everything else (knobs, checks, the weaver command) is partx.launcher: `python -m partx.launcher --help`.

PARTX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_caller_datadirs=$(for v in $(compgen -v DATADIR_ || true); do declare -p "$v"; done)
[[ -f "${PARTX_ROOT}/env.sh" ]] && source "${PARTX_ROOT}/env.sh"
eval "${_caller_datadirs}"

# weaver from the project's virtualenv (where partx is importable), else from PATH.
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${PARTX_ROOT}/.venv/bin/python" ]]; then PYTHON="${PARTX_ROOT}/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi
"${PYTHON}" -c "import weaver, partx" 2>/dev/null || {
    echo "ERROR: weaver-core and partx are not importable with ${PYTHON}; run 'make env' first (or set PYTHON=)" >&2
    exit 2
}
cd "${PARTX_ROOT}"
