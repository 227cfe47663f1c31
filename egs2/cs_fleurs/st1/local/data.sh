#!/usr/bin/env bash
# Stage 1 of CS-FLEURS: the test sets of byan/cs-fleurs with their FLEURS English references ->
# data/<folder>_<pair> (e.g. data/read_test_cmn_eng) (python -m csst_espnet.bin.prepare_corpus cs_fleurs;
# layout: csst_espnet/corpora/cs_fleurs.py).
#
# Usage: local/data.sh [--source DIR] [--fleurs_en DIR] [--folders "read/test,xtts/test1"] [--pairs "cmn-eng,spa-eng"]
set -euo pipefail
. ./db.sh
. ./path.sh

source=${CS_FLEURS:-}      # db.sh: local copy of byan/cs-fleurs
fleurs_en=${FLEURS_EN:-}   # db.sh: google/fleurs data/en_us
folders=read/test,xtts/test1,xtts/test2,mms/test
pairs=cmn-eng,spa-eng
help_message="Usage: $0 [--source DIR] [--fleurs_en DIR] [--folders LIST] [--pairs LIST]"
. scripts/parse_options.sh

if [ -z "${source}" ] || [ -z "${fleurs_en}" ]; then
    echo "$0: set --source and --fleurs_en (db.sh: CS_FLEURS, FLEURS_EN)" >&2
    exit 1
fi
echo "$0: reads ${source} (${folders}; ${pairs}) and ${fleurs_en}, writes data/" >&2
"${PYTHON}" -m csst_espnet.bin.prepare_corpus cs_fleurs --source "${source}" --fleurs_en "${fleurs_en}" --out data \
    --folders "${folders}" --pairs "${pairs}"
