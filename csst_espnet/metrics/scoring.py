"""Scoring of speech translation and recognition output per CS / monolingual / all subsets.

ST: BLEU and chrF with sacrebleu (tokenizer ``zh`` for Chinese targets, ``13a``
otherwise), several references allowed. ASR: WER, CER and MER (see
:mod:`csst_espnet.metrics.error_rate`), and the MER split into Mandarin and English
tokens. Both: English-word recall on code-switch utterances (share of the English
words of the source transcript that the hypothesis contains) and the
off-target-language rate (non-empty hypotheses whose dominant script is not the
target language's). With the decoder's per-hypothesis ``confidence`` (mean token
log-probability): the score of the least confident tenth against the rest
(:func:`confidence_split`); with its ``guard`` file: how many hypotheses each runaway
guard ended.
"""

import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.metrics import error_rate as er

SCRIPT_OF_LANG = {"zh": "cjk", "ja": "cjk", "en": "latin", "es": "latin", "fr": "latin", "de": "latin"}


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


def english_word_recall(sources: Sequence[str], hyps: Sequence[str]) -> Tuple[float, int, int]:
    """(recall %, matched, total): English (Latin-script) words of the sources found in the hypotheses.

    Counted with multiplicity per utterance (a word said twice must appear twice),
    case-insensitive.
    """
    matched = total = 0
    for s, h in zip(sources, hyps):
        want = Counter(w.lower() for w in er.latin_words(s))
        have = Counter(w.lower() for w in er.latin_words(h))
        total += sum(want.values())
        matched += sum(min(c, have[w]) for w, c in want.items())
    return (100.0 * matched / total if total else 0.0), matched, total


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
) -> Dict:
    """Score ``hyp`` against ``refs`` (first reference defines the utterances); ``confidence`` and
    ``guards``: the decoder's per-utterance confidence and guard (see the module docstring).

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
        if is_cs_subset:
            src = src_text if src_text is not None else (refs[0] if task == "asr" else None)
            if src is not None:
                ids_cs = ids if utt2lang is not None else [
                    u for u in ids if er.cjk_tokens(src[u]) and er.latin_words(src[u])]
                if ids_cs:
                    rec, m, t = english_word_recall([src[u] for u in ids_cs], [H[u] for u in ids_cs])
                    s["en_word_recall"] = rec
                    s["en_words"] = t
                    s["en_words_found"] = m

        # off-target language
        off = empty = counted = 0
        for u in ids:
            want = tgt_lang if task == "st" else (utt2lang or {}).get(u, tgt_lang)
            target = SCRIPT_OF_LANG.get(want or "")
            if target is None:  # cs or unknown: no single expected script
                continue
            counted += 1
            got = dominant_script(H[u])
            if not H[u].strip():
                empty += 1
            elif got is not None and got != target:
                off += 1
        if counted:
            s["off_target_rate"] = 100.0 * off / counted
            s["off_target"] = off
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
