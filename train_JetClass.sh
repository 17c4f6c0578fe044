#!/usr/bin/env bash
# Train / evaluate a jet tagger on JetClass with weaver, in the conventions of the official ParT repo.
#   ./train_JetClass.sh MODEL [kin|kinpid|full] [extra weaver args...]     (./train_JetClass.sh --help)
# Knobs: NUM_EPOCHS, SAMPLES_PER_EPOCH(_VAL), BATCH_SIZE, DATAOPTS, GPUS, DDP_NGPUS, COMMENT, SKIP_PREFLIGHT;
# data directory DATADIR_JetClass (env.sh); file layout in partx/dataset_layouts.py, models in partx/registry.py.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
exec "${PYTHON}" -m partx.launcher jetclass "$@"
