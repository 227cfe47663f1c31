#!/usr/bin/env python3
"""The comparison table of a recipe: BENCHMARK.md and BENCHMARK.json (rows x seeds).

    python -m csst_espnet.bin.make_table --rows full,cs_only,espnet_st --seeds 0,1,2 --tgt_lang en \\
        [--run "./run.sh --preset tiny"] [--conf_dir conf/tiny] [--rows_dir conf/table] \\
        [--test_sets "test_cs test_mono"] [--reference full] [--no_decode | --train_only] \\
        [--out_md BENCHMARK.md] [--out_json BENCHMARK.json]

Run in the recipe directory. Each row is ``ROWS_DIR/<row>.yaml`` (csst.sh options, the stages that
train it, the experiment it decodes); what is not trained yet is trained through the recipe command
(``--run``), every row and seed is decoded again (decoding cost measured in this run), scored with the
recipe's scorer, and compared with the reference row by sacrebleu's paired bootstrap. See
csst_espnet/recipe/table.py for the row format and the statistics; logs of the recipe calls are in
``exp/table/logs``. ``--train_only`` trains the missing experiments of the rows and stops: the training
can be split over processes by rows (rows that share experiments, such as ``full`` and ``mixture``, in one
process), then one run without it decodes every row on one idle machine and writes the table.
"""

import argparse
import shlex
import sys
from typing import Optional, Sequence

from csst_espnet.recipe import table


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.make_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", required=True, help="comma-separated row names (ROWS_DIR/<row>.yaml)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--tgt_lang", required=True, help="target language (BLEU tokenizer)")
    p.add_argument("--run", default="./run.sh", help="the recipe command the stages are run with")
    p.add_argument("--conf_dir", default="conf", help="replaces {conf} in the rows' options")
    p.add_argument("--rows_dir", default="conf/table")
    p.add_argument("--test_sets", default="test_cs test_mono")
    p.add_argument("--reference", default="full", help="the row the others are tested against")
    p.add_argument("--groups", default="", help="pooled test sets in the main table, e.g. "
                   "'cs=test_cs_zh,test_cs_es mono=test_mono_zh,test_mono_es' (every test set is listed below it)")
    p.add_argument("--expdir", default="exp")
    p.add_argument("--data_dir", default="dump/raw", help="the formatted test sets (references)")
    p.add_argument("--inference_args", default="", help="csst_inference options added to every csst row's "
                   "decoding (csst.sh --inference_args), e.g. '--segment_seconds 0'")
    p.add_argument("--n_samples", type=int, default=table.N_SAMPLES, help="bootstrap resamples")
    p.add_argument("--no_decode", action="store_true", help="use the latest decodings (and their cost) as they are")
    p.add_argument("--train_only", action="store_true", help="train the rows' missing experiments, then stop "
                   "(no decoding, no table)")
    p.add_argument("--out_md", default="BENCHMARK.md")
    p.add_argument("--out_json", default="BENCHMARK.json")
    p.add_argument("--command", default="", help="the command line recorded in the outputs")
    return p


def log(msg: str) -> None:
    print(f"make_table: {msg}", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        names = [r.strip() for r in args.rows.split(",") if r.strip()]
        if not seeds or not names:
            raise table.TableError("--rows and --seeds must not be empty")
        rows = [table.load_row(args.rows_dir, n, args.conf_dir) for n in names]
        t = table.Table(rows=rows, seeds=seeds, test_sets=args.test_sets.split(), tgt_lang=args.tgt_lang,
                        run=shlex.split(args.run), expdir=args.expdir, data_dir=args.data_dir,
                        reference=args.reference, n_samples=args.n_samples, redecode=not args.no_decode,
                        groups=table.parse_groups(args.groups), inference_args=args.inference_args)
        if args.train_only:
            t.train_all(log)
            log(f"trained: {', '.join(names)}, seeds {','.join(map(str, seeds))}")
            return 0
        result = t.build(log)
    except (table.TableError, ValueError, FileNotFoundError) as e:
        log(str(e))
        return 1
    table.write(result, args.out_md, args.out_json, args.command)
    print(table.markdown(result, args.command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
