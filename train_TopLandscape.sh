#!/usr/bin/env bash
# Train / evaluate a top tagger on the top-tagging landscape benchmark with weaver, as the official ParT train_TopLandscape.sh.
#   ./train_TopLandscape.sh MODEL [kin] [extra weaver args...]     (./train_TopLandscape.sh --help)
# MODEL: any JetClass model, or MODEL-FineTune (PRETRAINED=<JetClass checkpoint>; docs/quarkgluon_toplandscape.md).
# Knobs as train_JetClass.sh; data directory DATADIR_TopLandscape (env.sh; a small generated set is made on first use).
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
exec "${PYTHON}" -m partx.launcher topland "$@"
