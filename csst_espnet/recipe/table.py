"""The comparison table of a recipe: rows x seeds, trained where missing, decoded, scored, compared.

``egs2/<corpus>/st1/local/run_table.sh --rows "full,cs_only,espnet_st" --seeds 0,1,2`` (through
``python -m csst_espnet.bin.make_table``) writes ``BENCHMARK.md`` and ``BENCHMARK.json``:

- A **row** is a config, ``conf/table/<row>.yaml``: the csst.sh options that make its model, the
  stages that prepare (once per row) and train it (once per seed), and the experiment it decodes::

      description: CS-only baseline (phase-3 data, no phases 1-2)
      exp: csst_train_cs_only            # experiment name before the tag suffix
      prepare: []                        # csst.sh stages run once for the row (e.g. 7 8)
      train: [12]                        # csst.sh stages that train it, each run alone
      tag_suffix: ""                     # appended to its experiment names (e.g. _mlp)
      seed_option: train_args            # the csst.sh option "--seed N" is added to
      options: {cs_only_baseline: true}  # csst.sh options; "{conf}" is the preset's config directory

  Every call gets ``--train_phases "" --decode_phases "" --cs_only_baseline false --baselines ""``
  first, so a row trains and decodes only what its options ask for. Adding a row (an ablation) is
  adding such a file.
- **Seeds**: seed s trains ``<exp><tag_suffix>_seed<s>`` (seed 0: ``<exp><tag_suffix>``, so the
  experiments of ``run.sh`` are reused) with ``--seed s``; an experiment that finished
  (``training.done``) is kept. Its ``config.yaml`` must say that seed.
- **Decoding** of every row and seed in this run (stage 13 with ``--overwrite true``), so that the
  cost columns (utterances/s, real-time factor: ``decode_cost.json`` of stage 13) are measured under
  the same conditions. ``inference_args`` (``make_table --inference_args``) are added to every csst
  row's decoding; the recipes' ``run_table.sh`` pass ``--segment_seconds 0``: ESPnet's ``st_inference``
  has no long-form segmentation, so no row gets it and the table compares models under one decoding.
- **Scores**: BLEU/chrF of each test set with the recipe's scorer (:func:`csst_espnet.metrics.scoring.score`,
  every reference ``text``, ``text.N``); mean ± sample standard deviation over seeds.
- **Pooled test sets** (``groups``, ``make_table --groups "cs=test_cs_zh,test_cs_es ..."``): several test
  sets scored and tested as one (utterances ``<set>/<utt>``), the main table's columns; every test set
  is then listed below it.
- **Significance** against the reference row (``full``): sacrebleu's own paired bootstrap
  (:class:`sacrebleu.significance.PairedTest`, 1000 resamples, ``SACREBLEU_SEED``), the hypotheses
  of all seeds concatenated (utterance i of seed s paired with the reference row's utterance i of
  seed s). A row is "no difference" where p >= 0.05 or its mean is within the larger of the two
  rows' seed standard deviations of the reference mean. Where the two scores are equal, the
  bootstrap's statistic (|Δ| of a resample above the observed |Δ| = 0) is degenerate — sacrebleu
  reports p = 0.001 even for identical outputs — and p is 1.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.metrics import scoring
from csst_espnet.utils.versions import package_versions

ALPHA = 0.05
N_SAMPLES = 1000
BASE_OPTIONS = {"train_phases": "", "decode_phases": "", "cs_only_baseline": "false", "baselines": ""}
ROW_KEYS = {"description", "exp", "prepare", "train", "tag_suffix", "seed_option", "options"}


class TableError(ValueError):
    """A row config, experiment or decoding output the table cannot use."""


@dataclass
class Row:
    name: str
    description: str
    exp: str
    train: List[int]
    prepare: List[int] = field(default_factory=list)
    tag_suffix: str = ""
    seed_option: str = "train_args"
    options: Dict[str, str] = field(default_factory=dict)

    def tag(self, seed: int) -> str:
        return f"{self.exp}{self.tag_suffix}" + (f"_seed{seed}" if seed else "")

    def csst_options(self, seed: int) -> Dict[str, str]:
        """The csst.sh options of this row's experiment of ``seed``."""
        opts = dict(BASE_OPTIONS, **self.options)
        opts[self.seed_option] = f"{opts.get(self.seed_option, '')} --seed {seed}".strip()
        opts["tag_suffix"] = self.tag_suffix + (f"_seed{seed}" if seed else "")
        return opts


def load_row(rows_dir: str, name: str, conf_dir: str) -> Row:
    """``rows_dir/<name>.yaml`` with ``{conf}`` in option values replaced by ``conf_dir``."""
    path = os.path.join(rows_dir, f"{name}.yaml")
    if not os.path.exists(path):
        known = sorted(f[:-5] for f in os.listdir(rows_dir) if f.endswith(".yaml")) if os.path.isdir(rows_dir) else []
        raise TableError(f"no row config {path} (rows in {rows_dir}: {', '.join(known) or 'none'})")
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    unknown = sorted(set(conf) - ROW_KEYS)
    if unknown:
        raise TableError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(ROW_KEYS))})")
    for key in ("description", "exp", "train"):
        if key not in conf:
            raise TableError(f"{path}: '{key}' is missing")
    options = {}
    for k, v in (conf.get("options") or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        options[str(k)] = str(v).replace("{conf}", conf_dir)
    return Row(name=name, description=str(conf["description"]), exp=str(conf["exp"]),
               train=[int(s) for s in conf["train"]], prepare=[int(s) for s in conf.get("prepare") or []],
               tag_suffix=str(conf.get("tag_suffix") or ""), seed_option=str(conf.get("seed_option", "train_args")),
               options=options)


def parse_groups(spec: str) -> Dict[str, List[str]]:
    """``"cs=a,b mono=c,d"`` -> ``{"cs": ["a", "b"], "mono": ["c", "d"]}``."""
    groups: Dict[str, List[str]] = {}
    for item in spec.split():
        name, _, sets = item.partition("=")
        if not name or not sets or name in groups:
            raise TableError(f"--groups: expected NAME=SET,SET,... once per name, got {item!r}")
        groups[name] = [t for t in sets.split(",") if t]
    return groups


def option_args(options: Dict[str, str]) -> List[str]:
    out: List[str] = []
    for k, v in options.items():
        out += [f"--{k}", v]
    return out


def merge_args_options(run: Sequence[str], options: Dict[str, str]) -> Tuple[List[str], Dict[str, str]]:
    """The recipe command and a row's options, where both give an ``*_args`` option (e.g. ``--train_args``
    in ``--run`` and the row's ``--seed N``): one option with both values (the command's first), since
    csst.sh keeps only the last of a repeated option."""
    run, options = list(run), dict(options)
    for i in range(len(run) - 2, -1, -1):
        key = run[i][2:].replace("-", "_") if run[i].startswith("--") else ""
        if key.endswith("_args") and key in options:
            options[key] = f"{run[i + 1]} {options[key]}"
            del run[i:i + 2]
    return run, options


# ------------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def paired_bootstrap(references: Sequence[Sequence[str]], baseline: Sequence[str], system: Sequence[str],
                     tgt_lang: str, n_samples: int = N_SAMPLES) -> Dict[str, Dict[str, float]]:
    """sacrebleu's paired bootstrap test of ``system`` against ``baseline`` (the same test as
    ``sacrebleu REF... -i BASELINE SYSTEM --paired-bs``): ``{"bleu"|"chrf": {"baseline", "system",
    "p", "signature"}}``. Where the two scores are equal, p is 1 (see the module docstring)."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    if len(baseline) != len(system) or any(len(r) != len(system) for r in references):
        raise TableError(f"paired test: {len(baseline)} baseline and {len(system)} system hypotheses, "
                         f"references of {[len(r) for r in references]} lines")
    metrics = {"bleu": BLEU(tokenize=scoring.bleu_tokenizer(tgt_lang)), "chrf": CHRF()}
    test = PairedTest([("baseline", list(baseline)), ("system", list(system))], metrics,
                      references=[list(r) for r in references], test_type="bs", n_samples=n_samples)
    signatures, scores = test()
    out = {}
    for key, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        base, sys_ = scores[name]
        p = 1.0 if sys_.score == base.score else float(sys_.p_value)
        out[key] = {"baseline": float(base.score), "system": float(sys_.score), "p": p,
                    "sacrebleu_p": float(sys_.p_value), "signature": str(signatures[name])}
    return out


def verdict(p: float, mean: float, std: float, ref_mean: float, ref_std: float, alpha: float = ALPHA) -> str:
    """"no difference" where p >= alpha or the means are within the seeds' spread, else better/worse."""
    if p >= alpha or abs(mean - ref_mean) <= max(std, ref_std):
        return "no difference"
    return "better" if mean > ref_mean else "worse"


# ------------------------------------------------------------------------------- the run
Runner = Callable[[List[str], str], None]


def shell_runner(cwd: str) -> Runner:
    """Run a command in ``cwd``, its output into a log file; a failure raises naming the log."""
    def run(cmd: List[str], log: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "w", encoding="utf-8") as f:
            f.write("# " + " ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            with open(log, encoding="utf-8", errors="replace") as f:
                tail = "".join(f.readlines()[-20:])
            raise TableError(f"{' '.join(cmd[:1])} failed ({proc.returncode}), log {log}:\n{tail}")
    return run


@dataclass
class Table:
    rows: List[Row]
    seeds: List[int]
    test_sets: List[str]
    tgt_lang: str
    run: List[str]                 # the recipe command (e.g. ["./run.sh", "--preset", "tiny"])
    recipe_dir: str = "."
    expdir: str = "exp"
    data_dir: str = "dump/raw"
    reference: str = "full"
    n_samples: int = N_SAMPLES
    redecode: bool = True          # decode every row and seed again (cost measured in this run)
    runner: Optional[Runner] = None
    groups: Dict[str, List[str]] = field(default_factory=dict)  # pooled test sets: name -> test sets
    inference_args: str = ""       # csst_inference options of every csst row's decoding (csst.sh --inference_args)

    def _path(self, *parts: str) -> str:
        return os.path.join(self.recipe_dir, *parts)

    def _call(self, row: Row, seed: int, stage: int, extra: Optional[Dict[str, str]] = None) -> None:
        run, opts = merge_args_options(self.run, dict(row.csst_options(seed), **(extra or {})))
        cmd = [*run, "--stage", str(stage), "--stop_stage", str(stage), *option_args(opts)]
        log = self._path(self.expdir, "table", "logs", f"{row.name}.seed{seed}.stage{stage}.log")
        try:
            (self.runner or shell_runner(self.recipe_dir))(cmd, log)
        except TableError as e:
            raise TableError(f"row {row.name}, seed {seed}, stage {stage}: {e}") from e

    def exp_dir(self, row: Row, seed: int) -> str:
        return self._path(self.expdir, row.tag(seed))

    def train(self, row: Row, log=print) -> None:
        """Train the row's missing seeds: its prepare stages once, then its train stages per seed."""
        missing = [s for s in self.seeds if not os.path.exists(os.path.join(self.exp_dir(row, s), "training.done"))]
        for s in self.seeds:
            if s not in missing:
                log(f"{row.name} seed {s}: {self.exp_dir(row, s)} is trained: kept")
        if missing:
            for stage in row.prepare:
                log(f"{row.name}: stage {stage} (prepare)")
                self._call(row, missing[0], stage)
        for s in missing:
            for stage in row.train:
                log(f"{row.name} seed {s}: stage {stage} -> {self.exp_dir(row, s)}")
                self._call(row, s, stage)
            if not os.path.exists(os.path.join(self.exp_dir(row, s), "training.done")):
                raise TableError(f"{row.name} seed {s}: stages {row.train} left no "
                                 f"{self.exp_dir(row, s)}/training.done (does 'exp' name what they train?)")
        for s in self.seeds:
            config = os.path.join(self.exp_dir(row, s), "config.yaml")
            with open(config, encoding="utf-8") as f:
                got = (yaml.safe_load(f) or {}).get("seed")
            if got != s:
                raise TableError(f"{config}: trained with seed {got}, the table's seed {s}; move it away or "
                                 f"retrain it with --seed {s}")

    def decode_dir(self, row: Row, seed: int) -> str:
        """The latest decoding of the row's experiment (the one with the newest decode_cost.json)."""
        exp = self.exp_dir(row, seed)
        found = []
        for name in sorted(os.listdir(exp)) if os.path.isdir(exp) else []:
            cost = os.path.join(exp, name, "logdir", "decode_cost.json")
            if os.path.exists(cost):
                found.append((os.path.getmtime(cost), os.path.join(exp, name)))
        if not found:
            raise TableError(f"{exp}: no decoding (<decode dir>/logdir/decode_cost.json): decode it (stage 13)")
        return max(found)[1]

    def decode(self, row: Row, seed: int) -> None:
        extra = {"test_sets": " ".join(self.test_sets), "test_conditions": "", "asr_test_sets": "",
                 "text_lm_oracle": "false", "overwrite": "true"}
        if self.inference_args:
            extra["inference_args"] = self.inference_args
        self._call(row, seed, 13, extra)

    def references(self, test_set: str) -> Tuple[List[str], List[Dict[str, str]], Dict[str, str]]:
        """Utterances (sorted), references (``text``, ``text.N``) and ``utt2lang`` of a test set."""
        d = self._path(self.data_dir, test_set)
        names = ["text"] + sorted((n for n in os.listdir(d) if re.fullmatch(r"text\.\d+", n)), key=lambda n: int(n[5:]))
        refs = [kd.read_table(os.path.join(d, n), unique=True) for n in names]
        utt2lang = kd.read_table(os.path.join(d, "utt2lang"), unique=True) if os.path.exists(
            os.path.join(d, "utt2lang")) else None
        return sorted(refs[0]), refs, utt2lang

    def pooled_references(self, test_sets: Sequence[str]) -> Tuple[List[str], List[Dict[str, str]], Dict[str, str]]:
        """:meth:`references` of several test sets as one, utterances keyed ``<set>/<utt>``; every set
        needs as many references as the first."""
        utts: List[str] = []
        refs: List[Dict[str, str]] = []
        utt2lang: Optional[Dict[str, str]] = {}
        for t in test_sets:
            t_utts, t_refs, t_langs = self.references(t)
            if refs and len(t_refs) != len(refs):
                raise TableError(f"{t} has {len(t_refs)} references, {test_sets[0]} {len(refs)}: they cannot be pooled")
            refs = refs or [{} for _ in t_refs]
            for pooled, r in zip(refs, t_refs):
                pooled.update({f"{t}/{u}": v for u, v in r.items()})
            utts += [f"{t}/{u}" for u in t_utts]
            utt2lang = None if t_langs is None or utt2lang is None else {**utt2lang, **{f"{t}/{u}": v for u, v in t_langs.items()}}
        return utts, refs, utt2lang

    def train_all(self, log=print) -> None:
        """Train what is missing of every row, nothing else (``--train_only``: the training of a table can
        be split over processes or machines by rows, then one run without it decodes and scores)."""
        for row in self.rows:
            self.train(row, log)

    def build(self, log=print) -> Dict:
        """Train what is missing, decode, score and compare; the BENCHMARK.json content."""
        names = [r.name for r in self.rows]
        if self.reference not in names:
            raise TableError(f"the reference row {self.reference} is not among the rows {', '.join(names)}")
        self.train_all(log)
        hyps: Dict[str, Dict[int, Dict[str, Dict[str, str]]]] = {}
        costs: Dict[str, Dict[int, Dict]] = {}
        for row in self.rows:
            hyps[row.name], costs[row.name] = {}, {}
            for s in self.seeds:
                if self.redecode:
                    log(f"{row.name} seed {s}: decoding {' '.join(self.test_sets)}")
                    self.decode(row, s)
                ddir = self.decode_dir(row, s)
                with open(os.path.join(ddir, "logdir", "decode_cost.json"), encoding="utf-8") as f:
                    costs[row.name][s] = dict(json.load(f), decode_dir=ddir)
                hyps[row.name][s] = {}
                for t in self.test_sets:
                    path = os.path.join(ddir, t, "text")
                    if not os.path.exists(path):
                        raise TableError(f"{path} is missing: {row.name} seed {s} did not decode {t}")
                    hyps[row.name][s][t] = kd.read_table(path, unique=True)
        for name, sets in self.groups.items():
            missing = [t for t in sets if t not in self.test_sets]
            if missing:
                raise TableError(f"group {name}: {', '.join(missing)} not among the test sets {' '.join(self.test_sets)}")
            for row in self.rows:
                for s in self.seeds:
                    hyps[row.name][s][name] = {f"{t}/{u}": h for t in sets for u, h in hyps[row.name][s][t].items()}
        out: Dict = {"reference": self.reference, "seeds": self.seeds, "test_sets": self.test_sets,
                     "groups": self.groups, "inference_args": self.inference_args, "alpha": ALPHA, "n_samples": self.n_samples, "rows": {}}
        for t in [*self.test_sets, *self.groups]:
            utts, refs, utt2lang = self.pooled_references(self.groups[t]) if t in self.groups else self.references(t)
            for row in self.rows:
                per_seed = {}
                for s in self.seeds:
                    try:
                        res = scoring.score(hyps[row.name][s][t], refs, task="st", tgt_lang=self.tgt_lang,
                                            utt2lang=utt2lang)
                    except scoring.ScoringError as e:
                        raise TableError(f"{row.name} seed {s} {t}: {e}") from e
                    per_seed[s] = {"bleu": res["subsets"]["all"]["bleu"], "chrf": res["subsets"]["all"]["chrf"]}
                    out.setdefault("signatures", res["signatures"])
                entry = {"seeds": per_seed}
                for m in ("bleu", "chrf"):
                    entry[m], entry[f"{m}_std"] = mean_std([per_seed[s][m] for s in self.seeds])
                out["rows"].setdefault(row.name, {"description": row.description, "sets": {}})["sets"][t] = entry
            # paired bootstrap against the reference row, seeds concatenated
            ref_streams = [[r[u] for s in self.seeds for u in utts] for r in refs]
            base = [hyps[self.reference][s][t].get(u, "") for s in self.seeds for u in utts]
            ref_entry = out["rows"][self.reference]["sets"][t]
            for row in self.rows:
                entry = out["rows"][row.name]["sets"][t]
                if row.name == self.reference:
                    entry["verdict"] = "reference"
                    continue
                system = [hyps[row.name][s][t].get(u, "") for s in self.seeds for u in utts]
                test = paired_bootstrap(ref_streams, base, system, self.tgt_lang, self.n_samples)
                entry["identical_to_reference"] = system == base
                for m in ("bleu", "chrf"):
                    entry[f"{m}_p"] = test[m]["p"]
                    entry[f"{m}_sacrebleu_p"] = test[m]["sacrebleu_p"]
                    entry[f"{m}_verdict"] = verdict(test[m]["p"], entry[m], entry[f"{m}_std"], ref_entry[m],
                                                    ref_entry[f"{m}_std"])
                    out.setdefault("test_signatures", {})[m] = test[m]["signature"]
        for row in self.rows:
            c = costs[row.name]
            r = out["rows"][row.name]
            r["exps"] = {str(s): self.exp_dir(row, s) for s in self.seeds}
            r["decode_dirs"] = {str(s): c[s]["decode_dir"] for s in self.seeds}
            r["utts_per_second"], r["utts_per_second_std"] = mean_std([c[s]["utts_per_second"] for s in self.seeds])
            r["rtf"], r["rtf_std"] = mean_std([c[s]["rtf"] for s in self.seeds])
            first = c[self.seeds[0]]
            r["decode_setup"] = {k: first.get(k) for k in ("jobs", "threads", "ngpu", "host", "cpu_count")}
        return out


# ------------------------------------------------------------------------------- the files
def _pm(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def _p(entry: Dict, m: str) -> str:
    if f"{m}_p" not in entry:
        return "ref."
    return f"{entry[f'{m}_p']:.3f} ({entry[f'{m}_verdict']})"


def markdown(result: Dict, command: str = "") -> str:
    n = len(result["seeds"])
    lines = ["<!-- Generated by csst_espnet.bin.make_table -->", "# BENCHMARK", "",
             f"- date: `{datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}`",
             f"- host: `{platform.node()}`, `{platform.platform()}`, {os.cpu_count()} CPU cores",
             "- versions: " + ", ".join(f"{k} `{v}`" for k, v in package_versions().items()),
             f"- seeds: {', '.join(map(str, result['seeds']))} (mean ± sample standard deviation over seeds)"]
    if command:
        lines.append(f"- command: `{command.strip()}`")
    if result.get("inference_args"):
        lines.append(f"- decoding of the csst rows: the recipe's decode config with `{result['inference_args']}`")
    for k, v in result.get("signatures", {}).items():
        lines.append(f"- {k}: `{v}`")
    for k, v in result.get("test_signatures", {}).items():
        lines.append(f"- paired bootstrap ({k}): `{v}`")
    lines += ["", f"p: sacrebleu's paired bootstrap ({result['n_samples']} resamples) against "
              f"`{result['reference']}`, the hypotheses of all seeds concatenated; \"no difference\": p ≥ "
              f"{result['alpha']} or the means within the larger seed standard deviation (p is 1 where the "
              "scores are equal).", ""]
    groups = result.get("groups") or {}
    sets = list(groups) or result["test_sets"]  # with groups: the groups here, every test set below
    if groups:
        lines += ["Pooled test sets (corpus BLEU/chrF and the bootstrap over their utterances together): "
                  + "; ".join(f"**{g}** = {' + '.join(ts)}" for g, ts in groups.items()) + ".", ""]
    head = "|row|" + "|".join(f"{t} BLEU|{t} chrF|p BLEU|p chrF" for t in sets) + "|utts/s|RTF|"
    lines += [head, "|---|" + "---|" * (4 * len(sets) + 2)]
    for name, r in result["rows"].items():
        cells = []
        for t in sets:
            e = r["sets"][t]
            cells += [_pm(e["bleu"], e["bleu_std"], n), _pm(e["chrf"], e["chrf_std"], n), _p(e, "bleu"), _p(e, "chrf")]
        cells += [_pm(r["utts_per_second"], r["utts_per_second_std"], n), _pm(r["rtf"], r["rtf_std"], n)]
        lines.append(f"|{name}|" + "|".join(cells) + "|")
    if groups:
        lines += ["", "Every test set:", "", "|test set|row|BLEU|chrF|p BLEU|p chrF|", "|---|---|---|---|---|---|"]
        for t in result["test_sets"]:
            for name, r in result["rows"].items():
                e = r["sets"][t]
                lines.append(f"|{t}|{name}|{_pm(e['bleu'], e['bleu_std'], n)}|{_pm(e['chrf'], e['chrf_std'], n)}|"
                             f"{_p(e, 'bleu')}|{_p(e, 'chrf')}|")
    lines += ["", "Decoding cost: every row and seed decoded in this run, the test sets together in one job "
              "array (utterances per second of wall time; RTF = wall time / audio duration; the jobs' start-up "
              "and model loading included, which dominate small test sets), with:", ""]
    lines += ["|row|description|experiments|jobs × threads|GPUs|", "|---|---|---|---|---|"]
    for name, r in result["rows"].items():
        d = r["decode_setup"]
        lines.append(f"|{name}|{r['description']}|{', '.join(f'`{e}`' for e in r['exps'].values())}|"
                     f"{d['jobs']} × {d['threads']}|{d['ngpu']}|")
    return "\n".join(lines) + "\n"


def write(result: Dict, out_md: str, out_json: str, command: str = "") -> None:
    for path in (out_md, out_json):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(dict(result, command=command), f, indent=1, ensure_ascii=False)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(markdown(result, command))
