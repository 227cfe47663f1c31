"""The recipe's shell layer: option parsing, setup.sh, and stage 4 (validation and dropping)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SENTENCES, synth_utterance, write_data_dir

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "csst1"


def bash(script: str, cwd: Path, *args: str, env=None):
    return subprocess.run(["bash", script, *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable, **(env or {})))


@pytest.fixture
def opts_script(tmp_path):
    script = tmp_path / "opts.sh"
    script.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        "stage=1\nstop_stage=100\nuse_text_lm=false\ntest_sets=\"a b\"\nhelp_message=\"Usage: opts.sh [options]\"\n"
        f". {TEMPLATE}/scripts/parse_options.sh\n"
        'echo "stage=${stage} stop_stage=${stop_stage} use_text_lm=${use_text_lm} test_sets=${test_sets} rest=$*"\n'
    )
    return script


def test_parse_options_sets_variables(opts_script, tmp_path):
    r = bash(str(opts_script), tmp_path, "--stage", "3", "--stop-stage=5", "--use_text_lm", "true",
             "--test-sets", "x y z", "--", "extra")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=3 stop_stage=5 use_text_lm=true test_sets=x y z rest=extra"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no_such-option", "1"], "unknown option --no_such-option"),
        (["--stage"], "option --stage needs a value"),
        (["--use_text_lm", "yes"], "option --use_text_lm takes true or false, got 'yes'"),
        (["--_internal", "1"], "unknown option --_internal"),
        (["--PATH-x", "1"], "unknown option --PATH-x"),
    ],
)
def test_parse_options_errors_name_the_option(opts_script, tmp_path, args, message):
    r = bash(str(opts_script), tmp_path, *args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "opts.sh --help" in r.stderr


def test_parse_options_help(opts_script, tmp_path):
    r = bash(str(opts_script), tmp_path, "--help")
    assert r.returncode == 0 and "Usage: opts.sh" in r.stdout


def test_csst_sh_and_run_sh_reject_unknown_options(tmp_path):
    r = bash(str(TEMPLATE / "csst.sh"), tmp_path, "--stage", "4", "--inference-njobs", "3")
    assert r.returncode == 1 and "unknown option --inference-njobs" in r.stderr
    r = bash(str(TEMPLATE / "csst.sh"), tmp_path, "--skip_train", "maybe")
    assert r.returncode == 1 and "--skip_train takes true or false" in r.stderr
    r = bash(str(TEMPLATE / "csst.sh"), tmp_path, "--help")
    assert r.returncode == 0 and "--phase1_config" in r.stdout and "--cs_only_baseline" in r.stdout
    # every option (a variable set before help_message) is listed by its name
    defaults = (TEMPLATE / "csst.sh").read_text().split("\nSECONDS=0\n")[1].split("\nhelp_message=")[0]
    names = re.findall(r"^([a-z][a-z0-9_]*)=", defaults, re.M)
    assert len(names) > 50 and [n for n in names if not re.search(rf"--{n}\b", r.stdout)] == []
    recipe = REPO / "egs2" / "mini_cs" / "st1"
    r = bash("./run.sh", recipe, "--stage", "99", "--stop_stage", "98", "--bogus_opt", "1")
    assert r.returncode == 1 and "unknown option --bogus_opt" in r.stderr
    r = bash("./run.sh", recipe, "--preset", "huge")
    assert r.returncode == 1 and "--preset must be tiny or demo" in r.stderr


def test_setup_sh_creates_a_recipe(tmp_path):
    recipe = tmp_path / "egs2" / "new_corpus" / "st1"
    r = subprocess.run(["bash", str(TEMPLATE / "setup.sh"), str(recipe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("csst.sh", "cmd.sh", "path.sh", "db.sh", "scripts"):
        assert (recipe / name).is_symlink() and (recipe / name).exists(), name
    assert os.path.samefile(recipe / "csst.sh", TEMPLATE / "csst.sh")
    assert os.access(recipe / "run.sh", os.X_OK) and (recipe / "local" / "data.sh").exists()
    r = subprocess.run(["bash", str(TEMPLATE / "setup.sh"), str(recipe)], capture_output=True, text=True)
    assert r.returncode == 1 and "already a recipe" in r.stderr


# ------------------------------------------------------------------------------------------ stage 4
def make_recipe(tmp_path: Path) -> Path:
    """A recipe dir (setup.sh) whose formatted data has one invalid utterance in train."""
    recipe = tmp_path / "egs2" / "c" / "st1"
    subprocess.run(["bash", str(TEMPLATE / "setup.sh"), str(recipe)], check=True, capture_output=True)
    raw = recipe / "dump" / "raw"
    sets = {"train": range(0, 6), "dev": range(6, 8), "test": range(8, 10)}
    for name, idx in sets.items():
        utts = [(f"spk{i % 2}-u{i}", synth_utterance(i, 0.4), SENTENCES[i % len(SENTENCES)], "zh" if i % 2 else "en",
                 "st") for i in idx]
        d = write_data_dir(raw / name, utts)
        (d / "speech_shape").unlink()
        ids = sorted(u[0] for u in utts)
        # transcripts in the script of the utterance's language (zh: odd speakers)
        (d / "src_text").write_text("".join(f"{u} {'源' if u.startswith('spk1') else 'source'} {u}\n" for u in ids))
        (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
        spk = {}
        for u in ids:
            spk.setdefault(u.split("-")[0], []).append(u)
        (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk.items())))
    text = (raw / "train" / "text").read_text().replace("spk1-u1 " + SENTENCES[1], "spk1-u1")
    (raw / "train" / "text").write_text(text)
    lang = (raw / "train" / "utt2lang").read_text().replace("spk0-u2 en", "spk0-u2 fr")
    (raw / "train" / "utt2lang").write_text(lang)
    # dev is made into an ASR set (dev_asr): its utterances need a source transcript
    (raw / "dev" / "src_text").write_text("spk0-u6 source spk0-u6\nspk1-u7\n")
    return recipe


STAGE4 = ["--stage", "4", "--stop_stage", "4", "--train_sets", "train", "--valid_set", "dev", "--test_sets", "test",
          "--phase1_valid_set", "dev_asr"]


def test_stage4_stops_with_a_report_naming_the_utterances(tmp_path):
    recipe = make_recipe(tmp_path)
    r = bash("./csst.sh", recipe, *STAGE4)
    assert r.returncode == 1
    assert "spk1-u1: empty_text" in r.stderr  # the report names the utterance and the problem
    assert "spk0-u2: unknown_language" in r.stderr
    assert "spk1-u7: empty_text" in r.stderr and "src_text is needed to make dump/raw/dev_asr" in r.stderr
    assert "--drop_invalid true" in r.stderr
    report = (recipe / "dump" / "raw" / "train" / "validate_report.txt").read_text()
    assert "spk1-u1" in report and "2 invalid" in report
    assert not (recipe / "dump" / "raw" / "train_phase1").exists()  # nothing after the failure


def test_several_source_languages_make_the_allowed_labels(tmp_path):
    recipe = make_recipe(tmp_path)  # its train set has an utterance labelled fr
    r = bash("./csst.sh", recipe, *STAGE4, "--lang_pair", "zh,fr-en")
    assert r.returncode == 1 and "labels in zh,fr,en,cs" in r.stderr
    assert "unknown_language" not in r.stderr and "spk1-u1: empty_text" in r.stderr
    r = bash("./csst.sh", recipe, *STAGE4, "--lang_pair", "zh,-en")
    assert r.returncode == 2 and "--lang_pair must be SRC-TGT or SRC,SRC,...-TGT" in r.stderr


def test_stage4_drop_invalid_writes_the_dropped_list(tmp_path):
    recipe = make_recipe(tmp_path)
    r = bash("./csst.sh", recipe, *STAGE4, "--drop_invalid", "true")
    assert r.returncode == 0, r.stderr
    raw = recipe / "dump" / "raw"
    dropped = (raw / "train" / "dropped.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in dropped] == ["spk0-u2", "spk1-u1"]
    assert "empty_text" in dropped[1] and "unknown_language" in dropped[0]
    assert "dropped 2 utterances" in r.stderr
    train = (raw / "train_phase1" / "wav.scp").read_text()
    assert "spk1-u1" not in train and "spk0-u2" not in train and len(train.splitlines()) == 4
    assert [line.split("\t")[0] for line in (raw / "dev" / "dropped.txt").read_text().splitlines()] == ["spk1-u7"]
    assert (raw / "dev_asr" / "utt2task").read_text().split() == ["spk0-u6-asr", "asr"]
    assert (raw / "dev_asr" / "text").read_text() == "spk0-u6-asr source spk0-u6\n"
    assert (raw / "run.sh").exists() and "--stage 4 --stop_stage 4" in (raw / "run.sh").read_text()
    assert (recipe / "exp" / "stage_times.tsv").read_text().startswith("4\t")


def test_stage4_warns_of_test_speakers_seen_in_training_and_checks_encoder_length(tmp_path):
    recipe = make_recipe(tmp_path)
    r = bash("./csst.sh", recipe, *STAGE4, "--drop_invalid", "true")
    assert r.returncode == 0, r.stderr
    # the test set's speakers spk0 and spk1 also speak in train: warnings, the set stays valid
    report = (recipe / "dump" / "raw" / "test" / "validate_report.txt").read_text()
    assert "utt spk0-u8: warning: speaker_in_train" in report and "warnings: speaker_in_train=2" in report
    assert "warnings for dump/raw/test: 2" in r.stderr
    assert "speaker_in_train" not in (recipe / "dump" / "raw" / "dev" / "validate_report.txt").read_text()
    # audio longer than the encoder takes (the test utterances are 0.4 s)
    r = bash("./csst.sh", recipe, *STAGE4, "--max_encoder_dur", "0.3")
    assert r.returncode == 1 and "exceeds_encoder" in r.stderr and "spk0-u8" in r.stderr


def test_stage5_checks_target_lengths_with_the_tokenizer(tmp_path):
    recipe = make_recipe(tmp_path)
    assert bash("./csst.sh", recipe, *STAGE4, "--drop_invalid", "true").returncode == 0
    stage5 = [*STAGE4[2:], "--stage", "5", "--stop_stage", "5", "--nbpe", "60"]
    r = bash("./csst.sh", recipe, *stage5, "--max_target_tokens", "3")
    assert r.returncode == 1, r.stderr
    assert "Stage 5: targets too long for the decoder" in r.stderr and "target_too_long" in r.stderr
    report = (recipe / "dump" / "raw" / "target_length_report.txt").read_text()
    assert "utt spk0-u0: target_too_long" in report and "dump/raw/train_phase1/text" in report
    r = bash("./csst.sh", recipe, *stage5, "--max_target_tokens", "200")
    assert r.returncode == 0, r.stderr
    assert "Stage 5: target lengths in data/tokenizer tokens, at most 200" in r.stderr and "dropped" not in r.stderr
    r = bash("./csst.sh", recipe, *stage5, "--token_type", "pretrained", "--max_target_tokens", "200")
    assert r.returncode == 2 and "needs --target_tokenizer" in r.stderr


def test_stage4_asr_valid_set_without_src_text_is_an_error(tmp_path):
    recipe = make_recipe(tmp_path)
    (recipe / "dump" / "raw" / "dev" / "src_text").unlink()
    r = bash("./csst.sh", recipe, *STAGE4, "--drop_invalid", "true")
    assert r.returncode == 1
    assert "dump/raw/dev/src_text:-: missing_file" in r.stderr
    assert not (recipe / "dump" / "raw" / "dev_asr").exists()


def test_stage4_makes_the_asr_copies_of_asr_test_sets(tmp_path):
    recipe = make_recipe(tmp_path)
    raw = recipe / "dump" / "raw"
    (raw / "test" / "src_text").unlink()
    args = [*STAGE4, "--drop_invalid", "true", "--asr_test_sets", "test"]
    r = bash("./csst.sh", recipe, *args)
    assert r.returncode == 1
    assert "dump/raw/test/src_text:-: missing_file" in r.stderr
    assert "src_text is needed to make dump/raw/test_asr" in r.stderr
    (raw / "test" / "src_text").write_text("spk0-u8 source 8\nspk1-u9 源 9\n")
    r = bash("./csst.sh", recipe, *args)
    assert r.returncode == 0, r.stderr
    assert "reads dump/raw/test, writes dump/raw/test_asr (ASR: target = src_text)" in r.stderr
    assert (raw / "test_asr" / "text").read_text() == "spk0-u8-asr source 8\nspk1-u9-asr 源 9\n"
    assert (raw / "test_asr" / "utt2task").read_text() == "spk0-u8-asr asr\nspk1-u9-asr asr\n"
    assert (raw / "dev_asr" / "utt2task").exists()


# ------------------------------------------------------------------------------------------ phone_ali
def test_phone_ali_is_carried_validated_and_passed_to_training(tmp_path):
    """data/<set>/phone_ali (and lang_ali) goes through stages 3-4 into the phase data; stage 10 passes it
    (and src_text) to csst_train for the train (valid) data when every utterance has one, unless
    --use_phone_ali false (--use_lang_ali false, --use_src_text false)."""
    recipe = make_recipe(tmp_path)
    raw = recipe / "dump" / "raw"
    for name in ("train", "dev", "test"):  # as stage 1 output (wav.scp names audio under dump/raw/<set>/wav)
        shutil.copytree(raw / name, recipe / "data" / name)
    for name in ("train", "test"):  # 0.4 s utterances: 40 frames of 10 ms
        ids = [line.split()[0] for line in (recipe / "data" / name / "wav.scp").read_text().splitlines()]
        (recipe / "data" / name / "phone_ali").write_text("".join(f"{u} {' '.join(['0', '3'] * 20)}\n" for u in ids))
        (recipe / "data" / name / "lang_ali").write_text("".join(f"{u} {' '.join(['-', 'zh'] * 20)}\n" for u in ids))
    ali = (recipe / "data" / "test" / "phone_ali").read_text().replace("spk0-u8 0 3 0 3 0 3 ", "spk0-u8 ")
    (recipe / "data" / "test" / "phone_ali").write_text(ali)  # 34 frames: more than 2 off
    args = [*STAGE4, "--stage", "3", "--drop_invalid", "true"]
    r = bash("./csst.sh", recipe, *args)
    assert r.returncode == 0, r.stderr
    assert "reads data/train, writes dump/raw/train (audio in dump/raw/train/data, phone_ali, lang_ali carried)" in r.stderr
    kept = [line for line in (recipe / "data" / "train" / "phone_ali").read_text().splitlines()
            if line.split()[0] not in ("spk0-u2", "spk1-u1")]  # the two invalid utterances are dropped
    assert (raw / "train" / "phone_ali").read_text().splitlines() == kept
    assert "spk0-u8\talignment_length: 34 frames" in (raw / "test" / "dropped.txt").read_text()
    assert (raw / "train_phase1" / "phone_ali").exists() and not (raw / "dev_asr" / "phone_ali").exists()

    fake = tmp_path / "fake_python"  # records the csst_train options, makes the model file
    fake.write_text('#!/usr/bin/env bash\necho "$*" > "$(dirname "$0")/train_args"\n'
                    'while [ "$1" != --output_dir ]; do shift; done; touch "$2/valid.acc.ave.pth"\n')
    fake.chmod(0o755)
    train = "--train_data_path_and_name_and_type dump/raw/train_phase1/phone_ali,phone_ali,text_int"
    stage10 = [*STAGE4[4:], "--stage", "10", "--stop_stage", "10", "--python", str(fake)]
    r = bash("./csst.sh", recipe, *stage10)
    assert r.returncode == 0, r.stderr
    recorded = (tmp_path / "train_args").read_text()
    assert train in recorded and "valid_data_path_and_name_and_type dump/raw/dev_asr/phone_ali" not in recorded
    assert recorded.index("train_phase1/utt2task") < recorded.index(train)  # after the data of data_args
    assert "valid data without frame phone ids (not every utterance of dump/raw/dev_asr has a phone_ali)" in r.stderr
    for m, d in ("train", "train_phase1"), ("valid", "dev_asr"):
        assert f"--{m}_data_path_and_name_and_type dump/raw/{d}/src_text,src_text,text" in recorded
    # a finished phase is kept: rerunning the stage trains nothing (without --overwrite true)
    (tmp_path / "train_args").unlink()
    r = bash("./csst.sh", recipe, *stage10, "--use_phone_ali", "false")
    assert r.returncode == 0 and "is finished (exp/csst_train_phase1/training.done): kept" in r.stderr, r.stderr
    assert not (tmp_path / "train_args").exists()
    stage10 += ["--overwrite", "true"]
    r = bash("./csst.sh", recipe, *stage10, "--use_phone_ali", "false")
    assert r.returncode == 0, r.stderr
    assert "phone_ali" not in (tmp_path / "train_args").read_text()
    assert "phone_ali not passed (--use_phone_ali false)" in r.stderr
    lang_ali = "--train_data_path_and_name_and_type dump/raw/train_phase1/lang_ali,lang_ali,text"
    assert lang_ali in recorded
    r = bash("./csst.sh", recipe, *stage10, "--use_lang_ali", "false")
    assert r.returncode == 0, r.stderr
    assert "lang_ali" not in (tmp_path / "train_args").read_text() and train in (tmp_path / "train_args").read_text()
    assert "lang_ali not passed (--use_lang_ali false)" in r.stderr
    r = bash("./csst.sh", recipe, *stage10, "--use_src_text", "false")
    assert r.returncode == 0, r.stderr
    assert "src_text" not in (tmp_path / "train_args").read_text() and train in (tmp_path / "train_args").read_text()
    assert "src_text not passed (--use_src_text false)" in r.stderr
    # an unfinished run resumes only under the command that started it: never two runs in one directory
    (recipe / "exp" / "csst_train_phase1" / "training.done").unlink()
    r = bash("./csst.sh", recipe, *stage10[:-2], "--use_src_text", "true")
    assert r.returncode == 1 and "holds an unfinished run of another command" in r.stderr, r.stderr


def test_phases_2_and_3_start_from_the_phase_named(tmp_path):
    """--phase2_init_phase 0: phase 2 from scratch; --phase3_init_phase 1 (0): phase 3 starts and distils from
    phase 1 (from scratch, no teacher), as the table rows no_phase1 and no_phase2 ask; by default each phase
    starts from the previous one, and phase 3 distils from phase 2."""
    recipe = make_recipe(tmp_path)
    r = bash("./csst.sh", recipe, *STAGE4, "--drop_invalid", "true")
    assert r.returncode == 0, r.stderr
    fake = tmp_path / "fake_python"  # records the csst_train options in <output_dir>/args, makes the model file
    fake.write_text('#!/usr/bin/env bash\nargs="$*"\nwhile [ "$1" != --output_dir ]; do shift; done\n'
                    'mkdir -p "$2"; echo "$args" > "$2/args"; touch "$2/valid.acc.ave.pth"\n')
    fake.chmod(0o755)

    def train(stage: int, *opts: str) -> str:
        r = bash("./csst.sh", recipe, *STAGE4[4:], "--stage", str(stage), "--stop_stage", str(stage),
                 "--python", str(fake), *opts)
        assert r.returncode == 0, r.stderr
        tag = [o for o in opts if o.startswith("p")] or [f"csst_train_phase{stage - 9}"]
        return (recipe / "exp" / tag[-1] / "args").read_text()

    p1, p2 = "exp/csst_train_phase1", "exp/csst_train_phase2"
    assert "--init_param" not in train(10)
    assert f"--init_param {p1}/valid.acc.ave.pth" in train(11)
    assert "--init_param" not in train(11, "--phase2_init_phase", "0", "--phase2_tag", "p2_scratch")
    default = train(12)
    assert f"--init_param {p2}/valid.acc.ave.pth" in default
    assert f"--teacher_config {p2}/config.yaml --teacher_model {p2}/valid.acc.ave.pth" in default
    from1 = train(12, "--phase3_init_phase", "1", "--phase3_tag", "p3_from1")
    assert f"--init_param {p1}/valid.acc.ave.pth" in from1
    assert f"--teacher_config {p1}/config.yaml --teacher_model {p1}/valid.acc.ave.pth" in from1
    scratch = train(12, "--phase3_init_phase", "0", "--phase3_tag", "p3_scratch")
    assert "--init_param" not in scratch and "--teacher" not in scratch
    r = bash("./csst.sh", recipe, *STAGE4[4:], "--stage", "12", "--phase3_init_phase", "3")
    assert r.returncode == 2 and "--phase3_init_phase must be 2, 1 or 0, got '3'" in r.stderr
