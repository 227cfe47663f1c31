#!/usr/bin/env bash
# Stage 1 of CoVoST 2: Common Voice + the CoVoST 2 translation TSVs -> data/{train,dev,test}_<lang> (X->en ST,
# src_text the transcript), data/train_asr (every language's training transcripts: ASR), data/dev (every
# language's dev set), and with FLEURS data/fleurs_test_<lang> (python -m csst_espnet.bin.prepare_corpus covost2; the layout read:
# csst_espnet/corpora/covost2.py).
#
# Usage: local/data.sh [--locales fr,de,es,zh-CN] [--allow_missing true|false]
set -euo pipefail
. ./db.sh
. ./path.sh

locales=fr,de,es,zh-CN   # Common Voice locales of the X->en pairs
allow_missing=false      # leave out CoVoST lines whose clip this Common Voice copy lacks (counted in the log)
help_message="Usage: $0 [--locales fr,de,es,zh-CN] [--allow_missing true|false]"
. scripts/parse_options.sh

if [ -z "${COMMON_VOICE}" ] || [ -z "${COVOST2}" ]; then
    echo "$0: set COMMON_VOICE (Common Voice 4 root) and COVOST2 (covost_v2.<locale>_en.tsv) in db.sh" >&2
    exit 1
fi
opts=()
[ -z "${FLEURS}" ] || opts+=(--fleurs "${FLEURS}")
echo "$0: reads ${COMMON_VOICE} and ${COVOST2}${FLEURS:+ and ${FLEURS}}, writes data/<split>_<lang>" >&2
"${PYTHON}" -m csst_espnet.bin.prepare_corpus covost2 --common_voice "${COMMON_VOICE}" --covost "${COVOST2}" \
    --out data --locales "${locales}" --allow_missing "${allow_missing}" "${opts[@]}"
# PART's first stages train on ASR in every language: the training sets' transcripts as targets
dirs=()
for d in data/train_*; do
    case "${d}" in *_asr) continue ;; esac
    echo "$0: ${d} -> ${d}_asr (target = transcript)" >&2
    "${PYTHON}" -m csst_espnet.bin.recipe_utils asr_dir "${d}" "${d}_asr"
    dirs+=("${d}_asr")
done
"${PYTHON}" -m csst_espnet.bin.data_dir combine data/train_asr "${dirs[@]}"
dirs=(data/dev_*)
echo "$0: ${dirs[*]} -> data/dev" >&2
"${PYTHON}" -m csst_espnet.bin.data_dir combine data/dev "${dirs[@]}"
