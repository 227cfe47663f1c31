"""Scoring of speech translation and recognition output per CS / monolingual / all subsets.

ST: BLEU and chrF with sacrebleu (tokenizer ``zh`` for Chinese targets, ``13a``
otherwise), several references allowed. ASR: WER, CER and MER (see
:mod:`csst_espnet.metrics.error_rate`), and the MER split into Mandarin and English
tokens. Both: English-word recall on code-switch utterances (share of the English
words of the source transcript that the hypothesis contains: the words ``word_lang``
labels ``en`` where the data has it, else every Latin-script word, which is right for
zh-en only) and the off-target-language rate (non-empty hypotheses in another script
than the expected language's, or, for a Latin-script language with word lists, with
more words of another such language: :func:`off_target_language`). With the decoder's
per-hypothesis ``confidence`` (mean token log-probability): the score of the least confident tenth against the rest
(:func:`confidence_split`); with its ``guard`` file: how many hypotheses each runaway
guard ended.
"""

import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.data import language_id
from csst_espnet.metrics import error_rate as er

SCRIPT_OF_LANG = {"zh": "cjk", "ja": "cjk", "en": "latin", "es": "latin", "fr": "latin", "de": "latin"}
EMBEDDED = "en"  # the language whose words the recall counts in code-switched speech


class ScoringError(ValueError):
    """Hypotheses, references or options that cannot be scored together."""


def bleu_tokenizer(tgt_lang: str) -> str:
    return "zh" if tgt_lang in ("zh", "cmn", "zh-cn", "zh-tw") else "13a"


def dominant_script(text: str) -> Optional[str]:
    """``cjk`` or ``latin`` by majority of tokens (CJK characters vs other-script words), None if neither."""
    n_cjk = len(er.cjk_tokens(text))
    n_lat = len(er.latin_words(text))
    if n_cjk == 0 and n_lat == 0:
        return None
    return "cjk" if n_cjk > n_lat else "latin"


def english_words(source: str, word_lang: Optional[str] = None) -> List[str]:
    """The English words of a source transcript: the Latin-script words of its words that
    ``word_lang`` (one label per whitespace-separated word) labels ``en``; without labels, every
    Latin-script word (the script rule)."""
    if word_lang is None:
        return er.latin_words(source)
    return [w for word, lang in zip(source.split(), word_lang.split()) if lang == EMBEDDED
            for w in er.latin_words(word)]


def english_word_recall(sources: Sequence[str], hyps: Sequence[str],
                        word_langs: Optional[Sequence[str]] = None) -> Tuple[float, int, int]:
    """(recall %, matched, total): English words of the sources (:func:`english_words`, with the
    sources' ``word_lang`` labels when given) found in the hypotheses.

    Counted with multiplicity per utterance (a word said twice must appear twice),
    case-insensitive.
    """
    matched = total = 0
    labels = word_langs if word_langs is not None else [None] * len(sources)
    for s, h, wl in zip(sources, hyps, labels):
        want = Counter(w.lower() for w in english_words(s, wl))
        have = Counter(w.lower() for w in er.latin_words(h))
        total += sum(want.values())
        matched += sum(min(c, have[w]) for w, c in want.items())
    return (100.0 * matched / total if total else 0.0), matched, total


def off_target_language(text: str, want: str) -> Optional[str]:
    """The language that makes a non-empty hypothesis off-target for ``want``, or None (on target,
    or no evidence): the language of :data:`language_id.WORDS` whose words it has most of, when that
    is not ``want`` and ``want`` has word lists or another script; else its script (``cjk``,
    ``latin``) when that is not ``want``'s."""
    script = dominant_script(text)
    if script is None:
        return None
    lang = language_id.latin_language(text) if script == "latin" else None
    if script != SCRIPT_OF_LANG[want]:
        return lang or script
    return lang if want in language_id.WORDS and lang not in (None, want) else None


def _subsets(utts: Sequence[str], utt2lang: Optional[Dict[str, str]]) -> Dict[str, List[str]]:
    subsets: Dict[str, List[str]] = {"all": list(utts)}
    if not utt2lang:
        return subsets
    cs = [u for u in utts if utt2lang[u] == "cs"]
    mono = [u for u in utts if utt2lang[u] != "cs"]
    if cs:
        subsets["cs"] = cs
    if mono:
        subsets["mono"] = mono
    langs = sorted({utt2lang[u] for u in mono})
    if len(langs) > 1:
        for lang in langs:
            subsets[f"mono_{lang}"] = [u for u in mono if utt2lang[u] == lang]
    return subsets


def score(
    hyp: Dict[str, str],
    refs: Sequence[Dict[str, str]],
    task: str = "st",
    tgt_lang: Optional[str] = None,
    utt2lang: Optional[Dict[str, str]] = None,
    src_text: Optional[Dict[str, str]] = None,
    allow_missing: bool = False,
    tokenize: Optional[str] = None,
    normalize: bool = True,
    confidence: Optional[Dict[str, float]] = None,
    guards: Optional[Dict[str, str]] = None,
    word_lang: Optional[Dict[str, str]] = None,
) -> Dict:
    """Score ``hyp`` against ``refs`` (first reference defines the utterances); ``confidence`` and
    ``guards``: the decoder's per-utterance confidence and guard (see the module docstring);
    ``word_lang``: the language of every word of the transcripts the recall reads (``src_text``, or
    for ASR without it the reference).

    Raises :class:`ScoringError` naming the utterance(s) when a hypothesis or a
    reference is missing (hypotheses missing count as empty with ``allow_missing``).
    """
    if task not in ("st", "asr"):
        raise ScoringError(f"task must be st or asr, not {task!r}")
    if not refs:
        raise ScoringError("no reference")
    utts = sorted(refs[0])
    for k, r in enumerate(refs[1:], 2):
        lacking = [u for u in utts if u not in r]
        if lacking:
            raise ScoringError(f"reference {k} has no text for utterance {lacking[0]}"
                               + (f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""))
    missing = [u for u in utts if u not in hyp]
    if missing and not allow_missing:
        raise ScoringError(
            f"no hypothesis for utterance {missing[0]}"
            + (f" (and {len(missing) - 1} more: {' '.join(missing[1:6])}{' ...' if len(missing) > 6 else ''})"
               if len(missing) > 1 else "")
            + "; use --allow_missing true to count them as empty")
    extra = sorted(set(hyp) - set(utts))
    if utt2lang is not None:
        lacking = [u for u in utts if u not in utt2lang]
        if lacking:
            raise ScoringError(f"utt2lang has no language for utterance {lacking[0]}")
    if task == "st" and not tgt_lang:
        raise ScoringError("--tgt_lang is required for st")
    if src_text is not None:
        lacking = [u for u in utts if u not in src_text]
        if lacking:
            raise ScoringError(f"src_text has no transcript for utterance {lacking[0]}")
    transcripts = src_text if src_text is not None else (refs[0] if task == "asr" else None)
    if word_lang is not None:
        if transcripts is None:
            raise ScoringError("word_lang labels the words of src_text, and there is no src_text")
        for u in utts:
            if u not in word_lang:
                raise ScoringError(f"word_lang has no labels for utterance {u}")
            n_labels, n_words = len(word_lang[u].split()), len(transcripts[u].split())
            if n_labels != n_words:
                raise ScoringError(f"word_lang: utterance {u} has {n_labels} labels for the {n_words} words "
                                   f"of its transcript {transcripts[u]!r}")

    H = {u: hyp.get(u, "") for u in utts}
    result: Dict = {
        "task": task, "tgt_lang": tgt_lang, "num_utts": len(utts), "num_refs": len(refs),
        "missing_hyps": missing, "extra_hyps": len(extra), "subsets": {},
    }
    subsets = _subsets(utts, utt2lang)

    bleu_metric = chrf_metric = None
    if task == "st":
        from sacrebleu.metrics import BLEU, CHRF

        tok = tokenize or bleu_tokenizer(tgt_lang)
        bleu_metric = BLEU(tokenize=tok)
        chrf_metric = CHRF()
        # signatures need one scoring call to be complete
        bleu_metric.corpus_score([H[u] for u in utts], [[r[u] for u in utts] for r in refs])
        chrf_metric.corpus_score([H[u] for u in utts], [[r[u] for u in utts] for r in refs])
        result["signatures"] = {"bleu": str(bleu_metric.get_signature()),
                                "chrf": str(chrf_metric.get_signature())}

    for name, ids in subsets.items():
        hyps = [H[u] for u in ids]
        s: Dict = {"num_utts": len(ids)}
        if task == "st":
            ref_streams = [[r[u] for u in ids] for r in refs]
            b = bleu_metric.corpus_score(hyps, ref_streams)
            c = chrf_metric.corpus_score(hyps, ref_streams)
            s.update(bleu=b.score, chrf=c.score,
                     bleu_detail={"precisions": list(b.precisions), "bp": b.bp,
                                  "sys_len": b.sys_len, "ref_len": b.ref_len})
        else:
            refs1 = [refs[0][u] for u in ids]
            for kind in ("wer", "cer", "mer"):
                s[kind] = er.error_rate(refs1, hyps, kind, norm=normalize).as_dict()
            split = er.mixed_language_split(refs1, hyps, norm=normalize)
            s["mer_by_lang"] = {k: v.as_dict() for k, v in split.items() if v.ref_len or v.errors}

        # English-word recall on code-switch utterances
        is_cs_subset = name == "cs" or (utt2lang is None and name == "all")
        if is_cs_subset and transcripts is not None:
            if utt2lang is not None:
                ids_cs = ids
            elif word_lang is not None:  # labels of English and of another language
                ids_cs = [u for u in ids if len(set(word_lang[u].split()) - {"-"}) > 1
                          and EMBEDDED in word_lang[u].split()]
            else:
                ids_cs = [u for u in ids if er.cjk_tokens(transcripts[u]) and er.latin_words(transcripts[u])]
            if ids_cs:
                rec, m, t = english_word_recall([transcripts[u] for u in ids_cs], [H[u] for u in ids_cs],
                                                [word_lang[u] for u in ids_cs] if word_lang is not None else None)
                s["en_word_recall"] = rec
                s["en_words"] = t
                s["en_words_found"] = m
                s["en_words_by"] = "word_lang" if word_lang is not None else "script"

        # off-target language
        off: Counter = Counter()
        empty = counted = 0
        for u in ids:
            want = tgt_lang if task == "st" else (utt2lang or {}).get(u, tgt_lang)
            if want not in SCRIPT_OF_LANG:  # cs or unknown: no single expected language
                continue
            counted += 1
            if not H[u].strip():
                empty += 1
            elif (got := off_target_language(H[u], want)) is not None:
                off[got] += 1
        if counted:
            s["off_target_rate"] = 100.0 * sum(off.values()) / counted
            s["off_target"] = sum(off.values())
            s["off_target_langs"] = dict(sorted(off.items()))
            s["empty_rate"] = 100.0 * empty / counted
        result["subsets"][name] = s
    for table, what in ((confidence, "confidence"), (guards, "guard")):
        lacking = [u for u in utts if table is not None and u not in table]
        if lacking:
            raise ScoringError(f"the {what} file has no entry for utterance {lacking[0]}")
    if guards is not None:
        result["guards"] = dict(Counter(guards[u] for u in utts if guards[u] != "none"))
    if confidence is not None:
        result["confidence"] = confidence_split(H, refs, confidence, utts, task, bleu_metric, normalize)
    return result


def confidence_split(hyp: Dict[str, str], refs: Sequence[Dict[str, str]], confidence: Dict[str, float],
                     utts: Sequence[str], task: str, bleu_metric=None, normalize: bool = True,
                     fraction: float = 0.1) -> Dict:
    """The score (BLEU for ST, WER for ASR) of the least confident ``fraction`` of the utterances
    (at least one) and of the rest, with the confidence that separates them."""
    ranked = sorted(utts, key=lambda u: (confidence[u], u))
    n_low = max(1, round(fraction * len(ranked)))
    parts = {"low": ranked[:n_low], "rest": ranked[n_low:]}
    out: Dict = {"fraction": fraction, "threshold": confidence[ranked[n_low - 1]],
                 "mean": sum(confidence[u] for u in utts) / max(len(utts), 1)}
    for name, ids in parts.items():
        entry: Dict = {"num_utts": len(ids)}
        if ids:
            hyps = [hyp[u] for u in ids]
            if task == "st":
                entry["bleu"] = bleu_metric.corpus_score(hyps, [[r[u] for u in ids] for r in refs]).score
            else:
                entry["wer"] = er.error_rate([refs[0][u] for u in ids], hyps, "wer", norm=normalize).rate
        out[name] = entry
    return out


def default_src_text(ref_path: str) -> Optional[str]:
    p = os.path.join(os.path.dirname(os.path.abspath(ref_path)), "src_text")
    return p if os.path.exists(p) else None


def _fmt_rate(counts: Optional[Dict]) -> str:
    """A rate with two decimals; "-" where there is none (no reference words of that language)."""
    return "-" if counts is None or counts.get("rate") is None else f"{counts['rate']:.2f}"


def format_table(result: Dict) -> str:
    lines = []
    if result["task"] == "st":
        lines.append(f"{'subset':<10} {'utts':>5} {'BLEU':>7} {'chrF':>7} {'EnRecall':>9} {'OffTgt%':>8}")
        for name, s in result["subsets"].items():
            rec = f"{s['en_word_recall']:.2f}" if "en_word_recall" in s else "-"
            off = f"{s['off_target_rate']:.2f}" if "off_target_rate" in s else "-"
            lines.append(f"{name:<10} {s['num_utts']:>5} {s['bleu']:>7.2f} {s['chrf']:>7.2f} {rec:>9} {off:>8}")
    else:
        lines.append(f"{'subset':<10} {'utts':>5} {'WER':>7} {'CER':>7} {'MER':>7} {'MER-zh':>7} {'MER-en':>7} {'EnRecall':>9} {'OffTgt%':>8}")
        for name, s in result["subsets"].items():
            mb = s.get("mer_by_lang", {})
            zh, en = (_fmt_rate(mb.get(lang)) for lang in ("zh", "en"))
            rec = f"{s['en_word_recall']:.2f}" if "en_word_recall" in s else "-"
            off = f"{s['off_target_rate']:.2f}" if "off_target_rate" in s else "-"
            lines.append(f"{name:<10} {s['num_utts']:>5} {s['wer']['rate']:>7.2f} {s['cer']['rate']:>7.2f} "
                         f"{s['mer']['rate']:>7.2f} {zh:>7} {en:>7} {rec:>9} {off:>8}")
    return "\n".join(lines)
