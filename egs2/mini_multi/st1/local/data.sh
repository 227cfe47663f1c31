#!/usr/bin/env bash
# Stage 1 of mini_multi: synthesise the multilingual corpus (Mandarin, Spanish, French, German -> English,
# with Mandarin-English and Spanish-English code-switching) with eSpeak NG (espeakng-loader wheel, offline)
# and write Kaldi-style data directories:
#   data/train_asr_{zh,es,fr,de,en}      ASR (utt2task asr, text = transcript)
#   data/train_st_{zh,es,fr,de}          ST: source speech -> English (text), transcript in src_text
#   data/train_cs_{zh,es}                code-switched ST (utt2lang cs)
#   data/train_mt_{zh,es,fr,de}          text translation, no audio (utt2task mt): the LM text's pairs
#   data/dev, data/dev_unseen            every source language, half of zh and es code-switched
#   data/test_mono_{zh,es,fr,de}, data/test_cs_{zh,es}, and their _unseen copies (held-out voice families)
#   data/lm_text/{zh,es,fr,de,en}.txt, data/lm_text/{zh,es,fr,de}2en.tsv    data/local/mini_cs_stats.json
# Every speech set has utt2lang (zh, es, fr, de, en, cs), utt2task, src_text, text, phone_ali and lang_ali (a
# phone id / a language per 10 ms frame; ids of data/local/phones.txt). Same seed -> identical text,
# byte-identical audio (in ${MINI_MULTI}/wav of db.sh, or --wav_dir). The synthesis is scripts/synth_data.sh
# (shared with mini_cs).
#
# Usage: local/data.sh [--preset tiny|small|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "${here}/../db.sh"  # MINI_MULTI (also when run from elsewhere)
. "${here}/../path.sh"
out=data
prev=
for arg in "$@"; do  # the output directory, for the text translation sets
    case "${prev}" in --out) out=${arg} ;; esac
    case "${arg}" in --out=*) out=${arg#*=} ;; esac
    prev=${arg}
done
"${here}/../scripts/synth_data.sh" --pairs zh-en,es-en,fr-en,de-en --languages zh,es,fr,de,en,cs \
    --preset small --wav_dir "${MINI_MULTI}/wav" "$@"
for lang in zh es fr de; do
    "${PYTHON}" -m csst_espnet.bin.data_dir text-pairs "${out}/lm_text/${lang}2en.tsv" "${out}/train_mt_${lang}" \
        --lang "${lang}"
done
