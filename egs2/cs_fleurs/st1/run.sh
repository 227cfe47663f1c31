#!/usr/bin/env bash
# CS-FLEURS: code-switched read and synthetic speech -> English, as evaluation sets of a model trained by
# another recipe (see README.md). Stages 1-4 format the sets here; decoding and scoring run in the model's
# recipe on this recipe's dump/ (its stage 13-14 with --dumpdir and --test_sets).
set -euo pipefail

model_recipe=../../ntuml2021/st1   # the recipe whose trained model decodes these sets
sets="read_test_cmn_eng xtts_test1_cmn_eng"   # <folder>_<pair> sets to format and decode
folders=read/test,xtts/test1,xtts/test2,mms/test  # CS-FLEURS folders stage 1 imports
stage=1
stop_stage=14
help_message="Usage: $0 [--model_recipe DIR] [--sets \"...\"] [--folders LIST] [--stage N] [--stop_stage N]"
. scripts/parse_options.sh

first=${sets%% *}
if [ "${stage}" -le 4 ]; then
    # csst.sh formats and validates every set; the first stands in as training and validation set of the
    # phases' data combination (nothing trains here)
    ./csst.sh --lang_pair zh-en --languages zh,en,es,cs --train_sets "${first}" --valid_set "${first}" \
        --test_sets "${sets}" --local_data_opts "--folders ${folders}" --stage "${stage}" --stop_stage "$(( stop_stage < 4 ? stop_stage : 4 ))"
fi
if [ "${stop_stage}" -ge 13 ]; then
    dump=$(pwd)/dump
    (cd "${model_recipe}" && ./run.sh --stage 13 --stop_stage 14 --dumpdir "${dump}" --test_sets "${sets}" \
        --asr_test_sets "" --results_md "${dump}/../RESULTS.md")
fi
