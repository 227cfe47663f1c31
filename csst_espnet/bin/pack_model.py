#!/usr/bin/env python3
"""Pack a trained model into an ESPnet-style zip (recipe stage 15).

    python -m csst_espnet.bin.pack_model --exp_dir exp/csst_train_phase3 \\
        --model_file exp/csst_train_phase3/valid.acc.ave.pth --out exp/csst_train_phase3/packed.zip \\
        [--llm_policy auto|include|reference] [--max_include_mb 2048] [--extra RESULTS.md ...]

The zip holds, at their paths relative to the recipe directory (so that the config works after
unzipping there or anywhere else): ``<exp_dir>/config.yaml``, the model file, and the local
directories the config loads pretrained parts from (``llm_conf.model_name_or_path``, ``tokenizer``,
``encoder_conf.model_name_or_path``). A part given by a hub name, or a local directory larger than
``--max_include_mb`` under ``--llm_policy auto`` (or any with ``reference``), is not copied: the
config keeps its reference and ``meta.yaml`` lists it under ``references``. A local directory outside
the recipe directory is stored under ``external/<name>`` and the packed config points there.
``meta.yaml`` also records the files, the model file's sha256, the creation time and versions.
"""

import argparse
import os
import sys
from functools import partial
from typing import Optional, Sequence

from csst_espnet.export.pack import pack
from csst_espnet.utils.cli import add_option


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.pack_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    opt = partial(add_option, p)

    opt("exp_dir", required=True)
    opt("model_file", required=True)
    opt("out", required=True)
    opt("llm_policy", default="auto", help="auto | include | reference (pretrained directories)")
    opt("max_include_mb", type=float, default=2048, help="auto: larger directories are referenced, not packed")
    opt("extra", action="append", default=[], help="more files to pack (e.g. RESULTS.md)")
    args = p.parse_args(argv)
    try:
        meta = pack(args.exp_dir, args.model_file, args.out, args.llm_policy, args.max_include_mb, args.extra)
    except (ValueError, FileNotFoundError) as e:
        print(f"pack_model: {e}", file=sys.stderr)
        return 1
    size = os.path.getsize(args.out) / 2**20
    print(f"{args.out}: {size:.1f} MB; packed {', '.join(meta['files']['directories']) or 'no directories'}"
          + (f"; references: {meta['references']}" if meta["references"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
