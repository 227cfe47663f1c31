"""``RESULTS.md`` and ``results.json`` from the scores of decoded test sets (recipe stage 14).

See docs/architecture.md (recipe); ``python -m csst_espnet.bin.make_results`` documents the layout of
the score directories and what the files show.
"""

import datetime
import json
import os
import platform
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.utils.versions import package_versions

SUBSET_ORDER = ("all", "cs", "mono")
ORACLE_MODEL = "text_lm_oracle"  # csst.sh stage 13: <expdir>/text_lm_oracle/gold_transcripts/<set>


def read_json(path: str) -> Optional[Dict]:
    """A JSON file's content; None when there is no such file."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def entry(score_dir: str) -> Dict:
    """The results.json entry of one decoded test set."""
    full = read_json(os.path.join(score_dir, "score.json"))
    if full is None:
        raise FileNotFoundError(f"{score_dir}/score.json is missing (run scoring first)")
    ref1 = read_json(os.path.join(score_dir, "score_ref1.json"))
    out: Dict = {"num_utts": full["num_utts"], "num_refs": full["num_refs"], "decode_dir": score_dir}
    all_ = full["subsets"]["all"]
    if full["task"] == "st":
        out["bleu"] = round(all_["bleu"], 2)
        out["chrf"] = round(all_["chrf"], 2)
        if ref1 is not None:
            out["bleu_ref1"] = round(ref1["subsets"]["all"]["bleu"], 2)
            out["chrf_ref1"] = round(ref1["subsets"]["all"]["chrf"], 2)
        out["signatures"] = full.get("signatures", {})
    else:
        for k in ("wer", "cer", "mer"):
            out[k] = _round(all_[k]["rate"])
    subsets = {}
    for name, s in full["subsets"].items():
        sub = {"num_utts": s["num_utts"]}
        for k in ("bleu", "chrf", "en_word_recall", "off_target_rate"):
            if k in s:
                sub[k] = round(s[k], 2)
        for k in ("en_words_by", "off_target_langs"):
            if s.get(k):
                sub[k] = s[k]
        for k in ("wer", "cer", "mer"):
            if k in s:
                sub[k] = _round(s[k]["rate"])
        for lang, counts in s.get("mer_by_lang", {}).items():
            sub[f"mer_{lang}"] = _round(counts["rate"])
        if ref1 is not None and name in ref1["subsets"] and "bleu" in ref1["subsets"][name]:
            sub["bleu_ref1"] = round(ref1["subsets"][name]["bleu"], 2)
        subsets[name] = sub
    out["subsets"] = subsets
    if "guards" in full:
        out["guards"] = full["guards"]
    if "confidence" in full:
        out["confidence"] = full["confidence"]
    for routing in (os.path.join(score_dir, "routing", "routing.md"),
                    os.path.join(os.path.dirname(score_dir.rstrip("/")), "routing", "routing.md")):
        if os.path.exists(routing):
            out["routing_report"] = routing
            break
    return out


def collect(score_dirs: Sequence[str], expdir: str) -> Dict[str, Dict[str, Dict]]:
    """Entries of ``<expdir>/<model>/<decode tag>/<test set>`` score directories: model -> test set -> entry."""
    results: Dict[str, Dict[str, Dict]] = {}
    exp_abs = os.path.abspath(expdir)
    for d in score_dirs:
        d_abs = os.path.abspath(d)
        rel = os.path.relpath(d_abs, exp_abs).split(os.sep)
        if len(rel) < 3 or rel[0] == "..":
            raise ValueError(f"{d} is not <expdir>/<model>/<decode tag>/<test set> under {expdir}")
        model, test_set = rel[0], rel[-1]
        results.setdefault(model, {})[test_set] = entry(d)
    return results


def _git_commit(results_md: str = "") -> str:
    """Short commit of the checkout, marked when tracked files other than ``results_md`` (rewritten by
    every run) have local changes."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        exclude = [f":(exclude){os.path.abspath(results_md)}"] if results_md else []
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *exclude],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return proc.stdout.strip() + (" (with local changes)" if dirty else "") if proc.returncode == 0 else "-"
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout: the field says "-"
        return "-"


def _round(rate: Optional[float]) -> Optional[float]:
    """An error rate to 2 decimals; None stays None (errors against an empty reference)."""
    return None if rate is None else round(rate, 2)


def _fmt(x) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "-"


def _subset_key(name: str):
    return (SUBSET_ORDER.index(name) if name in SUBSET_ORDER else 9, name)


def _comparison(results: Dict[str, Dict[str, Dict]], title: str, metric: str, cell) -> List[str]:
    """A model x test set table over the sets scored with ``metric``, when several models have them."""
    models = {m: {s: e for s, e in r.items() if metric in e} for m, r in results.items()}
    models = {m: r for m, r in models.items() if r}
    if len(models) < 2:
        return []
    sets = sorted({s for r in models.values() for s in r})
    lines = [f"## Comparison ({title})", "", "|model|" + "|".join(sets) + "|", "|---|" + "---|" * len(sets)]
    for m, r in models.items():
        lines.append(f"|{m}|" + "|".join(cell(r[s]) if s in r else "-" for s in sets) + "|")
    return lines + [""]


def conditions_of(sets: Sequence[str]) -> Dict[str, List[str]]:
    """Each set that has condition copies ``<set>_<condition>`` among ``sets``, with its conditions
    (``test_cs_snr10`` and ``test_cs_unseen`` -> ``{"test_cs": ["snr10", "unseen"]}``)."""
    out: Dict[str, List[str]] = {}
    for base in sets:
        conds = [s[len(base) + 1:] for s in sets if s.startswith(base + "_")
                 and not any(s.startswith(other + "_") for other in sets if len(other) > len(base) and other != s
                             and other.startswith(base + "_"))]
        if conds:
            out[base] = conds
    return out


def _robustness(results: Dict[str, Dict[str, Dict]]) -> List[str]:
    """Per model: BLEU of each set and of its condition copies, and each copy's share of the clean BLEU."""
    rows = []
    for model, sets in results.items():
        bleu = {s: e["bleu"] for s, e in sets.items() if isinstance(e.get("bleu"), (int, float))}
        for base, conds in conditions_of(list(bleu)).items():
            cells = [f"{c}: {_fmt(bleu[f'{base}_{c}'])}"
                     + (f" ({100 * bleu[f'{base}_{c}'] / bleu[base]:.0f} %)" if bleu[base] else "") for c in conds]
            rows.append((model, base, _fmt(bleu[base]), cells))
    if not rows:
        return []
    width = max(len(cells) for *_, cells in rows)
    lines = ["## Robustness (ST BLEU, all references; in brackets: % of the clean set's BLEU)", "",
             "Condition copies `<set>_<condition>` (stage 2, `--test_conditions`) and the held-out voice "
             "families (`<set>_unseen`).", "",
             "|model|set|clean|" + "|".join(f"copy {i + 1}" for i in range(width)) + "|",
             "|---|---|---|" + "---|" * width]
    for model, base, clean, cells in rows:
        lines.append(f"|{model}|{base}|{clean}|" + "|".join(cells + ["-"] * (width - len(cells))) + "|")
    return lines + [""]


def _metric_notes(sets: Dict[str, Dict]) -> List[str]:
    """How EnRecall found the English words of each set (``word_lang`` or the script rule), and the
    languages of its off-target hypotheses (subset ``all``)."""
    by: Dict[str, List[str]] = {}
    off = []
    for test_set, e in sets.items():
        for s in e["subsets"].values():
            if "en_words_by" in s:
                by.setdefault(s["en_words_by"], []).append(test_set)
        langs = e["subsets"].get("all", {}).get("off_target_langs")
        if langs:
            off.append(f"{test_set} " + ", ".join(f"{lang} {n}" for lang, n in langs.items()))
    lines = []
    if by:
        how = {"word_lang": "the words `word_lang` labels `en`",
               "script": "every Latin-script word (script rule: right for zh-en only)"}
        lines.append("EnRecall, English words of the `cs` transcripts: " + "; ".join(
            f"{how[k]} ({', '.join(v)})" for k, v in sorted(by.items())) + ".")
    if off:
        lines.append("Off-target hypotheses by language (script `cjk`/`latin`, or a language by its words): "
                     + "; ".join(off) + ".")
    return lines + [""] if lines else []


def _guard_table(sets: Dict[str, Dict]) -> List[str]:
    """Per test set: hypotheses ended by each runaway guard, and the score of the least confident
    tenth (mean token log-probability) against the rest."""
    sets = {t: e for t, e in sets.items() if "guards" in e or "confidence" in e}
    if not sets:
        return []
    lines = ["### Runaway guards and confidence", "",
             "Guards: hypotheses cut at the length limit (tokens per second of speech) or ended before "
             "repeating an n-gram (loop). Confidence: mean token log-probability of each hypothesis; the "
             "least confident tenth of a set scored against the rest (BLEU for ST, WER for ASR).", "",
             "|dataset|utts|length guard|loop guard|mean confidence|least confident: utts|score|rest: utts|score|",
             "|---|---|---|---|---|---|---|---|---|"]
    for test_set, e in sets.items():
        g, c = e.get("guards", {}), e.get("confidence")
        metric = "bleu" if "bleu" in e else "wer"
        cells = ["-"] * 5 if c is None else [
            _fmt(c["mean"]), str(c["low"]["num_utts"]), _fmt(c["low"].get(metric)), str(c["rest"]["num_utts"]),
            _fmt(c["rest"].get(metric))]
        lines.append(f"|{test_set}|{e['num_utts']}|{g.get('length', 0) if 'guards' in e else '-'}|"
                     f"{g.get('loop', 0) if 'guards' in e else '-'}|" + "|".join(cells) + "|")
    return lines + [""]


def markdown(results: Dict[str, Dict[str, Dict]], command: str = "", stage_times: Optional[List[List[str]]] = None,
             results_md: str = "") -> str:
    lines = ["<!-- Generated by csst_espnet.bin.make_results -->", "# RESULTS", "", "## Environment", ""]
    lines.append(f"- date: `{datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}`")
    lines.append(f"- system: `{platform.platform()}`, {os.cpu_count()} CPU cores")
    lines.append("- versions: " + ", ".join(f"{k} `{v}`" for k, v in package_versions().items()))
    lines.append(f"- git commit: `{_git_commit(results_md)}`")
    if command:
        lines.append(f"- command: `{command.strip()}`")
    lines.append("")
    lines += _comparison(results, "ST: BLEU, all references / first reference only", "bleu",
                         lambda e: f"{_fmt(e.get('bleu'))} / {_fmt(e.get('bleu_ref1'))}")
    lines += _robustness({m: r for m, r in results.items() if m != ORACLE_MODEL})
    if ORACLE_MODEL in results:
        lines += [f"`{ORACLE_MODEL}`: the stage-6 text LM translating the gold source transcripts (text in, no "
                  "speech): what a speech model with this LLM could reach at best.", ""]
    lines += _comparison(results, "ASR: MER", "mer", lambda e: _fmt(e["mer"]))
    for model, sets in results.items():
        st = {t: e for t, e in sets.items() if "bleu" in e}
        asr = {t: e for t, e in sets.items() if "mer" in e}
        lines += [f"## {model}", ""]
        lines.append(f"- decoding: `{os.path.dirname(next(iter(sets.values()))['decode_dir'])}`")
        for e in list(st.values())[:1]:
            for k, v in e["signatures"].items():
                lines.append(f"- {k}: `{v}`")
        lines.append("")
        if st:
            lines += ["### ST: BLEU/chrF", "", "|dataset|subset|utts|refs|BLEU|chrF|BLEU (ref 1)|EnRecall|OffTgt%|",
                      "|---|---|---|---|---|---|---|---|---|"]
            for test_set, e in st.items():
                for name in sorted(e["subsets"], key=_subset_key):
                    s = e["subsets"][name]
                    lines.append(f"|{test_set}|{name}|{s['num_utts']}|{e['num_refs']}|{_fmt(s.get('bleu'))}|"
                                 f"{_fmt(s.get('chrf'))}|{_fmt(s.get('bleu_ref1'))}|{_fmt(s.get('en_word_recall'))}|"
                                 f"{_fmt(s.get('off_target_rate'))}|")
            lines += [""] + _metric_notes(st)
        if asr:
            lines += ["### ASR: WER/CER/MER", "",
                      "MER: error rate over Mandarin characters and English words; MER-zh / MER-en: its errors "
                      "on the Mandarin / English tokens.", "",
                      "|dataset|subset|utts|WER|CER|MER|MER-zh|MER-en|EnRecall|OffTgt%|",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for test_set, e in asr.items():
                for name in sorted(e["subsets"], key=_subset_key):
                    s = e["subsets"][name]
                    lines.append(f"|{test_set}|{name}|{s['num_utts']}|{_fmt(s.get('wer'))}|{_fmt(s.get('cer'))}|"
                                 f"{_fmt(s.get('mer'))}|{_fmt(s.get('mer_zh'))}|{_fmt(s.get('mer_en'))}|"
                                 f"{_fmt(s.get('en_word_recall'))}|{_fmt(s.get('off_target_rate'))}|")
            lines += [""] + _metric_notes(asr)
        lines += _guard_table(sets)
        routing = sorted({e["routing_report"] for e in sets.values() if "routing_report" in e})
        if routing:
            lines += ["Routing report: " + ", ".join(f"[{p}]({p})" for p in routing), ""]
    if stage_times:
        total = sum(int(t[1]) for t in stage_times)
        lines += ["## Stage times (latest run of each stage; scoring, the stage writing this, not included)", "",
                  "|stage|what|seconds|finished|", "|---|---|---|---|"]
        lines += [f"|{t[0]}|{t[3] if len(t) > 3 else ''}|{t[1]}|{t[2] if len(t) > 2 else ''}|" for t in stage_times]
        lines += [f"|total||{total}||", ""]
    return "\n".join(lines)


def read_stage_times(path: str) -> List[List[str]]:
    """Latest ``[stage, seconds, finished, what]`` of each stage and what (a stage can run several
    things: stage 12 trains phase 3 and the CS-only baseline), in stage order."""
    if not path or not os.path.exists(path):
        return []
    latest: Dict[Tuple[str, str], List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1].isdigit():
                latest[(parts[0], parts[3] if len(parts) > 3 else "")] = parts
    order = lambda key: int(key[0]) if key[0].isdigit() else 99
    return [latest[k] for k in sorted(latest, key=order)]


def write_results(new: Dict[str, Dict[str, Dict]], out_md: str, out_json: str, command: str = "",
                  stage_times: str = "") -> None:
    """Add ``new`` entries (from :func:`collect`) to ``out_json`` (entries of other models are kept)
    and rewrite ``out_md`` from it."""
    results = read_json(out_json) or {}
    for model, sets in new.items():
        results.setdefault(model, {}).update(sets)
    os.makedirs(os.path.dirname(os.path.abspath(out_json)), exist_ok=True)
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(markdown(results, command, read_stage_times(stage_times), out_md))
