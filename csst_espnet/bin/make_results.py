#!/usr/bin/env python3
"""Collect the scores of decoded test sets into ``RESULTS.md`` and ``exp/results.json``.

    python -m csst_espnet.bin.make_results --expdir exp --out_md RESULTS.md --out_json exp/results.json \\
        [--command "./run.sh ..."] [--stage_times exp/stage_times.tsv] SCORE_DIR [SCORE_DIR ...]

Each ``SCORE_DIR`` is ``<expdir>/<model tag>/<decode tag>/<test set>`` with ``score.json`` (from
``csst_espnet.bin.score``, all references) and optionally ``score_ref1.json`` (first reference
only); a routing report ``routing/routing.md`` in it or beside it is linked. ``results.json`` maps
model tag -> test set -> metrics (entries of other models already in the file are kept): BLEU/chrF of
ST sets, WER/CER/MER of ASR sets (e.g. ``<set>_asr``, scored with ``--task asr``). ``RESULTS.md``
shows the environment, the command, per model an ST table (BLEU/chrF) and an ASR table
(WER/CER/MER) per CS / monolingual / all subset, comparisons of the models, and the stage times.
"""

import argparse
import os
import sys
from typing import Optional, Sequence

from csst_espnet.recipe.results import collect, write_results


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.make_results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("score_dirs", nargs="+")
    p.add_argument("--expdir", default="exp")
    p.add_argument("--out_md", default="RESULTS.md")
    p.add_argument("--out_json", default=None, help="default: EXPDIR/results.json")
    p.add_argument("--command", default="")
    p.add_argument("--stage_times", default="")
    args = p.parse_args(argv)
    out_json = args.out_json or os.path.join(args.expdir, "results.json")
    try:
        new = collect(args.score_dirs, args.expdir)
    except (ValueError, FileNotFoundError) as e:
        print(f"make_results: {e}", file=sys.stderr)
        return 1
    write_results(new, args.out_md, out_json, args.command, args.stage_times)
    for model, sets in new.items():
        for test_set, e in sets.items():
            metric = (f"BLEU {e['bleu']:.2f}" if "bleu" in e
                      else f"WER {e['wer']:.2f} CER {e['cer']:.2f} MER {e['mer']:.2f}")
            print(f"{model} {test_set}: {metric}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
