"""CI run of the mini_cs recipe: every stage (1-15) with the tiny preset, in a copy of the recipe.

The tiny preset has a few utterances per set and one short epoch per phase: this checks that each
stage runs and writes well-formed outputs, not the quality (see egs2/mini_cs/st1/RESULTS.md).
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from csst_espnet.data import kaldi_dir as kd
from train_utils import epoch_stats

REPO = Path(__file__).resolve().parents[1]
PHASES = ("csst_train_phase1", "csst_train_phase2", "csst_train_phase3")
CS_ONLY = "csst_train_cs_only"
TEST_SETS = ("test_cs", "test_mono", "test_cs_unseen", "test_mono_unseen")
CONDITIONS = ("snr10", "reverb", "long")  # run.sh --preset tiny: copies of dev and test_cs (stage 2)
# decoded: each test set followed by its condition copies
DECODED = ("test_cs", *(f"test_cs_{c}" for c in CONDITIONS), "test_mono", "test_cs_unseen", "test_mono_unseen")
ASR_TEST_SETS = ("test_cs_asr", "test_mono_asr")  # --asr_test_sets "test_cs test_mono"
SETS = ("train_asr_zh_sp", "train_asr_en_sp", "train_st_zh_sp", "train_cs_sp", "dev", "dev_asr", "dev_unseen",
        *(f"dev_{c}" for c in CONDITIONS), *DECODED, *ASR_TEST_SETS,
        "train_phase1", "train_phase2", "train_phase3", "train_cs_only")


ID_PREFIX = "讲者ü-"  # stage 1's speaker and utterance ids are renamed with it: non-ASCII ids through every stage


def prefix_ids(data_dir: Path, prefix: str) -> None:
    """Rename every speaker and utterance id of a Kaldi data directory to ``prefix + id`` (order kept)."""
    for f in data_dir.iterdir():
        if not f.is_file():
            continue
        lines = f.read_text(encoding="utf-8").splitlines()
        if f.name in ("spk2utt", "utt2spk"):  # ids only
            lines = [" ".join(prefix + w for w in line.split()) for line in lines]
        else:
            lines = [prefix + line for line in lines]
        f.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Copy egs2/{TEMPLATE,mini_cs} (links kept) and run the tiny recipe through stage 15.

    Under a path with spaces and non-ASCII characters, the audio (``MINI_CS`` of db.sh) and the
    interpreter too, and with non-ASCII speaker and utterance ids (renamed after stage 1).
    """
    root = tmp_path_factory.mktemp("egs with spaces ü")
    for name in ("TEMPLATE", "mini_cs"):
        shutil.copytree(REPO / "egs2" / name, root / "egs2" / name, symlinks=True,
                        ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads", "db", "RESULTS.md"))
    st1 = root / "egs2" / "mini_cs" / "st1"
    python = root / "python ü" / "python"  # the interpreter's path has a space too
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(python), PYTHONWARNINGS="ignore", MINI_CS=str(root / "语料 corpus"))
    logs = []
    for stages in (["--stop_stage", "1"], ["--stage", "2", "--stop_stage", "15"]):
        proc = subprocess.run(["./run.sh", "--preset", "tiny", *stages], cwd=st1, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"run.sh {stages} failed ({proc.returncode}):\n{proc.stderr[-8000:]}"
        logs.append(proc.stderr)
        if stages[-1] == "1":
            for d in (st1 / "data").iterdir():
                if (d / "wav.scp").exists():
                    prefix_ids(d, ID_PREFIX)
    return st1, "".join(logs)


def test_every_stage_ran(recipe):
    st1, log = recipe
    times = [line.split("\t") for line in (st1 / "exp" / "stage_times.tsv").read_text().splitlines()]
    # stage 12 trains phase 3 and the CS-only baseline
    assert [t[0] for t in times] == ["1", "2", "3", "4", "5", "6", "9", "10", "11", "12", "12", "13", "14", "15"]
    assert [t[3] for t in times if t[0] == "12"] == [PHASES[2], CS_ONLY]
    assert "speed perturbation (0.9 1.0 1.1) of train_asr_zh train_asr_en train_st_zh train_cs" in log
    assert "Successfully finished" in log


def test_data_dirs_are_valid(recipe, monkeypatch):
    st1, _ = recipe
    monkeypatch.chdir(st1)  # wav.scp paths are relative to the recipe directory
    for name in SETS:
        d = st1 / "dump" / "raw" / name
        res = kd.validate(str(d), fs=16000, languages=("zh", "en", "cs"), progress=False)
        assert res.ok, res.report()
        assert not (d / "dropped.txt").exists()
    wav = kd.read_table(str(st1 / "dump" / "raw" / "train_cs_sp" / "wav.scp"))
    assert all(p.startswith("dump/raw/train_cs_sp/data/") for p in wav.values())
    assert all(ID_PREFIX in u for u in wav)
    source = kd.read_table(str(st1 / "data" / "test_cs" / "wav.scp"))
    assert all("语料 corpus/wav/" in p for p in source.values())  # the audio path of stage 1 has spaces
    originals = {u for u in wav if not u.startswith("sp")}  # speed perturbation: each utterance 3 times
    assert originals and set(wav) == originals | {f"sp{f}-{u}" for f in ("0.9", "1.1") for u in originals}
    # condition copies: the same utterances (ids with the condition), "long": two joined into one
    clean = kd.read_table(str(st1 / "dump" / "raw" / "test_cs" / "text"))
    for c in ("snr10", "reverb"):
        copy = kd.read_table(str(st1 / "dump" / "raw" / f"test_cs_{c}" / "text"))
        assert copy == {f"{u}-{c}": t for u, t in clean.items()}
    joined = kd.read_table(str(st1 / "dump" / "raw" / "test_cs_long" / "text"))
    assert len(joined) == len(clean) // 2 and " ".join(joined.values()).split() == " ".join(clean.values()).split()
    for name in ("dev", "test_cs", "test_mono"):  # --asr_test_sets "test_cs test_mono", and dev_asr
        asr = kd.DataDir.read(str(st1 / "dump" / "raw" / f"{name}_asr"))
        src_text = kd.read_table(str(st1 / "dump" / "raw" / name / "src_text"))
        assert asr.utt["text"] == {f"{u}-asr": v for u, v in src_text.items()}
        assert set(asr.utt["utt2task"].values()) == {"asr"}
    for p in ("train_phase1", "train_phase2", "train_phase3"):
        shapes = kd.read_table(str(st1 / "exp" / "csst_stats" / "sets" / p / "speech_shape"))
        assert set(shapes) == set(kd.read_table(str(st1 / "dump" / "raw" / p / "wav.scp")))
        assert all(int(v) > 1000 for v in shapes.values())


def test_tokenizer_and_text_lm_load(recipe):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    st1, _ = recipe
    tok = AutoTokenizer.from_pretrained(st1 / "data" / "tokenizer")
    for text in ("我们用 gradient descent 来训练这个 model", "we use gradient descent to train this model"):
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert None not in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    lm = AutoModelForCausalLM.from_pretrained(st1 / "exp" / "text_lm")
    assert lm.config.vocab_size == len(tok)
    info = json.loads((st1 / "exp" / "text_lm" / "train_text_lm.json").read_text())
    assert info["examples"]["st"] > 0 and info["examples"]["asr"] > 0
    assert (st1 / "exp" / "text_lm" / "train.log").exists()


def test_each_phase_has_its_model(recipe):
    st1, _ = recipe
    for i, name in enumerate(PHASES, 1):
        exp = st1 / "exp" / name
        assert (exp / "valid.acc.ave.pth").exists() and (exp / "run.sh").exists()
        config = yaml.safe_load((exp / "config.yaml").read_text())
        assert config["projector"] == "moe" and config["projector_conf"]["groups"] == ["zh", "en"]
        assert config["encoder_conf"]["freeze"] is False  # trained from scratch
        assert config["llm_conf"]["model_name_or_path"] == "exp/text_lm"
        assert config["llm_conf"]["lora"] is not None
        losses = [a["name"] for a in config["aux_losses"]]
        if i < 3:
            assert losses == ["lang", "balance", "frame_phone", "src_ctc"]
            assert "epoch results" in (exp / "train.log").read_text()
            if i == 1:  # one speech-side warm-up epoch (no LLM), then one with the whole model
                log = (exp / "train.log").read_text()
                assert "epoch 1: speech-side warm-up (1 of 1)" in log
                first, second = epoch_stats(log, "train")
                assert "loss_frame_phone" in first and "acc" not in first and "acc" in second
        else:
            assert losses == ["transition", "lang", "balance", "frame_phone", "src_ctc"]
            assert config["model_conf"]["ce_weight"] == 1  # CE + transition (phase 3)
            assert config["aux_losses"][0]["conf"]["mode"] == "distill"
            # the teacher is where stage 11 wrote, passed by csst.sh, not named in the config
            assert (config["teacher_config"], config["teacher_model"]) == (
                f"exp/{PHASES[1]}/config.yaml", f"exp/{PHASES[1]}/valid.acc.ave.pth")
        assert "model_config" not in config  # the composed config is complete
        init = config["init_param"]
        assert init == ([] if i == 1 else [f"exp/{PHASES[i - 2]}/valid.acc.ave.pth"])
        assert config["train_data_path_and_name_and_type"][0][0] == f"dump/raw/train_phase{i}/wav.scp"
    log = (st1 / "exp" / PHASES[2] / "train.log").read_text()
    assert "transition_kl" in log and "frame_phone_acc" in log and "loss_src_ctc" in log
    assert [p[1] for p in config["train_data_path_and_name_and_type"]][-1] == "src_text"  # passed by csst.sh


def test_decoding_outputs(recipe):
    st1, log = recipe
    # the CS-only baseline trained on ST alone: it is not asked to transcribe
    decoded = {PHASES[2]: DECODED + ASR_TEST_SETS, CS_ONLY: DECODED}
    assert f"exp/{CS_ONLY} never trained on ASR (its training data: st)" in log
    for test_set in ASR_TEST_SETS:
        assert not (st1 / "exp" / CS_ONLY / "decode_model_valid.acc.ave" / test_set).exists()
    for model, test_sets in decoded.items():
        for test_set in test_sets:
            utts = list(kd.read_table(str(st1 / "dump" / "raw" / test_set / "wav.scp")))
            out = st1 / "exp" / model / "decode_model_valid.acc.ave" / test_set
            for name in ("text", "token", "token_int", "score"):
                lines = (out / name).read_text().splitlines()
                assert [line.split(" ", 1)[0] for line in lines] == utts, (model, test_set, name)
            assert "--stage 13 --stop_stage 13" in (out / "run.sh").read_text()
    # the text LM oracle: the stage-6 LLM translating each test set's gold transcripts
    for test_set in TEST_SETS:
        utts = list(kd.read_table(str(st1 / "dump" / "raw" / test_set / "wav.scp")))
        lines = (st1 / "exp" / "text_lm_oracle" / "gold_transcripts" / test_set / "text").read_text().splitlines()
        assert [line.split(" ", 1)[0] for line in lines] == utts, test_set
    assert "--stage 13 --stop_stage 13" in (st1 / "exp" / "text_lm_oracle" / "gold_transcripts" / "run.sh").read_text()
    # the test sets and their ASR copies are decoded in one job array, with utt2task
    logdir = st1 / "exp" / PHASES[2] / "decode_model_valid.acc.ave" / "logdir"
    keys = [line.split()[0] for f in sorted(logdir.glob("keys.*.scp")) for line in f.read_text().splitlines()]
    assert sorted(keys) == sorted(u for s in DECODED + ASR_TEST_SETS
                                  for u in kd.read_table(str(st1 / "dump" / "raw" / s / "wav.scp")))
    assert "utt2task,task,text" in (logdir / "inference.1.log").read_text()


def test_results(recipe):
    st1, _ = recipe
    results = json.loads((st1 / "exp" / "results.json").read_text())
    assert set(results) == {PHASES[2], CS_ONLY, "text_lm_oracle"}  # phase 3, the CS-only baseline, the oracle
    assert list(results["text_lm_oracle"]) == list(TEST_SETS)
    assert all(isinstance(results["text_lm_oracle"][s]["bleu"], float) for s in TEST_SETS)
    md = (st1 / "RESULTS.md").read_text()
    for model in (PHASES[2], CS_ONLY):  # the CS-only baseline trained on ST alone: no ASR copies
        assert list(results[model]) == ([*DECODED, *ASR_TEST_SETS] if model == PHASES[2] else list(DECODED))
        for test_set in DECODED:
            entry = results[model][test_set]
            assert isinstance(entry["bleu"], float) and isinstance(entry["bleu_ref1"], float)
            assert entry["num_refs"] == 2 and "wer" not in entry
        assert results[model]["test_cs"]["subsets"]["cs"]["num_utts"] > 0
        for test_set in ASR_TEST_SETS if model == PHASES[2] else ():
            entry = results[model][test_set]
            assert "bleu" not in entry and entry["num_refs"] == 1
            subsets = entry["subsets"]
            for sub in ("all", "cs") if test_set == "test_cs_asr" else ("all", "mono"):
                assert all(isinstance(subsets[sub][k], float) for k in ("wer", "cer", "mer")), (model, test_set)
            assert entry["mer"] == subsets["all"]["mer"]
        assert f"## {model}" in md
    assert "## Comparison (ST: BLEU" in md
    robustness = md.split("## Robustness")[1].split("\n## ")[0]
    for model in (PHASES[2], CS_ONLY):
        assert f"|{model}|test_cs|" in robustness and f"|{model}|test_mono|" in robustness
    assert all(f"{c}: " in robustness for c in (*CONDITIONS, "unseen"))
    # per model an ST table, then an ASR table of the ASR copies
    st_table, asr_table = md.split(f"## {PHASES[2]}")[1].split("\n## ")[0].split("### ASR: WER/CER/MER")
    assert "### ST: BLEU/chrF" in st_table and "|BLEU|chrF|" in st_table and "|WER|CER|MER|" in asr_table
    for test_set in TEST_SETS:
        assert f"|{test_set}|all|" in st_table
    for test_set in ASR_TEST_SETS:
        assert f"|{test_set}|all|" in asr_table
    assert "|test_cs_asr|cs|" in asr_table
    assert "## Stage times" in md and "./csst.sh" in md
    routing = st1 / "exp" / PHASES[2] / "decode_model_valid.acc.ave" / "routing"
    assert (routing / "routing.json").exists() and "routing.md" in md
    # --routing_phones: tokens also grouped by the language of their frames (phone_ali), e.g. the
    # English stretches of code-switched test utterances
    frame_langs = json.loads((routing / "routing.json").read_text())["frame_languages"]
    assert {"cs/en", "cs/zh", "zh/zh"} <= set(frame_langs)
    assert "## Frame language -> group share" in (routing / "routing.md").read_text()


def test_pack_and_export(recipe):
    import torch
    from transformers import AutoModelForCausalLM

    st1, _ = recipe
    exp = st1 / "exp" / PHASES[2]
    with zipfile.ZipFile(exp / "packed.zip") as z:
        names = set(z.namelist())
        meta = yaml.safe_load(z.read("meta.yaml"))
    assert {f"exp/{PHASES[2]}/config.yaml", f"exp/{PHASES[2]}/valid.acc.ave.pth", "RESULTS.md"} <= names
    assert "exp/text_lm/model.safetensors" in names and "data/tokenizer/tokenizer.json" in names
    assert meta["references"] == {}
    export = json.loads((exp / "hf_merged" / "export.json").read_text())
    assert export["merged_lora"] and export["relative_diff"] <= export["tolerance"]
    lm = AutoModelForCausalLM.from_pretrained(exp / "hf_merged")
    assert not any("lora" in n for n, _ in lm.named_parameters())
    assert (exp / "hf_merged" / "csst_speech.pth").exists()

