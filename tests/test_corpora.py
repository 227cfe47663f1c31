"""Corpus recipes' stage 1 on fixtures in each corpus's own raw layout (csst_espnet/corpora/)."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from conftest import synth_utterance
from csst_espnet.data import kaldi_dir as kd

REPO = Path(__file__).resolve().parents[1]


def copy_recipe(tmp_path: Path, name: str) -> Path:
    for d in ("TEMPLATE", name):
        shutil.copytree(REPO / "egs2" / d, tmp_path / "egs2" / d, symlinks=True)
    return tmp_path / "egs2" / name / "st1"


def data_sh(recipe: Path, *args: str):
    return subprocess.run(["bash", "local/data.sh", *args], cwd=recipe, capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))


def lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


# ------------------------------------------------------------------------------------------ NTUML2021
NTUML_ROWS = {  # split -> (transcription, translation) per row
    "train": [("我们 今天 讲 transformer", "today we talk about transformers"), ("这个 模型 很 大", "this model is big"),
              ("attention is all you need", "attention is all you need"), ("梯度 下降", "gradient descent")],
    "dev": [("learning rate 要 小", "the learning rate must be small"), ("好 我们 开始", "ok let us start")],
    "test": [("BERT 是 一个 模型", "BERT is a model"), ("下课", "class is over"), ("see you next week", "see you next week")],
}


def write_ntuml(root: Path, bad_audio: bool = False, splits=("train", "dev", "test")) -> Path:
    """ky552/ML2021_ASR_ST as snapshot_download leaves it: data/<split>-0000k-of-0000n-<hash>.parquet with the
    Hugging Face audio struct {bytes, path} and the datasets features in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {"audio": {"sampling_rate": 16000, "_type": "Audio"},
                **{c: {"dtype": "string", "_type": "Value"} for c in ("transcription", "translation", "file")}}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    (root / "data").mkdir(parents=True)
    seed = 0
    for split in splits:
        rows = NTUML_ROWS[split]
        shards = [rows[:2], rows[2:]] if split == "train" else [rows]
        for k, shard in enumerate(shards):
            audio, names = [], []
            for src, _ in shard:
                buf = io.BytesIO()
                soundfile.write(buf, synth_utterance(seed, 0.4), 16000, format="WAV")
                name = f"ML2021_{split}_{seed:04d}.wav"
                data = b"garbage" if bad_audio and seed == 1 else buf.getvalue()
                audio.append({"bytes": data, "path": name})
                names.append(name)
                seed += 1
            table = pa.table({
                "audio": pa.array(audio, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                "transcription": [r[0] for r in shard], "translation": [r[1] for r in shard], "file": names,
            }).replace_schema_metadata(meta)
            pq.write_table(table, root / "data" / f"{split}-{k:05d}-of-{len(shards):05d}-abc123.parquet")
    return root


def test_ntuml2021_stage1_writes_valid_cs_and_mono_sets(tmp_path):
    recipe = copy_recipe(tmp_path, "ntuml2021")
    src = write_ntuml(tmp_path / "hf" / "ML2021_ASR_ST")
    r = data_sh(recipe, "--source", str(src), "--audio_dir", str(tmp_path / "audio"))
    assert r.returncode == 0, r.stderr
    data = recipe / "data"
    for name in ("train", "train_cs", "train_mono", "train_mono_asr", "dev", "dev_cs", "dev_mono",
                 "test", "test_cs", "test_mono"):
        res = kd.validate(str(data / name), fs=16000, languages=("zh", "en", "cs"), progress=False)
        assert res.ok, (name, res.issues)
        for f in ("wav.scp", "text", "utt2spk", "utt2lang"):
            keys = [line.split(" ", 1)[0] for line in lines(data / name / f)]
            assert keys == sorted(keys)
    test = dict(line.split(" ", 1) for line in lines(data / "test" / "src_text"))
    lang = dict(line.split() for line in lines(data / "test" / "utt2lang"))
    assert {test[u]: lang[u] for u in test} == {"BERT 是 一个 模型": "cs", "下课": "zh", "see you next week": "en"}
    assert [line.split(" ", 1)[1] for line in lines(data / "test_cs" / "text")] == ["BERT is a model"]
    assert sorted(line.split()[1] for line in lines(data / "test_mono" / "utt2lang")) == ["en", "zh"]
    assert lines(data / "train" / "utt2spk")[0].split()[1] == "ntuml2021_train"
    assert len(lines(data / "train" / "wav.scp")) == 4  # both shards
    assert {line.split()[1] for line in lines(data / "train_mono_asr" / "utt2task")} == {"asr"}


@pytest.mark.parametrize("case, message", [
    ("wrong_path", "NTUML2021: no directory {root}/nowhere"),
    ("missing_split", "NTUML2021: no parquet shards of split 'test' in {root}/hf"),
    ("bad_audio", "{root}/hf/data/train-00000-of-00002-abc123.parquet: row 1: cannot read audio"),
])
def test_ntuml2021_errors_name_the_file(tmp_path, case, message):
    from csst_espnet.bin.prepare_corpus import main

    if case != "wrong_path":
        write_ntuml(tmp_path / "hf", bad_audio=case == "bad_audio",
                    splits=("train", "dev") if case == "missing_split" else ("train", "dev", "test"))
    source = tmp_path / ("nowhere" if case == "wrong_path" else "hf")
    err = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        rc = main(["ntuml2021", "--source", str(source), "--out", str(tmp_path / "data"),
                   "--audio_dir", str(tmp_path / "audio")])
    finally:
        sys.stderr = sys_stderr
    assert rc == 1 and message.format(root=tmp_path) in err.getvalue()


# ------------------------------------------------------------------------------------------ Fisher-CS
TDF_HEADER = ("file;unicode\tchannel;int\tstart;float\tend;float\tspeaker;unicode\tspeakerType;unicode\t"
              "speakerDialect;unicode\ttranscript;unicode\tsection;int\tturn;int\tsegment;int\n"
              ";;MM sectionBoundaries\t[0.0, 9999.0]\n")
FISHER_SEGMENTS = [  # channel, start, end, LDC transcript (field 8)
    (0, 0.20, 0.90, "hola cómo estás"),
    (1, 1.00, 1.60, "bien y tú <foreign lang=\"English\">(())</foreign>"),  # no words inside: not CS
    (1, 1.60, 2.30, "pues tengo un"),
    (1, 2.30, 3.10, "<foreign lan=\"English\">meeting /foreign> mañana"),  # malformed tag, fixed: CS
    (0, 3.20, 3.90, "ah qué bueno"),
]
FISHER_MAPPING = ["1", "2", "3_4", "5"]  # utterance 3 joins segments 3 and 4


def write_fisher(root: Path, splits=("train", "dev", "dev2", "test"), bad_audio: bool = False):
    """LDC2010S01 (two-channel 8 kHz SPHERE), LDC2010T04 (tdf) and fisher-callhome-corpus (mapping, .es, .en*)."""
    import numpy as np

    speech, tdf, corpus = root / "LDC2010S01" / "data" / "speech", root / "LDC2010T04" / "data" / "transcripts", \
        root / "fisher-callhome-corpus"
    for d in (speech, tdf, corpus / "mapping", corpus / "corpus" / "ldc"):
        d.mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(splits):
        conv = f"2005100{k}_120000_00{k}_fsp"
        stereo = np.stack([synth_utterance(10 + k, 4.0, 8000), synth_utterance(20 + k, 4.0, 8000)], axis=1)
        if bad_audio and split == "dev":
            (speech / f"{conv}.sph").write_bytes(b"NIST_1A\n   1024\nnot really\n")
        else:
            soundfile.write(speech / f"{conv}.sph", stereo, 8000, format="NIST", subtype="PCM_16")
        (tdf / f"{conv}.tdf").write_text(TDF_HEADER + "".join(
            f"{conv}.sph\t{c}\t{s}\t{e}\t{conv}_{'AB'[c]}\tnative\tother\t{t}\t0\t0\t{i}\n"
            for i, (c, s, e, t) in enumerate(FISHER_SEGMENTS)), encoding="utf-8")
        (corpus / "mapping" / f"fisher_{split}").write_text("".join(f"{conv} {m}\n" for m in FISHER_MAPPING))
        es = ["hola cómo estás", "bien y tú", "pues tengo un <foreign lang=\"English\">meeting</foreign> mañana",
              "ah qué bueno"]
        (corpus / "corpus" / "ldc" / f"fisher_{split}.es").write_text("\n".join(es) + "\n", encoding="utf-8")
        en = ["hello how are you", "fine and you", "well i have a meeting tomorrow", "oh how nice"]
        refs = [""] if split == "train" else [".0", ".1", ".2", ".3"]
        for j, ref in enumerate(refs):
            lines_ = [f"{t} ({j})" if ref else t for t in en]
            (corpus / "corpus" / "ldc" / f"fisher_{split}.en{ref}").write_text("\n".join(lines_) + "\n")
    return [str(root / n) for n in ("LDC2010S01", "LDC2010T04", "fisher-callhome-corpus")]


def test_fisher_cs_stage1_weller_split_references_and_16k(tmp_path):
    from csst_espnet.data.audio_dir import format_dir

    recipe = copy_recipe(tmp_path, "fisher_cs")
    speech, transcripts, translations = write_fisher(tmp_path / "ldc")
    r = data_sh(recipe, "--speech", speech, "--transcripts", transcripts, "--translations", translations,
                "--audio_dir", str(tmp_path / "audio"))
    assert r.returncode == 0, r.stderr
    data = recipe / "data"
    names = [f"{s}{x}" for s in ("train", "dev", "dev2", "test") for x in ("", "_cs", "_mono")]
    for name in names + ["eval_cs", "eval_mono", "train_mono_asr"]:
        res = kd.validate(str(data / name), languages=("es", "en", "cs"), progress=False)
        assert res.ok, (name, res.issues)
    spk_a, spk_b = "20051003_120000_003_fsp_A", "20051003_120000_003_fsp_B"
    u = [f"{spk_a}-test_000001", f"{spk_b}-test_000002", f"{spk_b}-test_000003", f"{spk_a}-test_000004"]
    assert lines(data / "test" / "utt2lang") == sorted([f"{u[0]} es", f"{u[1]} es", f"{u[2]} cs", f"{u[3]} es"])
    assert lines(data / "test_cs" / "src_text") == [f"{u[2]} pues tengo un meeting mañana"]
    assert lines(data / "test_cs" / "segments") == [f"{u[2]} {spk_b} 1.600 3.100"]  # segments 3 and 4 joined
    for k in range(4):  # the four references of the test set
        name = "text" if k == 0 else f"text.{k + 1}"
        assert lines(data / "test_cs" / name) == [f"{u[2]} well i have a meeting tomorrow ({k})"]
    assert not (data / "train" / "text.2").exists()
    assert len(lines(data / "eval_cs" / "utt2spk")) == 3 and len(lines(data / "eval_mono" / "utt2spk")) == 9
    wav = dict(line.split(" ", 1) for line in lines(data / "test" / "wav.scp"))
    info = soundfile.info(wav[spk_b])
    assert (info.samplerate, info.channels) == (8000, 1)
    out = format_dir(str(data / "test_cs"), str(tmp_path / "dump" / "test_cs"), fs=16000, progress=False)
    audio, rate = soundfile.read(lines(tmp_path / "dump" / "test_cs" / "wav.scp")[0].split(" ", 1)[1])
    assert rate == 16000 and len(audio) == 24000  # 1.5 s at 16 kHz
    assert out


@pytest.mark.parametrize("case, message", [
    ("wrong_path", "Fisher: no LDC2010S01 speech directory {root}/nowhere"),
    ("missing_split", "Fisher: no file {root}/ldc/fisher-callhome-corpus/mapping/fisher_dev2"),
    ("bad_audio", "{root}/ldc/LDC2010S01/data/speech/20051001_120000_001_fsp.sph: cannot read the audio"),
])
def test_fisher_cs_errors_name_the_file(tmp_path, case, message):
    from csst_espnet.bin.prepare_corpus import main

    speech, transcripts, translations = write_fisher(
        tmp_path / "ldc", splits=("train", "dev", "test") if case == "missing_split" else ("train", "dev", "dev2", "test"),
        bad_audio=case == "bad_audio")
    if case == "wrong_path":
        speech = str(tmp_path / "nowhere")
    err = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        rc = main(["fisher_cs", "--speech", speech, "--transcripts", transcripts, "--translations", translations,
                   "--out", str(tmp_path / "data"), "--audio_dir", str(tmp_path / "audio")])
    finally:
        sys.stderr = sys_stderr
    assert rc == 1 and message.format(root=tmp_path) in err.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------------ CS-FLEURS
def write_cs_fleurs(root: Path, missing_audio: bool = False):
    """byan/cs-fleurs (read/test, xtts/test1: metadata.jsonl + audio/) and google/fleurs data/en_us/*.tsv."""
    rows = {"read/test": [("cmn_1001", "cmn-eng", "我们 用 gradient descent", "spk7"), ("spa_1002", "spa-eng", "pero the data", "spk8"),
                          ("cmn_1003", "cmn-eng", "这个 model 很 好", "spk7")],
            "xtts/test1": [("cmn_1002", "cmn-eng", "今天 的 lecture", "xtts_3")]}
    for k, (folder, items) in enumerate(rows.items()):
        lines_ = []
        for j, (uid, pair, text, spk) in enumerate(items):
            name = f"audio/{uid.split('_')[0]}/{uid}.wav"
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            if not (missing_audio and uid == "cmn_1003"):
                soundfile.write(root / folder / name, synth_utterance(40 + 10 * k + j, 0.5, 24000 if k else 16000), 24000 if k else 16000)
            lines_.append(json.dumps({"id": uid, "file_name": name, "text": text, "duration": 0.5, "language": pair,
                                      "speaker": spk}, ensure_ascii=False))
        (root / folder / "metadata.jsonl").write_text("\n".join(lines_) + "\n", encoding="utf-8")
    en = root.parent / "fleurs" / "data" / "en_us"
    en.mkdir(parents=True)
    (en / "test.tsv").write_text("1001\t1.wav\tWe use gradient descent.\twe use gradient descent\tw e\t8000\tMALE\n"
                                 "1002\t2.wav\tToday's lecture.\ttoday's lecture\tt o\t8000\tFEMALE\n")
    (en / "dev.tsv").write_text("1003\t3.wav\tThis model is good.\tthis model is good\tt h\t8000\tMALE\n")
    return root, en


def test_cs_fleurs_stages_1_to_4_write_the_evaluation_sets(tmp_path, monkeypatch):
    recipe = copy_recipe(tmp_path, "cs_fleurs")
    src, en = write_cs_fleurs(tmp_path / "cs-fleurs")
    (recipe / "db.sh").unlink()
    (recipe / "db.sh").write_text(f"CS_FLEURS={src}\nFLEURS_EN={en}\n")
    r = subprocess.run(["./run.sh", "--stop_stage", "4", "--sets", "read_test_cmn_eng xtts_test1_cmn_eng",
                        "--folders", "read/test,xtts/test1"], cwd=recipe,
                       capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert r.returncode == 0, r.stderr[-3000:]
    data = recipe / "data"
    assert lines(data / "read_test_cmn_eng" / "text") == ["spk7-cmn_1001 We use gradient descent.",
                                                          "spk7-cmn_1003 This model is good."]
    assert lines(data / "read_test_cmn_eng" / "utt2lang") == ["spk7-cmn_1001 cs", "spk7-cmn_1003 cs"]
    assert lines(data / "read_test_spa_eng" / "src_text") == ["spk8-spa_1002 pero the data"]
    monkeypatch.chdir(recipe)  # wav.scp paths are relative to the recipe
    for name in ("read_test_cmn_eng", "xtts_test1_cmn_eng"):  # formatted (24 kHz -> 16 kHz) and validated
        res = kd.validate(str(recipe / "dump" / "raw" / name), fs=16000, languages=("zh", "en", "cs"), progress=False)
        assert res.ok, res.issues


def test_cs_fleurs_errors_name_the_file(tmp_path):
    from csst_espnet.corpora.cs_fleurs import prepare
    from csst_espnet.data.manifest import ManifestError

    src, en = write_cs_fleurs(tmp_path / "cs-fleurs", missing_audio=True)
    with pytest.raises(ManifestError, match=f"{src}/read/test/metadata.jsonl:3: cannot read audio"):
        prepare(str(src), str(en), str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match=f"CS-FLEURS: no {src}/mms/test/metadata.jsonl"):
        prepare(str(src), str(en), str(tmp_path / "data"), folders=["mms/test"])
    with pytest.raises(FileNotFoundError, match=f"CS-FLEURS: no directory {tmp_path}/nowhere"):
        prepare(str(tmp_path / "nowhere"), str(en), str(tmp_path / "data"))


# ------------------------------------------------------------------------------------------ CoVoST 2
def write_covost2(root: Path, missing_clip: bool = False):
    """Common Voice 4 (fr: validated.tsv + clips/*.mp3, with a speaker in two clips), the CoVoST 2 release
    TSV of fr (train, train_covost, dev, test), zh-CN as get_covost_splits.py writes it, and FLEURS data/
    (en_us, fr_fr with audio/test)."""
    cv, covost = root / "cv-corpus-4", root / "covost"
    rows = {"fr": [("c1.mp3", 'Il a dit "bonjour".', "He said \"hello\".", "aa11", "train"),
                   ("c2.mp3", "L'élève apprend.", "The pupil learns.", "aa11", "train_covost"),
                   ("c3.mp3", "Le modèle est grand.", "The model is big.", "bb22", "dev"),
                   ("c4.mp3", "Merci beaucoup.", "Thank you very much.", "cc33", "test")],
            "zh-CN": [("z1.mp3", "这个模型很大。", "This model is big.", "dd44", "train"),
                      ("z2.mp3", "谢谢。", "Thanks.", "ee55", "dev"), ("z3.mp3", "你好。", "Hello.", "ff66", "test")]}
    for k, (locale, items) in enumerate(rows.items()):
        (cv / locale / "clips").mkdir(parents=True)
        for j, (clip, *_rest) in enumerate(items):
            soundfile.write(cv / locale / "clips" / clip, synth_utterance(60 + 10 * k + j, 0.6, 48000), 48000,
                            format="MP3")
        validated = [("client_id", "path", "sentence", "up_votes", "down_votes")] + [
            (f"{spk}{'0' * 40}", clip, sentence, "2", "0") for clip, sentence, _, spk, _ in items
            if not (missing_clip and clip == "c3.mp3")]
        (cv / locale / "validated.tsv").write_text("".join("\t".join(r) + "\n" for r in validated), encoding="utf-8")
    covost.mkdir()
    (covost / "covost_v2.fr_en.tsv").write_text("path\tsentence\ttranslation\tsplit\n" + "".join(
        f"{clip}\t{sentence}\t{translation}\t{split}\n" for clip, sentence, translation, _, split in rows["fr"]),
        encoding="utf-8")
    for split in ("train", "dev", "test"):
        (covost / f"covost_v2.zh-CN_en.{split}.tsv").write_text("path\tsentence\ttranslation\tclient_id\n" + "".join(
            f"{clip}\t{sentence}\t{translation}\t{spk}{'0' * 40}\n" for clip, sentence, translation, spk, s in rows["zh-CN"]
            if s == split), encoding="utf-8")
    fleurs = root / "fleurs" / "data"
    (fleurs / "en_us").mkdir(parents=True)
    (fleurs / "en_us" / "test.tsv").write_text("7\t7.wav\tGood morning.\tgood morning\tg o\t8000\tMALE\n")
    (fleurs / "fr_fr" / "audio" / "test").mkdir(parents=True)
    soundfile.write(fleurs / "fr_fr" / "audio" / "test" / "f7.wav", synth_utterance(90, 0.5), 16000)
    (fleurs / "fr_fr" / "test.tsv").write_text("7\tf7.wav\tBonjour.\tbonjour\tb o\t8000\tFEMALE\n")
    (fleurs / "cmn_hans_cn" / "audio" / "test").mkdir(parents=True)
    soundfile.write(fleurs / "cmn_hans_cn" / "audio" / "test" / "z7.wav", synth_utterance(91, 0.5), 16000)
    (fleurs / "cmn_hans_cn" / "test.tsv").write_text("7\tz7.wav\t早上好。\t早上好\tz a o\t8000\tMALE\n")
    return cv, covost, fleurs


def test_covost2_stages_1_to_4_write_the_x_en_sets_asr_copies_and_fleurs(tmp_path, monkeypatch):
    cv, covost, fleurs = write_covost2(tmp_path / "raw")
    recipe = copy_recipe(tmp_path, "covost2")
    r = subprocess.run(["./run.sh", "--locales", "fr,zh-CN", "--stop_stage", "4"], cwd=recipe, capture_output=True,
                       text=True, env=dict(os.environ, PYTHON=sys.executable, COMMON_VOICE=str(cv),
                                           COVOST2=str(covost), FLEURS=str(fleurs), PYTHONWARNINGS="ignore"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "labels in fr,zh,en,cs" in r.stderr  # --lang_pair fr,zh-en
    data = recipe / "data"
    spk = "fr" + ("aa11" + "0" * 40)[:16]  # the language and the first 16 characters of client_id
    assert lines(data / "train_fr" / "text") == [f'{spk}-c1 He said "hello".', f"{spk}-c2 The pupil learns."]
    assert lines(data / "train_fr" / "src_text") == [f'{spk}-c1 Il a dit "bonjour".', f"{spk}-c2 L'élève apprend."]
    assert lines(data / "train_fr" / "utt2spk") == [f"{spk}-c1 {spk}", f"{spk}-c2 {spk}"]
    assert lines(data / "dev_fr" / "text") == ["frbb22" + "0" * 12 + "-c3 The model is big."]
    assert lines(data / "test_zh" / "src_text") == ["zhff66" + "0" * 12 + "-z3 你好。"]
    assert set(kd.read_table(str(data / "train_zh" / "utt2lang")).values()) == {"zh"}
    assert lines(data / "fleurs_test_fr" / "text") == ["fleurs7-f7 Good morning."]
    assert lines(data / "fleurs_test_fr" / "src_text") == ["fleurs7-f7 Bonjour."]
    assert lines(data / "fleurs_test_zh" / "text") == ["fleurs7-z7 Good morning."]
    asr = kd.DataDir.read(str(data / "train_asr"))
    assert sorted(asr.utt["text"].values()) == sorted(["Il a dit \"bonjour\".", "L'élève apprend.", "这个模型很大。"])
    assert set(asr.utt["utt2task"].values()) == {"asr"}
    assert sorted(kd.read_table(str(data / "dev" / "utt2lang")).values()) == ["fr", "zh"]
    monkeypatch.chdir(recipe)  # wav.scp paths are relative to the recipe
    for name in ("train_fr", "test_fr", "train_zh", "test_zh", "fleurs_test_fr", "fleurs_test_zh", "train_asr", "dev",
                 "dev_asr", "train_phase3"):  # formatted (MP3 at 48 kHz -> 16 kHz wav) and validated
        res = kd.validate(str(recipe / "dump" / "raw" / name), fs=16000, languages=("fr", "zh", "en"), progress=False)
        assert res.ok, res.report()
    assert len(kd.read_table(str(recipe / "dump" / "raw" / "train_phase3" / "wav.scp"))) == 6  # 3 ASR + 3 ST


def test_covost2_errors_name_the_line(tmp_path, caplog):
    from csst_espnet.corpora.covost2 import prepare
    from csst_espnet.data.manifest import ManifestError

    cv, covost, fleurs = write_covost2(tmp_path / "raw", missing_clip=True)
    out = str(tmp_path / "data")
    with pytest.raises(ManifestError, match=f"{covost}/covost_v2.fr_en.tsv:4: clip not in {cv}/fr/validated.tsv"):
        prepare(str(cv), str(covost), out, locales=["fr"])
    prepare(str(cv), str(covost), out, locales=["fr"], splits=["train", "test"], allow_missing=True)
    assert "1 lines whose clip is not in this Common Voice copy left out" in caplog.text
    (cv / "fr" / "clips" / "c4.mp3").unlink()
    with pytest.raises(ManifestError, match="CoVoST 2: no utterances for dev_fr"):  # its one clip is missing
        prepare(str(cv), str(covost), out, locales=["fr"], allow_missing=True)
    with pytest.raises(ManifestError, match=f"{covost}/covost_v2.fr_en.tsv:5: cannot read audio"):
        prepare(str(cv), str(covost), out, locales=["fr"], splits=["test"], allow_missing=True)
    (covost / "covost_v2.fr_en.tsv").write_text("path\tsentence\ttranslation\nc1.mp3\tIl\tHe\n")
    with pytest.raises(ManifestError, match=r"covost_v2.fr_en.tsv:1: the header has no column split"):
        prepare(str(cv), str(covost), out, locales=["fr"])
    (covost / "covost_v2.fr_en.tsv").write_text("path\tsentence\ttranslation\tsplit\nc1.mp3\tIl\tHe\n")
    with pytest.raises(ManifestError, match=r"covost_v2.fr_en.tsv:2: its columns do not match the header's 4"):
        prepare(str(cv), str(covost), out, locales=["fr"])
    with pytest.raises(ValueError, match="xx is not a X->en source locale"):
        prepare(str(cv), str(covost), out, locales=["xx"])
