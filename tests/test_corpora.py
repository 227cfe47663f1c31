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
