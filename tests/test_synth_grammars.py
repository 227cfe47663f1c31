"""Sentence grammars of the synthetic corpora (no audio): exact, unambiguous translations, code-switched
renditions that keep the translation, words in the language they are labelled with; the plan of the
multilingual corpus (deterministic, held-out sentences and voices)."""

import collections
import importlib
import random

import pytest

from csst_espnet.synth import corpus
from csst_espnet.synth.grammar import Determiners, Grammar, Template, Term, words
from csst_espnet.synth.grammar_zh_en import has_cjk
from csst_espnet.synth.lecture_en import TEMPLATES as EN_TEMPLATES
from csst_espnet.synth.pairs import PAIRS, get_pair, get_pairs

GRAMMARS = {name: importlib.import_module(module).GRAMMAR for name, module in PAIRS.items()}
MULTI = "zh-en,es-en,fr-en,de-en"


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_translations_are_one_to_one(name):
    """A source sentence always gets the same translation, and a translation comes from one source."""
    g = GRAMMARS[name]
    targets, sources = collections.defaultdict(set), collections.defaultdict(set)
    sentences = g.all_sentences()
    for s in sentences:
        targets[s.source].add(s.target)
        sources[s.target].add(s.source)
    assert len(sentences) > 1000
    assert max(len(v) for v in targets.values()) == 1 and max(len(v) for v in sources.values()) == 1
    assert all(s.target != s.target_alt for s in sentences if s.template == sentences[0].template)


@pytest.mark.parametrize("name", ["es-en", "fr-en", "de-en"])
def test_words_are_of_their_language(name):
    """Every source word is of the grammar's source vocabulary, every sentence has a word English does
    not have, and translations are English words only; 100-200 source words per language."""
    g = GRAMMARS[name]
    src_vocab, en_vocab = g.words(target=False), g.words(target=True)
    assert 120 <= len(src_vocab) <= 220, len(src_vocab)
    for s in g.all_sentences()[::7]:
        assert set(words(s.source)) <= src_vocab, s.source
        assert set(words(s.source)) - en_vocab, s.source
        assert set(words(s.target)) | set(words(s.target_alt)) <= en_vocab, s.target
        assert not has_cjk(s.source) and s.source == " ".join(s.source.split())


def test_mandarin_sentences_are_mandarin():
    for s in GRAMMARS["zh-en"].all_sentences()[::11]:
        assert has_cjk(s.source) and not has_cjk(s.target) and " " not in s.source


@pytest.mark.parametrize("name", ["zh-en", "es-en"])
def test_code_switched_renditions_keep_the_translation(name):
    """The English runs of a code-switched rendition are said as in the sentence's translation, the
    source runs are source-language words, and renditions range from one term to most of the sentence."""
    pair, g = get_pair(name), GRAMMARS[name]
    src = pair.source.code
    src_vocab, en_vocab = g.words(target=False), g.words(target=True)
    rng = random.Random(0)
    shares = []
    for s in [x for x in g.all_sentences() if x.can_switch][::5]:
        segs = s.cs_segments(rng, p_switch=rng.uniform(*corpus.SWITCH_SHARE))
        langs = [lang for _, lang in segs]
        assert set(langs) == {src, "en"} and all(a != b for a, b in zip(langs, langs[1:])), segs
        en_runs = [t for t, lang in segs if lang == "en"]
        pos = 0
        for run in en_runs:  # Spanish: in the translation's order (Mandarin orders some phrases otherwise)
            assert run in s.target[pos:], (run, s.target)
            pos = s.target.index(run, pos) + len(run) if src == "es" else 0
        for text, lang in segs:
            if lang == "en":
                assert set(words(text)) <= en_vocab, text
            elif src == "zh":
                assert has_cjk(text) and " " not in text, text
            else:
                assert set(words(text)) <= src_vocab, text
        n_en = sum(len(words(t)) for t in en_runs)
        n_src = sum(len(t) if src == "zh" else len(words(t)) for t, lang in segs if lang == src)
        shares.append(n_en / (n_en + n_src))
    assert min(shares) < 0.2 and max(shares) > 0.5


def test_spanish_phrase_switches():
    """es-en switches whole phrases after the first, keeping Spanish determiners before English terms;
    the first phrase always keeps Spanish words; fr-en and de-en do not code-switch."""
    g = GRAMMARS["es-en"]
    s = next(x for x in g.all_sentences() if x.source == "usamos el descenso de gradiente para entrenar este modelo")
    assert s.target == "we use gradient descent to train this model"
    seen = {" ".join(t for t, _ in s.cs_segments(random.Random(i), p_switch=0.5)) for i in range(60)}
    assert "usamos el descenso de gradiente to train this model" in seen
    assert "usamos el gradient descent para entrenar este modelo" in seen
    assert "usamos el descenso de gradiente para entrenar este model" in seen
    for t in g.templates:
        assert [p for p in t.source.split("|")[0].split() if not p.startswith("{")], t
    assert not GRAMMARS["fr-en"].all_sentences()[0].can_switch and not get_pair("de-en").code_switch


def test_determiners_agree():
    es = {x.source: x.target for x in GRAMMARS["es-en"].all_sentences()}
    assert es["hoy vamos a hablar de la regularización"] == "today we will talk about regularization"
    assert es["hoy vamos a hablar del agrupamiento"] == "today we will talk about clustering"
    fr = {x.source for x in GRAMMARS["fr-en"].all_sentences()}
    assert {"regardons cet exemple", "regardons cette formule", "regardons ce code",
            "ensuite nous calculons l'erreur", "en cours nous avons discuté du taux d'apprentissage"} <= fr
    de = {x.source for x in GRAMMARS["de-en"].all_sentences()}
    assert {"wir müssen den Fehler aktualisieren", "der Fehler wird langsam sinken",
            "hat jemand schon vom Clustering gehört", "hat jemand schon von der Regularisierung gehört"} <= de


def test_grammar_checks_its_templates():
    lexicon = {"M": [Term("modelo", "model", "m")]}
    det = Determiners({"def": {"m": "el "}})
    with pytest.raises(ValueError, match="slots differ"):
        Grammar("es", "en", lexicon, [Template("{M:def}", "the {M} {M2}", "the {M}")], len, det)
    with pytest.raises(ValueError, match="same phrases"):
        Grammar("es", "en", lexicon, [Template("usa {M:def}", "use | the {M}", "the {M}")], len, det)
    with pytest.raises(ValueError, match="no determiner 'this'"):
        Grammar("es", "en", lexicon, [Template("usa {M:this}", "use this {M}", "the {M}")], len, det)
    # the language modules translate every English template
    assert len(GRAMMARS["de-en"].templates) == len(EN_TEMPLATES)


def test_pairs_of_a_corpus():
    assert [p.source.code for p in get_pairs(MULTI)] == ["zh", "es", "fr", "de"]
    with pytest.raises(ValueError, match="repeat a source language"):
        get_pairs("zh-en,es-en,zh-en")
    with pytest.raises(ValueError, match="unknown language pair 'it-en'"):
        get_pairs("zh-en,it-en")
    pairs = get_pairs(MULTI)
    assert corpus.set_names(pairs) == [
        "train_asr_zh", "train_asr_es", "train_asr_fr", "train_asr_de", "train_asr_en",
        "train_st_zh", "train_st_es", "train_st_fr", "train_st_de", "train_cs_zh", "train_cs_es",
        "dev", "dev_unseen", "test_cs_zh", "test_cs_es", "test_mono_zh", "test_mono_es", "test_mono_fr",
        "test_mono_de", "test_cs_zh_unseen", "test_cs_es_unseen", "test_mono_zh_unseen", "test_mono_es_unseen",
        "test_mono_fr_unseen", "test_mono_de_unseen"]
    # one pair without code-switching: no CS sets
    assert corpus.set_names(get_pairs("fr-en")) == ["train_asr_fr", "train_asr_en", "train_st_fr", "dev",
                                                    "dev_unseen", "test_mono", "test_mono_unseen"]


def _plan(seed, preset="tiny"):
    pairs = get_pairs(MULTI)
    return corpus.plan_corpus(pairs, seed, corpus.preset_sizes(preset, pairs))


def _fingerprint(plan):
    sets, lm, info = plan
    return ({n: [(u.utt, u.spk, u.lang, u.task, u.sentences, u.text, u.src_text, u.text2, u.seed) for u in us]
             for n, us in sets.items()}, lm, info)


def _sentence_targets(u, info, sentence_of):
    """The translation of each sentence of utterance ``u`` of a set described by ``info``."""
    if u.lang == "en":  # English ASR: said as the translations
        return [segs[0][0] for segs in u.sentences]
    src = info.source or (_spoken(u) - {"en"}).pop()  # dev: the language of its speech
    return [sentence_of[(src, k)].target for k in u.keys]


def _spoken(u):
    return {lang for segs in u.sentences for _, lang in segs}


def test_multilingual_plan():
    """Deterministic from the seed; sizes of the preset; every utterance's speech in the languages of its
    label; ST text is the translation of its sentences; held-out translations never in training data or
    LM text; test speakers' voice families never heard in training."""
    pairs = get_pairs(MULTI)
    sizes = corpus.preset_sizes("small", pairs)
    plan = _plan(5, "small")
    assert _fingerprint(plan) == _fingerprint(_plan(5, "small"))
    assert _fingerprint(_plan(6))[0]["test_mono_es"] != _fingerprint(_plan(5))[0]["test_mono_es"]
    sets, lm, _ = plan
    table = {x.name: x for x in corpus.set_table(pairs)}
    assert {n: len(sets[n]) for n in sizes if n in sets} == {n: v for n, v in sizes.items() if n in sets}
    assert sum(len(u) for u in sets.values()) == 1918
    sentence_of = {(p.source.code, s.key): s for p in pairs for s in p.sentences(5)}
    targets = {}  # set -> translations of its sentences
    for name, utts in sets.items():
        for u in utts:
            if u.lang == "cs":
                assert len(_spoken(u)) == 2 and (_spoken(u) - {"en"}) <= {"zh", "es"}, u.utt
                assert table[name].source in (None, *_spoken(u))
            else:
                assert _spoken(u) == {u.lang}, u.utt
            sentence_targets = _sentence_targets(u, table[name], sentence_of)
            assert u.text == (u.src_text if u.task == "asr" else " ".join(sentence_targets)), u.utt
            targets.setdefault(name, set()).update(sentence_targets)
    held = set().union(*(t for n, t in targets.items() if not n.startswith("train_")))
    trained = set().union(*(t for n, t in targets.items() if n.startswith("train_")))
    lm_text = set(lm["en"]) | {t for k, lines in lm.items() if "2" in k for _, t in lines}
    assert held and trained and not held & trained and not held & lm_text
    # test sets of different languages translate the same English sentences where they can
    assert len(targets["test_mono_es"] & targets["test_mono_fr"] & targets["test_mono_de"]) > len(
        targets["test_mono_de"]) / 2
    families = collections.defaultdict(set)
    for name, utts in sets.items():
        families[table[name].group] |= {u.spk.variant.rstrip("0123456789").lower() for u in utts}
    assert not (families["train"] | families["test"]) & set(corpus.TEST_FAMILIES + corpus.DEV_FAMILIES)
    assert families["test_unseen"] <= set(corpus.TEST_FAMILIES) and families["test_unseen"]
    assert families["dev_unseen"] <= set(corpus.DEV_FAMILIES) and families["dev_unseen"]
