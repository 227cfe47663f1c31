#!/usr/bin/env bash
# Create a new csst recipe directory: links to the shared pipeline (csst.sh, cmd.sh, path.sh,
# db.sh, scripts/), run.sh, local/data.sh (imports manifests/{train,dev,test}.{tsv,jsonl}), conf/decode.yaml
# and a README.md saying what to fill in.
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
# Corpus options of this recipe (see README.md); the command line ("$@", last) wins.
# Data: local/data.sh imports manifests/{train,dev,test}.{tsv,jsonl} into data/<set>, data/<set>_cs
# (code-switched utterances) and data/<set>_mono (monolingual), and data/train_mono_asr (ASR copies).
set -euo pipefail

lang_pair=zh-en   # source-target: the language labelling rule of the manifests, the languages of the model

./csst.sh \
    --lang_pair "${lang_pair}" \
    --local_data_opts "--lang_pair ${lang_pair}" \
    --token_type pretrained \
    --train_sets "train_mono_asr train_mono train_cs" \
    --phase1_train_sets "train_mono_asr" \
    --phase1_valid_set dev_asr \
    --phase2_train_sets "train_mono_asr train_mono" \
    --phase3_train_sets "train_mono_asr train_mono train_cs" \
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
# Stage 1: import the corpus manifests into Kaldi-style data directories (python -m
# csst_espnet.bin.data_dir import-manifest; fields and rules: csst_espnet/data/manifest.py):
#   <manifest_dir>/{train,dev,test}.{tsv,jsonl} -> data/<set>, data/<set>_cs, data/<set>_mono
#   data/train_mono -> data/train_mono_asr (the transcripts as ASR targets, for phase 1)
#
# Usage: local/data.sh [--manifest_dir DIR] [--lang_pair SRC-TGT] [--sets "train dev test"]
set -euo pipefail

manifest_dir=manifests   # where train/dev/test manifests are (relative to the recipe directory, or absolute)
lang_pair=zh-en
sets="train dev test"
help_message="Usage: $0 [--manifest_dir DIR] [--lang_pair SRC-TGT] [--sets \"train dev test\"]"
. ./path.sh
. scripts/parse_options.sh

for s in ${sets}; do
    found=()
    for ext in tsv jsonl; do [ -f "${manifest_dir}/${s}.${ext}" ] && found+=("${manifest_dir}/${s}.${ext}"); done
    if [ ${#found[@]} -ne 1 ]; then
        echo "$0: need exactly one of ${manifest_dir}/${s}.tsv and ${manifest_dir}/${s}.jsonl, found ${#found[@]}" >&2
        exit 1
    fi
    echo "$0: imports ${found[0]} -> data/${s} data/${s}_cs data/${s}_mono" >&2
    "${PYTHON}" -m csst_espnet.bin.data_dir import-manifest "${found[0]}" "data/${s}" \
        --lang_pair "${lang_pair}" --subsets true
done
if [[ " ${sets} " == *" train "* ]]; then
    echo "$0: data/train_mono -> data/train_mono_asr (target = transcript)" >&2
    "${PYTHON}" -m csst_espnet.bin.recipe_utils asr_dir data/train_mono data/train_mono_asr
fi
DATA
chmod +x "${dir}/local/data.sh"

cat > "${dir}/README.md" << 'README'
# A csst recipe made by egs2/TEMPLATE/csst1/setup.sh

Fill in three things, then run `./run.sh` (stages: `./csst.sh --help`).

1. **Manifests** in `manifests/` (or `--local_data_opts "--manifest_dir DIR"`): `train`, `dev` and `test`,
   each a `.tsv` (tab separated, a header row naming the columns) or a `.jsonl` (one object per line).
   Fields (only `audio` and a transcript or translation are required):

   | field | what |
   |---|---|
   | `audio` | audio file (wav, flac...; relative paths are relative to the manifest) |
   | `start`, `end` | segment in seconds (optional) |
   | `transcript` | source transcript (needed for ASR data, phase 1 and language labels) |
   | `translation` | target translation (`.jsonl`: a list for several references) |
   | `lang` | `zh`, `en`, `es` or `cs` (code-switched); optional |
   | `task` | `asr` or `st`; optional |
   | `speaker`, `id` | optional |

   Missing language labels come from the transcript by the language pair's rule (zh-en: Han and Latin
   letters = `cs`, Han only = `zh`, Latin only = `en`; es-en, fr-en, de-en: words and accents of the
   source language and English; see `csst_espnet/data/language_id.py`); a missing task is `st` with a translation, else `asr`; a missing
   speaker is the recording; ids are made Kaldi-safe and speaker-prefixed. `train` must have
   monolingual and code-switched utterances with transcripts (phase 1 trains on the monolingual
   transcripts, phase 3 enters the code-switched data).
2. **`lang_pair`** in `run.sh` (`zh-en`, `es-en`, `fr-en`, `de-en`; other pairs need a `lang` on every line).
3. **`conf/`**: `model.yaml` (frontend, encoder, projector, LLM, `languages`, `prompt_conf`) and
   `train_phase{1,2,3}.yaml` (each starting `model_config: model.yaml`), `decode.yaml`. Start from
   `egs2/TEMPLATE/csst1/conf/whisper_large_v3_qwen2.5_7b/` (Whisper large-v3 + Qwen2.5-7B-Instruct) or the
   small CPU models of `egs2/mini_cs/st1/conf/tiny/`. `run.sh` uses `--token_type pretrained`: the LLM's
   own tokenizer (`llm_conf.model_name_or_path`); training refuses another tokenizer whose vocabulary or
   special tokens differ from the LLM's.
README
cp "${template}/../../mini_cs/st1/conf/decode.yaml" "${dir}/conf/decode.yaml" 2>/dev/null || true
echo "$0: created ${dir}: fill in what ${dir}/README.md says (manifests/, lang_pair in run.sh, conf/)"
