#!/usr/bin/env bash
# NTUML2021: Mandarin-English machine-learning lectures -> English (Hugging Face ky552/ML2021_ASR_ST).
# Whisper large-v3 + Qwen2.5-7B-Instruct, the three phases; see README.md. The command line ("$@") wins.
set -euo pipefail

conf_dir=../../TEMPLATE/csst1/conf/whisper_large_v3_qwen2.5_7b   # the reference model and phases

./csst.sh \
    --lang_pair zh-en \
    --token_type pretrained \
    --train_sets "train_mono_asr train_mono train_cs" \
    --phase1_train_sets "train_mono_asr" \
    --phase1_valid_set dev_asr \
    --phase2_train_sets "train_mono_asr train_mono" \
    --phase3_train_sets "train_mono_asr train_mono train_cs" \
    --valid_set dev \
    --test_sets "test_cs test_mono" \
    --asr_test_sets "test_cs test_mono" \
    --phase1_config "${conf_dir}/train_phase1.yaml" \
    --phase2_config "${conf_dir}/train_phase2.yaml" \
    --phase3_config "${conf_dir}/train_phase3.yaml" \
    --inference_config "${conf_dir}/decode.yaml" \
    "$@"
