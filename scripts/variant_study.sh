#!/usr/bin/env bash
# The README's ParT-variant comparison: every variant at the demo size (4 blocks, 64-wide, 4 heads; U from a
# 2x32 pair embedding where the variant uses U), full features, 800 training jets per class of the small
# generated set, 3 epochs, batch 128, one shared 2000-jet test set; ParT-demo and MambaParT trained
# REPEATS times (unseeded: each training is independent; PARTX_SEED=N would make each repeat exactly), the others once.
#   bash scripts/variant_study.sh            # ~1 h on 2 idle cores; finished runs are skipped on a rerun
# Knobs: PYTHON, REPEATS (3), OUT (output/variants), DATA (datasets/JetClass, the `make demo` data).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-output/variants}
DATA=${DATA:-datasets/JetClass}
D='-o num_layers 4 -o embed_dims [64,256,64] -o num_heads 4'
U="$D -o pair_embed_dims [32,32]"
MODELS=MambaParT,ParT-demo,ParTFlash,ReformerParT,LinformerParT,ParT-plain
OPTS=(--model-opts "MambaParT=$D" --model-opts "ParTFlash=$U" --model-opts "ReformerParT=$U"
      --model-opts "LinformerParT=$U" --model-opts "ParT-plain=$D")
study() {
    "${PY}" analysis/training_size_study.py --data "800=${DATA}" --eval-data "${DATA}" --epochs 3 --out "${OUT}" \
        --title "ParT variants, 800 jets/class, 3 epochs" "$@"
}
study --models "${MODELS}" "${OPTS[@]}"                                                  # every variant once
study --models MambaParT,ParT-demo --repeats "${REPEATS:-3}" --model-opts "MambaParT=$D"  # the repeats
study --models "${MODELS}" "${OPTS[@]}" --repeats "${REPEATS:-3}" --collect               # the table of all runs
