#!/usr/bin/env bash
# csst-espnet recipe pipeline: code-switch speech translation with an LLM, in three training phases.
# Recipes link this file and call it from run.sh with their corpus options, "$@" last.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
min() {
    local a b
    a=$1
    for b in "$@"; do
        if [ "${b}" -le "${a}" ]; then a="${b}"; fi
    done
    echo "${a}"
}
SECONDS=0

# General
stage=1               # first stage to run
stop_stage=10000      # last stage to run
skip_data_prep=false  # skip stages 1-6
skip_train=false      # skip stages 9-12
skip_eval=false       # skip stages 13-14
skip_packing=false    # skip stage 15
ngpu=1                # GPUs per training job (0: CPU)
num_nodes=1           # nodes for multi-node training
nj=4                  # parallel jobs of data preparation and shape statistics
inference_nj=4        # parallel decoding jobs per test set
gpu_inference=false   # decode on GPUs
inference_num_threads=1  # CPU threads of each decoding job
dumpdir=dump          # formatted data
expdir=exp            # experiments
python=               # Python interpreter (default: ${PYTHON} from path.sh, else python3)
overwrite=false       # stages 10-13: train / decode again what is finished (default: keep it, resume the rest)

# Data preparation
local_data_opts=      # options of local/data.sh
speed_perturb_factors=  # e.g. "0.9 1.0 1.1" (empty: no speed perturbation)
speed_perturb_sets=   # sets to perturb (default: every training set)
fs=16000              # sampling rate of the formatted audio
min_wav_duration=0.1  # shorter utterances are invalid (seconds)
max_wav_duration=30   # longer utterances are invalid (seconds)
drop_invalid=false    # stage 4: drop invalid utterances (listed in dropped.txt) instead of stopping
max_encoder_dur=      # stage 4: audio longer than the encoder takes is invalid (seconds; Whisper: 30; empty: no check)
max_target_tokens=    # stage 5: a target text longer than this many tokens is invalid (empty: no check)
target_tokenizer=     # the tokenizer counting them (default: the stage-5 tokenizer; needed with --token_type pretrained)
lang_pair=zh-en       # source-target (several sources: zh,es,fr-en); a source is also the code-switch partner of the target
languages=            # utt2lang labels allowed (default: source,target,cs)

# Tokenizer and LLM text stage
token_type=sentencepiece  # sentencepiece: stage 5 trains one; pretrained: the LLM's own tokenizer
tokenizer_dir=data/tokenizer  # stage 5 output (a Hugging Face tokenizer directory)
nbpe=800              # sentencepiece vocabulary size
tokenizer_text=       # extra text files for the tokenizer and the text LM ("LANG:FILE" or FILE)
tokenizer_pairs=      # extra translation pair files (TSV source<TAB>target)
tokenizer_args=       # more options of csst_espnet.bin.make_tokenizer (e.g. "--han_chars true")
use_text_lm=false     # stage 6: train a small causal LM on the corpus text and use it as the LLM
text_lm_config=conf/text_lm.yaml
text_lm_dir=          # stage 6 output (default: ${expdir}/text_lm)
text_lm_args=         # more options of csst_espnet.bin.train_text_lm
text_lm_oracle=true   # stages 13/14: also translate the test sets' gold transcripts with the text LM, and score

# Training
train_sets="train"    # every training set (formatted in stage 3)
valid_set=dev         # validation set of phases 2 and 3
test_sets="test"      # sets decoded in stage 13
test_conditions=      # stage 2: robustness copies <set>_<condition> of the condition sets, decoded and scored with
                      # their set: snr<dB> (babble or coloured noise), telephone, reverb (joined with +: reverb+snr10),
                      # long (two utterances joined); see csst_espnet/data/condition_dir.py
condition_sets=       # the sets copied under test_conditions (default: test_sets); e.g. "dev test_cs" to
                      # choose settings on dev's copies (decode them with --test_sets dev)
condition_seed=0      # noise, rooms and joins of the condition copies
extra_sets=           # more sets formatted and validated in stages 3-4, decoded only when asked (--stage 13
                      # --test_sets "..."), e.g. the dev copies settings are chosen on
asr_test_sets=        # sets also decoded and scored as ASR (WER/CER/MER) by the models that trained on ASR:
                      # stage 4 makes <set>_asr from <set>
                      # (text := src_text, utt2task := asr, ids <id>-asr; <set> must have src_text)
text_train_sets=      # training sets without audio: text translation examples (utt2task mt, src_text -> text);
                      # stage 3 copies them, stage 4 validates them without audio, and a phase listing one
                      # draws them through its config's data_mixture (tasks: {..., mt: share})
phase1_train_sets=    # training data of each phase (default: train_sets)
phase2_train_sets=
phase3_train_sets=
phase1_valid_set=     # validation set of phase 1 (default: valid_set; "<set>_asr" is made from <set>)
phase1_config=conf/train_phase1.yaml
phase2_config=conf/train_phase2.yaml
phase3_config=conf/train_phase3.yaml
phase1_tag=           # experiment names (default: csst_<config name>)
phase2_tag=
phase3_tag=
phase1_init_param=    # initial model of phase 1
phase2_init_phase=1   # the phase whose model phase 2 starts from (0: from scratch)
phase3_init_phase=2   # the phase whose model phase 3 starts from and distils from (1, 2; 0: from scratch)
train_args=           # more csst_train options for every phase
use_phone_ali=true    # pass <dir>/phone_ali (phone ids per 10 ms frame) to training when every utterance has one
use_lang_ali=true     # pass <dir>/lang_ali (language code per 10 ms frame, '-' none) to training when every
                      # utterance has one: it labels the speech tokens of code-switched utterances for the
                      # routing losses (monolingual utterances keep their utt2lang label)
use_src_text=true     # pass <dir>/src_text (source transcript) to training when every utterance has one
phase1_args=
phase2_args=
phase3_args=
cs_only_baseline=false  # also train the baseline on CS data only (no phases 1-2), and score it
cs_only_train_sets=   # its training data (default: phase3 sets that are not in phase 2)
cs_only_config=conf/train_cs_only.yaml
cs_only_args=
cs_only_tag=          # its experiment name (default: csst_<config name>)
train_phases="1 2 3"  # phases stages 10-12 train (e.g. "" with --cs_only_baseline true: the baseline alone)
tag_suffix=           # appended to every experiment name (phases, baselines), e.g. _seed1 with --train_args "--seed 1"

# ESPnet baselines (stages 7, 8, 12-14)
baselines=            # "espnet_st": ESPnet's own ST model (Conformer encoder, Transformer decoder, ASR multi-task on
                      # src_text) trained with espnet2.bin.st_train, its own BPE; decoded with espnet2.bin.st_inference
espnet_st_config=conf/espnet_st.yaml
espnet_st_inference_config=conf/espnet_st_decode.yaml
espnet_st_train_sets= # its training data: the ST utterances (utt2task st) of these sets (default: phase3_train_sets)
espnet_st_nbpe=500    # target BPE vocabulary (capped at what the training text allows)
espnet_st_src_nbpe=500  # source BPE vocabulary
espnet_st_dir=data/espnet_st  # stage 7: BPE models and token lists
espnet_st_tag=        # its experiment name (default: <config name>)
espnet_st_args=       # more espnet2.bin.st_train options

# Decoding and scoring
decode_phases="3"     # phases whose models are decoded and scored
inference_config=conf/decode.yaml
inference_args=       # more csst_inference options
inference_model=valid.acc.ave.pth
inference_use_lang=true  # pass utt2lang / utt2task of the test sets to decoding (utt2task of <set>_asr always)
score_all_refs=true   # BLEU over text, text.2, ... of the test sets (BLEU with text alone is reported too)
routing_report=true   # routing report of MoE projectors (stage 14)
routing_phones=       # phone inventory with <lang>: phone prefixes: the routing report also groups tokens by
                      # the language of their frames (needs phone_ali in the test sets)
results_md=RESULTS.md

help_message=$(cat << EOF
Usage: $0 --train_sets "<sets>" --valid_set <set> --test_sets "<sets>" [options]

Stages: 1 data preparation (local/data.sh), 2 speed perturbation and test conditions, 3 audio formatting,
  4 filtering and validation, 5 tokenizer, 6 LLM text stage, 7 ESPnet baseline data and BPE,
  8 ESPnet baseline shape statistics, 9 shape statistics, 10/11/12 training phases 1/2/3 (12: and the
  baselines), 13 decoding, 14 scoring, 15 packing and export.
Options are --name value (dashes and underscores alike), booleans true|false:
  --stage/--stop_stage N, --skip_data_prep/--skip_train/--skip_eval/--skip_packing true|false,
  --ngpu N, --num_nodes N, --nj N, --inference_nj N, --gpu_inference true|false,
  --inference_num_threads N, --dumpdir DIR, --expdir DIR, --python PATH, --overwrite true|false,
  --local_data_opts "...", --speed_perturb_factors "0.9 1.0 1.1", --speed_perturb_sets "...",
  --fs HZ, --min_wav_duration S, --max_wav_duration S, --drop_invalid true|false,
  --max_encoder_dur S, --max_target_tokens N, --target_tokenizer DIR|NAME,
  --lang_pair SRC-TGT|SRC,SRC-TGT, --languages "zh,en,cs",
  --token_type sentencepiece|pretrained, --tokenizer_dir DIR, --nbpe N,
  --tokenizer_text "[LANG:]FILE ...", --tokenizer_pairs "TSV ...", --tokenizer_args "...",
  --use_text_lm true|false, --text_lm_config YAML, --text_lm_dir DIR, --text_lm_args "...", --text_lm_oracle true|false,
  --train_sets "...", --valid_set SET, --test_sets "...", --asr_test_sets "...",
  --test_conditions "snr10 snr0 telephone reverb long", --condition_sets "...", --condition_seed N,
  --extra_sets "...", --text_train_sets "...",
  --phase1_train_sets "...", --phase2_train_sets "...", --phase3_train_sets "...", --phase1_valid_set SET,
  --phase1_config YAML, --phase2_config YAML, --phase3_config YAML,
  --phase1_tag TAG, --phase2_tag TAG, --phase3_tag TAG, --phase1_init_param PATH, --train_args "...",
  --phase2_init_phase 1|0, --phase3_init_phase 2|1|0,
  --use_phone_ali true|false, --use_lang_ali true|false, --use_src_text true|false,
  --phase1_args "...", --phase2_args "...", --phase3_args "...",
  --cs_only_baseline true|false, --cs_only_train_sets "...", --cs_only_config YAML, --cs_only_args "...",
  --cs_only_tag TAG, --train_phases "1 2 3", --tag_suffix SUFFIX,
  --baselines "espnet_st", --espnet_st_config YAML, --espnet_st_inference_config YAML, --espnet_st_train_sets "...",
  --espnet_st_nbpe N, --espnet_st_src_nbpe N, --espnet_st_dir DIR, --espnet_st_tag TAG, --espnet_st_args "...",
  --decode_phases "1 2 3", --inference_config YAML, --inference_args "...", --inference_model FILE,
  --inference_use_lang true|false, --score_all_refs true|false, --routing_report true|false,
  --routing_phones FILE, --results_md FILE
EOF
)

run_args=$(printf '%q ' "$0" "$@")
log "$0 $*"
scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/scripts"
# shellcheck disable=SC1091
. "${scripts_dir}/parse_options.sh"
if [ $# -gt 0 ]; then
    log "${help_message}"
    log "unexpected argument: $1"
    exit 2
fi

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
python=${python:-${PYTHON:-python3}}
launch_here() { "${python}" -m csst_espnet.bin.launch "$@"; }  # without a cmd.sh
train_cmd=${train_cmd:-launch_here}
cuda_cmd=${cuda_cmd:-"${train_cmd}"}
decode_cmd=${decode_cmd:-"${train_cmd}"}

# ------------------------------------------------------------------------------------ derived
src_langs=${lang_pair%-*}   # one source or several, comma separated
tgt_lang=${lang_pair##*-}
if [[ ! "${lang_pair}" =~ ^[a-z]+(,[a-z]+)*-[a-z]+$ ]]; then
    log "--lang_pair must be SRC-TGT or SRC,SRC,...-TGT (e.g. zh-en, zh,es,fr-en), got '${lang_pair}'"; exit 2
fi
languages=${languages:-${src_langs},${tgt_lang},cs}
phase1_train_sets=${phase1_train_sets:-${train_sets}}
phase2_train_sets=${phase2_train_sets:-${train_sets}}
phase3_train_sets=${phase3_train_sets:-${train_sets}}
phase1_valid_set=${phase1_valid_set:-${valid_set}}
if [ -z "${cs_only_train_sets}" ]; then
    for _s in ${phase3_train_sets}; do
        case " ${phase2_train_sets} ${text_train_sets} " in *" ${_s} "*) ;; *) cs_only_train_sets+="${_s} " ;; esac
    done
fi
text_lm_dir=${text_lm_dir:-${expdir}/text_lm}
phase1_tag=${phase1_tag:-csst_$(basename "${phase1_config}" .yaml)}${tag_suffix}
phase2_tag=${phase2_tag:-csst_$(basename "${phase2_config}" .yaml)}${tag_suffix}
phase3_tag=${phase3_tag:-csst_$(basename "${phase3_config}" .yaml)}${tag_suffix}
cs_only_tag=${cs_only_tag:-csst_$(basename "${cs_only_config}" .yaml)}${tag_suffix}
for _b in ${baselines}; do
    case "${_b}" in
        espnet_st) ;;
        *) log "--baselines: unknown baseline '${_b}' (known: espnet_st)"; exit 2 ;;
    esac
done
use_espnet_st() { [[ " ${baselines} " == *" espnet_st "* ]]; }
is_text_set() { [[ " ${text_train_sets} " == *" $1 "* ]]; }
speech_only() { local _s; for _s in "$@"; do is_text_set "${_s}" || echo -n "${_s} "; done; }
espnet_st_train_sets=${espnet_st_train_sets:-$(speech_only ${phase3_train_sets})}
espnet_st_tag=${espnet_st_tag:-$(basename "${espnet_st_config}" .yaml)}${tag_suffix}
espnet_st_exp=${expdir}/${espnet_st_tag}
espnet_st_stats_dir=${expdir}/espnet_st_stats
espnet_st_inference_tag=$(basename "${espnet_st_inference_config}" .yaml)_model_$(echo "${inference_model}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")
phase1_exp=${expdir}/${phase1_tag}
phase2_exp=${expdir}/${phase2_tag}
phase3_exp=${expdir}/${phase3_tag}
[[ "${phase2_init_phase}" =~ ^[01]$ ]] || { log "--phase2_init_phase must be 1 or 0, got '${phase2_init_phase}'"; exit 2; }
[[ "${phase3_init_phase}" =~ ^[012]$ ]] || { log "--phase3_init_phase must be 2, 1 or 0, got '${phase3_init_phase}'"; exit 2; }
phase2_from=$([ "${phase2_init_phase}" = 0 ] || echo "${phase1_exp}")  # the experiments phases 2 and 3 start from
phase3_from=$(case "${phase3_init_phase}" in 1) echo "${phase1_exp}" ;; 2) echo "${phase2_exp}" ;; esac)
cs_only_exp=${expdir}/${cs_only_tag}
stats_dir=${expdir}/csst_stats
oracle_dir=${expdir}/text_lm_oracle/gold_transcripts  # stage 13: the text LM on gold transcripts
for _d in "${dumpdir}" "${expdir}"; do  # data and model paths are passed to ESPnet's comma-separated options
    if [[ "${_d}" =~ [[:space:],] ]]; then log "--dumpdir/--expdir may not contain spaces or commas: '${_d}'"; exit 2; fi
done
data_feats=${dumpdir}/raw
cs_only_data=${data_feats}/$(basename "${cs_only_config}" .yaml)  # its training data (stage 4), named after its config
inference_tag=$(basename "${inference_config}" .yaml)_model_$(echo "${inference_model}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")
stage_times=${expdir}/stage_times.tsv

if "${skip_data_prep}"; then skip_stages="1 2 3 4 5 6"; else skip_stages=""; fi
if "${skip_train}"; then skip_stages+=" 7 8 9 10 11 12"; fi
if "${skip_eval}"; then skip_stages+=" 13 14"; fi
if "${skip_packing}"; then skip_stages+=" 15"; fi

# the sets every stage works on: the training sets of all phases, validation and test sets
all_train_sets=$(echo ${phase1_train_sets} ${phase2_train_sets} ${phase3_train_sets} ${train_sets} \
    $("${cs_only_baseline}" && echo ${cs_only_train_sets}) $(use_espnet_st && echo ${espnet_st_train_sets}) | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
base_valid_sets=$(for _s in "${valid_set}" "${phase1_valid_set}"; do
    if [[ "${_s}" == *_asr ]] && [ ! -d "data/${_s}" ]; then echo "${_s%_asr}"; else echo "${_s}"; fi
done | awk 'NF && !seen[$0]++' | tr '\n' ' ')
all_sets=$(echo ${all_train_sets} ${base_valid_sets} ${test_sets} ${asr_test_sets} ${extra_sets} | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
source_sets=${all_sets}  # the sets stage 1 writes
speed_perturb_sets=${speed_perturb_sets:-$(speech_only ${all_train_sets})}
# stage 2 makes <set>_<condition> of every condition set; a test set is decoded with its copies
condition_sets=${condition_sets:-${test_sets}}
condition_copies=$(for _s in ${condition_sets}; do for _c in ${test_conditions}; do echo "${_s}_${_c}"; done; done | tr '\n' ' ')
base_test_sets=${test_sets}
test_sets=$(for _s in ${base_test_sets}; do
    echo "${_s}"
    if [[ " ${condition_sets} " == *" ${_s} "* ]]; then for _c in ${test_conditions}; do echo "${_s}_${_c}"; done; fi
done | tr '\n' ' ')
all_sets=$(echo ${all_sets} ${condition_copies} | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
asr_test_names=$(for _s in ${asr_test_sets}; do echo "${_s}_asr"; done | tr '\n' ' ')
# the sets whose ASR copy <set>_asr stage 4 makes: "<set>_asr" validation sets without a data/<set>_asr of
# their own, and the ASR test sets
asr_copy_sets() {
    local _v
    {
        for _v in "${valid_set}" "${phase1_valid_set}"; do
            if [[ "${_v}" == *_asr ]] && [ ! -d "data/${_v}" ]; then echo "${_v%_asr}"; fi
        done
        echo ${asr_test_sets}
    } | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' '
}

# train data names of a phase: dump/raw/<name> combines its sets
phase_train_name() { echo "train_phase$1"; }

run_stage() {  # run_stage N: whether stage N runs
    local n=$1
    [ "${stage}" -le "${n}" ] && [ "${stop_stage}" -ge "${n}" ] && [[ " ${skip_stages} " != *" ${n} "* ]]
}
stage_begin() {
    _stage_start=${SECONDS}
    log "Stage $1: $2"
}
stage_end() {  # stage_end N [WHAT]: WHAT tells apart runs of one stage (stage 12: phase 3, CS-only baseline)
    local elapsed=$(( SECONDS - _stage_start ))
    mkdir -p "${expdir}"
    printf '%s\t%s\t%s\t%s\n' "$1" "${elapsed}" "$(date '+%Y-%m-%dT%H:%M:%S')" "${2:-}" >> "${stage_times}"
    log "Stage $1 done in ${elapsed} s"
}
write_resume() {  # write_resume DIR STAGE: a command that reruns this stage into DIR/run.sh
    mkdir -p "$1"
    {
        echo "#!/usr/bin/env bash"
        echo "# reruns stage $2 of: ${run_args}"
        echo "cd $(printf '%q' "$(pwd)")"
        echo "${run_args} --stage $2 --stop_stage $2 \"\$@\"; exit \$?"
    } > "$1/run.sh"
    chmod +x "$1/run.sh"
}
data_args() {  # data_args train|valid DIR: the data options of csst_train
    local mode=$1 dir=$2
    echo "--${mode}_data_path_and_name_and_type ${dir}/wav.scp,speech,sound"
    echo "--${mode}_data_path_and_name_and_type ${dir}/text,text,text"
    echo "--${mode}_data_path_and_name_and_type ${dir}/utt2lang,lang,text"
    echo "--${mode}_data_path_and_name_and_type ${dir}/utt2task,task,text"
}
frame_alignments() {  # frame_alignments DIR: the alignment files (one label per 10 ms frame) of DIR, comma separated
    local _a _out=
    for _a in phone_ali lang_ali; do [ -f "$1/${_a}" ] && _out+="${_out:+, }${_a}"; done
    echo "${_out}"
}
has_column() {  # has_column DIR FILE: whether DIR/FILE has an entry for every utterance of DIR (its text)
    [ -f "$1/$2" ] && cmp -s <(cut -d ' ' -f 1 "$1/text") <(cut -d ' ' -f 1 "$1/$2")
}
llm_args() {  # the LLM / tokenizer options of csst_train that stages 5 and 6 decide
    if "${use_text_lm}"; then
        echo "--llm_conf model_name_or_path=${text_lm_dir}"
    fi
    if [ "${token_type}" != pretrained ]; then
        echo "--tokenizer ${tokenizer_dir}"
    fi
}

# ==================================================================================== stages
if run_stage 1; then
    stage_begin 1 "Data preparation: local/data.sh ${local_data_opts} -> data/"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    for _s in ${source_sets}; do
        [ -d "data/${_s}" ] || { log "local/data.sh wrote no data/${_s}"; exit 1; }
    done
    stage_end 1
fi

if run_stage 2 && [ -z "${speed_perturb_factors}${test_conditions}" ]; then
    log "Stage 2: speed perturbation and test conditions are off (--speed_perturb_factors, --test_conditions)"
elif run_stage 2; then
    stage_begin 2 "Speed perturbation and robustness test conditions"
    if [ -n "${speed_perturb_factors}" ]; then
        log "speed perturbation (${speed_perturb_factors}) of ${speed_perturb_sets}"
        for _s in ${speed_perturb_sets}; do
            _ali=$(frame_alignments "data/${_s}"); [ -z "${_ali}" ] || _ali=", ${_ali} stretched to the new durations"
            log "reads data/${_s}, writes data/${_s}_sp (audio in data/${_s}_sp/wav${_ali})"
            # shellcheck disable=SC2086
            "${python}" -m csst_espnet.bin.speed_perturb --nj "${nj}" --factors "${speed_perturb_factors// /,}" \
                "data/${_s}" "data/${_s}_sp"
            write_resume "data/${_s}_sp" 2
        done
    else
        log "speed perturbation is off (--speed_perturb_factors is empty)"
    fi
    for _s in ${condition_sets}; do
        [ -n "${test_conditions}" ] || break
        for _c in ${test_conditions}; do
            log "reads data/${_s}, writes data/${_s}_${_c} (condition ${_c}, audio in data/${_s}_${_c}/wav)"
            "${python}" -m csst_espnet.bin.condition_dir --seed "${condition_seed}" "data/${_s}" "data/${_s}_${_c}" "${_c}"
            write_resume "data/${_s}_${_c}" 2
        done
    done
    stage_end 2
fi
# after speed perturbation, training sets are their perturbed versions
if [ -n "${speed_perturb_factors}" ]; then
    for _s in ${speed_perturb_sets}; do
        sp_map+=" ${_s}"
    done
fi
sp_name() {  # the formatted name of a set
    if [[ " ${sp_map:-} " == *" $1 "* ]]; then echo "$1_sp"; else echo "$1"; fi
}

if run_stage 3; then
    stage_begin 3 "Audio formatting: resample to ${fs} Hz, cut segments, dump to ${data_feats}/"
    for _s in ${all_sets}; do
        _src=data/$(sp_name "${_s}")
        _dst=${data_feats}/$(sp_name "${_s}")
        if is_text_set "${_s}"; then
            log "reads ${_src}, writes ${_dst} (text only: copied)"
            "${python}" -m csst_espnet.bin.data_dir combine "${_dst}" "${_src}" >/dev/null
            write_resume "${_dst}" 3
            continue
        fi
        _ali=$(frame_alignments "${_src}"); [ -z "${_ali}" ] || _ali=", ${_ali} carried"
        log "reads ${_src}, writes ${_dst} (audio in ${_dst}/data${_ali})"
        "${python}" -m csst_espnet.bin.format_audio --fs "${fs}" --nj "${nj}" "${_src}" "${_dst}"
        write_resume "${_dst}" 3
    done
    stage_end 3
fi

if run_stage 4; then
    _checks="${min_wav_duration}-${max_wav_duration} s, non-empty text, labels in ${languages}, phone_ali/lang_ali frames"
    stage_begin 4 "Filtering and validation: ${_checks}"
    _failed=()
    train_dumps=$(for _s in ${all_train_sets}; do echo "${data_feats}/$(sp_name "${_s}")"; done | paste -sd ,)
    for _s in ${all_sets}; do
        _dir=${data_feats}/$(sp_name "${_s}")
        _required=wav.scp,utt2spk,text,utt2lang,utt2task
        _why=
        if is_text_set "${_s}"; then _required=utt2spk,text,utt2lang,utt2task,src_text; _why=" (text only)"; fi
        if [[ " $(asr_copy_sets) " == *" ${_s} "* ]]; then  # ASR copies (made below) need transcripts
            _required+=,src_text; _why=" (src_text is needed to make ${data_feats}/${_s}_asr)"
        fi
        _opts=()
        [ -z "${max_encoder_dur}" ] || _opts+=(--max_encoder_dur "${max_encoder_dur}")
        if [[ " ${base_test_sets} ${condition_copies} ${extra_sets} " == *" ${_s} "* ]]; then
            _opts+=(--train_dirs "${train_dumps}")  # a test speaker or sentence seen in training: a warning
        fi
        log "validates ${_dir}${_why}, report in ${_dir}/validate_report.txt"
        if ! "${python}" -m csst_espnet.bin.data_dir validate "${_dir}" --min_dur "${min_wav_duration}" \
                --max_dur "${max_wav_duration}" --languages "${languages}" --fs "${fs}" --required "${_required}" \
                --drop_invalid "${drop_invalid}" --report "${_dir}/validate_report.txt" "${_opts[@]}" >/dev/null; then
            _failed+=("${_dir}")
        else
            [ ! -s "${_dir}/dropped.txt" ] || \
                log "${_dir}: dropped $(wc -l < "${_dir}/dropped.txt") utterances (listed in ${_dir}/dropped.txt)"
            ! grep -q "; warnings: " "${_dir}/validate_report.txt" || \
                log "warnings for ${_dir}: $(grep -c " warning: " "${_dir}/validate_report.txt") (see ${_dir}/validate_report.txt)"
        fi
    done
    if [ ${#_failed[@]} -gt 0 ]; then
        for _dir in "${_failed[@]}"; do
            log "invalid data in ${_dir}:\n$(cat "${_dir}/validate_report.txt")"
        done
        if "${drop_invalid}"; then
            log "Stage 4: invalid data remain after dropping (see the reports above)"
        else
            log "Stage 4: invalid data (see the reports above); fix them, or rerun with --drop_invalid true" \
                "to drop the invalid utterances (listed in <set>/dropped.txt)"
        fi
        exit 1
    fi
    for _s in $(asr_copy_sets); do
        log "reads ${data_feats}/${_s}, writes ${data_feats}/${_s}_asr (ASR: target = src_text)"
        "${python}" -m csst_espnet.bin.recipe_utils asr_dir "${data_feats}/${_s}" "${data_feats}/${_s}_asr"
    done
    for _p in 1 2 3; do
        _sets=phase${_p}_train_sets
        _dirs=()
        for _s in ${!_sets}; do _dirs+=("${data_feats}/$(sp_name "${_s}")"); done
        _out=${data_feats}/$(phase_train_name "${_p}")
        log "phase ${_p} training data: combines ${_dirs[*]} into ${_out}"
        "${python}" -m csst_espnet.bin.data_dir combine "${_out}" "${_dirs[@]}" >/dev/null
    done
    if "${cs_only_baseline}"; then
        _dirs=()
        for _s in ${cs_only_train_sets}; do _dirs+=("${data_feats}/$(sp_name "${_s}")"); done
        log "CS-only baseline training data: combines ${_dirs[*]} into ${cs_only_data}"
        "${python}" -m csst_espnet.bin.data_dir combine "${cs_only_data}" "${_dirs[@]}" >/dev/null
    fi
    write_resume "${data_feats}" 4
    stage_end 4
fi

if run_stage 5; then
    if [ "${token_type}" = pretrained ]; then
        log "Stage 5: skipped (--token_type pretrained: the LLM's own tokenizer)"
    else
        stage_begin 5 "Tokenizer: sentencepiece (${nbpe} pieces) -> Hugging Face tokenizer ${tokenizer_dir}"
        _opts=()
        for _s in ${all_train_sets}; do
            _d=${data_feats}/$(sp_name "${_s}")
            _opts+=(--kaldi_text "${_d}/text")
            [ -f "${_d}/src_text" ] && _opts+=(--kaldi_text "${_d}/src_text")
        done
        for _f in ${tokenizer_text}; do _opts+=(--text "${_f#*:}"); done
        for _f in ${tokenizer_pairs}; do _opts+=(--tsv "${_f}"); done
        log "reads ${_opts[*]}, writes ${tokenizer_dir}"
        "${python}" -m csst_espnet.bin.make_tokenizer --out_dir "${tokenizer_dir}" --vocab_size "${nbpe}" \
            --target_language "${tgt_lang}" --languages "${languages}" "${_opts[@]}" ${tokenizer_args}
        write_resume "${tokenizer_dir}" 5
        stage_end 5
    fi
    if [ -n "${max_target_tokens}" ]; then
        _tok=${target_tokenizer:-$([ "${token_type}" = pretrained ] || echo "${tokenizer_dir}")}
        [ -n "${_tok}" ] || { log "--max_target_tokens with --token_type pretrained needs --target_tokenizer" \
            "(the LLM's tokenizer: a directory or hub name)"; exit 2; }
        log "Stage 5: target lengths in ${_tok} tokens, at most ${max_target_tokens}"
        # every set, the ASR copies and the phases' combined training data (stage 4 made them from the sets)
        _dirs=()
        for _s in $(for _s in ${all_sets}; do sp_name "${_s}"; done; for _s in $(asr_copy_sets); do echo "${_s}_asr"; done
                    for _p in 1 2 3; do phase_train_name "${_p}"; done; ! "${cs_only_baseline}" || echo train_cs_only); do
            _dirs+=("${data_feats}/${_s}")
        done
        if ! "${python}" -m csst_espnet.bin.data_dir validate "${_dirs[@]}" --check_audio false --required text \
                --languages any --tasks any --max_target_tokens "${max_target_tokens}" --tokenizer "${_tok}" \
                --drop_invalid "${drop_invalid}" --report "${data_feats}/target_length_report.txt" >/dev/null; then
            log "$(grep -v ' 0 invalid' "${data_feats}/target_length_report.txt")"
            log "Stage 5: targets too long for the decoder (see the report above); shorten them, raise" \
                "--max_target_tokens, or rerun stages 4-5 with --drop_invalid true"
            exit 1
        elif grep -q "target_too_long" "${data_feats}/target_length_report.txt"; then
            log "Stage 5: dropped the utterances with too long targets (listed in <set>/dropped.txt):" \
                "\n$(grep -v ' 0 invalid' "${data_feats}/target_length_report.txt" | grep -v 'target_too_long')"
        fi
    fi
fi

if run_stage 6; then
    if "${use_text_lm}"; then
        stage_begin 6 "LLM text stage: a small causal LM on the corpus text -> ${text_lm_dir}"
        _opts=()
        for _s in ${all_train_sets}; do
            _d=${data_feats}/$(sp_name "${_s}")
            # transcripts of the monolingual (not cs) utterances per language, translation pairs of ST data
            "${python}" -m csst_espnet.bin.recipe_utils lm_text "${_d}" "${text_lm_dir}/data/${_s}" >/dev/null
            for _f in "${text_lm_dir}/data/${_s}"/mono.*.txt; do
                [ -s "${_f}" ] || continue
                _l=${_f##*/mono.}; _opts+=(--mono "${_l%.txt}:${_f}")
            done
            [ -s "${text_lm_dir}/data/${_s}/pairs.tsv" ] && _opts+=(--pairs "${text_lm_dir}/data/${_s}/pairs.tsv")
        done
        for _f in ${tokenizer_text}; do
            if [[ "${_f}" == *:* ]]; then _opts+=(--mono "${_f}"); fi
        done
        for _f in ${tokenizer_pairs}; do _opts+=(--pairs "${_f}"); done
        _tok=${tokenizer_dir}
        [ "${token_type}" = pretrained ] && { log "--use_text_lm true needs --token_type sentencepiece"; exit 2; }
        mkdir -p "${text_lm_dir}"
        log "reads ${_tok} ${_opts[*]}, writes ${text_lm_dir} (log: ${text_lm_dir}/train.log)"
        # shellcheck disable=SC2086
        ${train_cmd} "${text_lm_dir}/train.log" "${python}" -m csst_espnet.bin.train_text_lm \
            --tokenizer "${_tok}" --out_dir "${text_lm_dir}" --config "${text_lm_config}" "${_opts[@]}" ${text_lm_args} \
            || { log "text LM training failed:\n$(tail -n 20 "${text_lm_dir}/train.log")"; exit 1; }
        grep -a "INFO" "${text_lm_dir}/train.log" | tail -n 1 >&2 || true
        write_resume "${text_lm_dir}" 6
        stage_end 6
    else
        log "Stage 6: skipped (--use_text_lm false)"
    fi
fi

# the ESPnet ST baseline's data (stage 7): the ST utterances of its training sets and of the validation set
espnet_st_train=${data_feats}/espnet_st_train
espnet_st_valid=${data_feats}/espnet_st_valid
espnet_st_has_src() { [ -f "${espnet_st_train}/src_text" ] && [ -f "${espnet_st_valid}/src_text" ]; }

if run_stage 7 && ! use_espnet_st; then
    log "Stage 7: skipped (no ESPnet baseline: --baselines \"${baselines}\")"
elif run_stage 7; then
    stage_begin 7 "ESPnet ST baseline: data and BPE (target ${espnet_st_nbpe}, source ${espnet_st_src_nbpe}) -> ${espnet_st_dir}"
    _dirs=()
    for _s in ${espnet_st_train_sets}; do _dirs+=("${data_feats}/$(sp_name "${_s}")"); done
    log "reads the ST utterances of ${_dirs[*]}, writes ${espnet_st_train}"
    "${python}" -m csst_espnet.bin.espnet_st prepare "${espnet_st_train}" "${_dirs[@]}" >&2
    log "reads the ST utterances of ${data_feats}/${valid_set}, writes ${espnet_st_valid}"
    "${python}" -m csst_espnet.bin.espnet_st prepare "${espnet_st_valid}" "${data_feats}/${valid_set}" >&2
    _sides=tgt
    if espnet_st_has_src; then _sides+=" src"; else
        log "no source transcript for every utterance (src_text): the baseline trains without its ASR task"
    fi
    for _side in ${_sides}; do
        if [ "${_side}" = tgt ]; then _col=text _n=${espnet_st_nbpe}; else _col=src_text _n=${espnet_st_src_nbpe}; fi
        _out=${espnet_st_dir}/${_side}_bpe${_n}
        log "reads ${espnet_st_train}/${_col}, writes ${_out}/bpe.model (sentencepiece) and ${_out}/tokens.txt" \
            "(espnet2.bin.tokenize_text)"
        _model=$("${python}" -m csst_espnet.bin.espnet_st bpe "${espnet_st_train}/${_col}" "${_out}" "${_n}")
        "${python}" -m espnet2.bin.tokenize_text --token_type bpe --bpemodel "${_model}" \
            --input "${_out}/train.txt" --output "${_out}/tokens.txt" --write_vocabulary true \
            --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
        tail -n 1 "${_out}/bpe.log" >&2
    done
    write_resume "${espnet_st_dir}" 7
    stage_end 7
fi
espnet_st_tokens() {  # the token options of espnet2.bin.st_train (stage 7's outputs)
    local _tgt=${espnet_st_dir}/tgt_bpe${espnet_st_nbpe} _src=${espnet_st_dir}/src_bpe${espnet_st_src_nbpe}
    echo "--token_type bpe --token_list ${_tgt}/tokens.txt --bpemodel ${_tgt}/bpe.model"
    if espnet_st_has_src; then
        echo "--src_token_type bpe --src_token_list ${_src}/tokens.txt --src_bpemodel ${_src}/bpe.model"
    else
        echo "--src_token_type none --model_conf asr_weight=0.0 --extra_asr_decoder none"
    fi
}
espnet_st_data() {  # espnet_st_data train|valid DIR
    echo "--${1}_data_path_and_name_and_type ${2}/wav.scp,speech,sound"
    echo "--${1}_data_path_and_name_and_type ${2}/text,text,text"
    if espnet_st_has_src; then echo "--${1}_data_path_and_name_and_type ${2}/src_text,src_text,text"; fi
}

if run_stage 8 && ! use_espnet_st; then
    log "Stage 8: skipped (no ESPnet baseline: --baselines \"${baselines}\")"
elif run_stage 8; then
    stage_begin 8 "ESPnet ST baseline: shape statistics (espnet2.bin.st_train --collect_stats true) -> ${espnet_st_stats_dir}"
    [ -f "${espnet_st_train}/wav.scp" ] || { log "no ${espnet_st_train}: run stage 7 first"; exit 1; }
    _n=$(wc -l < "${espnet_st_train}/wav.scp")
    _nv=$(wc -l < "${espnet_st_valid}/wav.scp")
    _nj=$(min "${nj}" "${_n}" "${_nv}")
    _logdir=${espnet_st_stats_dir}/logdir
    rm -rf "${_logdir}"
    mkdir -p "${_logdir}"
    for _m in train valid; do
        _d=${espnet_st_train}; [ "${_m}" = valid ] && _d=${espnet_st_valid}
        "${python}" -m csst_espnet.bin.recipe_utils split_keys "${_d}/wav.scp" "${_nj}" "${_logdir}/${_m}"
    done
    log "reads ${espnet_st_train} and ${espnet_st_valid} (${_n} + ${_nv} utterances), ${_nj} jobs," \
        "logs ${_logdir}/stats.*.log"
    # shellcheck disable=SC2046
    ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
        "${python}" -m espnet2.bin.st_train --collect_stats true --ngpu 0 --config "${espnet_st_config}" \
            --use_preprocessor true $(espnet_st_tokens) --normalize none \
            $(espnet_st_data train "${espnet_st_train}") $(espnet_st_data valid "${espnet_st_valid}") \
            --train_shape_file "${_logdir}/train.JOB.scp" --valid_shape_file "${_logdir}/valid.JOB.scp" \
            --output_dir "${_logdir}/stats.JOB" \
        || { log "ESPnet shape statistics failed:\n$(tail -n 20 "${_logdir}"/stats.*.log)"; exit 1; }
    _inputs=()
    for _j in $(seq "${_nj}"); do _inputs+=(--input_dir "${_logdir}/stats.${_j}"); done
    "${python}" -m espnet2.bin.aggregate_stats_dirs "${_inputs[@]}" --output_dir "${espnet_st_stats_dir}"
    _lists=("text=${espnet_st_dir}/tgt_bpe${espnet_st_nbpe}/tokens.txt")
    espnet_st_has_src && _lists+=("src_text=${espnet_st_dir}/src_bpe${espnet_st_src_nbpe}/tokens.txt")
    "${python}" -m csst_espnet.bin.espnet_st shapes "${espnet_st_stats_dir}" "${_lists[@]}" >/dev/null
    log "wrote ${espnet_st_stats_dir}/{train,valid}/{speech_shape,text_shape.bpe,...} and train/feats_stats.npz"
    write_resume "${espnet_st_stats_dir}" 8
    stage_end 8
fi

if run_stage 9; then
    stage_begin 9 "Shape statistics: csst_train --collect_stats true -> ${stats_dir}"
    _train_dirs=()
    for _s in $(speech_only ${all_train_sets}); do _train_dirs+=("${data_feats}/$(sp_name "${_s}")"); done
    _valid_dirs=()
    for _s in $(echo "${valid_set} ${phase1_valid_set}" | tr ' ' '\n' | awk 'NF && !seen[$0]++'); do
        _valid_dirs+=("${data_feats}/${_s}")
    done
    mkdir -p "${stats_dir}"
    # one run over every utterance of any phase; shapes of each set are taken from it (speech shapes only:
    # data_args has no phone_ali, which the training phases add)
    "${python}" -m csst_espnet.bin.recipe_utils union_dir "${stats_dir}/train_data" "${_train_dirs[@]}"
    "${python}" -m csst_espnet.bin.recipe_utils union_dir "${stats_dir}/valid_data" "${_valid_dirs[@]}"
    _n=$(wc -l < "${stats_dir}/train_data/wav.scp")
    _nv=$(wc -l < "${stats_dir}/valid_data/wav.scp")
    _nj=$(min "${nj}" "${_n}" "${_nv}")
    _logdir=${stats_dir}/logdir
    mkdir -p "${_logdir}"
    for _m in train valid; do
        "${python}" -m csst_espnet.bin.recipe_utils split_keys "${stats_dir}/${_m}_data/wav.scp" "${_nj}" "${_logdir}/${_m}"
    done
    log "reads ${stats_dir}/{train,valid}_data (${_n} + ${_nv} utterances), ${_nj} jobs, logs ${_logdir}/stats.*.log"
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
        "${python}" -m csst_espnet.bin.csst_train --collect_stats true --ngpu 0 --config "${phase1_config}" \
            --use_preprocessor true $(llm_args) \
            $(data_args train "${stats_dir}/train_data") $(data_args valid "${stats_dir}/valid_data") \
            --train_shape_file "${_logdir}/train.JOB.scp" --valid_shape_file "${_logdir}/valid.JOB.scp" \
            --output_dir "${_logdir}/stats.JOB" ${train_args} \
        || { log "shape statistics failed:\n$(tail -n 20 "${_logdir}"/stats.*.log)"; exit 1; }
    for _m in train valid; do
        mkdir -p "${stats_dir}/${_m}"
        cat "${_logdir}"/stats.*/"${_m}"/speech_shape | LC_ALL=C sort > "${stats_dir}/${_m}/speech_shape"
    done
    # per set: the shapes of its utterances
    for _d in "${_train_dirs[@]}" "${_valid_dirs[@]}" \
              $(for _p in 1 2 3; do echo "${data_feats}/$(phase_train_name "${_p}")"; done) \
              $("${cs_only_baseline}" && echo "${cs_only_data}"); do
        _name=$(basename "${_d}")
        mkdir -p "${stats_dir}/sets/${_name}"
        cat "${stats_dir}/train/speech_shape" "${stats_dir}/valid/speech_shape" | \
            awk 'NR==FNR { k[$1]=1; next } ($1 in k) && !seen[$1]++' "${_d}/wav.scp" - | LC_ALL=C sort \
            > "${stats_dir}/sets/${_name}/speech_shape"
        if [ "$(wc -l < "${stats_dir}/sets/${_name}/speech_shape")" -ne "$(wc -l < "${_d}/wav.scp")" ]; then
            log "shape statistics miss utterances of ${_d}"; exit 1
        fi
    done
    write_resume "${stats_dir}" 9
    stage_end 9
fi

training_kept() {  # training_kept STAGE NAME EXP: whether EXP is finished (then kept, the stage ends)
    local _stage=$1 _name=$2 _exp=$3
    # a finished run is kept (a rerun is a no-op); an interrupted one resumes (--resume true) if it was
    # started by the same command, else it is an error: never a directory of two runs mixed
    if "${overwrite}" && [ -d "${_exp}" ]; then
        log "${_name}: --overwrite true: removes ${_exp}"
        rm -rf "${_exp}"
    fi
    if [ -f "${_exp}/training.done" ] && [ -f "${_exp}/${inference_model}" ]; then
        log "${_name}: ${_exp} is finished (${_exp}/training.done): kept; --overwrite true trains it again"
        stage_end "${_stage}" "$(basename "${_exp}")"
        return 0
    fi
    return 1
}

run_training() {  # run_training STAGE NAME EXP COMMAND...: run (or resume) a training command in EXP
    local _stage=$1 _name=$2 _exp=$3 _cmd_line
    shift 3
    _cmd_line=$(printf '%q ' "$@")
    if [ -f "${_exp}/train.cmd" ] && [ "$(cat "${_exp}/train.cmd")" != "${_cmd_line}" ]; then
        log "${_name}: ${_exp} holds an unfinished run of another command (${_exp}/train.cmd);" \
            "rerun with --overwrite true to start it again"
        exit 1
    fi
    mkdir -p "${_exp}"
    echo "${_cmd_line}" > "${_exp}/train.cmd"
    write_resume "${_exp}" "${_stage}"
    [ -f "${_exp}/checkpoint.pth" ] && log "${_name}: resumes from ${_exp}/checkpoint.pth"
    log "${_name}: log in ${_exp}/train.log"
    # shellcheck disable=SC2086
    ${cuda_cmd} --gpu "${ngpu}" "${_exp}/train.log" "$@" \
        || { log "${_name} failed:\n$(grep -v '^\s*$' "${_exp}/train.log" | tail -n 30)"; exit 1; }
    [ -f "${_exp}/${inference_model}" ] || { log "${_name}: no ${_exp}/${inference_model} after training"; exit 1; }
    date '+%Y-%m-%dT%H:%M:%S' > "${_exp}/training.done"
    grep -a "epoch results" "${_exp}/train.log" | tail -n 1 | sed 's/.*INFO: //' >&2 || true
    stage_end "${_stage}" "$(basename "${_exp}")"
}

train_phase() {  # train_phase STAGE NAME CONFIG EXP TRAIN_DIR VALID_DIR INIT ARGS
    local _stage=$1 _name=$2 _config=$3 _exp=$4 _train=$5 _valid=$6 _init=$7 _args=$8
    stage_begin "${_stage}" "${_name}: ${_config}, data ${_train}, valid ${_valid} -> ${_exp}"
    training_kept "${_stage}" "${_name}" "${_exp}" && return 0
    local _opts=""
    if [ -n "${_init}" ]; then
        [ -f "${_init}" ] || { log "${_name}: the initial model ${_init} does not exist"; exit 1; }
        _opts+="--init_param ${_init} "
        log "${_name}: starts from ${_init}"
    fi
    if [ "${ngpu}" -gt 1 ] || [ "${num_nodes}" -gt 1 ]; then
        _opts+="--multiprocessing_distributed true --num_nodes ${num_nodes} "
    fi
    # optional columns for the auxiliary losses: phone_ali (frame_phone), lang_ali (routing losses), src_text (src_ctc)
    local _extra="" _m _d _col _type _what _use
    for _col in phone_ali lang_ali src_text; do
        case "${_col}" in
            phone_ali) _use=${use_phone_ali} _type=text_int _what="frame phone ids" ;;
            lang_ali) _use=${use_lang_ali} _type=text _what="frame languages" ;;
            src_text) _use=${use_src_text} _type=text _what="source transcripts" ;;
        esac
        if ! "${_use}"; then
            log "${_name}: ${_col} not passed (--use_${_col} false)"
            continue
        fi
        for _m in train valid; do
            if [ "${_m}" = train ]; then _d=${_train}; else _d=${_valid}; fi
            if has_column "${_d}" "${_col}"; then
                _extra+="--${_m}_data_path_and_name_and_type ${_d}/${_col},${_col},${_type} "
                log "${_name}: ${_m} data with ${_what} ${_d}/${_col}"
            else
                log "${_name}: ${_m} data without ${_what} (not every utterance of ${_d} has a ${_col})"
            fi
        done
    done
    # shellcheck disable=SC2046,SC2086
    local _cmd
    _cmd=("${python}" -m csst_espnet.bin.csst_train --use_preprocessor true --config "${_config}" \
            --output_dir "${_exp}" --ngpu "${ngpu}" --resume true $(llm_args) \
            $(data_args train "${_train}") $(data_args valid "${_valid}") ${_extra} \
            --train_shape_file "${stats_dir}/sets/$(basename "${_train}")/speech_shape" \
            --valid_shape_file "${stats_dir}/sets/$(basename "${_valid}")/speech_shape" \
            ${_opts} ${train_args} ${_args})
    run_training "${_stage}" "${_name}" "${_exp}" "${_cmd[@]}"
}

train_espnet_st() {  # the ESPnet ST baseline (stage 12): espnet2.bin.st_train on stages 7-8's outputs
    local _name="ESPnet ST baseline" _opts="" _cmd
    stage_begin 12 "${_name}: ${espnet_st_config}, data ${espnet_st_train}, valid ${espnet_st_valid} -> ${espnet_st_exp}"
    training_kept 12 "${_name}" "${espnet_st_exp}" && return 0
    [ -f "${espnet_st_stats_dir}/train/feats_stats.npz" ] || { log "${_name}: no shape statistics: run stage 8 first"; exit 1; }
    if [ "${ngpu}" -gt 1 ] || [ "${num_nodes}" -gt 1 ]; then
        _opts+="--multiprocessing_distributed true --num_nodes ${num_nodes} "
    fi
    local _shapes="" _m _f
    for _m in train valid; do
        for _f in speech_shape text_shape.bpe $(espnet_st_has_src && echo src_text_shape.bpe); do
            _shapes+="--${_m}_shape_file ${espnet_st_stats_dir}/${_m}/${_f} "
        done
    done
    # shellcheck disable=SC2046,SC2086
    _cmd=("${python}" -m espnet2.bin.st_train --use_preprocessor true --config "${espnet_st_config}" \
            --output_dir "${espnet_st_exp}" --ngpu "${ngpu}" --resume true $(espnet_st_tokens) \
            --normalize_conf "stats_file=${espnet_st_stats_dir}/train/feats_stats.npz" \
            $(espnet_st_data train "${espnet_st_train}") $(espnet_st_data valid "${espnet_st_valid}") \
            ${_shapes} ${_opts} ${espnet_st_args})
    run_training 12 "${_name}" "${espnet_st_exp}" "${_cmd[@]}"
}

phase_trained() {  # phase_trained N: whether stages 10-12 train phase N (--train_phases)
    if [[ " ${train_phases} " == *" $1 "* ]]; then return 0; fi
    log "Phase $1: not trained (--train_phases \"${train_phases}\")"
    return 1
}

if run_stage 10 && phase_trained 1; then
    train_phase 10 "Phase 1 (alignment)" "${phase1_config}" "${phase1_exp}" \
        "${data_feats}/$(phase_train_name 1)" "${data_feats}/${phase1_valid_set}" "${phase1_init_param}" "${phase1_args}"
fi
if run_stage 11 && phase_trained 2; then
    train_phase 11 "Phase 2 (translation)" "${phase2_config}" "${phase2_exp}" \
        "${data_feats}/$(phase_train_name 2)" "${data_feats}/${valid_set}" "${phase2_from:+${phase2_from}/${inference_model}}" \
        "${phase2_args}"
fi
if run_stage 12; then
    if phase_trained 3; then
        train_phase 12 "Phase 3 (code-switch)" "${phase3_config}" "${phase3_exp}" \
            "${data_feats}/$(phase_train_name 3)" "${data_feats}/${valid_set}" "${phase3_from:+${phase3_from}/${inference_model}}" \
            "${phase3_from:+--teacher_config ${phase3_from}/config.yaml --teacher_model ${phase3_from}/${inference_model} }${phase3_args}"
    fi
    if "${cs_only_baseline}"; then
        train_phase 12 "CS-only baseline (no phases 1-2)" "${cs_only_config}" "${cs_only_exp}" \
            "${cs_only_data}" "${data_feats}/${valid_set}" "" "${cs_only_args}"
    fi
    if use_espnet_st; then
        train_espnet_st
    fi
fi

decode_exps() {  # the experiment directories decoded and scored
    local _p
    for _p in ${decode_phases}; do
        case "${_p}" in
            1) echo "${phase1_exp}" ;; 2) echo "${phase2_exp}" ;; 3) echo "${phase3_exp}" ;;
            *) log "--decode_phases: unknown phase ${_p}"; exit 2 ;;
        esac
    done
    if "${cs_only_baseline}"; then echo "${cs_only_exp}"; fi
    if use_espnet_st; then echo "${espnet_st_exp}"; fi
}
is_espnet_exp() { [ "$1" = "${espnet_st_exp}" ]; }  # a model of ESPnet's own ST task (decoded by st_inference)
decode_tag_of() {  # decode_tag_of EXP: the decoding directory name of EXP
    if is_espnet_exp "$1"; then echo "${espnet_st_inference_tag}"; else echo "${inference_tag}"; fi
}

asr_sets_of() {  # asr_sets_of EXP: the ASR copies EXP decodes (none when it never trained on ASR)
    local _tasks
    [ -n "${asr_test_names}" ] || return 0
    if is_espnet_exp "$1"; then
        log "$1 is an ESPnet ST model: its ASR copies are not decoded (its ASR branch is a training task)"
        return 0
    fi
    _tasks=$("${python}" -m csst_espnet.bin.recipe_utils trained_tasks "$1/config.yaml") || exit 1
    case " ${_tasks} " in
        *" asr "*) echo "${asr_test_names}" ;;
        *) log "$1 never trained on ASR (its training data: ${_tasks}): its ASR copies are not decoded" ;;
    esac
}

decode_sets() {  # decode_sets EXP LOGDIR WITH_TASK SET...: one job array over the SETs -> EXP/<decode tag>/<set>
    local _exp=$1 _logdir=$2 _with_task=$3 _s _dirs=() _data _n _nj _data_opts
    shift 3
    for _s in "$@"; do _dirs+=("${data_feats}/${_s}"); done
    # finished shards (output.JOB/DONE, same model, data, keys and options) are kept: a rerun decodes the rest
    if "${overwrite}"; then rm -rf "${_logdir}"; fi
    mkdir -p "${_logdir}"
    _data=${_logdir}/data
    "${python}" -m csst_espnet.bin.recipe_utils union_dir "${_data}" "${_dirs[@]}" >/dev/null
    _n=$(wc -l < "${_data}/wav.scp")
    _nj=$(min "${inference_nj}" "${_n}")
    "${python}" -m csst_espnet.bin.recipe_utils split_keys "${_data}/wav.scp" "${_nj}" "${_logdir}/keys"
    for _d in "${_logdir}"/output.*; do  # shards of an earlier run with more jobs
        if [ -d "${_d}" ] && [ "${_d##*.}" -gt "${_nj}" ]; then rm -rf "${_d}" "${_logdir}/keys.${_d##*.}.scp"; fi
    done
    _data_opts="--data_path_and_name_and_type ${_data}/wav.scp,speech,sound"
    local _bin=csst_espnet.bin.csst_inference _conf=${_conf_args} _tag
    _tag=$(decode_tag_of "${_exp}")
    if is_espnet_exp "${_exp}"; then  # ESPnet's own decoder: speech in, nothing else
        _bin=espnet2.bin.st_inference
        _conf=${_espnet_conf_args}
        rm -rf "${_logdir}"/output.*  # st_inference keeps no record of finished shards: decode all again
    else
        if "${inference_use_lang}"; then
            _data_opts+=" --data_path_and_name_and_type ${_data}/utt2lang,lang,text"
        fi
        if "${inference_use_lang}" || "${_with_task}"; then
            _data_opts+=" --data_path_and_name_and_type ${_data}/utt2task,task,text"
        fi
    fi
    log "reads $* (${_n} utterances) and ${_exp}/${inference_model}, writes ${_exp}/${_tag}/<set>," \
        "${_nj} jobs (${_bin}), logs ${_logdir}/inference.*.log"
    local _start
    _start=$(date +%s.%N)
    # shellcheck disable=SC2086
    ${_cmd} --num_threads "${inference_num_threads}" JOB=1:"${_nj}" "${_logdir}/inference.JOB.log" \
        "${python}" -m ${_bin} --ngpu "${_ngpu}" \
            --st_train_config "${_exp}/config.yaml" --st_model_file "${_exp}/${inference_model}" \
            ${_data_opts} --key_file "${_logdir}/keys.JOB.scp" --output_dir "${_logdir}/output.JOB" \
            ${_conf} $(is_espnet_exp "${_exp}" || echo ${inference_args}) \
        || { log "decoding failed:\n$(tail -n 20 "${_logdir}"/inference.*.log)"; exit 1; }
    # decoding cost of this run (wall time of the job array; shards kept from an earlier run count 0 s)
    "${python}" -m csst_espnet.bin.recipe_utils decode_cost "${_data}" "${_start}" "$(date +%s.%N)" \
        "${_logdir}/decode_cost.json" --jobs "${_nj}" --threads "${inference_num_threads}" --ngpu "${_ngpu}" >&2
    for _s in "$@"; do
        "${python}" -m csst_espnet.bin.recipe_utils merge_decode --subset "${data_feats}/${_s}/wav.scp" \
            "${_exp}/${_tag}/${_s}" "${_logdir}"/output.*
        write_resume "${_exp}/${_tag}/${_s}" 13
    done
}

if run_stage 13; then
    stage_begin 13 "Decoding ${test_sets} ${asr_test_names}with $(decode_exps | tr '\n' ' ')"
    if "${gpu_inference}"; then _cmd="${cuda_cmd} --gpu 1"; _ngpu=1; else _cmd="${decode_cmd}"; _ngpu=0; fi
    _conf_args=$("${python}" -m csst_espnet.bin.recipe_utils yaml2args "${inference_config}")
    _espnet_conf_args=
    if use_espnet_st; then
        _espnet_conf_args=$("${python}" -m csst_espnet.bin.recipe_utils yaml2args "${espnet_st_inference_config}")
    fi
    for _exp in $(decode_exps); do
        # the test sets and their ASR copies in one job array (utterance ids are unique over them: the
        # copies' ids end in -asr), split back after
        _asr=$(asr_sets_of "${_exp}")
        # shellcheck disable=SC2086
        decode_sets "${_exp}" "${_exp}/$(decode_tag_of "${_exp}")/logdir" "$([ -n "${_asr}" ] && echo true || echo false)" \
            ${test_sets} ${_asr}
    done
    if "${use_text_lm}" && "${text_lm_oracle}"; then
        # the stage-6 LLM translating the gold transcripts: what the speech models could reach at best
        _opts=()
        for _s in ${base_test_sets}; do _opts+=(--data_dir "${data_feats}/${_s}"); done
        log "text LM oracle: reads ${text_lm_dir} and src_text of ${base_test_sets}, writes ${oracle_dir}/<set>/text"
        mkdir -p "${oracle_dir}"
        ${decode_cmd} "${oracle_dir}/oracle.log" "${python}" -m csst_espnet.bin.text_lm_oracle \
            --model_dir "${text_lm_dir}" --out_dir "${oracle_dir}" "${_opts[@]}" \
            || { log "text LM oracle failed:\n$(tail -n 20 "${oracle_dir}/oracle.log")"; exit 1; }
        write_resume "${oracle_dir}" 13
    fi
    stage_end 13
fi

if run_stage 14; then
    stage_begin 14 "Scoring -> ${results_md}, ${expdir}/results.json"
    _score_dirs=()
    _test_dirs=()
    for _s in ${base_test_sets}; do _test_dirs+=("${data_feats}/${_s}"); done
    score_st() {  # <decoding dir> <test set>: BLEU/chrF with all references and with the first one
        local _dir=$1 _data=${data_feats}/$2 _r
        [ -f "${_dir}/text" ] || { log "no decoding output ${_dir}/text: run stage 13 first"; exit 1; }
        local _refs=(--ref "${_data}/text")
        if "${score_all_refs}"; then
            for _r in "${_data}"/text.[0-9]*; do [ -f "${_r}" ] && _refs+=(--ref "${_r}"); done
        fi
        local _opts=(--hyp "${_dir}/text" --task st --tgt_lang "${tgt_lang}" --utt2lang "${_data}/utt2lang")
        log "reads ${_dir}/text and ${_refs[*]}, writes ${_dir}/score.{json,txt}"
        "${python}" -m csst_espnet.bin.score "${_opts[@]}" "${_refs[@]}" --out_json "${_dir}/score.json" \
            > "${_dir}/score.txt"
        "${python}" -m csst_espnet.bin.score "${_opts[@]}" --ref "${_data}/text" --out_json "${_dir}/score_ref1.json" \
            > "${_dir}/score_ref1.txt"
        cat "${_dir}/score.txt" >&2
        _score_dirs+=("${_dir}")
    }
    if "${use_text_lm}" && "${text_lm_oracle}"; then
        for _s in ${base_test_sets}; do score_st "${oracle_dir}/${_s}" "${_s}"; done
    fi
    for _exp in $(decode_exps); do
        _tag=$(decode_tag_of "${_exp}")
        for _s in ${test_sets}; do score_st "${_exp}/${_tag}/${_s}" "${_s}"; done
        _asr=$(asr_sets_of "${_exp}")
        for _s in ${_asr}; do  # WER/CER/MER against the transcripts
            _data=${data_feats}/${_s}
            _dir=${_exp}/${_tag}/${_s}
            [ -f "${_dir}/text" ] || { log "no decoding output ${_dir}/text: run stage 13 first"; exit 1; }
            log "reads ${_dir}/text and ${_data}/text (transcripts), writes ${_dir}/score.{json,txt}"
            "${python}" -m csst_espnet.bin.score --hyp "${_dir}/text" --ref "${_data}/text" --task asr \
                --utt2lang "${_data}/utt2lang" --out_json "${_dir}/score.json" > "${_dir}/score.txt"
            cat "${_dir}/score.txt" >&2
            _score_dirs+=("${_dir}")
        done
        if "${routing_report}" && ! is_espnet_exp "${_exp}" && [ "$("${python}" -m csst_espnet.bin.recipe_utils config_get "${_exp}/config.yaml" projector)" = moe ]; then
            # one report over every test set: routing is shown per language label (zh, en, cs)
            _root=${_exp}/${inference_tag}
            log "routing report of ${_exp} on ${base_test_sets} -> ${_root}/routing"
            "${python}" -m csst_espnet.bin.recipe_utils union_dir "${_root}/routing/data" "${_test_dirs[@]}" >/dev/null
            "${python}" -m csst_espnet.bin.routing_report --config "${_exp}/config.yaml" \
                --model_file "${_exp}/${inference_model}" --data_dir "${_root}/routing/data" \
                --output_dir "${_root}/routing" ${routing_phones:+--phones "${routing_phones}"} \
                > "${_root}/routing/routing.log" 2>&1 \
                || { log "routing report failed:\n$(tail -n 20 "${_root}/routing/routing.log")"; exit 1; }
        fi
    done
    "${python}" -m csst_espnet.bin.make_results --expdir "${expdir}" --out_md "${results_md}" \
        --out_json "${expdir}/results.json" --command "${run_args}" --stage_times "${stage_times}" "${_score_dirs[@]}"
    log "results: ${results_md}, ${expdir}/results.json"
    stage_end 14
fi

if run_stage 15; then
    stage_begin 15 "Packing and export"
    for _exp in $(decode_exps); do
        if is_espnet_exp "${_exp}"; then
            log "${_exp}: an ESPnet ST model, not packed here (ESPnet's own pack: espnet2.bin.pack st)"
            continue
        fi
        log "reads ${_exp}, writes ${_exp}/packed.zip and ${_exp}/hf_merged"
        "${python}" -m csst_espnet.bin.pack_model --exp_dir "${_exp}" --model_file "${_exp}/${inference_model}" \
            --out "${_exp}/packed.zip" $([ -f "${results_md}" ] && echo "--extra ${results_md}")
        "${python}" -m csst_espnet.bin.export_hf --config "${_exp}/config.yaml" \
            --model_file "${_exp}/${inference_model}" --out_dir "${_exp}/hf_merged"
        write_resume "${_exp}/hf_merged" 15
    done
    stage_end 15
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
