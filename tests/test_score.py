"""Scoring: BLEU/chrF equal sacrebleu's, WER/CER/MER by hand, subsets, recall, missing hypotheses."""

import json
import os
import subprocess
import sys

import pytest
import sacrebleu

from csst_espnet.bin import score as cli
from csst_espnet.metrics import error_rate as er
from csst_espnet.metrics import scoring

REFS = {
    "s1-cs1": "we use gradient descent to train this model",
    "s1-cs2": "the learning rate of this encoder is too large",
    "s1-zh1": "today we will talk about regularization",
    "s2-cs3": "let us check the loss function",
    "s2-zh2": "the homework is due tomorrow",
}
REFS2 = {
    "s1-cs1": "we train this model with gradient descent",
    "s1-cs2": "the learning rate of this encoder is too big",
    "s1-zh1": "today we are going to discuss regularization",
    "s2-cs3": "we check the loss function",
    "s2-zh2": "the homework must be handed in tomorrow",
}
HYPS = {
    "s1-cs1": "we use gradient descent to train the model",
    "s1-cs2": "the learning rate of the encoder is large",
    "s1-zh1": "today we talk about regularization",
    "s2-cs3": "我们检查损失函数",
    "s2-zh2": "the homework is due tomorrow",
}
SRC = {
    "s1-cs1": "我们用 gradient descent 来训练这个 model",
    "s1-cs2": "这个 encoder 的 learning rate 太大了",
    "s1-zh1": "今天我们要讲正则化",
    "s2-cs3": "我们检查一下 loss function",
    "s2-zh2": "作业明天要交",
}
LANG = {"s1-cs1": "cs", "s1-cs2": "cs", "s1-zh1": "zh", "s2-cs3": "cs", "s2-zh2": "zh"}


def write(path, table):
    with open(path, "w", encoding="utf-8") as f:
        for k in sorted(table):
            f.write(f"{k} {table[k]}\n" if table[k] else f"{k}\n")
    return str(path)


def test_bleu_chrf_equal_sacrebleu_per_subset():
    res = scoring.score(HYPS, [REFS], task="st", tgt_lang="en", utt2lang=LANG, src_text=SRC)
    for name, ids in {"all": sorted(REFS), "cs": ["s1-cs1", "s1-cs2", "s2-cs3"],
                      "mono": ["s1-zh1", "s2-zh2"]}.items():
        s = res["subsets"][name]
        assert s["num_utts"] == len(ids)
        h, r = [HYPS[u] for u in ids], [REFS[u] for u in ids]
        assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(h, [r], tokenize="13a").score, abs=1e-4)
        assert s["chrf"] == pytest.approx(sacrebleu.corpus_chrf(h, [r]).score, abs=1e-4)
    assert "tok:13a" in res["signatures"]["bleu"] and "nrefs:1" in res["signatures"]["bleu"]
    # two references
    res2 = scoring.score(HYPS, [REFS, REFS2], task="st", tgt_lang="en")
    ids = sorted(REFS)
    want = sacrebleu.corpus_bleu([HYPS[u] for u in ids], [[REFS[u] for u in ids], [REFS2[u] for u in ids]])
    assert res2["subsets"]["all"]["bleu"] == pytest.approx(want.score, abs=1e-4)
    assert "nrefs:2" in res2["signatures"]["bleu"]


def test_chinese_target_uses_zh_tokenizer():
    refs = {"a-1": "我们用梯度下降来训练这个模型", "a-2": "今天我们要讲正则化"}
    hyps = {"a-1": "我们用梯度下降训练模型", "a-2": "今天我们讲正则化"}
    res = scoring.score(hyps, [refs], task="st", tgt_lang="zh")
    want = sacrebleu.corpus_bleu([hyps["a-1"], hyps["a-2"]], [[refs["a-1"], refs["a-2"]]], tokenize="zh")
    assert res["subsets"]["all"]["bleu"] == pytest.approx(want.score, abs=1e-4)
    assert "tok:zh" in res["signatures"]["bleu"]
    assert res["subsets"]["all"]["off_target_rate"] == 0


def test_error_rates_by_hand():
    ref = "我们用 gradient descent 来训练这个 model"
    hyp = "我们用 gradient 来训练那个 models"
    # MER tokens: ref 我 们 用 gradient descent 来 训 练 这 个 model (11)
    # errors: deletion of descent, 这->那, model->models = 3
    mer = er.error_rate([ref], [hyp], "mer")
    assert (mer.sub, mer.dele, mer.ins, mer.ref_len) == (2, 1, 0, 11)
    assert mer.rate == pytest.approx(300 / 11)
    # CER: 28 non-space characters; delete 7 (descent), 这->那, insert s = 9
    cer = er.error_rate([ref], [hyp], "cer")
    assert (cer.ref_len, cer.errors) == (28, 9)
    # WER on whitespace words: 我们用 gradient descent 来训练这个 model (5): D, S, S
    wer = er.error_rate([ref], [hyp], "wer")
    assert (wer.ref_len, wer.sub, wer.dele, wer.ins) == (5, 2, 1, 0)
    # per-language split of the MER: 1 of 8 Mandarin tokens, 2 of 3 English ones
    split = er.mixed_language_split([ref], [hyp])
    assert (split["zh"].errors, split["zh"].ref_len) == (1, 8)
    assert (split["en"].errors, split["en"].ref_len) == (2, 3)
    # English: the cat sat on the mat -> the cat sit on mat : 1 S + 1 D of 6
    w = er.error_rate(["The cat sat on the mat."], ["the cat sit on mat"], "wer")
    assert (w.sub, w.dele, w.ins, w.ref_len) == (1, 1, 0, 6)
    # insertions, and the corpus rate sums over utterances
    w2 = er.error_rate(["a b", "c d e f"], ["a x b", "c d e f"], "wer")
    assert (w2.ins, w2.ref_len) == (1, 6) and w2.rate == pytest.approx(100 / 6)
    assert er.edit_distance(list("kitten"), list("sitting")) == 3


def test_asr_subsets_and_recall():
    refs = {"s1-cs1": SRC["s1-cs1"], "s1-cs2": SRC["s1-cs2"], "s1-zh1": SRC["s1-zh1"]}
    hyps = {"s1-cs1": "我们用 gradient 来训练那个 models", "s1-cs2": SRC["s1-cs2"], "s1-zh1": "今天我们讲正则化"}
    lang = {k: LANG[k] for k in refs}
    res = scoring.score(hyps, [refs], task="asr", utt2lang=lang)
    cs, mono = res["subsets"]["cs"], res["subsets"]["mono"]
    # cs: utt1 11 tokens 3 errors; utt2 这 个 encoder 的 learning rate 太 大 了 = 9 tokens, 0 errors
    assert (cs["mer"]["ref_tokens"], cs["mer"]["sub"] + cs["mer"]["del"] + cs["mer"]["ins"]) == (20, 3)
    assert cs["mer"]["rate"] == pytest.approx(15.0)
    # mono: 今天我们要讲正则化 -> 今天我们讲正则化: 1 deletion of 9 characters
    assert mono["cer"]["rate"] == pytest.approx(100 / 9)
    assert res["subsets"]["all"]["mer"]["ref_tokens"] == 29
    # English-word recall on CS: gradient descent model encoder learning rate -> 4 of 6 found
    assert cs["en_word_recall"] == pytest.approx(100 * 4 / 6) and cs["en_words"] == 6
    assert "en_word_recall" not in mono
    # off target on Mandarin utterances only
    assert mono["off_target_rate"] == 0


def test_st_recall_and_off_target():
    res = scoring.score(HYPS, [REFS], task="st", tgt_lang="en", utt2lang=LANG, src_text=SRC)
    cs = res["subsets"]["cs"]
    # source English words: gradient descent model | encoder learning rate | loss function (8)
    # found: gradient descent model, encoder learning rate = 6 (s2-cs3 answered in Chinese)
    assert cs["en_words"] == 8 and cs["en_word_recall"] == pytest.approx(75.0)
    assert cs["off_target"] == 1 and cs["off_target_rate"] == pytest.approx(100 / 3)
    assert res["subsets"]["all"]["off_target_rate"] == pytest.approx(20.0)
    assert res["subsets"]["mono"]["off_target_rate"] == 0


def test_missing_hypothesis(tmp_path, capsys):
    hyps = {k: v for k, v in HYPS.items() if k != "s1-zh1"}
    with pytest.raises(scoring.ScoringError, match="s1-zh1"):
        scoring.score(hyps, [REFS], task="st", tgt_lang="en")
    hyp_f, ref_f = write(tmp_path / "hyp", hyps), write(tmp_path / "text", REFS)
    assert cli.main(["--hyp", hyp_f, "--ref", ref_f, "--task", "st", "--tgt_lang", "en"]) == 1
    assert "s1-zh1" in capsys.readouterr().err
    out_json = tmp_path / "res.json"
    assert cli.main(["--hyp", hyp_f, "--ref", ref_f, "--task", "st", "--tgt_lang", "en",
                     "--allow_missing", "true", "--out_json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    assert res["missing_hyps"] == ["s1-zh1"]
    h = [hyps.get(u, "") for u in sorted(REFS)]
    want = sacrebleu.corpus_bleu(h, [[REFS[u] for u in sorted(REFS)]])
    assert res["subsets"]["all"]["bleu"] == pytest.approx(want.score, abs=1e-4)
    assert res["subsets"]["all"]["empty_rate"] == pytest.approx(20.0)


def test_cli_rejects_a_repeated_utterance_id(tmp_path, capsys):
    ref_f = write(tmp_path / "text", REFS)
    hyp_f = tmp_path / "hyp"
    hyp_f.write_text("s1-cs1 a\ns1-cs1 b\n")
    assert cli.main(["--hyp", str(hyp_f), "--ref", ref_f, "--task", "st", "--tgt_lang", "en"]) == 1
    assert f"{hyp_f}:2: duplicate key s1-cs1" in capsys.readouterr().err


def test_cli_end_to_end(tmp_path):
    d = tmp_path / "test_cs"
    d.mkdir()
    ref = write(d / "text", REFS)
    ref2 = write(d / "text.2", REFS2)
    write(d / "src_text", SRC)   # picked up by default for the English-word recall
    lang = write(d / "utt2lang", LANG)
    hyp = write(tmp_path / "hyp", HYPS)
    out_json = tmp_path / "r" / "result.json"
    r = subprocess.run([sys.executable, "-m", "csst_espnet.bin.score", "--hyp", hyp, "--ref", ref,
                        "--ref", ref2, "--task", "st", "--tgt_lang", "en", "--utt2lang", lang,
                        "--out_json", str(out_json)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bleu signature: nrefs:2|case:mixed|eff:no|tok:13a" in r.stdout
    res = json.loads(out_json.read_text())
    assert set(res["subsets"]) == {"all", "cs", "mono"}
    assert res["src_text"] == os.path.join(str(d), "src_text")
    assert res["subsets"]["cs"]["en_word_recall"] == pytest.approx(75.0)


def test_english_inserted_into_a_mandarin_reference(tmp_path):
    """No English reference words: MER-en has no rate; the table prints "-", results.json null."""
    from csst_espnet.recipe import results

    res = scoring.score({"z-1": "今天 很好 model"}, [{"z-1": "今天 很好"}], task="asr", utt2lang={"z-1": "zh"})
    assert res["subsets"]["all"]["mer_by_lang"]["en"]["rate"] is None
    row = scoring.format_table(res).splitlines()[1].split()
    assert row[0] == "all" and float(row[5]) == 0.0 and row[6] == "-"  # MER-zh, MER-en
    (tmp_path / "score.json").write_text(json.dumps(res))
    sub = results.entry(str(tmp_path))["subsets"]["all"]
    assert sub["mer_en"] is None and sub["mer_zh"] == 0.0 and sub["mer"] == 25.0  # 1 insertion, 4 characters


# Spanish-English code-switching (test_cs_es of egs2/mini_multi): the English words are the ones word_lang says
ES_SRC = {
    "s3-es1": "usamos el gradient descent para entrenar este modelo",
    "s3-es2": "hoy vamos a hablar del transfer learning",
}
ES_WORD_LANG = {"s3-es1": "es es en en es es es es", "s3-es2": "es es es es es en en"}
ES_REFS = {"s3-es1": "we use gradient descent to train this model", "s3-es2": "today we will talk about transfer learning"}
ES_HYPS = {"s3-es1": "we use gradient descent to train this model", "s3-es2": "today we talk about learning"}


def test_recall_counts_the_english_words_of_word_lang():
    """es-en: only the words labelled en count (4, 3 found); without word_lang every Latin-script word
    counts (15, Spanish ones included), today's figure."""
    lang = {u: "cs" for u in ES_SRC}
    res = scoring.score(ES_HYPS, [ES_REFS], tgt_lang="en", utt2lang=lang, src_text=ES_SRC, word_lang=ES_WORD_LANG)
    cs = res["subsets"]["cs"]
    assert (cs["en_words"], cs["en_words_found"], cs["en_words_by"]) == (4, 3, "word_lang")
    assert cs["en_word_recall"] == pytest.approx(75.0)
    old = scoring.score(ES_HYPS, [ES_REFS], tgt_lang="en", utt2lang=lang, src_text=ES_SRC)["subsets"]["cs"]
    assert (old["en_words"], old["en_words_found"], old["en_words_by"]) == (15, 3, "script")
    # without utt2lang the CS utterances are those with English and another language in word_lang
    mono = dict(ES_WORD_LANG, **{"s3-es2": "es es es es es es es"})
    res = scoring.score(ES_HYPS, [ES_REFS], tgt_lang="en", src_text=ES_SRC, word_lang=mono)
    assert res["subsets"]["all"]["en_words"] == 2


def test_recall_with_word_lang_of_zh_en_equals_the_script_rule():
    """zh-en: labels from the script give the figure the script rule gives (75 %, test above)."""
    word_lang = {u: " ".join("zh" if er.cjk_tokens(w) else "en" for w in SRC[u].split()) for u in SRC}
    res = scoring.score(HYPS, [REFS], task="st", tgt_lang="en", utt2lang=LANG, src_text=SRC, word_lang=word_lang)
    cs = res["subsets"]["cs"]
    assert cs["en_words"] == 8 and cs["en_word_recall"] == pytest.approx(75.0) and cs["en_words_by"] == "word_lang"


def test_cli_reads_word_lang_beside_src_text_says_so_and_checks_it(tmp_path, capsys):
    from csst_espnet.recipe import results

    bad = dict(ES_WORD_LANG, **{"s3-es2": "es es en"})
    with pytest.raises(scoring.ScoringError, match="s3-es2 has 3 labels for the 7 words"):
        scoring.score(ES_HYPS, [ES_REFS], tgt_lang="en", src_text=ES_SRC, word_lang=bad)
    d = tmp_path / "test_cs_es"
    d.mkdir()
    ref, hyp = write(d / "text", ES_REFS), write(tmp_path / "hyp", ES_HYPS)
    write(d / "src_text", ES_SRC)
    wl = write(d / "word_lang", bad)
    assert cli.main(["--hyp", hyp, "--ref", ref, "--task", "st", "--tgt_lang", "en"]) == 1
    assert "utterance s3-es2 has 3 labels" in (err := capsys.readouterr().err) and wl in err
    write(d / "word_lang", ES_WORD_LANG)  # beside src_text: used, and said so (here and in RESULTS.md)
    out_json = tmp_path / "decode" / "score.json"
    assert cli.main(["--hyp", hyp, "--ref", ref, "--task", "st", "--tgt_lang", "en",
                     "--out_json", str(out_json)]) == 0
    assert f"English words of the recall: labelled en in {wl}" in capsys.readouterr().out
    res = json.loads(out_json.read_text())
    assert res["word_lang"] == wl and res["subsets"]["all"]["en_words"] == 4
    notes = results._metric_notes({"test_cs_es": results.entry(str(tmp_path / "decode"))})
    assert notes[0] == "EnRecall, English words of the `cs` transcripts: the words `word_lang` labels `en` (test_cs_es)."
    lang = write(d / "utt2lang", {u: "cs" for u in ES_SRC})
    assert cli.main(["--hyp", hyp, "--ref", ref, "--task", "st", "--tgt_lang", "en", "--utt2lang", lang,
                     "--word_lang", "none"]) == 0
    assert "every Latin-script word of the transcripts (script rule" in capsys.readouterr().out


# untranslated output of an X->en model: sentences of the synthetic grammars, source and translation
OUTPUTS = {
    "es": [("usamos el descenso de gradiente para entrenar este modelo", "we use gradient descent to train this model"),
           ("hoy vamos a hablar del aprendizaje por refuerzo", "today we will talk about reinforcement learning"),
           ("por favor recuerden esta tasa de aprendizaje", "please remember this learning rate"),
           ("alguien tiene preguntas", "does anyone have questions")],
    "fr": [("nous utilisons la descente de gradient pour entraîner ce modèle",
            "we use gradient descent to train this model"),
           ("aujourd'hui nous allons parler de la régularisation", "today we will talk about regularization"),
           ("je ne comprends toujours pas la fonction de perte", "i still do not understand the loss function"),
           ("c'est tout pour aujourd'hui", "that is all for today")],
    "de": [("wir verwenden den Gradientenabstieg um dieses Modell zu trainieren",
            "we use gradient descent to train this model"),
           ("heute sprechen wir über die Regularisierung", "today we will talk about regularization"),
           ("ich verstehe die Verlustfunktion immer noch nicht", "i still do not understand the loss function"),
           ("das ist alles für heute", "that is all for today")],
}


@pytest.mark.parametrize("lang", sorted(OUTPUTS))
def test_off_target_by_words_for_latin_script_sources(lang):
    """An X->en hypothesis still in Spanish, French or German is off-target (counted under its language),
    its English translation is not; ASR output of the source language in English is off-target too."""
    refs = {f"u{i}": en for i, (_, en) in enumerate(OUTPUTS[lang])}
    untranslated = {f"u{i}": src for i, (src, _) in enumerate(OUTPUTS[lang])}
    all_ = scoring.score(untranslated, [refs], tgt_lang="en")["subsets"]["all"]
    assert all_["off_target"] == 4 and all_["off_target_langs"] == {lang: 4}
    all_ = scoring.score(refs, [refs], tgt_lang="en")["subsets"]["all"]
    assert all_["off_target"] == 0 and all_["off_target_langs"] == {}
    asr = scoring.score(refs, [untranslated], task="asr", utt2lang={u: lang for u in refs})["subsets"]["all"]
    assert asr["off_target_langs"] == {"en": 4}


def test_off_target_of_mandarin_stays_by_script():
    assert scoring.off_target_language("我们检查损失函数", "en") == "cjk"
    assert scoring.off_target_language("we check the loss function", "zh") == "en"
    assert scoring.off_target_language("gradient descent", "zh") == "latin"  # no word evidence: the script
    assert scoring.off_target_language("我们检查 loss function", "zh") is None
