#!/usr/bin/env bash
# Stage 1 of NTUML2021: the parquet shards of ky552/ML2021_ASR_ST -> data/{train,dev,test}[_cs|_mono],
# data/train_mono_asr (python -m csst_espnet.bin.prepare_corpus ntuml2021; layout and the CS / monolingual
# rule: csst_espnet/corpora/ntuml2021.py).
#
# Usage: local/data.sh [--source DIR_OR_HUB_NAME] [--audio_dir DIR]
set -euo pipefail
. ./db.sh
. ./path.sh

source=${NTUML2021:-ky552/ML2021_ASR_ST}   # db.sh NTUML2021 (a local copy), else the hub name (needs the network)
audio_dir=downloads/ntuml2021/audio        # the audio of the parquet rows, one file per utterance
help_message="Usage: $0 [--source DIR_OR_HUB_NAME] [--audio_dir DIR]"
. scripts/parse_options.sh

echo "$0: reads ${source}, writes data/{train,dev,test}{,_cs,_mono} (audio in ${audio_dir})" >&2
"${PYTHON}" -m csst_espnet.bin.prepare_corpus ntuml2021 --source "${source}" --out data --audio_dir "${audio_dir}"
echo "$0: data/train_mono -> data/train_mono_asr (target = transcript)" >&2
"${PYTHON}" -m csst_espnet.bin.recipe_utils asr_dir data/train_mono data/train_mono_asr
