#!/usr/bin/env bash
# Stage 1 of mini_cs: synthesise the Mandarin-English code-switch lecture corpus with
# eSpeak NG (espeakng-loader wheel, offline) and write Kaldi-style data directories:
#   data/{train_asr_zh,train_asr_en,train_st_zh,train_cs,dev,dev_unseen,test_cs,test_mono,
#        test_cs_unseen,test_mono_unseen}  (_unseen: the same utterances by held-out voice families)
#   data/lm_text/{zh.txt,en.txt,zh2en.tsv}    data/local/mini_cs_stats.json
# Every set has phone_ali (a phone id per 10 ms frame, from eSpeak's phoneme events); the ids
# are those of data/local/phones.txt. lang_ali has the language of the same frames (zh, en, - silence).
# Audio goes to ${MINI_CS}/wav (db.sh) or --wav_dir. Same seed -> identical text and byte-identical audio.
# The work is scripts/synth_data.sh (shared with mini_multi).
#
# Usage: local/data.sh [--preset tiny|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "${here}/../db.sh"  # MINI_CS (also when run from elsewhere)
exec "${here}/../scripts/synth_data.sh" --pairs zh-en --languages zh,en,cs --preset demo \
    --wav_dir "${MINI_CS}/wav" "$@"
