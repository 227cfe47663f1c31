#!/usr/bin/env bash
# Create a new csst recipe directory: links to the shared pipeline (csst.sh, cmd.sh, path.sh,
# db.sh, scripts/) and stubs of run.sh, local/data.sh and conf/ to fill in.
#
# Usage: egs2/TEMPLATE/csst1/setup.sh egs2/<corpus>/st1
set -euo pipefail

if [ $# -ne 1 ] || [[ "$1" == -* ]]; then
    echo "Usage: $0 <new recipe dir>   e.g. $0 egs2/my_corpus/st1" >&2
    exit 1
fi
dir=$1
template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -e "${dir}/csst.sh" ] || [ -e "${dir}/run.sh" ]; then
    echo "$0: ${dir} is already a recipe (has csst.sh or run.sh)" >&2
    exit 1
fi
mkdir -p "${dir}/conf" "${dir}/local"
dir_abs=$(cd "${dir}" && pwd)
for f in csst.sh cmd.sh path.sh db.sh scripts; do
    ln -s "$(realpath --relative-to="${dir_abs}" "${template}/${f}")" "${dir}/${f}"
done

cat > "${dir}/run.sh" << 'RUN'
#!/usr/bin/env bash
# Corpus options of this recipe; the command line ("$@", last) wins.
set -euo pipefail

./csst.sh \
    --lang_pair zh-en \
    --train_sets "train_asr_zh train_asr_en train_st train_cs" \
    --phase1_train_sets "train_asr_zh train_asr_en" \
    --phase2_train_sets "train_st" \
    --phase3_train_sets "train_st train_cs" \
    --valid_set dev \
    --test_sets "test_cs test_mono" \
    --phase1_config conf/train_phase1.yaml \
    --phase2_config conf/train_phase2.yaml \
    --phase3_config conf/train_phase3.yaml \
    --inference_config conf/decode.yaml \
    "$@"
RUN
chmod +x "${dir}/run.sh"

cat > "${dir}/local/data.sh" << 'DATA'
#!/usr/bin/env bash
# Stage 1: write Kaldi-style data directories under data/ (wav.scp, utt2spk, text = target,
# src_text = source transcript, utt2lang = zh|en|es|cs, utt2task = asr|st), sorted LC_ALL=C.
set -euo pipefail
. ./db.sh
echo "$0: write the data preparation of this corpus" >&2
exit 1
DATA
chmod +x "${dir}/local/data.sh"

cp "${template}/../../mini_cs/st1/conf/decode.yaml" "${dir}/conf/decode.yaml" 2>/dev/null || true
echo "$0: created ${dir}: write local/data.sh, conf/model.yaml (the model, once) and conf/train_phase{1,2,3}.yaml"
echo "$0: (each phase YAML starts with 'model_config: model.yaml'; see egs2/mini_cs/st1/conf and docs/architecture.md §3)"
