"""The synthetic mini_cs corpus: eSpeak NG synthesis, determinism, set structure, held-out voices,
phone alignments."""

import json
import os
import random
import subprocess
import sys

import pytest
import soundfile

from conftest import audio_md5
from csst_espnet.data import kaldi_dir as kd
from csst_espnet.synth import corpus, espeak
from csst_espnet.synth.grammar import join_segments
from csst_espnet.synth.grammar_zh_en import GRAMMAR, TEMPLATES, has_cjk
from csst_espnet.synth.pairs import get_pair

pytestmark = pytest.mark.skipif(not espeak.is_available(), reason="espeakng-loader not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_SH = os.path.join(REPO, "egs2", "mini_cs", "st1", "local", "data.sh")
ZH_EN = get_pair("zh-en")
SET_NAMES = corpus.set_names([ZH_EN])
TINY = corpus.preset_sizes("tiny", [ZH_EN])
TINY.update({unseen: TINY[base] for unseen, base in corpus.unseen_of([ZH_EN]).items()})  # the same utterances


def _texts(data):
    """Every text file of every set (and the LM text), as bytes."""
    out = {}
    for root, _, files in os.walk(data):
        for f in files:
            if f == "mini_cs_stats.json" or f == "wav.scp":
                continue
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, data)] = fh.read()
    return out



@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The tiny corpus made twice with the same seed (once through local/data.sh, nj=1)
    and once with another seed."""
    root = tmp_path_factory.mktemp("mini_cs")
    a = os.path.join(root, "a", "data")
    corpus.generate(a, seed=11, preset="tiny", nj=2, progress=False)
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", DATA_SH, "--preset", "tiny", "--seed", "11", "--nj", "1",
                        "--out", "data", "--wav-dir", "wav"],
                       cwd=os.path.join(root), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    b = os.path.join(root, "data")
    c = os.path.join(root, "c", "data")
    corpus.generate(c, seed=12, preset="tiny", nj=2, progress=False)
    return a, b, c


def test_same_seed_same_corpus(corpora):
    a, b, c = corpora
    ta, tb = _texts(a), _texts(b)
    assert ta.keys() == tb.keys() and ta == tb
    for s in SET_NAMES:  # (compared above with every file; named here for clarity)
        assert ta[f"{s}/phone_ali"] == tb[f"{s}/phone_ali"]
    assert ta["local/phones.txt"] == tb["local/phones.txt"]
    ma, mb = audio_md5(a, SET_NAMES), audio_md5(b, SET_NAMES)
    assert ma == mb and len(ma) == sum(TINY[s] for s in SET_NAMES)
    # another seed gives another corpus
    assert _texts(c)["test_cs/text"] != ta["test_cs/text"]
    assert set(audio_md5(c, SET_NAMES).values()) != set(ma.values())


def test_sets_files_sorted_and_valid(corpora):
    a = corpora[0]
    for s in SET_NAMES:
        d = os.path.join(a, s)
        res = kd.validate(d, languages=["zh", "en", "cs"], fs=16000, min_dur=0.8, max_dur=15.0, progress=False)
        assert res.ok, res.report()
        assert len(kd.DataDir.read(d)) == TINY[s]
        for n in ("text", "src_text", "utt2lang", "utt2task", "utt2dur", "utt2spk", "spk2utt", "wav.scp", "phone_ali"):
            with open(os.path.join(d, n), "rb") as f:
                keys = [l.split(b" ")[0] for l in f.read().splitlines()]
            assert keys == sorted(keys) and len(keys) == len(set(keys)), (s, n)
        for u, p in kd.read_table(os.path.join(d, "wav.scp")).items():
            info = soundfile.info(p)
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    assert set(os.listdir(os.path.join(a, "lm_text"))) == {"zh.txt", "en.txt", "zh2en.tsv"}


def test_languages_tasks_and_texts(corpora):
    a = corpora[0]

    def tab(s, n):
        return kd.read_table(os.path.join(a, s, n))

    expect = {"train_asr_zh": ({"zh"}, "asr"), "train_asr_en": ({"en"}, "asr"),
              "train_st_zh": ({"zh"}, "st"), "train_cs": ({"cs"}, "st"),
              "dev": ({"zh", "cs"}, "st"), "dev_unseen": ({"zh", "cs"}, "st"), "test_cs": ({"cs"}, "st"),
              "test_mono": ({"zh"}, "st"), "test_cs_unseen": ({"cs"}, "st"), "test_mono_unseen": ({"zh"}, "st")}
    for s, (langs, task) in expect.items():
        assert set(tab(s, "utt2lang").values()) == langs, s
        assert set(tab(s, "utt2task").values()) == {task}, s
        text, src = tab(s, "text"), tab(s, "src_text")
        for u in text:
            if task == "asr":
                assert text[u] == src[u]
            else:
                assert not has_cjk(text[u])          # English translation
            if "en" in langs:
                assert not has_cjk(src[u])
    for s in ("train_cs", "test_cs"):
        for u, src in tab(s, "src_text").items():
            assert has_cjk(src) and any(c.isascii() and c.isalpha() for c in src), src
    lang = tab("dev", "utt2lang")
    for u, src in tab("dev", "src_text").items():
        assert (lang[u] == "cs") == any(c.isascii() and c.isalpha() for c in src)
    for s in corpus.test_sets([ZH_EN]):   # a second reference for the test sets
        assert tab(s, "text.2").keys() == tab(s, "text").keys()


def test_voice_families_held_out(corpora):
    a = corpora[0]

    def families(s):
        voices = kd.read_table(os.path.join(a, s, "utt2voice")).values()
        return {v.split()[0].split(",")[0].split("+")[1].rstrip("0123456789").lower() for v in voices}

    train = set().union(*(families(s) for s in ("train_asr_zh", "train_asr_en", "train_st_zh", "train_cs", "dev",
                                                "test_cs", "test_mono")))
    held = set(corpus.TEST_FAMILIES) | set(corpus.DEV_FAMILIES)
    assert train and not (train & held)
    test_unseen = families("test_cs_unseen") | families("test_mono_unseen")
    assert test_unseen and test_unseen <= set(corpus.TEST_FAMILIES)
    assert families("dev_unseen") and families("dev_unseen") <= set(corpus.DEV_FAMILIES)
    for unseen, base in corpus.unseen_of([ZH_EN]).items():  # the same utterances, other speakers
        texts = lambda s, n: sorted(kd.read_table(os.path.join(a, s, n)).values())
        assert texts(unseen, "text") == texts(base, "text") and texts(unseen, "src_text") == texts(base, "src_text")
    spk_train = set().union(*(set(kd.read_table(os.path.join(a, s, "utt2spk")).values())
                              for s in ("train_asr_zh", "train_cs", "dev")))
    spk_test = set(kd.read_table(os.path.join(a, "test_cs", "utt2spk")).values())
    assert not (spk_train & spk_test)

    # dev/test sentences never appear in training data or LM text
    held = set()
    for s in ("dev", "test_cs", "test_mono"):
        held |= set(kd.read_table(os.path.join(a, s, "text")).values())
    seen = set()
    for s in ("train_asr_en", "train_st_zh", "train_cs"):
        seen |= set(kd.read_table(os.path.join(a, s, "text")).values())
    with open(os.path.join(a, "lm_text", "en.txt"), encoding="utf-8") as f:
        seen |= set(f.read().splitlines())
    with open(os.path.join(a, "lm_text", "zh2en.tsv"), encoding="utf-8") as f:
        seen |= {l.split("\t")[1] for l in f.read().splitlines()}
    assert held and not (held & seen)


def test_phone_ali(corpora):
    a = corpora[0]
    with open(os.path.join(a, "local", "phones.txt"), encoding="utf-8") as f:
        rows = [line.split() for line in f.read().splitlines()]
    phones = {p: int(i) for p, i in rows}
    assert rows[0] == ["sil", "0"] and [int(i) for _, i in rows] == list(range(len(rows)))
    assert [p for p, _ in rows[1:]] == sorted(p for p, _ in rows[1:])
    assert all(p.split(":", 1)[0] in ("zh", "en") and "'" not in p and "," not in p for p, _ in rows[1:])
    with open(os.path.join(a, "local", "mini_cs_stats.json"), encoding="utf-8") as f:
        assert json.load(f)["num_phones"] == len(phones) > 40
    name = {i: p for p, i in phones.items()}
    used = set()
    for s in SET_NAMES:
        d = os.path.join(a, s)
        ali = kd.read_table(os.path.join(d, "phone_ali"))
        wav, lang = kd.read_table(os.path.join(d, "wav.scp")), kd.read_table(os.path.join(d, "utt2lang"))
        assert list(ali) == list(wav), s
        for u, v in ali.items():
            ids = [int(x) for x in v.split()]
            assert all(0 <= i < len(phones) for i in ids), u
            used |= set(ids)
            assert abs(len(ids) - soundfile.info(wav[u]).frames / 160) <= 1, u  # 10 ms frames at 16 kHz
            assert ids[:5] == [0] * 5 and ids[-5:] == [0] * 5, u  # the added lead and tail silence
            langs = {name[i].split(":")[0] for i in ids if i != 0}
            assert langs == ({"zh", "en"} if lang[u] == "cs" else {lang[u]}), (u, langs)
            assert sum(i != 0 for i in ids) > len(ids) / 2, u  # mostly speech
    assert used == set(range(len(phones)))  # the inventory is what the sets use



def test_lang_ali_is_the_language_of_the_phone_ali(corpora):
    a = corpora[0]
    with open(os.path.join(a, "local", "phones.txt"), encoding="utf-8") as f:
        name = {int(i): p for p, i in (line.split() for line in f.read().splitlines())}
    for s in SET_NAMES:
        d = os.path.join(a, s)
        ali, lang_ali = kd.read_table(os.path.join(d, "phone_ali")), kd.read_table(os.path.join(d, "lang_ali"))
        assert list(lang_ali) == list(ali), s
        for u, codes in lang_ali.items():
            assert codes.split() == ["-" if i == "0" else name[int(i)].split(":")[0] for i in ali[u].split()], u
        utt2lang = kd.read_table(os.path.join(d, "utt2lang"))
        for u, codes in lang_ali.items():  # code-switched speech has frames of both languages
            assert set(codes.split()) - {"-"} == ({"zh", "en"} if utt2lang[u] == "cs" else {utt2lang[u]}), u


def test_frame_labels_and_phone_events():
    # 22050 Hz phones over a clip that is 0.3 s (30 frames) at 16 kHz; the last of equal starts counts
    phones = [(0, "sil"), (2205, "zh:x"), (2205, "zh:a"), (4410, "sil")]
    assert corpus.frame_labels(phones, 22050, 4800) == ["sil"] * 10 + ["zh:a"] * 10 + ["sil"] * 10
    assert len(corpus.frame_labels(phones, 22050, 4801)) == 31  # a partial last frame counts
    assert espeak.normalize_phone("'ong") == "ong" and espeak.normalize_phone(",eI") == "eI"
    assert {espeak.normalize_phone(p) for p in ("_", "_:", "_|", "_!")} == {"sil"}
    text = "we use gradient descent"
    audio, ph = next(espeak.run_isolated(_synth_phones, [(text, "en-us")]))
    assert audio.tobytes() == espeak.synthesize(text, "en-us", rate=175, pitch=50, seed=3).tobytes()
    starts = [s for s, _ in ph]
    assert starts[0] == 0 and starts == sorted(set(starts)) and starts[-1] < len(audio)
    assert all(a != b for (_, a), (_, b) in zip(ph, ph[1:]))  # repeats merged
    assert {"w", "u:", "g", "d"} <= {p for _, p in ph} and not any("'" in p or p.startswith("_") for _, p in ph)


def _synth_phones(engine, job):
    return engine.synth_phones(*job, seed=3)


def test_generator_translations_and_code_switching():
    sents = GRAMMAR.all_sentences()
    assert len(sents) > 2000
    rng = random.Random(0)
    for s in sents[::97]:
        assert has_cjk(s.source) and not has_cjk(s.target) and not has_cjk(s.target_alt)
        if s.can_switch:
            segs = s.cs_segments(rng)
            langs = [l for _, l in segs]
            assert "zh" in langs and "en" in langs
            assert all(a != b for a, b in zip(langs, langs[1:]))   # runs alternate
            cs = join_segments(segs)
            assert has_cjk(cs) and "  " not in cs
    # every template keeps Mandarin words outside its slots, so CS always has both scripts
    for zh, _, _ in TEMPLATES:
        assert has_cjk("".join(p for p in zh.replace("}", "{").split("{")[::2]))


def test_language_pair_registry():
    with pytest.raises(ValueError, match="unknown language pair 'ja-en'; available: de-en, es-en, fr-en, zh-en"):
        get_pair("ja-en")
    assert (ZH_EN.source.code, ZH_EN.target.code) == ("zh", "en")
    assert SET_NAMES == ["train_asr_zh", "train_asr_en", "train_st_zh", "train_cs", "dev", "dev_unseen", "test_cs",
                         "test_mono", "test_cs_unseen", "test_mono_unseen"]
    assert set(SET_NAMES) <= set(TINY) and TINY["train_asr_zh"] == 6
    r = subprocess.run([sys.executable, "-m", "csst_espnet.bin.synth_corpus", "--pair", "ja-en"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "available: de-en, es-en, fr-en, zh-en" in r.stderr


def test_isolated_synthesis_is_reproducible():
    a = espeak.synthesize("我们用梯度下降来训练", "cmn+m3", rate=190, pitch=40, seed=5)
    b = espeak.synthesize("我们用梯度下降来训练", "cmn+m3", rate=190, pitch=40, seed=5)
    assert a.dtype.name == "int16" and len(a) > 0.5 * espeak.ENGINE_SAMPLE_RATE
    assert a.tobytes() == b.tobytes()
    assert espeak.text_to_phonemes(["gradient"], "en-us")[0]


def test_utterance_lengths_and_switch_patterns():
    """Demo plan (no audio): utterances of 1-3 sentences in every set, code-switching from a single
    term to most of the utterance."""
    sets, lm, _ = corpus.plan_corpus([ZH_EN], 777, corpus.preset_sizes("demo", [ZH_EN]))
    keys = {name: {k for u in utts for k in u.keys} for name, utts in sets.items()}
    held = set().union(*(keys[s] for s in ("dev", "test_cs", "test_mono")))
    trained = set().union(*(keys[s] for s in ("train_asr_zh", "train_asr_en", "train_st_zh", "train_cs")))
    assert held and not (held & trained)
    for name, utts in sets.items():
        counts = {len(u.keys) for u in utts}
        assert counts == {1, 2, 3}, (name, counts)
    shares = []
    for u in sets["train_cs"]:
        runs = [r for sentence in u.sentences for r in sentence]
        assert {lang for _, lang in runs} == {"zh", "en"}, u.utt
        en = sum(len(t.split()) for t, lang in runs if lang == "en")
        zh = sum(len(t) for t, lang in runs if lang == "zh")
        shares.append(en / (en + zh))
    assert min(shares) < 0.15 and max(shares) > 0.5
