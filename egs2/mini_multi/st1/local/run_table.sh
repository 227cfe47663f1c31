#!/usr/bin/env bash
# The comparison table of mini_multi: BENCHMARK.md and BENCHMARK.json, rows x seeds, against PART.
#   local/run_table.sh --rows part,part_2stage,moe --seeds 0,1,2 [make_table options]
# Rows are conf/table/<row>.yaml; what is not trained yet is trained (./run.sh), every row and seed is
# decoded and scored on the test sets and their held-out-voice copies, and compared with the row "part"
# (sacrebleu paired bootstrap). See csst_espnet/recipe/table.py.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
tests="test_cs_zh test_cs_es test_mono_zh test_mono_es test_mono_fr test_mono_de"
command="local/run_table.sh"
[ $# -eq 0 ] || command+=$(printf ' %q' "$@")
exec "${PYTHON}" -m csst_espnet.bin.make_table --tgt_lang en --run ./run.sh --conf_dir conf --rows_dir conf/table \
    --reference part --test_sets "${tests} $(for s in ${tests}; do echo -n "${s}_unseen "; done)" \
    --command "${command}" "$@"
