#!/usr/bin/env bash
# The comparison table of mini_multi: BENCHMARK.md and BENCHMARK.json, rows x seeds, against PART.
#   local/run_table.sh --rows part,part_2stage,moe --seeds 0,1,2 [make_table options]
# Rows are conf/table/<row>.yaml; what is not trained yet is trained (./run.sh), every row and seed is
# decoded and scored on the test sets and their held-out-voice copies, and compared with the row "part"
# (sacrebleu paired bootstrap); the main table pools them: code-switched, monolingual, each by seen and
# held-out voices. See csst_espnet/recipe/table.py. Decoding without long-form segmentation, as the mini_cs
# table (--segment_seconds 0: see egs2/mini_cs/st1/local/run_table.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
command="local/run_table.sh"
[ $# -eq 0 ] || command+=$(printf ' %q' "$@")
unseen() { local s; for s in "$@"; do echo -n "${s}_unseen "; done; }
join() { local IFS=,; echo "$*"; }
cs="test_cs_zh test_cs_es"
mono="test_mono_zh test_mono_es test_mono_fr test_mono_de"
# shellcheck disable=SC2046,SC2086
groups="cs=$(join ${cs}) mono=$(join ${mono}) cs_unseen=$(join $(unseen ${cs})) mono_unseen=$(join $(unseen ${mono}))"
exec "${PYTHON}" -m csst_espnet.bin.make_table --tgt_lang en --run ./run.sh --conf_dir conf --rows_dir conf/table \
    --reference part --test_sets "${cs} ${mono} $(unseen ${cs} ${mono})" --groups "${groups}" \
    --inference_args "--segment_seconds 0" --command "${command}" "$@"
