#!/usr/bin/env bash
# Stage 1 of the synthetic recipes (mini_cs, mini_multi): synthesise a corpus of one language pair or
# several with one target (csst_espnet.bin.synth_corpus, eSpeak NG, offline), write its Kaldi-style data
# directories and lm_text into OUT, its audio into WAV_DIR, and validate every set it wrote (the sets its
# statistics, OUT/local/mini_cs_stats.json, list). Same seed -> identical text and byte-identical audio.
# The recipes' local/data.sh give the defaults.
#
# Usage: scripts/synth_data.sh --pairs zh-en[,es-en,...] --languages zh,en,cs --wav_dir DIR
#            [--preset tiny|small|demo] [--seed N] [--nj N] [--out DIR]
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2
}

pairs=
languages=
wav_dir=
preset=demo
seed=777
nj=2
out=data

usage="Usage: $0 --pairs zh-en[,es-en,...] --languages zh,en,cs --wav_dir DIR [--preset tiny|small|demo] [--seed N] [--nj N] [--out DIR]"
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) echo "${usage}"; exit 0 ;;
        --*)
            name="${1#--}"; name="${name//-/_}"
            case "${name}" in
                pairs|languages|wav_dir|preset|seed|nj|out) ;;
                *) echo "$0: unknown option $1" >&2; echo "${usage}" >&2; exit 1 ;;
            esac
            [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            printf -v "${name}" '%s' "$2"
            shift 2 ;;
        *) echo "$0: unexpected argument $1" >&2; echo "${usage}" >&2; exit 1 ;;
    esac
done
for v in pairs languages wav_dir; do
    [ -n "${!v}" ] || { echo "$0: --${v} is required" >&2; echo "${usage}" >&2; exit 1; }
done

if [ -f path.sh ]; then
    # shellcheck disable=SC1091
    . ./path.sh
fi
python="${PYTHON:-python3}"

log "synthesising ${pairs} (preset=${preset}, seed=${seed}, nj=${nj}) into ${out}, audio in ${wav_dir}"
start=$(date +%s)
"${python}" -m csst_espnet.bin.synth_corpus --pair "${pairs}" --out "${out}" --seed "${seed}" \
    --preset "${preset}" --nj "${nj}" --wav_dir "${wav_dir}"

mapfile -t sets < <("${python}" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["sets"]))' \
    "${out}/local/mini_cs_stats.json")
"${python}" -m csst_espnet.bin.data_dir validate "${sets[@]/#/${out}/}" --languages "${languages}" --fs 16000 >/dev/null
log "done in $(( $(date +%s) - start )) s; ${#sets[@]} sets, all valid"
