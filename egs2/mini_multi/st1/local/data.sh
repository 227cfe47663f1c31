#!/usr/bin/env bash
# Stage 1 of mini_multi: synthesise the multilingual corpus (Mandarin, Spanish, French, German -> English,
# with Mandarin-English and Spanish-English code-switching) with eSpeak NG (espeakng-loader wheel, offline)
# and write Kaldi-style data directories:
#   data/train_asr_{zh,es,fr,de,en}      ASR (utt2task asr, text = transcript)
#   data/train_st_{zh,es,fr,de}          ST: source speech -> English (text), transcript in src_text
#   data/train_cs_{zh,es}                code-switched ST (utt2lang cs)
#   data/dev, data/dev_unseen            every source language, half of zh and es code-switched
#   data/test_mono_{zh,es,fr,de}, data/test_cs_{zh,es}, and their _unseen copies (held-out voice families)
#   data/lm_text/{zh,es,fr,de,en}.txt, data/lm_text/{zh,es,fr,de}2en.tsv    data/local/mini_cs_stats.json
# Every set has utt2lang (zh, es, fr, de, en, cs), utt2task, src_text, text, phone_ali and lang_ali (a phone
# id / a language per 10 ms frame; ids of data/local/phones.txt). Same seed -> identical text, byte-identical
# audio (in ${wav_dir}).
#
# Usage: local/data.sh [--preset tiny|small|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2
}

. "$(dirname "${BASH_SOURCE[0]}")/../db.sh"  # MINI_MULTI (also when run from elsewhere)
preset=small  # tiny: 128 utterances (CI); small: 808 utterances, 0.97 h (about 2 min on 2 cores)
seed=777
nj=2
out=data
wav_dir=${MINI_MULTI}/wav   # db.sh (any path: spaces and non-ASCII are fine)
pairs=zh-en,es-en,fr-en,de-en
languages=zh,es,fr,de,en,cs

usage="Usage: $0 [--preset tiny|small|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]"
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) echo "${usage}"; exit 0 ;;
        --*)
            name="${1#--}"; name="${name//-/_}"
            case "${name}" in
                preset|seed|nj|out|wav_dir) ;;
                *) echo "$0: unknown option $1" >&2; echo "${usage}" >&2; exit 1 ;;
            esac
            [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            printf -v "${name}" '%s' "$2"
            shift 2 ;;
        *) echo "$0: unexpected argument $1" >&2; echo "${usage}" >&2; exit 1 ;;
    esac
done

if [ -f path.sh ]; then
    # shellcheck disable=SC1091
    . ./path.sh
fi
python="${PYTHON:-python3}"

log "synthesising mini_multi (${pairs}; preset=${preset}, seed=${seed}, nj=${nj}) into ${out}, audio in ${wav_dir}"
start=$(date +%s)
"${python}" -m csst_espnet.bin.synth_corpus --pair "${pairs}" --out "${out}" --seed "${seed}" \
    --preset "${preset}" --nj "${nj}" --wav_dir "${wav_dir}"

# the sets the generator wrote (its statistics list them)
mapfile -t sets < <("${python}" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["sets"]))' \
    "${out}/local/mini_cs_stats.json")
"${python}" -m csst_espnet.bin.data_dir validate "${sets[@]/#/${out}/}" --languages "${languages}" --fs 16000 >/dev/null
log "done in $(( $(date +%s) - start )) s; ${#sets[@]} sets, all valid"
