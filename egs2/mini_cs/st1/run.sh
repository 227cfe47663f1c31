#!/usr/bin/env bash
# mini_cs: synthetic Mandarin-English code-switch lectures -> English, made locally with eSpeak NG.
# Everything runs on a CPU; the LLM is a small causal LM trained on the corpus text (stage 6).
#
#   ./run.sh                       # the demo: data, tokenizer, text LM, 3 phases, decoding, ST and ASR scoring
#   ./run.sh --preset tiny         # CI size: a few utterances, one short epoch per phase
#   ./run.sh --stage 13            # any csst.sh option; the command line wins
#   ./run.sh --cs_only_baseline true    # also the baseline trained on train_cs only, with the updates of
#                                       # phases 1-3 (the table's cs_only row; on in --preset tiny)
#   ./run.sh --baselines espnet_st      # also ESPnet's own ST model (stages 7-8, trained in 12), in the same tables
#   local/run_table.sh --rows "full,cs_only,espnet_st" --seeds 0,1,2   # BENCHMARK.md: rows x seeds, significance
set -euo pipefail

preset=demo   # tiny | demo: corpus size (local/data.sh) and training configs (conf/ or conf/tiny/)

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
# robustness copies of dev and test_cs (stage 2): noise at two SNRs, telephone, room, two utterances joined
conditions="snr10 snr5 telephone reverb long"
case "${preset}" in
    # the demo leaves the CS-only baseline to the table: trained fairly it costs as much as phases 1-3
    demo) conf=conf; cs_only=false ;;
    tiny) conf=conf/tiny; conditions="snr10 reverb long"; cs_only=true ;;  # CI: one of each kind, every path
    *) echo "$0: --preset must be tiny or demo, got '${preset}'" >&2; exit 1 ;;
esac

export HF_HUB_OFFLINE=1   # every model of this recipe is made locally

./csst.sh \
    --lang_pair zh-en \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --local_data_opts "--preset ${preset} --nj 2" \
    --train_sets "train_asr_zh train_asr_en train_st_zh train_cs" \
    --phase1_train_sets "train_asr_zh train_asr_en" \
    --phase1_valid_set dev_asr \
    --phase2_train_sets "train_asr_zh train_asr_en train_st_zh" \
    --phase3_train_sets "train_asr_zh train_asr_en train_st_zh train_cs" \
    --valid_set dev \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --test_sets "test_cs test_mono test_cs_unseen test_mono_unseen" \
    --test_conditions "${conditions}" \
    --condition_sets "dev test_cs" \
    --extra_sets dev_unseen \
    --asr_test_sets "test_cs test_mono" \
    --tokenizer_text "zh:data/lm_text/zh.txt en:data/lm_text/en.txt" \
    --tokenizer_pairs data/lm_text/zh2en.tsv \
    --nbpe 800 \
    --use_text_lm true \
    --text_lm_config "${conf}/text_lm.yaml" \
    --phase1_config "${conf}/train_phase1.yaml" \
    --phase2_config "${conf}/train_phase2.yaml" \
    --phase3_config "${conf}/train_phase3.yaml" \
    --cs_only_baseline "${cs_only}" \
    --cs_only_config "${conf}/train_cs_only.yaml" \
    --espnet_st_config "${conf}/espnet_st.yaml" \
    --espnet_st_inference_config "${conf}/espnet_st_decode.yaml" \
    --inference_config "${conf}/decode.yaml" \
    --routing_phones data/local/phones.txt \
    "${args[@]}"
