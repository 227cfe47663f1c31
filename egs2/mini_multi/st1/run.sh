#!/usr/bin/env bash
# mini_multi: a synthetic multilingual corpus made locally with eSpeak NG: Mandarin, Spanish, French and
# German lectures -> English, with Mandarin-English and Spanish-English code-switching, English ASR and text
# translation pairs. Trains with PART's schedule by default (arXiv 2509.19745; conf/train_part_stage*.yaml):
#   stage 10: ASR in every language, LLM frozen; stage 11: ASR; stage 12: ASR + ST + text translation, LoRA on.
# PART's 2-stage baseline and the MoE method are rows of the comparison table (conf/table/, README):
#   local/run_table.sh --rows part,part_2stage,moe --seeds 0,1,2
#
#   ./run.sh                                            # stages 1-14 (preset small)
#   ./run.sh --preset tiny --stage 1 --stop_stage 1     # CI size corpus: 128 utterances
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
mt="train_mt_zh train_mt_es train_mt_fr train_mt_de"
tests="test_cs_zh test_cs_es test_mono_zh test_mono_es test_mono_fr test_mono_de"

./csst.sh \
    --lang_pair zh,es,fr,de-en \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --local_data_opts "--preset ${preset} --nj 2" \
    --train_sets "${asr} ${st} ${cs}" \
    --text_train_sets "${mt}" \
    --phase1_train_sets "${asr}" \
    --phase1_valid_set dev_asr \
    --phase2_train_sets "${asr}" \
    --phase3_train_sets "${asr} ${st} ${cs} ${mt}" \
    --valid_set dev \
    --test_sets "${tests} $(for s in ${tests}; do echo -n "${s}_unseen "; done)" \
    --extra_sets dev_unseen \
    --tokenizer_text "zh:data/lm_text/zh.txt es:data/lm_text/es.txt fr:data/lm_text/fr.txt de:data/lm_text/de.txt en:data/lm_text/en.txt" \
    --tokenizer_pairs "data/lm_text/zh2en.tsv data/lm_text/es2en.tsv data/lm_text/fr2en.tsv data/lm_text/de2en.tsv" \
    --nbpe 800 \
    --use_text_lm true \
    --text_lm_config conf/text_lm.yaml \
    --phase1_config conf/train_part_stage1.yaml \
    --phase2_config conf/train_part_stage2.yaml \
    --phase3_config conf/train_part_stage3.yaml \
    --inference_config conf/decode.yaml \
    --routing_phones data/local/phones.txt \
    "${args[@]}"
