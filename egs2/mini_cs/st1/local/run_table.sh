#!/usr/bin/env bash
# The comparison table of mini_cs: BENCHMARK.md and BENCHMARK.json, rows x seeds.
#   local/run_table.sh --rows "full,cs_only,espnet_st" --seeds 0,1,2 [--preset tiny] [make_table options]
# Rows are conf/table/<row>.yaml; what is not trained yet is trained (./run.sh), every row and seed is
# decoded and scored, and compared with the row "full" (sacrebleu paired bootstrap). See
# csst_espnet/recipe/table.py. Every csst row decodes with --segment_seconds 0: ESPnet's st_inference (the
# espnet_st row) has no long-form segmentation, so the table compares the models under one decoding.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=demo
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) [ $# -ge 2 ] || { echo "$0: option --preset needs a value" >&2; exit 1; }; preset=$2; shift 2 ;;
        --preset=*) preset=${1#*=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "${preset}" in
    demo) conf=conf ;;
    tiny) conf=conf/tiny ;;
    *) echo "$0: --preset must be tiny or demo, got '${preset}'" >&2; exit 1 ;;
esac
. ./path.sh
command="local/run_table.sh --preset ${preset}"
[ ${#args[@]} -eq 0 ] || command+=$(printf ' %q' "${args[@]}")
exec "${PYTHON}" -m csst_espnet.bin.make_table --tgt_lang en --run "./run.sh --preset ${preset}" \
    --conf_dir "${conf}" --rows_dir conf/table --inference_args "--segment_seconds 0" --command "${command}" \
    "${args[@]}"
