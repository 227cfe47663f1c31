#!/usr/bin/env python3
"""The GPU check of the reference setup (``csst_espnet.benchmarks.gpu_check``); nothing is downloaded.

    python -m csst_espnet.bin.gpu_check [--device cuda] [--out docs/benchmarks.md]
    python -m csst_espnet.bin.gpu_check --small --device cpu --out /tmp/benchmarks.md   # CPU, minutes

Random weights in the exact shapes of Whisper large-v3 and Qwen2.5-7B (``--small``: the same
architectures at CPU size), bf16 where the configs say: one training step of each phase config of
``--conf_dir`` (distill included) with its peak memory and step time, and batched decoding throughput
(batch 1 vs 16, greedy vs beam 4). The figures, with the device's name and this command, replace the
GPU-check section of ``--out``.
"""

import argparse
import shlex
import sys
from typing import List, Optional

import torch

from csst_espnet.benchmarks.gpu_check import REFERENCE_CONF, format_markdown, run, write_markdown
from csst_espnet.benchmarks.memory_plan import StepShape


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", default=REFERENCE_CONF, help="directory of train_phase{1,2,3}.yaml")
    parser.add_argument("--small", action="store_true", help="the same architectures at CPU size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8, help="utterances per training step")
    parser.add_argument("--utt_seconds", type=float, default=10.0)
    parser.add_argument("--prompt_tokens", type=int, default=40)
    parser.add_argument("--target_tokens", type=int, default=60)
    parser.add_argument("--decode_utterances", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to write the figures into")
    opts = parser.parse_args(argv)
    shape = StepShape(opts.batch, opts.utt_seconds, opts.prompt_tokens, opts.target_tokens, src_tokens=20)
    result = run(opts.conf_dir, opts.small, torch.device(opts.device), shape, opts.decode_utterances,
                 opts.max_new_tokens)
    command = "python -m csst_espnet.bin.gpu_check " + " ".join(map(shlex.quote, argv if argv is not None else sys.argv[1:]))
    section = format_markdown(result, command.strip(), shape)
    write_markdown(section, opts.out)
    print(section)


if __name__ == "__main__":
    main(sys.argv[1:])
