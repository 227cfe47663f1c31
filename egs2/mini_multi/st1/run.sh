#!/usr/bin/env bash
# mini_multi: a synthetic multilingual corpus made locally with eSpeak NG: Mandarin, Spanish, French and
# German lectures -> English, with Mandarin-English and Spanish-English code-switching, and English ASR.
# The data part of the recipe (stage 1); its training configs are not written yet.
#
#   ./run.sh --stage 1 --stop_stage 1                  # the corpus (preset small: 808 utterances)
#   ./run.sh --preset tiny --stage 1 --stop_stage 1    # CI size: 128 utterances
set -euo pipefail

preset=small   # tiny | small | demo: corpus size (local/data.sh)

# --preset is this script's option; everything else goes to csst.sh, after the corpus options
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --preset=*) preset="${1#*=}"; shift ;;
        --preset)
            [ $# -ge 2 ] || { echo "$0: option --preset needs a value" >&2; exit 1; }
            preset="$2"; shift 2 ;;
        --*=*) args+=("$1"); shift ;;
        --*) args+=("$1"); [ $# -ge 2 ] && { args+=("$2"); shift; }; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "${preset}" in
    tiny|small|demo) ;;
    *) echo "$0: --preset must be tiny, small or demo, got '${preset}'" >&2; exit 1 ;;
esac

export HF_HUB_OFFLINE=1

asr="train_asr_zh train_asr_es train_asr_fr train_asr_de train_asr_en"
st="train_st_zh train_st_es train_st_fr train_st_de"
cs="train_cs_zh train_cs_es"
tests="test_cs_zh test_cs_es test_mono_zh test_mono_es test_mono_fr test_mono_de"

./csst.sh \
    --lang_pair zh,es,fr,de-en \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --local_data_opts "--preset ${preset} --nj 2" \
    --train_sets "${asr} ${st} ${cs}" \
    --phase1_train_sets "${asr}" \
    --phase1_valid_set dev_asr \
    --phase2_train_sets "${asr} ${st}" \
    --phase3_train_sets "${asr} ${st} ${cs}" \
    --valid_set dev \
    --test_sets "${tests} $(for s in ${tests}; do echo -n "${s}_unseen "; done)" \
    --extra_sets dev_unseen \
    --asr_test_sets "${tests}" \
    --tokenizer_text "zh:data/lm_text/zh.txt es:data/lm_text/es.txt fr:data/lm_text/fr.txt de:data/lm_text/de.txt en:data/lm_text/en.txt" \
    --tokenizer_pairs "data/lm_text/zh2en.tsv data/lm_text/es2en.tsv data/lm_text/fr2en.tsv data/lm_text/de2en.tsv" \
    --routing_phones data/local/phones.txt \
    "${args[@]}"
