"""Unit tests of the recipe's Python modules: launcher, audio formatting, speed perturbation,
tokenizer, text LM, recipe utilities and results."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from conftest import SENTENCES, synth_utterance, write_data_dir

from csst_espnet.bin import make_results
from csst_espnet.data import audio_dir
from csst_espnet.recipe import config, data_ops, launch
from csst_espnet.recipe import results as recipe_results
from csst_espnet.data import kaldi_dir as kd

PY = sys.executable


def run(module, *args, cwd=None, env=None):
    return subprocess.run([PY, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})))


def small_dir(root: Path, n: int = 4, fs: int = 16000) -> Path:
    utts = [(f"spk{i % 2}-u{i}", synth_utterance(i, 0.5), SENTENCES[i], "zh" if i >= 2 else "en", "st")
            for i in range(n)]
    d = write_data_dir(root, utts)
    (d / "speech_shape").unlink()
    ids = sorted(f"spk{i % 2}-u{i}" for i in range(n))
    # transcripts in the script of the language (en: u0, u1)
    (d / "src_text").write_text("".join(f"{u} {'源' if int(u[-1]) >= 2 else 'source'} {u[-1]}\n" for u in ids))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    kd.fix(str(d))
    return d


# ------------------------------------------------------------------------------------------ launch
def test_launch_job_array_substitutes_job_and_logs(tmp_path):
    log = tmp_path / "log" / "x.JOB.log"
    r = run("csst_espnet.bin.launch", "--max_jobs_run", "2", "JOB=1:3", log, "echo", "part JOB of 3")
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        text = (tmp_path / "log" / f"x.{j}.log").read_text()
        assert f"part {j} of 3" in text
        assert "# Ended (code 0)" in text and "# Accounting: time=" in text
        assert launch.exit_status(str(tmp_path / "log" / f"x.{j}.log")) == 0


def test_launch_failure_names_the_log(tmp_path):
    r = run("csst_espnet.bin.launch", "JOB=1:2", tmp_path / "y.JOB.log", "exit $((JOB - 1))")
    assert r.returncode == 1
    assert "1 / 2 jobs failed" in r.stderr and str(tmp_path / "y.2.log") in r.stderr
    assert launch.exit_status(str(tmp_path / "y.2.log")) == 1


def test_launch_options(tmp_path):
    r = run("csst_espnet.bin.launch", "--queue", "x", tmp_path / "z.log", "true")
    assert r.returncode == 2 and "unknown option --queue" in r.stderr
    r = run("csst_espnet.bin.launch", "JOB=1:2", tmp_path / "z.log", "true")
    assert r.returncode == 2 and "must contain JOB" in r.stderr
    r = run("csst_espnet.bin.launch", "--num-threads", "3", tmp_path / "t.log", "echo threads=$OMP_NUM_THREADS")
    assert r.returncode == 0 and "threads=3" in (tmp_path / "t.log").read_text()
    req = launch.parse_args(["--gpu", "1", "--backend", "slurm", "JOB=2:4", "l.JOB.log", "a b", "c"])
    assert (req.gpu, req.backend, req.indices) == (1, "slurm", [2, 3, 4])
    assert launch.command_line(req, 3) == "'a b' c"
    with pytest.raises(launch.LaunchError, match="--gpu: expected int"):
        launch.parse_args(["--gpu", "x", "l.log", "true"])


def test_launch_slurm_backend_with_fake_sbatch(tmp_path):
    """sbatch is replaced by a script that runs every array task in turn."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        "#!/usr/bin/env bash\n"
        'echo "$@" > "$(dirname "$0")/sbatch_args"\n'
        'script="${@: -1}"\n'
        'range=$(printf "%s\\n" "$@" | sed -n "s/^--array=\\([0-9]*\\)-\\([0-9]*\\).*/\\1 \\2/p")\n'
        "rc=0\n"
        "for i in $(seq $range); do SLURM_ARRAY_TASK_ID=$i bash \"$script\" || rc=1; done\n"
        'echo 1234; exit $rc\n'
    )
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    log = tmp_path / "logs" / "s.JOB.log"
    r = run("csst_espnet.bin.launch", "--backend", "slurm", "--gpu", "1", "--mem", "2G", "--slurm_opts",
            "--partition=debug --account=me", "JOB=1:3", log, "echo", "task JOB", env=env)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        assert f"task {j}" in (tmp_path / "logs" / f"s.{j}.log").read_text()
    args = (bin_dir / "sbatch_args").read_text()
    assert "--array=1-3" in args and "--gres=gpu:1" in args and "--mem=2G" in args
    assert "--partition=debug" in args and "--account=me" in args and "--wait" in args
    r = run("csst_espnet.bin.launch", "--backend", "slurm", "JOB=1:2", tmp_path / "f.JOB.log", "exit $((JOB - 1))",
            env=env)
    assert r.returncode == 1 and "f.2.log" in r.stderr


# ------------------------------------------------------------------------------------ format_audio
def test_format_audio_resamples_cuts_and_reports_unreadable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rec = np.sin(2 * np.pi * 440 * np.arange(3 * 8000) / 8000).astype(np.float32) * 0.5
    soundfile.write(src / "rec1.wav", np.stack([rec, rec * 0], 1), 8000)  # stereo, 8 kHz
    soundfile.write(src / "rec2.flac", rec, 8000)
    (src / "wav.scp").write_text(f"rec1 {src}/rec1.wav\nrec2 {src}/rec2.flac\nrec3 {src}/missing.wav\n")
    (src / "segments").write_text("spk-a rec1 0.0 1.0\nspk-b rec1 1.0 2.5\nspk-c rec2 0.5 1.0\nspk-d rec3 0 1\n")
    for name, value in (("text", "hello"), ("src_text", "hello"), (kd.WORD_LANG, "en"), ("utt2lang", "en"),
                        ("utt2task", "asr")):
        (src / name).write_text("".join(f"spk-{x} {value}\n" for x in "abcd"))
    (src / "utt2spk").write_text("".join(f"spk-{x} spk\n" for x in "abcd"))
    out = tmp_path / "out"
    counts = audio_dir.format_dir(str(src), str(out), fs=16000, nj=2, progress=False)
    assert counts == {"utterances": 4, "formatted": 3, "errors": 1, "clipped": 0}
    d = kd.DataDir.read(str(out))
    assert not d.has_segments and sorted(d.utt["wav.scp"]) == ["spk-a", "spk-b", "spk-c"]
    assert d.utt["utt2num_samples"] == {"spk-a": "16000", "spk-b": "24000", "spk-c": "8000"}
    x, rate = soundfile.read(d.utt["wav.scp"]["spk-b"])
    assert rate == 16000 and x.ndim == 1 and len(x) == 24000
    assert "spk-d" in d.utt["text"]  # text stays: stage 4 reports the missing audio
    assert d.utt[kd.WORD_LANG] == {f"spk-{x}": "en" for x in "abcd"}  # every per-utterance file is carried
    assert "spk-d" in (out / "format_errors.txt").read_text()
    res = kd.validate(str(out), fs=16000, progress=False)
    assert any(i.utt == "spk-d" and i.kind == "missing_id" for i in res.issues)


def test_format_audio_reads_pipes(tmp_path):
    d = small_dir(tmp_path / "src", 2)
    wav = kd.read_table(str(d / "wav.scp"))
    kd.write_table(str(d / "wav.scp"), {u: f"cat {p} |" for u, p in wav.items()})
    out = tmp_path / "out"
    assert run("csst_espnet.bin.format_audio", "--nj", 1, d, out).returncode == 0
    assert len(kd.read_table(str(out / "wav.scp"))) == 2


# ----------------------------------------------------------------------------------- speed_perturb
def test_speed_perturb(tmp_path):
    d = small_dir(tmp_path / "src", 4)
    out = tmp_path / "sp"
    counts = audio_dir.speed_perturb_dir(str(d), str(out), [0.9, 1.0, 1.1], nj=2)
    assert counts == {"utterances": 12, "perturbed": 8}
    p = kd.DataDir.read(str(out))
    assert kd.validate(str(out), required=("wav.scp", "utt2spk", "text"), progress=False).ok
    n = 8000  # 0.5 s at 16 kHz
    assert p.utt["utt2num_samples"]["spk0-u0"] == str(n)
    fast = int(p.utt["utt2num_samples"]["sp1.1-spk0-u0"])
    slow = int(p.utt["utt2num_samples"]["sp0.9-spk0-u0"])
    assert abs(fast - n / 1.1) <= 2 and abs(slow - n / 0.9) <= 2
    assert p.utt["utt2spk"]["sp0.9-spk0-u0"] == "sp0.9-spk0"
    assert p.utt["text"]["sp1.1-spk1-u1"] == p.utt["text"]["spk1-u1"]
    with pytest.raises(ValueError):
        audio_dir.parse_factors("0.9,x")


def test_change_speed_is_resampling_by_the_factor():
    from scipy.signal import resample_poly

    from csst_espnet.data.audio import change_speed

    x = synth_utterance(0, 0.5)
    y = change_speed(x, 1.1)  # read at 11, written at 10: 10/11 of the samples
    assert y.dtype == np.float32 and np.array_equal(y, resample_poly(x, 10, 11).astype(np.float32))
    assert np.array_equal(change_speed(x, 1.0), x)


def test_speed_perturb_stretches_phone_ali(tmp_path):
    d = small_dir(tmp_path / "src", 2)  # 0.5 s: 50 frames
    kd.write_table(str(d / "phone_ali"), {u: " ".join(["0"] * 10 + ["3"] * 30 + ["0"] * 10) for u in
                                          kd.read_table(str(d / "wav.scp"))})
    out = tmp_path / "sp"
    audio_dir.speed_perturb_dir(str(d), str(out), [0.9, 1.0, 1.1])
    assert kd.validate(str(out), required=("wav.scp", "phone_ali"), progress=False).ok
    ali = {u: v.split() for u, v in kd.read_table(str(out / "phone_ali")).items()}
    num = kd.read_table(str(out / "utt2num_samples"))
    assert len(ali) == 6 and ali["spk0-u0"] == ["0"] * 10 + ["3"] * 30 + ["0"] * 10
    for u in ("sp0.9-spk0-u0", "sp1.1-spk1-u1"):
        assert len(ali[u]) == kd.ali_num_frames(int(num[u]), 16000)
        assert ali[u].count("3") == pytest.approx(30 * len(ali[u]) / 50, abs=1)  # the same share of frames


def test_speed_perturb_stretches_and_format_carries_lang_ali(tmp_path):
    d = small_dir(tmp_path / "src", 2)  # 0.5 s: 50 frames
    codes = ["-"] * 10 + ["zh"] * 15 + ["en"] * 15 + ["-"] * 10
    kd.write_table(str(d / "lang_ali"), {u: " ".join(codes) for u in kd.read_table(str(d / "wav.scp"))})
    out = tmp_path / "sp"
    audio_dir.speed_perturb_dir(str(d), str(out), [0.9, 1.0, 1.1])
    assert kd.validate(str(out), required=("wav.scp", "lang_ali"), progress=False).ok
    ali = {u: v.split() for u, v in kd.read_table(str(out / "lang_ali")).items()}
    num = kd.read_table(str(out / "utt2num_samples"))
    assert len(ali) == 6 and ali["spk0-u0"] == codes
    for u in ("sp0.9-spk0-u0", "sp1.1-spk1-u1"):
        assert ali[u] == kd.resample_ali(codes, kd.ali_num_frames(int(num[u]), 16000))
        assert len(ali[u]) != len(codes)  # stretched, not copied
    formatted = tmp_path / "raw"
    audio_dir.format_dir(str(out), str(formatted), fs=16000, progress=False)
    assert kd.read_table(str(formatted / "lang_ali")) == kd.read_table(str(out / "lang_ali"))


# --------------------------------------------------------------------------------------- tokenizer
@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from csst_espnet.text.tokenizer import make_tokenizer, prompt_sentences

    out = tmp_path_factory.mktemp("tok")
    sentences = SENTENCES * 3 + ["我们在测试集上评估模型", "the loss function of the decoder"]
    sentences += prompt_sentences("en", ["zh", "en", "cs"], 30)
    make_tokenizer(str(out), sentences, vocab_size=1000)  # more than the text supports: capped
    return out


def test_tokenizer_round_trip_and_specials(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<s>", "</s>", "<pad>", "<unk>")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}) == 4
    # characters never seen in training come back through byte fallback
    for text in ["我们 用 gradient descent 来 训练 这个 model", "今天 天气 很好 Zürich", "Transcribe the speech.\n"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text
    info = json.loads((tokenizer_dir / "make_tokenizer.json").read_text())
    assert info["vocab_size"] == len(tok) and info["vocab_size"] < 1000


def test_han_chars_keeps_mandarin_by_character_and_merges_english(tmp_path):
    from csst_espnet.text.tokenizer import make_tokenizer

    sentences = ["这个跟聚类有关"] * 40 + ["the gradient"] * 20  # Mandarin pairs are the most frequent
    pieces = {}
    for han in (False, True):
        tok, info = make_tokenizer(str(tmp_path / str(han)), sentences, vocab_size=290, han_chars=han)
        assert info["han_chars"] == (7 if han else 0) and info["vocab_size"] == 290
        pieces[han] = (tok.tokenize(sentences[0]), tok.tokenize(sentences[-1]))
    # without the option BPE spends its merges on the Mandarin word; with it, on the English words
    assert pieces[False] == (["▁这个跟聚类有关"], ["▁t", "he", "▁", "gr", "adi", "en", "t"])
    assert pieces[True] == (["▁", "这", "个", "跟", "聚", "类", "有", "关"], ["▁the", "▁gradient"])


def test_make_tokenizer_cli(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(SENTENCES) + "\n")
    tsv = tmp_path / "p.tsv"
    tsv.write_text("我们 用 模型\twe use the model\n")
    r = run("csst_espnet.bin.make_tokenizer", "--out_dir", tmp_path / "tok", "--text", text, "--tsv", tsv,
            "--vocab_size", 300, "--prompt_repeat", 2)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "tok" / "tokenizer.json").exists() and (tmp_path / "tok" / "spm.model").exists()
    r = run("csst_espnet.bin.make_tokenizer", "--out_dir", tmp_path / "tok2")
    assert r.returncode == 1 and "no text" in r.stderr


def test_read_sentences_of_text_tsv_and_kaldi_text(tmp_path):
    from csst_espnet.text.tokenizer import read_sentences

    text, tsv, kaldi = tmp_path / "t.txt", tmp_path / "p.tsv", tmp_path / "text"
    text.write_text(" a b \n\nc\n")
    tsv.write_text("x\t y \n")
    kaldi.write_text("u1  注意力  机制 \nu2\n\nu3 the model\n")  # u2: no text
    assert read_sentences([text], [tsv], [kaldi]) == ["a b", "c", "x", "y", "注意力  机制", "the model"]
    kaldi.write_text("u1 a\nu1 b\n")
    with pytest.raises(ValueError, match="text:2: duplicate key u1"):
        read_sentences(kaldi_texts=[kaldi])


# ---------------------------------------------------------------------------------------- text LM
TINY_LM = dict(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, steps=4,
               batch_size=4, warmup_steps=2, valid_fraction=0.2)


def test_text_lm_examples_follow_the_prompt_layout(tokenizer_dir):
    from transformers import AutoTokenizer

    from csst_espnet.llm.text_lm import build_examples, source_language
    from csst_espnet.text.prompt import PromptTemplate

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = PromptTemplate(tok)
    ex = build_examples(tok, template, [("zh", "注意力 机制"), ("zh", "注意力 机制")],
                        [("我们 用 model", "we use the model")])
    kinds = [e.kind for e in ex]
    assert kinds == ["lm", "asr", "st"]  # the repeated sentence counts once
    st = ex[-1]
    prompt = template.ids("st", "cs")
    assert source_language("我们 用 model") == "cs" and source_language("我们") == "zh"
    target = tok("we use the model", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert st.ids[: len(prompt)] == prompt and st.loss_from == len(prompt)
    assert st.ids[st.target_from :] == target  # the target is laid out as the ST model's target
    asr = ex[1]
    assert asr.ids[: asr.loss_from] == template.ids("asr", "zh")


def train_tiny_lm(tmp_path, tokenizer_dir, steps: int, *args):
    """A TINY_LM text LM trained on SENTENCES as (copy) pairs: (output dir, finished process)."""
    pairs = tmp_path / "p.tsv"
    pairs.write_text("".join(f"{s}\t{s}\n" for s in SENTENCES))
    conf = tmp_path / "lm.yaml"
    conf.write_text(yaml.safe_dump(TINY_LM))
    out = tmp_path / "lm"
    r = run("csst_espnet.bin.train_text_lm", "--tokenizer", tokenizer_dir, "--out_dir", out, "--config", conf,
            "--pairs", pairs, "--set", f"steps={steps}", *args)
    assert r.returncode == 0, r.stderr
    return out, r


def test_train_text_lm_saves_a_loadable_model(tmp_path, tokenizer_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mono = tmp_path / "zh.txt"
    mono.write_text("注意力 机制 很 重要\n今天 我们 讲 神经 网络\n")
    out, r = train_tiny_lm(tmp_path, tokenizer_dir, 3, "--mono", f"zh:{mono}")
    assert "text LM" in r.stderr and "loss=" in r.stderr  # the progress bar
    info = json.loads((out / "train_text_lm.json").read_text())
    assert info["config"]["steps"] == 3 and info["tokenizer_in_model_dir"]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama"
    tok = AutoTokenizer.from_pretrained(out)
    ref = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "Translate the speech into English.\n我们 用 model"
    assert tok(text)["input_ids"] == ref(text)["input_ids"]
    with torch.no_grad():
        assert model(**tok(text, return_tensors="pt")).logits.shape[-1] == len(tok)
    r = run("csst_espnet.bin.train_text_lm", "--tokenizer", tokenizer_dir, "--out_dir", out, "--set", "arch=gpt")
    assert r.returncode == 1 and "arch must be" in r.stderr


def test_text_lm_qwen2_tokenizer_is_not_saved_when_it_would_load_wrongly(tmp_path, tokenizer_dir):
    """transformers 5 loads Qwen2Tokenizer for every qwen2 model, whatever tokenizer was saved."""
    from csst_espnet.llm.text_lm import train

    mono = [("zh", "注意力 机制 很 重要"), ("en", "the loss goes down")]
    info = train(dict(TINY_LM, arch="qwen2"), str(tokenizer_dir), str(tmp_path / "q"), mono, [], progress=False)
    assert not info["tokenizer_in_model_dir"]
    assert not (tmp_path / "q" / "tokenizer.json").exists() and (tmp_path / "q" / "config.json").exists()


def test_text_lm_with_another_prompt_is_refused(tmp_path, tokenizer_dir, tiny_whisper):
    """A speech model on a text LM must render the prompts the LM learnt: another --prompt_conf is
    refused, naming both prompts; the same prompts pass (also written differently); loading a trained
    model checks too."""
    from csst_espnet.llm.text_lm import train
    from csst_espnet.tasks.csst import CSSTTask
    from train_utils import save_run, tiny_model_args

    lm = tmp_path / "lm"
    lm_prompt = {"instructions": {"st": "Say it in {tgt_lang}."}}
    train(dict(TINY_LM, steps=1, prompt_conf=lm_prompt), str(tokenizer_dir), str(lm), [("zh", "注意力 机制 很 重要")],
          [], progress=False)
    args = tiny_model_args(lm, tiny_whisper)  # the default prompt: "Translate the speech into English."
    with pytest.raises(ValueError) as e:
        CSSTTask.build_model(args)
    message = str(e.value)
    assert f"{lm} is a text LM trained with another prompt" in message and "task 'st', language 'zh'" in message
    assert "'<s>Say it in English.\\n'" in message and "'<s>Translate the speech into English.\\n'" in message

    args.prompt_conf = {"target_language": "en", **lm_prompt}  # the LM's prompt_conf left the default implicit
    model = CSSTTask.build_model(args)
    save_run(args, model, tmp_path / "exp" / "config.yaml", tmp_path / "exp" / "model.pth")
    assert CSSTTask.build_model_from_file(None, str(tmp_path / "exp" / "model.pth"))[0] is not None
    info = json.loads((lm / "train_text_lm.json").read_text())  # the text LM retrained with another prompt
    info["config"]["prompt_conf"] = {"target_language": "es"}
    (lm / "train_text_lm.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="Translate the speech into Spanish"):
        CSSTTask.build_model_from_file(None, str(tmp_path / "exp" / "model.pth"))


# ------------------------------------------------------------------------- recipe data ops, configs
def test_asr_dir_and_lm_text(tmp_path):
    d = small_dir(tmp_path / "dev", 4)  # 0.5 s utterances: 50 alignment frames
    kd.write_table(str(d / "phone_ali"), {u: " ".join(["0"] * 10 + ["1"] * 30 + ["0"] * 10)
                                          for u in kd.read_table(str(d / "wav.scp"))})
    (d / "text.2").write_text((d / "text").read_text())
    kd.write_table(str(d / kd.WORD_LANG), {u: ("zh -" if "源" in t else "en -")
                                           for u, t in kd.read_table(str(d / "src_text")).items()})
    data_ops.asr_dir(str(d), str(tmp_path / "dev_asr"))
    a = kd.DataDir.read(str(tmp_path / "dev_asr"))
    copy = lambda table: {f"{u}-asr": v for u, v in table.items()}  # ids unique over set and copy
    assert a.utt["text"] == copy(kd.read_table(str(d / "src_text")))
    assert a.utt["phone_ali"] == copy(kd.read_table(str(d / "phone_ali")))  # the same audio
    assert a.utt[kd.WORD_LANG] == copy(kd.read_table(str(d / kd.WORD_LANG)))  # the words of text = src_text
    assert a.utt["wav.scp"] == copy(kd.read_table(str(d / "wav.scp")))
    assert a.utt["utt2spk"] == copy(kd.read_table(str(d / "utt2spk")))
    assert kd.validate(str(tmp_path / "dev_asr"), progress=False).ok
    assert set(a.utt["utt2task"].values()) == {"asr"} and "text.2" not in a.utt
    # ST utterances: the source transcript is text of the speech language, the pair goes to pairs.tsv
    counts = data_ops.lm_text(str(d), str(tmp_path / "lm"))
    assert counts == {"mono.en": 2, "mono.zh": 2, "pairs": 4}
    src, lang = kd.read_table(str(d / "src_text")), kd.read_table(str(d / "utt2lang"))
    for lg in ("en", "zh"):
        lines = (tmp_path / "lm" / f"mono.{lg}.txt").read_text().splitlines()
        assert lines == [src[u] for u in src if lang[u] == lg]
    assert (tmp_path / "lm" / "pairs.tsv").read_text().count("\t") == 4
    (tmp_path / "nosrc").mkdir()
    (tmp_path / "nosrc" / "text").write_text("a-1 x\n")
    with pytest.raises(data_ops.RecipeError, match="no src_text"):
        data_ops.asr_dir(str(tmp_path / "nosrc"), str(tmp_path / "x"))
    (tmp_path / "nosrc" / "text").write_text("a-1 x\na-2 y\n")
    (tmp_path / "nosrc" / "src_text").write_text("a-1 x\n")
    with pytest.raises(data_ops.RecipeError, match="no transcript for 1 utterances: a-2"):
        data_ops.asr_dir(str(tmp_path / "nosrc"), str(tmp_path / "x"))


def test_union_dir_and_split_keys(tmp_path):
    a = small_dir(tmp_path / "a", 4)
    b = small_dir(tmp_path / "b", 2)  # the same ids with other audio files
    kd.write_table(str(a / "phone_ali"), {u: "0 1 1 0" for u in kd.read_table(str(a / "wav.scp"))})
    n = data_ops.union_dir(str(tmp_path / "u"), [str(a), str(a)])
    assert n == 4 and len(kd.read_table(str(tmp_path / "u" / "wav.scp"))) == 4
    assert kd.read_table(str(tmp_path / "u" / "phone_ali")) == kd.read_table(str(a / "phone_ali"))
    c = small_dir(tmp_path / "c", 6)  # spk0-u4, spk1-u5 without phone_ali: no phone_ali in the union
    kd.write_table(str(c / "wav.scp"), {**kd.read_table(str(c / "wav.scp")), **kd.read_table(str(a / "wav.scp"))})
    assert data_ops.union_dir(str(tmp_path / "u"), [str(a), str(c)]) == 6
    assert not (tmp_path / "u" / "phone_ali").exists()
    with pytest.raises(data_ops.RecipeError, match="different audio"):
        data_ops.union_dir(str(tmp_path / "u2"), [str(a), str(b)])
    paths = data_ops.split_keys(str(a / "wav.scp"), 3, str(tmp_path / "k" / "keys"))
    lines = [p_.read_text().splitlines() for p_ in map(Path, paths)]
    assert [len(x) for x in lines] == [1, 1, 2] and sum(lines, []) == (a / "wav.scp").read_text().splitlines()
    with pytest.raises(data_ops.RecipeError):
        data_ops.split_keys(str(a / "wav.scp"), 5, str(tmp_path / "k" / "x"))


def test_merge_decode(tmp_path):
    keys = tmp_path / "wav.scp"
    keys.write_text("a-1 x\na-2 x\na-3 x\n")
    for j, lines in ((1, {"a-1": "hello", "a-2": ""}), (2, {"a-3": "world", "b-9": "other set"})):
        out = tmp_path / f"output.{j}" / "1best_recog"
        out.mkdir(parents=True)
        (out / "text").write_text("".join(f"{k} {v}\n" for k, v in lines.items()))
        (out / "score").write_text("".join(f"{k} -1.0\n" for k in lines))
    parts = [str(tmp_path / "output.1"), str(tmp_path / "output.2")]
    with pytest.raises(data_ops.RecipeError, match="not in"):
        data_ops.merge_decode(str(keys), str(tmp_path / "m"), parts)
    assert data_ops.merge_decode(str(keys), str(tmp_path / "m"), parts, subset=True) == 3
    assert (tmp_path / "m" / "text").read_text() == "a-1\na-2\na-3 world\n".replace("a-1\n", "a-1 hello\n")
    keys.write_text("a-1 x\na-2 x\na-3 x\na-4 x\n")
    with pytest.raises(data_ops.RecipeError, match="1 utterances were not decoded, e.g. a-4"):
        data_ops.merge_decode(str(keys), str(tmp_path / "m2"), parts, subset=True)


def test_yaml2args_and_config_get(tmp_path):
    conf = tmp_path / "decode.yaml"
    conf.write_text("beam_size: 4\nbatch_size: 8\nflag: true\nmulti: [a, b]\nnone: null\n")
    assert config.yaml2args(str(conf)) == ["--beam_size", "4", "--batch_size", "8", "--flag", "true",
                                                 "--multi", "a", "--multi", "b"]
    conf.write_text("bad: two words\n")
    with pytest.raises(config.ConfigError, match="spaces"):
        config.yaml2args(str(conf))
    conf.write_text("projector: moe\nprojector_conf: {groups: [zh, en], top_k: 2}\n")
    assert config.config_get(str(conf), "projector") == "moe"
    assert config.config_get(str(conf), "projector_conf.top_k") == "2"
    assert config.config_get(str(conf), "missing.key") == ""


def test_trained_tasks_read_from_the_training_data(tmp_path):
    (tmp_path / "utt2task").write_text("a st\nb asr\nc st\n")
    conf = tmp_path / "config.yaml"
    data = [[str(tmp_path / "wav.scp"), "speech", "sound"], [str(tmp_path / "utt2task"), "task", "text"]]
    conf.write_text(yaml.safe_dump({"train_data_path_and_name_and_type": data}))
    assert config.trained_tasks(str(conf)) == ["asr", "st"]
    # no task column: the preprocessor's default task
    conf.write_text(yaml.safe_dump({"train_data_path_and_name_and_type": data[:1],
                                    "preprocessor_conf": {"default_task": "asr"}}))
    assert config.trained_tasks(str(conf)) == ["asr"]
    conf.write_text(yaml.safe_dump({"train_data_path_and_name_and_type": data[:1]}))
    assert config.trained_tasks(str(conf)) == ["st"]


# ------------------------------------------------------------------------------------ make_results
def _score(tmp_path, model, test_set, bleu, cs=True):
    d = tmp_path / "exp" / model / "decode_x" / test_set
    d.mkdir(parents=True)
    subsets = {"all": {"num_utts": 3, "bleu": bleu, "chrf": 50.0}}
    subsets["cs" if cs else "mono"] = {"num_utts": 3, "bleu": bleu, "chrf": 50.0, "en_word_recall": 80.0}
    res = {"task": "st", "num_utts": 3, "num_refs": 2, "signatures": {"bleu": "nrefs:2|tok:13a"}, "subsets": subsets}
    (d / "score.json").write_text(json.dumps(res))
    ref1 = json.loads(json.dumps(res))
    for s in ref1["subsets"].values():
        s["bleu"] = bleu - 10
    (d / "score_ref1.json").write_text(json.dumps(ref1))
    return str(d)


def _asr_score(tmp_path, model, test_set):
    """score.json of csst_espnet.bin.score --task asr on a CS and a Mandarin utterance."""
    from csst_espnet.metrics import scoring

    d = tmp_path / "exp" / model / "decode_x" / test_set
    d.mkdir(parents=True)
    ref = {"s-1": "我们 用 gradient descent", "s-2": "今天 很好"}
    hyp = {"s-1": "我们 用 gradient decent", "s-2": "今天 很好"}
    res = scoring.score(hyp, [ref], task="asr", utt2lang={"s-1": "cs", "s-2": "zh"})
    (d / "score.json").write_text(json.dumps(res))
    return str(d)


def test_make_results_asr_table(tmp_path):
    dirs = [_score(tmp_path, "csst_train_phase3", "test_cs", 55.5), _asr_score(tmp_path, "csst_train_phase3", "test_cs_asr"),
            _asr_score(tmp_path, "csst_train_cs_only", "test_cs_asr")]
    md, js = tmp_path / "RESULTS.md", tmp_path / "exp" / "results.json"
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), "--out_json", str(js), *dirs]) == 0
    entry = json.loads(js.read_text())["csst_train_phase3"]["test_cs_asr"]
    # MER: 1 English word wrong of 3 Mandarin characters + 2 English words (s-1), none of 4 characters (s-2)
    assert entry["mer"] == 11.11 and entry["subsets"]["cs"]["mer"] == 20.0
    assert entry["subsets"]["cs"]["mer_en"] == 50.0 and entry["subsets"]["mono"]["mer_zh"] == 0.0
    assert {"wer", "cer"} <= set(entry["subsets"]["mono"]) and "bleu" not in entry
    text = md.read_text()
    st, asr = text.split("## csst_train_phase3")[1].split("\n## ")[0].split("### ASR: WER/CER/MER")
    assert "|test_cs|all|3|2|55.50|" in st and "test_cs_asr" not in st
    assert "|test_cs_asr|all|2|" in asr and "|test_cs_asr|cs|1|" in asr and "|test_cs_asr|mono|1|" in asr
    # comparisons where several models have the metric: ASR only here
    assert "## Comparison (ST" not in text
    assert "## Comparison (ASR: MER)" in text and "|csst_train_cs_only|11.11|" in text


def test_make_results(tmp_path):
    dirs = [_score(tmp_path, "csst_train_phase3", "test_cs", 55.5), _score(tmp_path, "csst_train_phase3", "test_mono", 60.0, False),
            _score(tmp_path, "csst_train_cs_only", "test_cs", 20.25)]
    (tmp_path / "times.tsv").write_text("1\t50\tx\n10\t100\ty\tp1\n10\t90\tz\tp1\n12\t30\tu\tp3\n12\t20\tv\tcs\n")
    md, js = tmp_path / "RESULTS.md", tmp_path / "exp" / "results.json"
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), "--out_json", str(js),
                              "--command", "./run.sh", "--stage_times", str(tmp_path / "times.tsv"), *dirs]) == 0
    results = json.loads(js.read_text())
    assert results["csst_train_phase3"]["test_cs"]["bleu"] == 55.5
    assert results["csst_train_phase3"]["test_cs"]["bleu_ref1"] == 45.5
    assert results["csst_train_cs_only"]["test_cs"]["subsets"]["cs"]["en_word_recall"] == 80.0
    text = md.read_text()
    assert "|csst_train_phase3|55.50 / 45.50|60.00 / 50.00|" in text
    assert "|csst_train_cs_only|20.25 / 10.25|-|" in text
    # the latest run of each stage and what it ran: both trainings of stage 12 count
    assert "|10|p1|90|z|" in text and "|12|p3|30|u|" in text and "|12|cs|20|v|" in text
    assert "|total||190||" in text
    # entries of other models survive a later run that scores one model
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), "--out_json", str(js), dirs[2]]) == 0
    assert set(json.loads(js.read_text())) == {"csst_train_phase3", "csst_train_cs_only"}
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), str(tmp_path)]) == 1


def test_package_versions_name_missing_distributions():
    from csst_espnet.utils.versions import package_versions

    v = package_versions(("sacrebleu", "no-such-distribution-csst"))
    assert v["sacrebleu"] == __import__("sacrebleu").__version__
    assert v["no-such-distribution-csst"] == "not installed" and v["python"].count(".") == 2


def test_text_lm_oracle_batched_greedy_equals_one_at_a_time(tmp_path, tokenizer_dir):
    """The oracle's left-padded batches decode exactly as each source alone; ASR utterances are skipped."""
    import torch

    from csst_espnet.llm.text_lm import load_text_lm

    lm, _ = train_tiny_lm(tmp_path, tokenizer_dir, 30)
    data = tmp_path / "test_cs"
    data.mkdir()
    srcs = {"u1": ("cs", "我们 用 model"), "u2": ("zh", "今天 我们 讲 神经 网络"), "u3": ("cs", "注意力 机制 很 重要 ok"),
            "u4": ("zh", "不翻译")}
    (data / "src_text").write_text("".join(f"{u} {t}\n" for u, (_, t) in srcs.items()))
    (data / "utt2lang").write_text("".join(f"{u} {l}\n" for u, (l, _) in srcs.items()))
    (data / "utt2task").write_text("u1 st\nu2 st\nu3 st\nu4 asr\n")
    out = tmp_path / "oracle"
    r = run("csst_espnet.bin.text_lm_oracle", "--model_dir", lm, "--data_dir", data, "--out_dir", out,
            "--batch_size", "2", "--max_new_tokens", "8")
    assert r.returncode == 0, r.stderr
    hyps = dict(line.split(" ", 1) if " " in line else (line, "") for line in (out / "test_cs" / "text").read_text().splitlines())
    assert sorted(hyps) == ["u1", "u2", "u3"]

    model, tok, template = load_text_lm(str(lm))
    for utt in hyps:
        lang, text = srcs[utt]
        ids = template.ids("st", lang) + tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            seq = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, len(ids):].tolist()
        seq = seq[: seq.index(tok.eos_token_id)] if tok.eos_token_id in seq else seq
        assert hyps[utt].strip() == tok.decode(seq, skip_special_tokens=True).strip()

    (data / "src_text").write_text("u1 我们 用 model\nu2\n")
    r = run("csst_espnet.bin.text_lm_oracle", "--model_dir", lm, "--data_dir", data, "--out_dir", out)
    assert r.returncode == 1 and "src_text: no source transcript for utterance u2" in r.stderr
    (data / "src_text").write_text("u1 我们 用 model\nu1 我们\n")
    r = run("csst_espnet.bin.text_lm_oracle", "--model_dir", lm, "--data_dir", data, "--out_dir", out)
    assert r.returncode == 1 and "src_text:2: duplicate key u1" in r.stderr
    (data / "src_text").unlink()
    r = run("csst_espnet.bin.text_lm_oracle", "--model_dir", lm, "--data_dir", data, "--out_dir", out)
    assert r.returncode == 1 and f"{data}/src_text is missing" in r.stderr


def test_make_results_explains_the_text_lm_oracle(tmp_path):
    dirs = [_score(tmp_path, "csst_train_phase3", "test_cs", 55.5), _score(tmp_path, recipe_results.ORACLE_MODEL, "test_cs", 90.0)]
    md = tmp_path / "RESULTS.md"
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), *dirs]) == 0
    text = md.read_text()
    assert "|text_lm_oracle|90.00 / 80.00|" in text and "gold source transcripts" in text


def test_results_commit_ignores_its_own_results_file(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "RESULTS.md").write_text("old\n")
    (tmp_path / "run.sh").write_text("echo\n")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RESULTS.md").write_text("")  # make_results opens it for writing before it asks git
    assert "local changes" not in recipe_results._git_commit("RESULTS.md")
    assert "local changes" in recipe_results._git_commit()
    (tmp_path / "run.sh").write_text("echo changed\n")
    assert recipe_results._git_commit("RESULTS.md").endswith("(with local changes)")


def test_score_and_results_show_guards_and_confidence(tmp_path):
    """score.py reads confidence and guard beside the hypotheses; RESULTS.md shows the guard counts and
    the BLEU of the least confident tenth against the rest."""
    from csst_espnet.bin import score

    d = tmp_path / "exp" / "csst_train_phase3" / "decode_x" / "dev"
    d.mkdir(parents=True)
    sentences = ["we use gradient descent to train the model", "the loss goes down after each epoch"]
    utts = [f"s-{i:02d}" for i in range(20)]
    ref = {u: sentences[i % 2] for i, u in enumerate(utts)}
    hyp = dict(ref, **{"s-03": "transfer learning transfer learning", "s-08": "the loss goes up"})
    conf = {u: -0.1 for u in utts}
    conf.update({"s-03": -2.5, "s-08": -1.5, "s-11": -0.2})
    guard = {u: "none" for u in utts}
    guard.update({"s-03": "loop", "s-11": "length"})
    for name, table in (("text", hyp), ("confidence", conf), ("guard", guard)):
        (d / name).write_text("".join(f"{u} {table[u]}\n" for u in utts))
    (tmp_path / "ref").write_text("".join(f"{u} {ref[u]}\n" for u in utts))
    assert score.main(["--hyp", str(d / "text"), "--ref", str(tmp_path / "ref"), "--task", "st", "--tgt_lang", "en",
                       "--out_json", str(d / "score.json")]) == 0
    res = json.loads((d / "score.json").read_text())
    assert res["guards"] == {"loop": 1, "length": 1}
    low, rest = res["confidence"]["low"], res["confidence"]["rest"]
    assert (low["num_utts"], rest["num_utts"]) == (2, 18) and res["confidence"]["threshold"] == -1.5
    assert low["bleu"] < 10 and rest["bleu"] == pytest.approx(100.0)
    (d / "confidence").write_text("s-00 x\n")
    assert score.main(["--hyp", str(d / "text"), "--ref", str(tmp_path / "ref"), "--task", "st", "--tgt_lang", "en"]) == 1

    (d / "score_ref1.json").write_text((d / "score.json").read_text())
    md, js = tmp_path / "RESULTS.md", tmp_path / "exp" / "results.json"
    assert make_results.main(["--expdir", str(tmp_path / "exp"), "--out_md", str(md), "--out_json", str(js), str(d)]) == 0
    table = md.read_text().split("### Runaway guards and confidence")[1]
    assert f"|dev|20|1|1|{res['confidence']['mean']:.2f}|2|{low['bleu']:.2f}|18|100.00|" in table
