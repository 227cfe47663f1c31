"""The multilingual synthetic corpus of egs2/mini_multi (zh, es, fr, de -> en) with audio: made by the
recipe's data stage and by the generator alike (deterministic from the seed, byte-identical audio),
labels that match the speech and the words, held-out voice families."""

import os
import subprocess
import sys

import pytest

from conftest import audio_md5
from csst_espnet.data import kaldi_dir as kd
from csst_espnet.synth import corpus, espeak
from csst_espnet.synth.grammar import words
from csst_espnet.synth.grammar_zh_en import has_cjk
from csst_espnet.synth.pairs import get_pairs

pytestmark = pytest.mark.skipif(not espeak.is_available(), reason="espeakng-loader not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "egs2", "mini_multi", "st1")
PAIRS = get_pairs("zh-en,es-en,fr-en,de-en")
SETS = corpus.set_names(PAIRS)
LANGUAGES = {lang.code: lang for lang in corpus.corpus_languages(PAIRS)}


def _files(data):
    """Every file of the corpus but its audio paths and timing, as bytes."""
    out = {}
    for root, _, files in os.walk(data):
        for f in files:
            if f not in ("mini_cs_stats.json", "wav.scp"):
                with open(os.path.join(root, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(root, f), data)] = fh.read()
    return out



@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The tiny corpus made by the recipe (``./run.sh --stage 1 --stop_stage 1``, one synthesis process)
    and by the generator (two processes), with the same seed."""
    root = tmp_path_factory.mktemp("mini_multi")
    recipe = root / "st1"
    recipe.mkdir()
    for f in ("run.sh", "local", "csst.sh", "path.sh", "cmd.sh", "db.sh", "scripts"):
        os.symlink(os.path.realpath(os.path.join(RECIPE, f)), recipe / f)
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO)
    r = subprocess.run(["./run.sh", "--preset", "tiny", "--stage", "1", "--stop_stage", "1",
                        "--local_data_opts", "--preset tiny --seed 11 --nj 1 --wav_dir wav"],
                       cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    b = os.path.join(root, "b", "data")
    corpus.generate(b, pair="zh-en,es-en,fr-en,de-en", seed=11, preset="tiny", nj=2, progress=False)
    return str(recipe / "data"), b


def test_recipe_and_generator_make_the_same_corpus(corpora):
    """The same speech sets; the recipe also writes the LM text's translation pairs as text-only sets."""
    a, b = corpora
    fa, fb = _files(a), _files(b)
    mt = {f: v for f, v in fa.items() if f.startswith("train_mt_")}
    assert fa.keys() - mt.keys() == fb.keys() and {f: v for f, v in fa.items() if f not in mt} == fb
    assert {f.split("/")[0] for f in fa} == set(SETS) | {"lm_text", "local"} | {f"train_mt_{x}" for x in "zh es fr de".split()}
    for lang in ("zh", "es", "fr", "de"):
        pairs = [line.split("\t") for line in open(os.path.join(a, "lm_text", f"{lang}2en.tsv"), encoding="utf-8").read().splitlines()]
        mt_dir = os.path.join(a, f"train_mt_{lang}")
        assert not os.path.exists(os.path.join(mt_dir, "wav.scp"))
        assert set(kd.read_table(os.path.join(mt_dir, "utt2task")).values()) == {"mt"}
        assert sorted(zip(kd.read_table(os.path.join(mt_dir, "src_text")).values(),
                          kd.read_table(os.path.join(mt_dir, "text")).values())) == sorted({tuple(p) for p in pairs})
    assert sorted(os.listdir(os.path.join(a, "lm_text"))) == [
        "de.txt", "de2en.tsv", "en.txt", "es.txt", "es2en.tsv", "fr.txt", "fr2en.tsv", "zh.txt", "zh2en.tsv"]
    ma = audio_md5(a, SETS)
    assert ma == audio_md5(b, SETS) and len(ma) == 128


def test_labels_match_speech_and_words(corpora):
    """utt2lang is the language of every frame of the speech (lang_ali), and the transcripts are words of
    that language: Mandarin characters, the Spanish/French/German/English vocabularies of the grammars,
    both languages of the pair in code-switched speech; translations are English."""
    a = corpora[0]
    vocab = {p.source.code: __import__(f"csst_espnet.synth.grammar_{p.source.code}_en",
                                       fromlist=["GRAMMAR"]).GRAMMAR for p in PAIRS}
    english = set().union(*(g.words(target=True) for g in vocab.values()))
    source = {code: g.words(target=False) for code, g in vocab.items()}

    def words_of(lang, text):
        if lang == "zh":  # sentences of Mandarin characters, separated by spaces
            return all(has_cjk(w) and not any(c.isascii() for c in w) for w in text.split())
        return set(words(text)) <= (english if lang == "en" else source[lang]) and not has_cjk(text)

    for s in SETS:
        d = os.path.join(a, s)
        tab = {n: kd.read_table(os.path.join(d, n)) for n in ("utt2lang", "utt2task", "lang_ali", "src_text", "text")}
        for u, lang in tab["utt2lang"].items():
            frames = set(tab["lang_ali"][u].split()) - {kd.UNLABELLED_FRAME}
            src_text, text = tab["src_text"][u], tab["text"][u]
            if lang == "cs":
                (matrix,) = frames - {"en"}
                assert frames == {matrix, "en"} and matrix in ("zh", "es"), (s, u, frames)
                assert any(c.isascii() and c.isalpha() for c in src_text) and not words_of("en", src_text)
                assert matrix == "zh" or set(words(src_text)) <= source[matrix] | english, (s, u, src_text)
            else:
                assert frames == {lang}, (s, u, frames)
                assert words_of(lang, src_text), (s, u, src_text)
            if tab["utt2task"][u] == "st":
                assert words_of("en", text), (s, u, text)
            else:
                assert text == src_text
        expect = s.split("_")[2] if s.startswith(("train_asr_", "train_st_", "test_mono_")) else "cs" \
            if s.startswith(("train_cs_", "test_cs_")) else None
        assert expect is None or set(tab["utt2lang"].values()) == {expect}, s
        if s.startswith("test_"):
            assert kd.read_table(os.path.join(d, "text.2")).keys() == tab["text"].keys()
    with open(os.path.join(a, "local", "phones.txt"), encoding="utf-8") as f:
        prefixes = {line.split()[0].split(":")[0] for line in f.read().splitlines()[1:]}
    assert prefixes == {"zh", "es", "fr", "de", "en"}
    res = [kd.validate(os.path.join(a, s), languages=list(LANGUAGES) + ["cs"], fs=16000, progress=False)
           for s in SETS]
    assert all(r.ok for r in res), [r.report() for r in res if not r.ok]


def test_word_lang_labels_every_word_of_src_text(corpora):
    """word_lang: one label per src_text word, the utterance's language in monolingual speech; in
    code-switched speech English exactly where lang_ali has English frames, on words of the English
    vocabulary (es-en), and the matrix language on the others."""
    a = corpora[0]
    grammar = __import__("csst_espnet.synth.grammar_es_en", fromlist=["GRAMMAR"]).GRAMMAR
    english, spanish = grammar.words(target=True), grammar.words(target=False)
    for s in SETS:
        d = os.path.join(a, s)
        tab = {n: kd.read_table(os.path.join(d, n)) for n in ("utt2lang", "src_text", "lang_ali", kd.WORD_LANG)}
        assert tab[kd.WORD_LANG].keys() == tab["src_text"].keys(), s
        for u, lang in tab["utt2lang"].items():
            labels, src_words = tab[kd.WORD_LANG][u].split(), tab["src_text"][u].split()
            assert len(labels) == len(src_words), (s, u)
            frames = set(tab["lang_ali"][u].split()) - {kd.UNLABELLED_FRAME}
            assert set(labels) == (frames if lang == "cs" else {lang}), (s, u, labels)
            if lang == "cs" and "es" in frames:
                by_lang = {g: {w for w, x in zip(src_words, labels) if x == g} for g in ("es", "en")}
                assert by_lang["en"] <= english and by_lang["es"] <= spanish, (s, u)


def test_held_out_voices(corpora):
    """The voice families of dev_unseen and the test _unseen sets are never heard in training, dev or the
    other test sets; the held-out accents (es, fr-ch, en-gb-scotland, en-029) are not heard there either."""
    a = corpora[0]
    held = set(corpus.TEST_FAMILIES + corpus.DEV_FAMILIES)
    seen_families, seen_voices = {}, {}
    for s in SETS:
        voices = [v.split()[0].split(",") for v in kd.read_table(os.path.join(a, s, "utt2voice")).values()]
        seen_voices[s] = {v.split("+")[0] for vs in voices for v in vs}
        seen_families[s] = {v.split("+")[1].rstrip("0123456789").lower() for vs in voices for v in vs}
    training = [s for s in SETS if not s.endswith("_unseen")]
    assert not set().union(*(seen_families[s] for s in training)) & held
    assert set().union(*(seen_voices[s] for s in training)) <= {v for lang in LANGUAGES.values() for v in lang.voices}
    for s in SETS:
        if s.endswith("_unseen"):
            assert seen_families[s] <= set(corpus.DEV_FAMILIES if s == "dev_unseen" else corpus.TEST_FAMILIES), s


def test_voices_exist():
    """Every voice of the corpus (training and held-out accents) is one of eSpeak NG's, with the variants
    of the held-out families too, and speaks its own language (not English's phonemes)."""
    variants = corpus.voice_groups(espeak.voice_variants())
    word = {"zh": "模型", "es": "modelo", "fr": "modèle", "de": "Modell", "en": "model"}
    english = espeak.text_to_phonemes([word["en"]], "en-us")[0]
    for code, lang in LANGUAGES.items():
        for voice in lang.voices + lang.unseen_voices:
            for variant in (variants["train"][0], variants["dev_unseen"][0], variants["test_unseen"][0]):
                phonemes = espeak.text_to_phonemes([word[code]], f"{voice}+{variant}")[0]
                assert phonemes and (code == "en" or phonemes != english), (voice, variant, phonemes)
