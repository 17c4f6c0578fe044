#!/usr/bin/env bash
# Fine-tune vs from scratch on generated jets, CPU-sized (docs/quarkgluon_toplandscape.md, "Measured").
#   scripts/finetune_compare_generated.sh OUT_DIR [TRAIN_JETS=200]
# 1) generated JetClass TTBar + ZJetsToNuNu -> ParT-demo kin, 3 epochs (epoch-2 checkpoint = PRETRAINED)
# 2) generated TopLandscape originals -> parquet; the first TRAIN_JETS training jets
# 3) ParT-demo from scratch and ParT-demo-FineTune, 10 epochs each; test accuracy / AUC printed.
set -euo pipefail
OUT=$(mkdir -p "$1" && cd "$1" && pwd); N=${2:-200}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1 GPUS= BATCH_SIZE=64 DATAOPTS="--num-workers 0 --fetch-step 1 --in-memory"
"$PY" -m partx.datagen jetclass --out "$OUT/JetClass" --jets-per-class 1500 --classes TTBar,ZJetsToNuNu --fast --quiet --workers 2
"$PY" -m partx.datagen toplandscape --out "$OUT/TL/original" --jets 1200 --seed 1 --quiet --workers 2 --convert "$OUT/TL"
[[ -f "$OUT/runs/jc/net_epoch-2_state.pt" ]] || NUM_EPOCHS=3 SAMPLES_PER_EPOCH=3000 SAMPLES_PER_EPOCH_VAL=750 \
    DATADIR_JetClass="$OUT/JetClass" ./train_JetClass.sh ParT-demo kin --model-prefix "$OUT/runs/jc/net" > "$OUT/runs_jc.log" 2>&1
mkdir -p "$OUT/TL_$N"
"$PY" -c "import awkward as ak, sys; ak.to_parquet(ak.from_parquet(sys.argv[1])[:int(sys.argv[3])], sys.argv[2])" \
    "$OUT/TL/train_file.parquet" "$OUT/TL_$N/train_file.parquet" "$N"
ln -sf "$OUT/TL/val_file.parquet" "$OUT/TL/test_file.parquet" "$OUT/TL_$N/"
for m in ParT-demo ParT-demo-FineTune; do
  [[ -f "$OUT/runs/tl_${m}_$N/predict_output/pred.root" ]] && continue
  NUM_EPOCHS=10 SAMPLES_PER_EPOCH=$N SAMPLES_PER_EPOCH_VAL=400 DATADIR_TopLandscape="$OUT/TL_$N" \
    PRETRAINED="$OUT/runs/jc/net_epoch-2_state.pt" ./train_TopLandscape.sh $m kin --model-prefix "$OUT/runs/tl_${m}_$N/net" \
    > "$OUT/runs_tl_${m}_$N.log" 2>&1
done
"$PY" - "$OUT" "$N" <<'PY'
import sys
import numpy as np
from sklearn.metrics import roc_auc_score
from partx.metrics.predictions import load_weaver_predictions
out, n = sys.argv[1], sys.argv[2]
for m in ("ParT-demo", "ParT-demo-FineTune"):
    s, y, names = load_weaver_predictions([f"{out}/runs/tl_{m}_{n}/predict_output/pred.root"])
    top = names.index("jet_isTop")
    print(f"train jets {n}  {m:20s}  test jets {len(y)}  accuracy {np.mean(s.argmax(1) == y):.3f}  "
          f"AUC {roc_auc_score(y == top, s[:, top]):.3f}")
PY
