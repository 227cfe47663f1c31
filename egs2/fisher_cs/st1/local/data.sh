#!/usr/bin/env bash
# Stage 1 of Fisher-CS: LDC2010S01 + LDC2010T04 + the Fisher-CallHome translations ->
# data/{train,dev,dev2,test}{,_cs,_mono}, data/eval_{cs,mono} (dev + dev2 + test), data/train_mono_asr
# (python -m csst_espnet.bin.prepare_corpus fisher_cs; the layout read and the split rule of Weller et
# al. 2022: csst_espnet/corpora/fisher_cs.py).
#
# Usage: local/data.sh [--speech DIR] [--transcripts DIR] [--translations DIR] [--audio_dir DIR]
set -euo pipefail
. ./db.sh
. ./path.sh

speech=${FISHER:-}                          # db.sh: LDC2010S01
transcripts=${FISHER_TRANSCRIPTS:-}         # db.sh: LDC2010T04
translations=${FISHER_CALLHOME_TRANSLATIONS:-}  # db.sh: fisher-callhome-corpus (after make)
audio_dir=downloads/fisher_cs/audio         # 8 kHz conversation sides (stage 3 resamples to 16 kHz)
help_message="Usage: $0 [--speech DIR] [--transcripts DIR] [--translations DIR] [--audio_dir DIR]"
. scripts/parse_options.sh

for v in speech transcripts translations; do
    if [ -z "${!v}" ]; then
        echo "$0: set --${v} (db.sh: FISHER, FISHER_TRANSCRIPTS, FISHER_CALLHOME_TRANSLATIONS)" >&2
        exit 1
    fi
done
echo "$0: reads ${speech}, ${transcripts}, ${translations}; writes data/ (audio in ${audio_dir})" >&2
"${PYTHON}" -m csst_espnet.bin.prepare_corpus fisher_cs --speech "${speech}" --transcripts "${transcripts}" \
    --translations "${translations}" --out data --audio_dir "${audio_dir}"
echo "$0: data/train_mono -> data/train_mono_asr (target = transcript)" >&2
"${PYTHON}" -m csst_espnet.bin.recipe_utils asr_dir data/train_mono data/train_mono_asr
