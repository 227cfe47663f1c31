#!/usr/bin/env bash
# Stage 1 of mini_cs: synthesise the Mandarin-English code-switch lecture corpus with
# eSpeak NG (espeakng-loader wheel, offline) and write Kaldi-style data directories:
#   data/{train_asr_zh,train_asr_en,train_st_zh,train_cs,dev,dev_unseen,test_cs,test_mono,
#        test_cs_unseen,test_mono_unseen}  (_unseen: the same utterances by held-out voice families)
#   data/lm_text/{zh.txt,en.txt,zh2en.tsv}    data/local/mini_cs_stats.json
# Every set has phone_ali (a phone id per 10 ms frame, from eSpeak's phoneme events); the ids
# are those of data/local/phones.txt. lang_ali has the language of the same frames (zh, en, - silence).
# Audio goes to ${wav_dir}. Same seed -> identical text and byte-identical audio.
#
# Usage: local/data.sh [--preset tiny|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2
}

. "$(dirname "${BASH_SOURCE[0]}")/../db.sh"  # MINI_CS (also when run from elsewhere)
preset=demo   # tiny: a few utterances per set (CI); demo: ~2400 utterances, ~1.8 h
seed=777
nj=2
out=data
wav_dir=${MINI_CS}/wav   # db.sh (any path: spaces and non-ASCII are fine)

usage="Usage: $0 [--preset tiny|demo] [--seed N] [--nj N] [--out DIR] [--wav_dir DIR]"
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

log "synthesising mini_cs (preset=${preset}, seed=${seed}, nj=${nj}) into ${out}, audio in ${wav_dir}"
start=$(date +%s)
"${python}" -m csst_espnet.bin.synth_corpus --out "${out}" --seed "${seed}" --preset "${preset}" \
    --nj "${nj}" --wav_dir "${wav_dir}"

sets=()
for x in train_asr_zh train_asr_en train_st_zh train_cs dev dev_unseen test_cs test_mono test_cs_unseen test_mono_unseen; do
    sets+=("${out}/${x}")
done
"${python}" -m csst_espnet.bin.data_dir validate "${sets[@]}" --languages zh,en,cs --fs 16000 >/dev/null
log "done in $(( $(date +%s) - start )) s; all sets valid"
