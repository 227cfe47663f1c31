#!/usr/bin/env bash
# CoVoST 2 X->en (fr, de, es, zh by default) with PART (arXiv 2509.19745): Whisper large-v3 + Qwen2.5-1.5B,
# trained in PART's three stages as the pipeline's phases 1-3 (conf/, README.md); FLEURS X->en test sets
# when db.sh sets FLEURS. The command line wins.
#
#   ./run.sh                                                    # PART
#   ./run.sh --locales fr,ca                                    # other X->en pairs
#   ./run.sh --phase2_config conf/train_2stage_baseline.yaml --phase2_train_sets "<asr and st sets>" \
#            --train_phases "1 2" --decode_phases 2 --phase2_tag part_2stage   # PART's 2-stage baseline
set -euo pipefail

locales=fr,de,es,zh-CN   # Common Voice locales (local/data.sh --locales); a set's language: the locale before "-"

# --locales is this script's option; everything else goes to csst.sh, after the corpus options
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --locales=*) locales="${1#*=}"; shift ;;
        --locales)
            [ $# -ge 2 ] || { echo "$0: option --locales needs a value" >&2; exit 1; }
            locales="$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
. ./db.sh
langs=$(echo "${locales//,/ }" | tr ' ' '\n' | sed 's/-.*//' | tr '\n' ' ')
st_sets=$(for l in ${langs}; do echo -n "train_${l} "; done)
test_sets=$(for l in ${langs}; do echo -n "test_${l} "; [ -z "${FLEURS}" ] || echo -n "fleurs_test_${l} "; done)

./csst.sh \
    --lang_pair "$(echo ${langs} | tr ' ' ',')-en" \
    --token_type pretrained \
    --local_data_opts "--locales ${locales}" \
    --train_sets "train_asr ${st_sets}" \
    --phase1_train_sets train_asr \
    --phase1_valid_set dev_asr \
    --phase2_train_sets train_asr \
    --phase3_train_sets "train_asr ${st_sets}" \
    --valid_set dev \
    --test_sets "${test_sets}" \
    --phase1_config conf/train_stage1.yaml \
    --phase2_config conf/train_stage2.yaml \
    --phase3_config conf/train_stage3.yaml \
    --inference_config conf/decode.yaml \
    --routing_report false \
    "${args[@]}"
