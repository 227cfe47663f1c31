"""ESPnet's own ST model as a baseline (csst.sh --baselines espnet_st) and the comparison table
(local/run_table.sh, csst_espnet/recipe/table.py).

Fast tests of the data preparation, the statistics and the table's logic, then one end-to-end run of the
tiny mini_cs recipe: data, then ``local/run_table.sh`` with two rows (the CS-only model and the ESPnet
baseline, trained there through ESPnet's own binaries) and one seed, then stage 14 with the baseline.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import yaml

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.bin import make_table
from csst_espnet.recipe import espnet_st, table
from csst_espnet.recipe.data_ops import RecipeError, decode_cost

REPO = Path(__file__).resolve().parents[1]
SACREBLEU = Path(sys.executable).parent / "sacrebleu"


def write_dir(d: Path, utts):
    """utts: (id, task, text, src_text or None)."""
    d.mkdir(parents=True, exist_ok=True)
    kd.write_table(str(d / "wav.scp"), {u: f"/audio/{u}.wav" for u, *_ in utts})
    kd.write_table(str(d / "utt2spk"), {u: u.split("-")[0] for u, *_ in utts})
    kd.write_table(str(d / "utt2task"), {u: t for u, t, *_ in utts})
    kd.write_table(str(d / "text"), {u: x for u, _, x, _ in utts})
    src = {u: s for u, _, _, s in utts if s is not None}
    if src:
        kd.write_table(str(d / "src_text"), src)


# ------------------------------------------------------------------------------- data preparation
def test_prepare_keeps_st_utterances_with_transcripts(tmp_path):
    write_dir(tmp_path / "a", [("s1-a", "st", "hello world", "你好 world"), ("s1-b", "asr", "你好", "你好")])
    write_dir(tmp_path / "b", [("s2-c", "st", "good day", "日安")])
    info = espnet_st.prepare_dir(str(tmp_path / "out"), [str(tmp_path / "a"), str(tmp_path / "b")])
    assert info["utts"] == 2 and info["src_text"] and info["dropped"] == {str(tmp_path / "a"): 1, str(tmp_path / "b"): 0}
    out = kd.DataDir.read(str(tmp_path / "out"))
    assert out.utt["text"] == {"s1-a": "hello world", "s2-c": "good day"}
    assert out.utt["src_text"] == {"s1-a": "你好 world", "s2-c": "日安"}
    assert out.utt["wav.scp"]["s2-c"] == "/audio/s2-c.wav" and out.utt["utt2spk"]["s1-a"] == "s1"


def test_prepare_without_every_transcript_has_no_src_text(tmp_path):
    write_dir(tmp_path / "a", [("s1-a", "st", "hello", "你好"), ("s1-b", "st", "bye", None)])
    info = espnet_st.prepare_dir(str(tmp_path / "out"), [str(tmp_path / "a")])
    assert info["utts"] == 2 and not info["src_text"] and info["without_src_text"] == ["s1-b"]
    assert not (tmp_path / "out" / "src_text").exists()


def test_prepare_errors_name_file_and_utterance(tmp_path):
    write_dir(tmp_path / "a", [("s1-a", "st", "hello", "你好")])
    (tmp_path / "a" / "text").write_text("s1-a \n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"a/text: no translation for utterance s1-a"):
        espnet_st.prepare_dir(str(tmp_path / "out"), [str(tmp_path / "a")])
    write_dir(tmp_path / "b", [("s1-a", "asr", "x", "x")])
    with pytest.raises(RecipeError, match="no utterance with utt2task st"):
        espnet_st.prepare_dir(str(tmp_path / "out"), [str(tmp_path / "b")])


def test_bpe_vocabulary_is_capped_by_the_text(tmp_path):
    import sentencepiece as spm

    kd.write_table(str(tmp_path / "text"), {f"u{i}": s for i, s in enumerate(
        ["we train the model", "the loss goes down", "我们 训练 这个 model"] * 3)})
    model = espnet_st.train_bpe(str(tmp_path / "text"), str(tmp_path / "bpe"), 5000)
    sp = spm.SentencePieceProcessor(model_file=model)
    assert 10 < sp.get_piece_size() < 5000
    assert sp.decode(sp.encode("我们 训练 这个 model")) == "我们 训练 这个 model"
    assert f"vocab_size {sp.get_piece_size()} (asked 5000)" in (tmp_path / "bpe" / "bpe.log").read_text()


def test_shape_files_append_the_vocabulary_size(tmp_path):
    for mode in ("train", "valid"):
        (tmp_path / mode).mkdir()
        kd.write_table(str(tmp_path / mode / "text_shape"), {"u1": "7", "u2": "12"})
    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\n▁a\nb\n<sos/eos>\n", encoding="utf-8")
    espnet_st.shape_files(str(tmp_path), {"text": str(tmp_path / "tokens.txt")})
    assert kd.read_table(str(tmp_path / "valid" / "text_shape.bpe")) == {"u1": "7,5", "u2": "12,5"}
    with pytest.raises(RecipeError, match="src_text_shape is missing"):
        espnet_st.shape_files(str(tmp_path), {"src_text": str(tmp_path / "tokens.txt")})


def test_decode_cost(tmp_path):
    import numpy as np
    import soundfile

    d = tmp_path / "data"
    d.mkdir()
    for u, sec in (("a", 1.0), ("b", 3.0)):
        soundfile.write(str(tmp_path / f"{u}.wav"), np.zeros(int(16000 * sec), dtype="float32"), 16000)
    kd.write_table(str(d / "wav.scp"), {u: str(tmp_path / f"{u}.wav") for u in ("a", "b")})
    cost = decode_cost(str(d), 100.0, 102.0, str(tmp_path / "cost.json"), jobs=2)
    assert cost["utterances"] == 2 and cost["audio_seconds"] == 4.0
    assert cost["utts_per_second"] == pytest.approx(1.0) and cost["rtf"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "cost.json").read_text())["jobs"] == 2


# ------------------------------------------------------------------------------- statistics
REFS = ["the model learns fast", "we use gradient descent", "attention mixes time steps", "the loss goes down",
        "dropout helps on small data", "we evaluate on the test set", "the decoder is small", "data augmentation works"]
HYP_A = ["the model learns fast", "we use gradient descent", "attention mixes time", "the loss goes down",
         "dropout helps small data", "we evaluate on test set", "the decoder is small", "data augmentation works"]
HYP_B = ["a model learns", "we use descent", "attention mixes steps", "loss goes up",
         "dropout on data", "we evaluate the set", "decoder small", "augmentation works"]
REFS2 = ["the model learns quickly", "we use gradient descent", "attention mixes the time steps", "the loss drops",
         "dropout helps with small data", "we evaluate on the test set", "the decoder is tiny", "augmentation works"]


def sacrebleu_cli_p(tmp_path, refs, baseline, system):
    """p-values (BLEU, chrF) printed by ``sacrebleu REF... -i BASELINE SYSTEM --paired-bs``."""
    ref_files = []
    for i, r in enumerate(refs):
        ref_files.append(tmp_path / f"ref{i}.txt")
        ref_files[-1].write_text("\n".join(r) + "\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\n".join(baseline) + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(system) + "\n", encoding="utf-8")
    proc = subprocess.run([str(SACREBLEU), *map(str, ref_files), "-i", str(tmp_path / "a.txt"),
                           str(tmp_path / "b.txt"), "--paired-bs", "-m", "bleu", "chrf", "-f", "text"],
                          capture_output=True, text=True, env=dict(os.environ, SACREBLEU_SEED="12345"))
    assert proc.returncode == 0, proc.stderr
    return [float(p) for p in re.findall(r"\(p = ([0-9.]+)\)", proc.stdout)]


@pytest.mark.parametrize("refs", [[REFS], [REFS, REFS2]], ids=["one_ref", "two_refs"])
def test_bootstrap_p_equals_sacrebleu_cli(tmp_path, refs):
    ours = table.paired_bootstrap(refs, HYP_A, HYP_B, "en")
    cli = sacrebleu_cli_p(tmp_path, refs, HYP_A, HYP_B)
    assert len(cli) == 2
    assert [round(ours["bleu"]["p"], 4), round(ours["chrf"]["p"], 4)] == cli
    assert ours["bleu"]["system"] < ours["bleu"]["baseline"]
    assert "bs:1000|seed:12345" in ours["bleu"]["signature"]


def test_identical_hypotheses_get_p_1(tmp_path):
    ours = table.paired_bootstrap([REFS], HYP_A, list(HYP_A), "en")
    assert ours["bleu"]["p"] == 1.0 and ours["chrf"]["p"] == 1.0
    # sacrebleu's own statistic is degenerate there (no resample's |delta| exceeds the observed 0):
    # its CLI prints p = 0.0010, the smallest p it can give; our p is 1 where the scores are equal
    assert sacrebleu_cli_p(tmp_path, [REFS], HYP_A, HYP_A) == [0.001, 0.001]
    assert ours["bleu"]["sacrebleu_p"] == pytest.approx(1 / 1001)
    assert table.verdict(ours["bleu"]["p"], 50.0, 0.0, 50.0, 0.0) == "no difference"


def test_verdict_and_mean_std():
    assert table.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert table.mean_std([4.0]) == (4.0, 0.0)
    assert table.verdict(0.01, 30.0, 0.5, 25.0, 0.4) == "better"
    assert table.verdict(0.01, 20.0, 0.5, 25.0, 0.4) == "worse"
    assert table.verdict(0.2, 20.0, 0.5, 25.0, 0.4) == "no difference"  # p >= 0.05
    assert table.verdict(0.01, 24.5, 0.6, 25.0, 0.2) == "no difference"  # within the seed spread


def test_rows_load_with_conf_and_seed_options(tmp_path):
    rows = REPO / "egs2" / "mini_cs" / "st1" / "conf" / "table"
    for name in ("full", "cs_only", "espnet_st", "mlp", "single_stage"):
        row = table.load_row(str(rows), name, "conf/tiny")
        opts = row.csst_options(2)
        assert f"--seed 2" in opts[row.seed_option] and opts["tag_suffix"].endswith("_seed2")
        assert row.tag(2) == f"{row.exp}{row.tag_suffix}_seed2" and row.tag(0) == f"{row.exp}{row.tag_suffix}"
        assert "{conf}" not in " ".join(opts.values())
    assert table.load_row(str(rows), "espnet_st", "conf").csst_options(0)["espnet_st_args"] == "--seed 0"
    (tmp_path / "bad.yaml").write_text("exp: x\ntrain: [12]\ndescription: d\nstages: [1]\n")
    with pytest.raises(table.TableError, match="bad.yaml: unknown keys stages"):
        table.load_row(str(tmp_path), "bad", "conf")
    with pytest.raises(table.TableError, match="no row config .*nothere.yaml"):
        table.load_row(str(tmp_path), "nothere", "conf")


def fake_experiment(root: Path, tag: str, seed: int, hyps, cost):
    exp = root / "exp" / tag
    (exp / "decode" / "logdir").mkdir(parents=True)
    (exp / "training.done").write_text("done\n")
    (exp / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    (exp / "decode" / "logdir" / "decode_cost.json").write_text(json.dumps(cost))
    for test_set, lines in hyps.items():
        (exp / "decode" / test_set).mkdir()
        kd.write_table(str(exp / "decode" / test_set / "text"), {f"u{i}": h for i, h in enumerate(lines)})


def test_table_on_decoded_experiments(tmp_path):
    """Table.build without training or decoding (every experiment is there): an identical row gets p = 1."""
    d = tmp_path / "dump" / "raw" / "test_cs"
    d.mkdir(parents=True)
    kd.write_table(str(d / "text"), {f"u{i}": r for i, r in enumerate(REFS)})
    kd.write_table(str(d / "utt2lang"), {f"u{i}": "cs" for i in range(len(REFS))})
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    for name, exp in (("full", "m_full"), ("same", "m_same"), ("other", "m_other")):
        (rows_dir / f"{name}.yaml").write_text(yaml.safe_dump({"description": name, "exp": exp, "train": [12]}))
    cost = {"utts_per_second": 2.0, "rtf": 0.25, "jobs": 1, "threads": 1, "ngpu": 0, "host": "h", "cpu_count": 2}
    for seed in (0, 1):
        sfx = f"_seed{seed}" if seed else ""
        fake_experiment(tmp_path, f"m_full{sfx}", seed, {"test_cs": HYP_A}, cost)
        fake_experiment(tmp_path, f"m_same{sfx}", seed, {"test_cs": HYP_A}, dict(cost, rtf=0.5))
        fake_experiment(tmp_path, f"m_other{sfx}", seed, {"test_cs": HYP_B}, cost)

    def runner(cmd, log):
        raise AssertionError(f"nothing to run, got {cmd}")

    rows = [table.load_row(str(rows_dir), n, "conf") for n in ("full", "same", "other")]
    t = table.Table(rows=rows, seeds=[0, 1], test_sets=["test_cs"], tgt_lang="en", run=["./run.sh"],
                    recipe_dir=str(tmp_path), redecode=False, runner=runner)
    result = t.build(log=lambda m: None)
    full, same, other = (result["rows"][n]["sets"]["test_cs"] for n in ("full", "same", "other"))
    assert full["verdict"] == "reference" and full["bleu_std"] == 0.0
    assert same["identical_to_reference"] and same["bleu_p"] == 1.0 and same["bleu_verdict"] == "no difference"
    assert same["bleu"] == full["bleu"] and result["rows"]["same"]["rtf"] == 0.5
    # the seeds concatenated: the same p as sacrebleu's test on the doubled files
    doubled = table.paired_bootstrap([REFS * 2], HYP_A * 2, HYP_B * 2, "en")
    assert other["bleu_p"] == doubled["bleu"]["p"] < 0.05 and other["bleu_verdict"] == "worse"
    md = table.markdown(result, "cmd")
    assert "|same|" in md and "1.000 (no difference)" in md and "(worse)" in md
    with pytest.raises(table.TableError, match="reference row full is not among"):
        table.Table(rows=rows[1:], seeds=[0], test_sets=["test_cs"], tgt_lang="en", run=["./run.sh"],
                    recipe_dir=str(tmp_path), redecode=False, runner=runner).build(log=lambda m: None)
    (tmp_path / "exp" / "m_other_seed1" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(table.TableError, match=r"m_other_seed1/config.yaml: trained with seed 0, the table's seed 1"):
        t.build(log=lambda m: None)


def test_train_only_trains_the_missing_seeds_and_decodes_nothing(tmp_path, monkeypatch):
    """make_table --train_only: the rows' missing seeds through their train stages, no decoding, no table;
    the reference row need not be among the rows (the rows of a table split over processes)."""
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    (rows_dir / "mixture.yaml").write_text(yaml.safe_dump({"description": "m", "exp": "m_mix", "train": [11, 12]}))
    fake_experiment(tmp_path, "m_mix", 0, {}, {})
    calls = []

    def runner(cmd, log):
        calls.append(cmd)
        stage = int(cmd[cmd.index("--stage") + 1])
        assert stage in (11, 12), f"only the train stages may run, got {cmd}"
        if stage == 12:
            suffix = cmd[cmd.index("--tag_suffix") + 1]
            seed = int(cmd[cmd.index("--train_args") + 1].split()[-1])
            exp = tmp_path / "exp" / f"m_mix{suffix}"
            exp.mkdir(parents=True)
            (exp / "training.done").write_text("done\n")
            (exp / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(table, "shell_runner", lambda cwd: runner)
    argv = ["--rows", "mixture", "--seeds", "0,2", "--tgt_lang", "en", "--rows_dir", str(rows_dir), "--train_only",
            "--out_md", "B.md", "--out_json", "B.json"]
    assert make_table.main(argv) == 0
    assert [(c[c.index("--stage") + 1], c[c.index("--tag_suffix") + 1]) for c in calls] == [
        ("11", "_seed2"), ("12", "_seed2")]  # seed 0 was trained: kept
    assert (tmp_path / "exp" / "m_mix_seed2" / "training.done").exists()
    assert not (tmp_path / "B.md").exists() and not (tmp_path / "B.json").exists()
    assert make_table.main(argv) == 0 and len(calls) == 2  # all trained: nothing runs


# ------------------------------------------------------------------------------- end to end (tiny recipe)
@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """The tiny recipe's data (stages 1-9), then local/run_table.sh with the CS-only row and the ESPnet
    baseline, one seed (the CS-only model as the reference: the shortest training), then stage 14."""
    root = tmp_path_factory.mktemp("egs")
    for name in ("TEMPLATE", "mini_cs"):
        shutil.copytree(REPO / "egs2" / name, root / "egs2" / name, symlinks=True,
                        ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads", "db", "RESULTS.md",
                                                      "BENCHMARK.*"))
    st1 = root / "egs2" / "mini_cs" / "st1"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS="ignore")
    # one job per step, no speed perturbation: the fewest processes (each pays ESPnet's import)
    fast = ["--speed_perturb_factors", "", "--test_conditions", "", "--nj", "1", "--inference_nj", "1"]
    proc = subprocess.run(["./run.sh", "--preset", "tiny", "--stop_stage", "9", *fast],
                          cwd=st1, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"run.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    proc = subprocess.run(["local/run_table.sh", "--preset", "tiny", "--rows", "cs_only,espnet_st", "--seeds", "0",
                           "--reference", "cs_only", "--run", "./run.sh --preset tiny " + shlex.join(fast)],
                          cwd=st1, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"run_table.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    stage14 = subprocess.run(["./run.sh", "--preset", "tiny", "--stage", "14", "--stop_stage", "14", *fast,
                              "--baselines", "espnet_st", "--cs_only_baseline", "true", "--decode_phases", "",
                              "--test_sets", "test_cs test_mono", "--test_conditions", "", "--asr_test_sets", "",
                              "--text_lm_oracle", "false"], cwd=st1, env=env, capture_output=True, text=True)
    assert stage14.returncode == 0, f"stage 14 failed:\n{stage14.stderr[-6000:]}"
    return st1, proc.stderr


def test_espnet_baseline_trained_by_espnet(table_run):
    st1, _ = table_run
    exp = st1 / "exp" / "espnet_st"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert (config["encoder"], config["decoder"], config["extra_asr_decoder"]) == ("conformer", "transformer", "transformer")
    assert config["model_conf"]["asr_weight"] == 0.3  # every utterance has src_text: ASR multi-task on
    assert config["token_type"] == config["src_token_type"] == "bpe"
    assert config["bpemodel"] == "data/espnet_st/tgt_bpe500/bpe.model"
    assert config["src_bpemodel"] == "data/espnet_st/src_bpe500/bpe.model"
    assert config["normalize"] == "global_mvn" and config["seed"] == 0
    assert [p[1] for p in config["train_data_path_and_name_and_type"]] == ["speech", "text", "src_text"]
    assert "espnet2.bin.st_train" in (exp / "train.cmd").read_text()
    log = (exp / "train.log").read_text()
    assert "1epoch results" in log and "loss_asr=" in log
    assert (exp / "valid.acc.ave.pth").exists() and (exp / "training.done").exists()
    # its own BPE: target (English) and source (code-switched transcripts), token lists by ESPnet
    tokens = (st1 / "data" / "espnet_st" / "src_bpe500" / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in tokens)
    train = kd.DataDir.read(str(st1 / "dump" / "raw" / "espnet_st_train"))
    assert train.utt["text"] and all(u.split("-")[-1].startswith(("stzh", "cs")) for u in train.utt["text"])
    for f in ("speech_shape", "text_shape.bpe", "src_text_shape.bpe"):
        assert (st1 / "exp" / "espnet_st_stats" / "train" / f).exists()


def test_espnet_baseline_decoded_by_espnet(table_run):
    st1, _ = table_run
    ddir = st1 / "exp" / "espnet_st" / "espnet_st_decode_model_valid.acc.ave"
    assert "espnet2.bin.st_inference" in (ddir / "logdir" / "inference.1.log").read_text()
    for test_set in ("test_cs", "test_mono"):
        utts = list(kd.read_table(str(st1 / "dump" / "raw" / test_set / "wav.scp")))
        assert list(kd.read_table(str(ddir / test_set / "text"))) == utts
    cost = json.loads((ddir / "logdir" / "decode_cost.json").read_text())
    assert cost["utterances"] == 6 and cost["rtf"] > 0


def test_table_outputs(table_run):
    st1, log = table_run
    assert "cs_only seed 0: stage 12" in log and "espnet_st: stage 7 (prepare)" in log
    result = json.loads((st1 / "BENCHMARK.json").read_text())
    assert list(result["rows"]) == ["cs_only", "espnet_st"] and result["seeds"] == [0]
    assert result["command"].startswith("local/run_table.sh --preset tiny")
    # every csst row decodes without long-form segmentation (ESPnet's st_inference has none)
    assert result["inference_args"] == "--segment_seconds 0"
    decode_call = (st1 / "exp" / "table" / "logs" / "cs_only.seed0.stage13.log").read_text().splitlines()[0]
    assert "--inference_args --segment_seconds 0" in decode_call
    for name, row in result["rows"].items():
        assert set(row["sets"]) == {"test_cs", "test_mono"}
        assert row["utts_per_second"] > 0 and row["rtf"] > 0 and row["decode_setup"]["jobs"] == 1
        for entry in row["sets"].values():
            assert isinstance(entry["bleu"], float) and isinstance(entry["chrf"], float)
            if name == "espnet_st":
                assert 0 < entry["bleu_p"] <= 1 and entry["chrf_verdict"] in ("better", "worse", "no difference")
    # the scores are the recipe's scorer's: stage 14 of the same decodings gives the same BLEU
    results = json.loads((st1 / "exp" / "results.json").read_text())
    for name in ("csst_train_cs_only", "espnet_st"):
        row = result["rows"]["cs_only" if name == "csst_train_cs_only" else name]
        for test_set in ("test_cs", "test_mono"):
            assert results[name][test_set]["bleu"] == round(row["sets"][test_set]["bleu"], 2)
    md = (st1 / "BENCHMARK.md").read_text()
    assert "|cs_only|" in md and "|espnet_st|" in md and "bs:1000|seed:12345" in md
    assert "decode config with `--segment_seconds 0`" in md
    assert "|espnet_st|" in (st1 / "RESULTS.md").read_text().split("## Comparison (ST")[1].split("\n## ")[0]


def test_unknown_baseline_is_an_error(tmp_path):
    csst = REPO / "egs2" / "TEMPLATE" / "csst1" / "csst.sh"
    proc = subprocess.run(["bash", str(csst), "--baselines", "espnet_st whisper", "--stage", "100"], cwd=tmp_path,
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 2 and "--baselines: unknown baseline 'whisper' (known: espnet_st)" in proc.stderr


def test_demo_espnet_st_config_builds(table_run, tmp_path):
    """conf/espnet_st.yaml (the demo's size) builds with ESPnet's st_train (--dry_run) on the tiny run's inputs."""
    st1, _ = table_run
    bpe = {side: f"data/espnet_st/{side}_bpe500" for side in ("tgt", "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "espnet2.bin.st_train", "--config", "conf/espnet_st.yaml", "--dry_run", "true",
         "--output_dir", str(tmp_path / "dry"), "--ngpu", "0",
         "--token_list", f"{bpe['tgt']}/tokens.txt", "--bpemodel", f"{bpe['tgt']}/bpe.model",
         "--src_token_list", f"{bpe['src']}/tokens.txt", "--src_bpemodel", f"{bpe['src']}/bpe.model",
         "--normalize_conf", "stats_file=exp/espnet_st_stats/train/feats_stats.npz",
         "--train_data_path_and_name_and_type", "dump/raw/espnet_st_train/wav.scp,speech,sound",
         "--train_shape_file", "exp/espnet_st_stats/train/speech_shape",
         "--valid_data_path_and_name_and_type", "dump/raw/espnet_st_valid/wav.scp,speech,sound",
         "--valid_shape_file", "exp/espnet_st_stats/valid/speech_shape"],
        cwd=st1, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    config = yaml.safe_load((tmp_path / "dry" / "config.yaml").read_text())
    assert config["encoder_conf"]["output_size"] == 192 and config["encoder_conf"]["num_blocks"] == 6
    assert re.search(r"Total Number of model parameters: [0-9.]+ M", proc.stderr + proc.stdout)


def test_pooled_test_sets(tmp_path):
    """A group of test sets is scored as one (corpus BLEU over their utterances together, as sacrebleu on
    the concatenated files) and tested as one; the markdown lists the groups, then every set."""
    half = len(REFS) // 2
    for name, part in (("test_a", slice(0, half)), ("test_b", slice(half, None))):
        d = tmp_path / "dump" / "raw" / name
        d.mkdir(parents=True)
        kd.write_table(str(d / "text"), {f"u{i}": r for i, r in enumerate(REFS[part])})
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    cost = {"utts_per_second": 2.0, "rtf": 0.25, "jobs": 1, "threads": 1, "ngpu": 0, "host": "h", "cpu_count": 2}
    for name, hyps in (("full", HYP_A), ("other", HYP_B)):
        (rows_dir / f"{name}.yaml").write_text(yaml.safe_dump({"description": name, "exp": name, "train": [12]}))
        fake_experiment(tmp_path, name, 0, {"test_a": hyps[:half], "test_b": hyps[half:]}, cost)
    rows = [table.load_row(str(rows_dir), n, "conf") for n in ("full", "other")]
    groups = table.parse_groups("both=test_a,test_b")
    t = table.Table(rows=rows, seeds=[0], test_sets=["test_a", "test_b"], tgt_lang="en", run=["./run.sh"],
                    recipe_dir=str(tmp_path), redecode=False, groups=groups)
    result = t.build(log=lambda m: None)
    both = result["rows"]["other"]["sets"]["both"]
    assert both["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYP_B, [REFS]).score, abs=1e-9)
    # the pool's utterance order: the sets in turn, each in its (sorted) order
    order = sorted(range(half), key=lambda i: f"u{i}") + [half + i for i in sorted(range(len(REFS) - half),
                                                                                   key=lambda i: f"u{i}")]
    pooled = table.paired_bootstrap([[REFS[i] for i in order]], [HYP_A[i] for i in order], [HYP_B[i] for i in order], "en")
    assert both["bleu_p"] == pooled["bleu"]["p"]
    md = table.markdown(result)
    assert "**both** = test_a + test_b" in md and "|both BLEU|" in md and "|test_b|other|" in md
    with pytest.raises(table.TableError, match="group x: test_c not among the test sets"):
        table.Table(rows=rows, seeds=[0], test_sets=["test_a"], tgt_lang="en", run=["./run.sh"],
                    recipe_dir=str(tmp_path), redecode=False, groups={"x": ["test_c"]}).build(log=lambda m: None)
    with pytest.raises(table.TableError, match="--groups: expected NAME=SET"):
        table.parse_groups("both")


def test_args_options_of_the_command_and_the_row_are_joined():
    """--train_args in --run and a row's seed option: one --train_args with both (csst.sh keeps the last)."""
    run, opts = table.merge_args_options(["./run.sh", "--train-args", "--max_epoch 1", "--preset", "tiny"],
                                         {"train_args": "--seed 2", "phase1_args": "--x 1"})
    assert run == ["./run.sh", "--preset", "tiny"]
    assert opts == {"train_args": "--max_epoch 1 --seed 2", "phase1_args": "--x 1"}
    assert table.merge_args_options(["./run.sh"], {"train_args": "--seed 0"}) == (["./run.sh"], {"train_args": "--seed 0"})
