#!/usr/bin/env bash
# Train / evaluate a jet tagger on JetClass with weaver, in the conventions of the official ParT repo.
#   ./train_JetClass.sh MODEL [kin|kinpid|full] [extra weaver args...]
# Environment: DATADIR_JetClass (env.sh), DDP_NGPUS, GPUS, COMMENT, and for short runs
# NUM_EPOCHS, SAMPLES_PER_EPOCH, SAMPLES_PER_EPOCH_VAL, BATCH_SIZE, DATAOPTS (see README).
set -euo pipefail
DATASET_NAME=JetClass DATADIR_VAR=DATADIR_JetClass
GENERATE_HINT="python -m partx.datagen jetclass --out ./datasets/JetClass --preset small"
source "$(dirname "$0")/scripts/common.sh"
cd "${PARTX_ROOT}"

MODELS="ParT ParT-plain ParTFlash LinformerParT ReformerParT MambaParT PN PFN PCNN"
model=${1:-}
[[ -n "${model}" ]] || die "usage: $0 MODEL [kin|kinpid|full] [weaver args...]; MODEL is one of: ${MODELS}"
FEATURE_TYPE=${2:-full}
[[ "${FEATURE_TYPE}" =~ ^(kin|kinpid|full)$ ]] || die "invalid feature set '${FEATURE_TYPE}': choose kin, kinpid or full"
extra=("${@:3}")

amp=(); [[ "${HAS_CUDA}" == 1 && -n "${GPUS}" ]] && amp=(--use-amp)
case "${model}" in
    ParT)          modelopts=(networks/example_ParticleTransformer.py "${amp[@]}"); bs=512;  lr=1e-3 ;;
    ParT-plain)    modelopts=(networks/example_ParticleTransformer.py -o pair_embed_dims None "${amp[@]}"); bs=512; lr=1e-3 ;;
    ParTFlash)     modelopts=(networks/example_ParTFlash.py "${amp[@]}"); bs=512; lr=1e-3 ;;
    LinformerParT) modelopts=(networks/example_LinformerParT.py "${amp[@]}"); bs=512; lr=1e-3 ;;
    ReformerParT)  modelopts=(networks/example_ReformerParT.py); bs=512; lr=1e-3 ;;
    MambaParT)     modelopts=(networks/example_MambaParT.py); bs=512; lr=1e-3 ;;
    PN)            modelopts=(networks/example_ParticleNet.py); bs=512;  lr=1e-2 ;;
    PFN)           modelopts=(networks/example_PFN.py);  bs=4096; lr=2e-2 ;;
    PCNN)          modelopts=(networks/example_PCNN.py); bs=4096; lr=2e-2 ;;
    *) die "invalid model '${model}': choose one of ${MODELS}" ;;
esac
[[ -f "${modelopts[0]}" ]] || die "network file ${modelopts[0]} for model '${model}' is missing"

DATADIR=${DATADIR_JetClass:-./datasets/JetClass}
SAMPLE_TYPE=Pythia
STEMS="HToBB HToCC HToGG HToWW2Q1L HToWW4Q TTBar TTBarLep WToQQ ZToQQ ZJetsToNuNu"
[[ -d "${DATADIR}" ]] || require_files "JetClass" "${DATADIR}/${SAMPLE_TYPE}/*"
if ! has_arg --predict "${extra[@]}"; then
    require_files "JetClass training" "${DATADIR}/${SAMPLE_TYPE}/train_100M/*.root"
    require_files "JetClass validation" "${DATADIR}/${SAMPLE_TYPE}/val_5M/*.root"
fi
require_files "JetClass test" "${DATADIR}/${SAMPLE_TYPE}/test_20M/*.root"

train_files=(); test_files=()
for s in ${STEMS}; do
    compgen -G "${DATADIR}/${SAMPLE_TYPE}/train_100M/${s}_*.root" > /dev/null && train_files+=("${s}:${DATADIR}/${SAMPLE_TYPE}/train_100M/${s}_*.root")
    compgen -G "${DATADIR}/${SAMPLE_TYPE}/test_20M/${s}_*.root" > /dev/null && test_files+=("${s}:${DATADIR}/${SAMPLE_TYPE}/test_20M/${s}_*.root")
done

preflight_opts=(); has_arg --predict "${extra[@]}" && preflight_opts=(--test-only)
if [[ -z "${SKIP_PREFLIGHT:-}" ]]; then  # one clear error for a missing branch / bad file, before weaver starts
    pre_files=("${test_files[@]}"); has_arg --predict "${extra[@]}" || pre_files+=("${train_files[@]}" "${DATADIR}/${SAMPLE_TYPE}/val_5M/*.root")
    "${PYTHON}" -m partx.preflight --data-config "data/JetClass/JetClass_${FEATURE_TYPE}.yaml" "${preflight_opts[@]}" "${pre_files[@]}" || exit 2
fi

epochs=${NUM_EPOCHS:-50}
samples_per_epoch=${SAMPLES_PER_EPOCH:-$((10000 * 1024 / NGPUS))}
samples_per_epoch_val=${SAMPLES_PER_EPOCH_VAL:-$((10000 * 128))}
bs=${BATCH_SIZE:-${bs}}
read -r -a dataopts <<< "${DATAOPTS:---num-workers 2 --fetch-step 0.01}"
suffix=${COMMENT:-}
tag="${SAMPLE_TYPE}_${FEATURE_TYPE}_${model}"
mkdir -p logs

set -x
"${WEAVER_CMD[@]}" \
    --data-train "${train_files[@]}" \
    --data-val "${DATADIR}/${SAMPLE_TYPE}/val_5M/*.root" \
    --data-test "${test_files[@]}" \
    --data-config "data/JetClass/JetClass_${FEATURE_TYPE}.yaml" --network-config "${modelopts[@]}" \
    --model-prefix "training/JetClass/${SAMPLE_TYPE}/${FEATURE_TYPE}/${model}/{auto}${suffix}/net" \
    "${dataopts[@]}" --batch-size "${bs}" --start-lr "${lr}" \
    --samples-per-epoch "${samples_per_epoch}" --samples-per-epoch-val "${samples_per_epoch_val}" --num-epochs "${epochs}" \
    --gpus "${GPUS}" --optimizer ranger --log "logs/JetClass_${tag}_{auto}${suffix}.log" --predict-output pred.root \
    --tensorboard "JetClass_${tag}${suffix}" \
    "${extra[@]}"
