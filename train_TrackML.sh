#!/usr/bin/env bash
# Train / evaluate a tracking model (per-hit embeddings, InfoNCE) on TrackML with weaver.
#   ./train_TrackML.sh MODEL [full|60k|20k|15k|10k|6k|3k] [extra weaver args...]    (./train_TrackML.sh --help)
# MODEL: HEPT, Mamba, MambaA, MambaB; the set: whole events (full = HEPT's Tracking-60k) or phi sectors.
# Knobs as train_JetClass.sh: NUM_EPOCHS, SAMPLES_PER_EPOCH(_VAL), BATCH_SIZE, DATAOPTS, GPUS, DDP_NGPUS, COMMENT.
# Data: DATADIR_TrackML (env.sh); when it holds no TrackML data, a generated toy set is made on first use.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
exec "${PYTHON}" -m partx.launcher trackml "$@"
