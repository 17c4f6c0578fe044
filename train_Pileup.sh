#!/usr/bin/env bash
# Train / evaluate a pileup-mitigation model (one LV logit per particle, focal loss) with weaver.
#   ./train_Pileup.sh MODEL [processed] [extra weaver args...]    (./train_Pileup.sh --help)
# MODEL: HEPT, Mamba, MambaA, MambaB (the tracking encoders with a pid embedding and a per-particle head).
# Knobs as train_JetClass.sh: NUM_EPOCHS, SAMPLES_PER_EPOCH(_VAL), BATCH_SIZE, DATAOPTS, GPUS, DDP_NGPUS, COMMENT.
# Data: DATADIR_Pileup (env.sh); when it holds no pileup data, a generated set is made on first use.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
exec "${PYTHON}" -m partx.launcher pileup "$@"
