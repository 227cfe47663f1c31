"""CI run of the mini_multi recipe (zh, es, fr, de -> en) with PART's schedule, its default: stages 1-14
with the tiny preset in a copy of the recipe, training shortened on the command line (3 updates a
phase, 2 epochs in phase 1 for its speech-side warm-up epoch), the text LM 5 steps, two test sets
decoded. Checks what PART's phases train and on which data, and the scoring of the es-en CS set; not the
quality (see egs2/mini_multi/st1/README.md). PART's 2-stage baseline and the MoE method (table rows) are
left out: each adds stage 9 again and its own training, about two minutes on a CPU.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.synth import espeak

pytestmark = pytest.mark.skipif(not espeak.is_available(), reason="espeakng-loader not installed")

REPO = Path(__file__).resolve().parents[1]
STAGES = ("csst_train_part_stage1", "csst_train_part_stage2", "csst_train_part_stage3")
MT_SETS = ("train_mt_zh", "train_mt_es", "train_mt_fr", "train_mt_de")
TEST_SETS = ("test_cs_es", "test_mono_fr")
SHORT = ["--train_args", "--max_epoch 1 --num_iters_per_epoch 3", "--phase1_args", "--max_epoch 2",
         "--text_lm_args", "--set steps=5", "--test_sets", " ".join(TEST_SETS)]


def _env(root: Path) -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHON=sys.executable, PYTHONPATH=path, PYTHONWARNINGS="ignore",
                MINI_MULTI=str(root / "corpus"), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Copy egs2/{TEMPLATE,mini_multi} (links kept) and run ``./run.sh --preset tiny`` through stage 14."""
    root = tmp_path_factory.mktemp("mini_multi_recipe")
    for name in ("TEMPLATE", "mini_multi"):
        shutil.copytree(REPO / "egs2" / name, root / "egs2" / name, symlinks=True,
                        ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads", "db", "RESULTS.md"))
    st1 = root / "egs2" / "mini_multi" / "st1"
    proc = subprocess.run(["./run.sh", "--preset", "tiny", "--stop_stage", "14", *SHORT], cwd=st1,
                          env=_env(root), capture_output=True, text=True)
    assert proc.returncode == 0, f"run.sh failed ({proc.returncode}):\n{proc.stderr[-8000:]}"
    return st1, proc.stderr


def _state(st1: Path, exp: str) -> dict:
    return torch.load(st1 / "exp" / exp / "valid.acc.ave.pth", map_location="cpu", weights_only=True)


def _lora(state: dict) -> dict:
    return {k: v for k, v in state.items() if ".lora_" in k}


def _projector(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("projector.")}


def test_every_stage_ran(recipe):
    st1, log = recipe
    times = [line.split("\t") for line in (st1 / "exp" / "stage_times.tsv").read_text().splitlines()]
    assert [t[0] for t in times] == ["1", "3", "4", "5", "6", "9", "10", "11", "12", "13", "14"]
    assert [t[3] for t in times if t[0] in ("10", "11", "12")] == list(STAGES)


def test_phase3_data_holds_the_text_only_examples(recipe):
    st1, _ = recipe
    raw = st1 / "dump" / "raw"
    mt = {}
    for name in MT_SETS:
        d = raw / name
        assert not (d / "wav.scp").exists()
        text, src = kd.read_table(str(d / "text")), kd.read_table(str(d / "src_text"))
        assert text and set(src) == set(text)
        assert set(kd.read_table(str(d / "utt2task")).values()) == {"mt"}
        mt.update({u: (text[u], src[u]) for u in text})
    p3 = raw / "train_phase3"
    task = kd.read_table(str(p3 / "utt2task"))
    text, src = kd.read_table(str(p3 / "text")), kd.read_table(str(p3 / "src_text"))
    wav = kd.read_table(str(p3 / "wav.scp"))
    assert {u for u, t in task.items() if t == "mt"} == set(mt)
    assert {u: (text[u], src[u]) for u in mt} == mt
    assert set(wav) == set(task) - set(mt) and {"asr", "st"} <= {task[u] for u in wav}
    # the speech shapes of stage 9: the speech utterances only
    assert set(kd.read_table(str(st1 / "exp" / "csst_stats" / "sets" / "train_phase3" / "speech_shape"))) == set(wav)
    for p in ("train_phase1", "train_phase2"):  # ASR alone
        assert set(kd.read_table(str(raw / p / "utt2task")).values()) == {"asr"}


def test_each_stage_trains_as_its_config_says(recipe):
    st1, _ = recipe
    for i, exp in enumerate(STAGES, 1):
        config = yaml.safe_load((st1 / "exp" / exp / "config.yaml").read_text())
        assert config["train_llm_lora"] is (i == 3)
        assert config["init_param"] == ([] if i == 1 else [f"exp/{STAGES[i - 2]}/valid.acc.ave.pth"])
        assert config["data_mixture"]["tasks"] == ({"asr": 1} if i < 3 else {"asr": 0.4, "st": 0.5, "mt": 0.1})
        assert (config["max_epoch"], config["num_iters_per_epoch"]) == (2 if i == 1 else 1, 3)
        assert config["train_data_path_and_name_and_type"][0][0] == f"dump/raw/train_phase{i}/wav.scp"
    log = (st1 / "exp" / STAGES[2] / "train.log").read_text()
    mixture = next(line for line in log.splitlines() if "[train] data mixture:" in line)
    assert "tasks={'asr': 0.4, 'st': 0.5, 'mt': 0.1}" in mixture
    assert all(f"'{lang}'" in mixture.split("'mt': {")[1] for lang in ("zh", "es", "fr", "de"))


def test_stage3_drew_text_only_batches(recipe):
    """The epoch of stage 3 as ESPnet's iterator drew it (the task's sampler, seed and epoch length)."""
    from espnet2.iterators.sequence_iter_factory import SequenceIterFactory

    from csst_espnet.data.mixture import MixtureSampler, mixture_labels

    st1, _ = recipe
    config = yaml.safe_load((st1 / "exp" / STAGES[2] / "config.yaml").read_text())
    p3 = st1 / "dump" / "raw" / "train_phase3"
    task = kd.read_table(str(p3 / "utt2task"))
    labels = mixture_labels(list(kd.read_table(str(p3 / "text"))), task, kd.read_table(str(p3 / "utt2lang")),
                            "st", "cs")
    sampler = MixtureSampler(labels, config["data_mixture"], config["batch_size"])
    factory = SequenceIterFactory(dataset={u: u for u in labels}, batches=sampler, seed=config["seed"],
                                  num_iters_per_epoch=config["num_iters_per_epoch"], shuffle=True,
                                  collate_fn=list)
    drawn = [u for batch in factory.build_iter(1) for u in batch]
    assert len(drawn) == config["num_iters_per_epoch"] * config["batch_size"]
    assert any(task[u] == "mt" for u in drawn) and any(task[u] != "mt" for u in drawn)


def test_lora_trains_in_stage3_only_and_the_projector_in_every_stage(recipe):
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

    from csst_espnet.tasks.csst import CSSTTask

    st1, _ = recipe
    states = [_state(st1, exp) for exp in STAGES]
    lora = [_lora(s) for s in states]
    projector = [_projector(s) for s in states]
    assert lora[0] and projector[0]
    # stage 1's initial model: built as ESPnet's worker builds it (seeded), in the recipe directory
    config = yaml.safe_load((st1 / "exp" / STAGES[0] / "config.yaml").read_text())
    cwd = os.getcwd()
    os.chdir(st1)  # exp/text_lm, data/tokenizer
    try:
        set_all_random_seed(config["seed"])
        init = CSSTTask.build_model(argparse.Namespace(**config)).state_dict()
    finally:
        os.chdir(cwd)
    assert all(torch.equal(init[k], v) for k, v in lora[0].items())  # the same initial model, LoRA frozen
    assert all(torch.equal(lora[1][k], v) for k, v in lora[0].items())  # stage 2: LoRA still frozen
    assert all(not v.any() for k, v in lora[1].items() if "lora_B" in k)
    moved = [k for k, v in lora[2].items() if not torch.equal(lora[1][k], v)]
    assert any("lora_A" in k for k in moved) and any("lora_B" in k for k in moved)
    for before, after in zip([_projector(init), *projector], projector):
        assert all(not torch.equal(before[k], v) for k, v in after.items())


def test_scoring_uses_the_word_languages_of_the_es_en_set(recipe):
    st1, _ = recipe
    decode = st1 / "exp" / STAGES[2] / "decode_model_valid.acc.ave"
    score = json.loads((decode / "test_cs_es" / "score.json").read_text())
    cs = score["subsets"]["cs"]
    assert cs["en_words_by"] == "word_lang" and score["word_lang"].endswith("dump/raw/test_cs_es/word_lang")
    word_lang = kd.read_table(str(st1 / "dump" / "raw" / "test_cs_es" / "word_lang"))
    src = kd.read_table(str(st1 / "dump" / "raw" / "test_cs_es" / "src_text"))
    utt2lang = kd.read_table(str(st1 / "dump" / "raw" / "test_cs_es" / "utt2lang"))
    assert cs["num_utts"] == sum(lang == "cs" for lang in utt2lang.values()) > 0
    labels = [lang for u in src if utt2lang[u] == "cs" for lang in word_lang[u].split()]
    # the English words, not every Latin-script word of the Spanish-English transcripts
    assert 0 < cs["en_words"] == labels.count("en") < len(labels)
    assert "en_words_by" not in json.dumps(json.loads((decode / "test_mono_fr" / "score.json").read_text()))
    results = json.loads((st1 / "exp" / "results.json").read_text())
    assert {m: list(r) for m, r in results.items()} == {"text_lm_oracle": list(TEST_SETS), STAGES[2]: list(TEST_SETS)}
    md = (st1 / "RESULTS.md").read_text()
    assert "English words of the `cs` transcripts: the words `word_lang` labels `en` (test_cs_es)" in md


def test_text_only_sets_without_a_data_mixture_fail_the_phase(recipe):
    """Stage 12 with PART's stage-3 config less its data_mixture, on the same data (the mt sets in
    --text_train_sets and --phase3_train_sets): refused before training, naming the utt2task file."""
    st1, _ = recipe
    config = yaml.safe_load((st1 / "conf" / "train_part_stage3.yaml").read_text())
    del config["data_mixture"]
    (st1 / "conf" / "no_mixture.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(["./run.sh", "--preset", "tiny", "--stage", "12", "--stop_stage", "12",
                           "--phase3_config", "conf/no_mixture.yaml", *SHORT], cwd=st1,
                          env=_env(st1.parents[2]), capture_output=True, text=True)
    assert proc.returncode != 0
    n_mt = sum(len(kd.read_table(str(st1 / "dump" / "raw" / s / "text"))) for s in MT_SETS)
    assert (f"dump/raw/train_phase3/utt2task: {n_mt} text-only training utterances" in proc.stderr
            and "set data_mixture in the config" in proc.stderr), proc.stderr[-4000:]
    assert not (st1 / "exp" / "csst_no_mixture" / "training.done").exists()
