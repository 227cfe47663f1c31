#!/usr/bin/env python3
"""Stage 1 of the corpus recipes: a corpus in its raw layout -> Kaldi-style data directories.

    python -m csst_espnet.bin.prepare_corpus ntuml2021 --source DIR_OR_HUB_NAME --out data
        --audio_dir downloads/ntuml2021/audio [--splits train,dev,test]
    python -m csst_espnet.bin.prepare_corpus fisher_cs --speech LDC2010S01 --transcripts LDC2010T04
        --translations fisher-callhome-corpus --out data --audio_dir downloads/fisher_cs/audio
    python -m csst_espnet.bin.prepare_corpus cs_fleurs --source CS_FLEURS_DIR --fleurs_en FLEURS/data/en_us
        --out data [--folders read/test,xtts/test1] [--pairs cmn-eng,spa-eng]
    python -m csst_espnet.bin.prepare_corpus covost2 --common_voice CV_ROOT --covost COVOST_DIR --out data
        [--locales fr,de,es,zh-CN] [--splits train,dev,test] [--fleurs FLEURS/data] [--allow_missing true]

Writes ``OUT/<split>``, ``OUT/<split>_cs`` and ``OUT/<split>_mono`` (covost2: ``OUT/<split>_<lang>`` and
``OUT/fleurs_test_<lang>``; see ``csst_espnet.corpora.<corpus>`` for the layout read and the CS /
monolingual rule). Errors name the file; the exit status is 1.
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet2.utils.types import str2bool

from csst_espnet.corpora import covost2, cs_fleurs, fisher_cs, ntuml2021
from csst_espnet.utils.cli import add_option


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.prepare_corpus", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="corpus", required=True)
    n = sub.add_parser("ntuml2021", help=f"NTUML2021 ({ntuml2021.HUB_NAME}) parquet shards")
    add_option(n, "source", required=True, help=f"local copy of {ntuml2021.HUB_NAME}, or the hub name (online)")
    add_option(n, "out", default="data", help="where the data directories go")
    add_option(n, "audio_dir", required=True, help="where the audio of the parquet rows is written")
    add_option(n, "splits", default=",".join(ntuml2021.SPLITS), help="comma separated")
    add_option(n, "cache_dir", default="downloads", help="hub download cache (a hub name only)")

    f = sub.add_parser("fisher_cs", help="Fisher Spanish-English, the code-switch split of Weller et al. 2022")
    add_option(f, "speech", required=True, help="LDC2010S01 (data/speech/*.sph)")
    add_option(f, "transcripts", required=True, help="LDC2010T04 (data/transcripts/*.tdf)")
    add_option(f, "translations", required=True, help="the Fisher-CallHome corpus (mapping/, corpus/ldc/)")
    add_option(f, "out", default="data", help="where the data directories go")
    add_option(f, "audio_dir", required=True, help="where the 8 kHz conversation sides are written")
    add_option(f, "splits", default=",".join(fisher_cs.SPLITS), help="comma separated")

    c = sub.add_parser("cs_fleurs", help="CS-FLEURS test sets (evaluation)")
    add_option(c, "source", required=True, help=f"local copy of {cs_fleurs.HUB_NAME}")
    add_option(c, "fleurs_en", required=True, help="google/fleurs data/en_us (train.tsv, dev.tsv, test.tsv)")
    add_option(c, "out", default="data", help="where the data directories go")
    add_option(c, "folders", default=",".join(cs_fleurs.TEST_SETS), help="comma separated")
    add_option(c, "pairs", default="cmn-eng,spa-eng", help="comma separated language pairs")

    v = sub.add_parser("covost2", help="CoVoST 2 X->en on a local Common Voice copy (+ FLEURS X->en test sets)")
    add_option(v, "common_voice", required=True, help="Common Voice root (<locale>/validated.tsv, <locale>/clips)")
    add_option(v, "covost", required=True, help="directory of covost_v2.<locale>_en.tsv")
    add_option(v, "out", default="data", help="where the data directories go")
    add_option(v, "locales", default="fr,de,es,zh-CN", help="Common Voice locales, comma separated")
    add_option(v, "splits", default=",".join(covost2.SPLITS), help="comma separated")
    add_option(v, "fleurs", default=None, help="google/fleurs data/ (en_us and the source locales): test sets")
    add_option(v, "allow_missing", type=str2bool, default=False,
               help="leave out CoVoST lines whose clip this Common Voice copy lacks (counted in the log)")
    add_option(v, "check_audio", type=str2bool, default=True, help="open every audio file header")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        if args.corpus == "ntuml2021":
            summaries = ntuml2021.prepare(args.source, args.out, args.audio_dir, args.splits.split(","), args.cache_dir)
        elif args.corpus == "cs_fleurs":
            summaries = cs_fleurs.prepare(args.source, args.fleurs_en, args.out, args.folders.split(","),
                                          args.pairs.split(","))
        elif args.corpus == "covost2":
            summaries = covost2.prepare(args.common_voice, args.covost, args.out, args.locales.split(","),
                                        args.splits.split(","), args.fleurs, args.allow_missing, args.check_audio)
        elif args.corpus == "fisher_cs":
            summaries = fisher_cs.prepare(args.speech, args.transcripts, args.translations, args.out, args.audio_dir,
                                          args.splits.split(","))
    except (ValueError, FileNotFoundError) as e:
        print(f"prepare_corpus {args.corpus}: {e}", file=sys.stderr)
        return 1
    for split, summary in summaries.items():
        print(f"{args.out}/{split}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
