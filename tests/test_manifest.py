"""Manifest import (csst_espnet.data.manifest) and the language labelling rules (data.language_id)."""

import json
import subprocess
from collections import Counter
import sys
from pathlib import Path

import pytest
import soundfile

from conftest import synth_utterance
from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.language_id import language_of, latin_language
from csst_espnet.data.manifest import ManifestError, import_manifest, safe_id
from csst_espnet.synth.pairs import get_pair

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, pair, label", [
    ("我们 用 gradient descent 来 训练", "zh-en", "cs"),
    ("这个 模型 很 好", "zh-en", "zh"),
    ("the loss goes down", "en-zh", "en"),
    ("2024", "zh-en", None),
    ("pero the meeting was late", "es-en", "cs"),
    ("sí claro porque mañana", "es-en", "es"),
    ("yeah I know what you mean", "es-en", "en"),
    ("mhm okay", "es-en", None),
    ("nous utilisons the gradient descent pour entraîner ce modèle", "fr-en", "cs"),
    ("c'est tout pour aujourd'hui", "fr-en", "fr"),
    ("we will talk about it on monday", "en-fr", "en"),
    ("ok 2024", "fr-en", None),
    ("wir verwenden the loss function", "de-en", "cs"),
    ("das ist alles für heute", "de-en", "de"),
    ("this is all for today", "de-en", "en"),
    ("so was in an", "de-en", None),  # English and German words alike
])
def test_language_rules(text, pair, label):
    assert language_of(text, pair) == label


@pytest.mark.parametrize("source", ["es", "fr", "de"])
def test_word_rules_on_every_sentence_of_the_synthetic_grammars(source):
    """Over a grammar's ~1,400 sentences: every translation (and paraphrase) is English by the pair's
    rule and by latin_language, never another language; every source sentence is the source language by
    the pair's rule, and by latin_language (among en, es, fr, de) at least 90 %, never another."""
    pair = get_pair(f"{source}-en")
    sentences = pair.sentences(7)
    found = Counter(latin_language(s.source) for s in sentences)
    assert set(found) <= {source, None} and found[source] >= 0.9 * len(sentences), found
    assert {language_of(s.source, pair.name) for s in sentences} == {source}
    english = [t for s in sentences for t in (s.target, s.target_alt)]
    assert {latin_language(t) for t in english} == {"en"}
    assert {language_of(t, pair.name) for t in english} == {"en"}


def test_a_pair_without_a_rule_needs_labels():
    with pytest.raises(ValueError, match="no language labelling rule for the pair 'ja-en'"):
        language_of("テスト", "ja-en")


def write_wav(path: Path, seed: int, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, synth_utterance(seed, seconds), 16000)
    return path


def test_tsv_import_derives_labels_tasks_speakers_and_safe_ids(tmp_path):
    write_wav(tmp_path / "audio" / "lecture 1.wav", 0, 3.0)
    write_wav(tmp_path / "audio" / "q.flac", 1, 0.5)
    rows = [
        "audio\tstart\tend\ttranscript\ttranslation\tspeaker",
        "audio/lecture 1.wav\t0.5\t1.25\t我们 用 gradient descent\twe use gradient descent\t李 老师",
        "audio/lecture 1.wav\t1.5\t\t这个 模型\tthis model\t李 老师",
        "audio/lecture 1.wav\t0\t0.4\tthe loss goes down\t\t",
        "audio/q.flac\t\t\t2024\t2024\t",
    ]
    (tmp_path / "m").mkdir()
    manifest = tmp_path / "m" / "train.tsv"
    manifest.write_text("\n".join(rows).replace("audio/", "../audio/") + "\n", encoding="utf-8")
    summary = import_manifest(str(manifest), str(tmp_path / "train"), "zh-en", subsets=True)
    d = tmp_path / "train"
    spk = "u674e_u8001u5e08"  # 李 老师: code points, the space -> _
    assert safe_id("李 老师") == spk
    u1, u2 = f"{spk}-lecture_1-0000050-0000125", f"{spk}-lecture_1-0000150-0000300"
    u3, u4 = "lecture_1-0000000-0000040", "q"  # q: a whole file, no speaker: the recording
    ids = sorted([u1, u2, u3, u4])
    assert (d / "utt2spk").read_text() == "".join(f"{u} {s}\n" for u, s in sorted(
        [(u1, spk), (u2, spk), (u3, "lecture_1"), (u4, "q")]))
    assert (d / "utt2lang").read_text() == "".join(f"{u} {v}\n" for u, v in sorted(
        [(u1, "cs"), (u2, "zh"), (u3, "en"), (u4, "zh")]))  # u4: no evidence -> the source language
    assert (d / "utt2task").read_text() == "".join(f"{u} {v}\n" for u, v in sorted(
        [(u1, "st"), (u2, "st"), (u3, "asr"), (u4, "st")]))
    assert (d / "text").read_text().splitlines()[ids.index(u3)] == f"{u3} the loss goes down"  # ASR: the transcript
    assert (d / "segments").read_text().splitlines()[ids.index(u2)] == f"{u2} lecture_1 1.500 3.000"  # to the end
    assert (d / "wav.scp").read_text() == (f"lecture_1 {tmp_path}/audio/lecture 1.wav\n"
                                           f"q {tmp_path}/audio/q.flac\n")
    res = kd.validate(str(d), fs=16000, languages=("zh", "en", "cs"), progress=False)
    assert res.ok, res.issues
    assert (summary.utterances, summary.derived_languages, summary.fallback_languages) == (4, 4, 1)
    assert (d.parent / "train_cs" / "utt2lang").read_text() == f"{u1} cs\n"
    assert (d.parent / "train_mono" / "utt2spk").read_text().split()[::2] == sorted([u2, u3, u4])


def test_jsonl_import_keeps_several_references_and_given_labels(tmp_path):
    wav = write_wav(tmp_path / "a.wav", 2, 0.6)
    lines = [
        {"audio": str(wav), "transcript": "pero the meeting", "translation": ["but the meeting", "yet the meeting"],
         "speaker": "B", "id": "call7/B"},
        {"audio": str(wav), "transcript": "hola", "translation": ["hello", "hi"], "lang": "es", "speaker": "B",
         "id": "call7/B2"},
    ]
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    import_manifest(str(manifest), str(tmp_path / "test"), "es-en")
    d = tmp_path / "test"
    assert (d / "text").read_text() == "B-call7_B but the meeting\nB-call7_B2 hello\n"
    assert (d / "text.2").read_text() == "B-call7_B yet the meeting\nB-call7_B2 hi\n"
    assert (d / "utt2lang").read_text() == "B-call7_B cs\nB-call7_B2 es\n"
    assert (d / "src_text").read_text() == "B-call7_B pero the meeting\nB-call7_B2 hola\n"
    assert not (d / "segments").exists()


@pytest.mark.parametrize("body, message", [
    ("audio\ttranscript\nmissing.wav\thello\n", "train.tsv:2: cannot read audio {root}/missing.wav"),
    ("audio\ttranscript\nbad.wav\thello\n", "train.tsv:2: cannot read audio {root}/bad.wav"),
    ("audio\ttext\nok.wav\thello\n", "train.tsv:2: unknown field(s) ['text']"),
    ("audio\ttranscript\nok.wav\thello\nok.wav\tworld\n", "train.tsv:3: utterance id ok is also that of"),
    ("audio\ttranscript\tend\nok.wav\thello\t9\n", "train.tsv:2: end 9.00 s is after the end of"),
    ("audio\ttranscript\nok.wav\n", "train.tsv:2: 1 columns, the header has 2"),
])
def test_import_errors_name_the_line_and_file(tmp_path, body, message):
    write_wav(tmp_path / "ok.wav", 3, 0.5)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    (tmp_path / "train.tsv").write_text(body)
    with pytest.raises(ManifestError) as e:
        import_manifest(str(tmp_path / "train.tsv"), str(tmp_path / "out"), "zh-en")
    assert message.format(root=tmp_path) in str(e.value)


def test_cli_reports_errors_and_summary(tmp_path):
    write_wav(tmp_path / "ok.wav", 4, 0.5)
    (tmp_path / "m.tsv").write_text("audio\ttranscript\nok.wav\t你好 world\n")
    cmd = [sys.executable, "-m", "csst_espnet.bin.data_dir", "import-manifest", str(tmp_path / "m.tsv"),
           str(tmp_path / "out"), "--lang-pair", "zh-en"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "1 utterances (cs:1; asr:1), 1 speakers, 1 recordings" in r.stdout
    r = subprocess.run(cmd[:4] + [str(tmp_path / "none.tsv")] + cmd[5:], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and f"no manifest {tmp_path}/none.tsv" in r.stderr
