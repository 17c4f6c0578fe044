#!/usr/bin/env bash
# Train / evaluate a jet tagger on the quark-gluon benchmark with weaver, as the official ParT train_QuarkGluon.sh.
#   ./train_QuarkGluon.sh MODEL [kin|kinpid|kinpidplus] [extra weaver args...]     (./train_QuarkGluon.sh --help)
# MODEL: any JetClass model, or MODEL-FineTune (PRETRAINED=<JetClass checkpoint>; docs/quarkgluon_toplandscape.md).
# Knobs as train_JetClass.sh; data directory DATADIR_QuarkGluon (env.sh; a small generated set is made on first use).
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
exec "${PYTHON}" -m partx.launcher quarkgluon "$@"
