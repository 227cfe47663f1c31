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
