#!/usr/bin/env bash
# The README's main command (make demo): generate a small JetClass-format dataset with Pythia 8,
# train a (CPU-sized) ParT on it through train_JetClass.sh / weaver, and evaluate on the test split.
# Knobs: DATADIR_JetClass (default ./datasets/JetClass), DEMO_EPOCHS (3), DEMO_WORKERS (2), DEMO_OUT (output/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATADIR=${DATADIR_JetClass:-./datasets/JetClass}
EPOCHS=${DEMO_EPOCHS:-3}
OUT=${DEMO_OUT:-output/demo}
RUN="${OUT}/ParT_$(date +%Y%m%d-%H%M%S)"
# The model is the registry's ParT-demo (partx/registry.py): 4 particle blocks, 64-wide embeddings,
# U from a 2x32-wide pair embedding, 4 heads.

cat <<TXT
partx demo -- what happens now (about 4 minutes on an idle 2-core CPU, ~3 more the first time for the data):
  1. generate the 'small' JetClass-format dataset (10 classes x 800/200/200 jets, Pythia 8 + Delphes-lite)
     into ${DATADIR} (skipped for files that already exist)
  2. validate it against the JetClass schema and plot jet mass / multiplicity per class
  3. train a demo-sized ParT (full feature set, ${EPOCHS} epochs) with ./train_JetClass.sh -> ${RUN}
  4. evaluate on the test split: accuracy, AUC (one-vs-one, as the paper), per-class QCD rejection at the paper's working points, ROC plot
TXT

echo; echo "== 1/4 generate"
"${PY}" -m partx.datagen jetclass --out "${DATADIR}" --preset small --workers "${DEMO_WORKERS:-2}"
echo; echo "== 2/4 validate"
"${PY}" -m partx.datagen validate "${DATADIR}" --plot "${OUT}/jetclass_summary.png"
echo; echo "== 3/4 train ParT (weaver; log and checkpoints under ${RUN})"
DATADIR_JetClass="${DATADIR}" NUM_EPOCHS="${EPOCHS}" SAMPLES_PER_EPOCH=8000 SAMPLES_PER_EPOCH_VAL=2000 BATCH_SIZE=128 \
    DATAOPTS="--num-workers 1 --fetch-step 1 --in-memory" GPUS="${GPUS:-}" \
    ./train_JetClass.sh ParT-demo full --model-prefix "${RUN}/net" --log "${RUN}/train.log" \
    --tensorboard "" > "${RUN}.stdout.log" 2>&1 || { echo "training failed: see ${RUN}.stdout.log" >&2; tail -20 "${RUN}.stdout.log" >&2; exit 1; }
grep -a "Epoch #[0-9]*: Current validation metric" "${RUN}/train.log" | sed 's/.*INFO: //; s/\x1b\[[0-9;]*m//g' || true  # display only
echo; echo "== 4/4 evaluate on the test split"
"${PY}" analysis/evaluate_jets.py "${RUN}/predict_output/pred_*.root" --plot "${RUN}/roc.png" --json "${RUN}/metrics.json" \
    --title "demo ParT on generated JetClass (small preset)"
echo; echo "demo done: checkpoint ${RUN}/net_best_epoch_state.pt, log ${RUN}/train.log"
