"""Benchmark the MoE projector's MoE layer against Hugging Face Mixtral's sparse-MoE block.

    python -m csst_espnet.bin.bench_projector [--small] [--device cpu] [--dtype float32] [--json FILE]

Times forward + backward, in one process, side by side, on the same tokens and the same weights:

(a) ours: one ``MoELayer`` of ``csst_espnet.projector.moe`` (router + dropless expert dispatch);
(b) the peer: ``transformers.models.mixtral.modeling_mixtral.MixtralSparseMoeBlock``, timed with each
    of its ``experts_implementation`` choices (``eager``: a Python loop over hit experts;
    ``grouped_mm``: sort + ``torch._grouped_mm``; ``batched_mm``: gathers one weight matrix per
    (token, expert) pair and runs ``bmm``).  transformers 5.23 picks the implementation from
    ``config._experts_implementation`` at every forward (``use_experts_implementation`` in
    ``transformers/integrations/moe.py``); we set it on the config.  The fastest choice that runs is
    the peer;
(c) a dense MLP of one expert's shape over all tokens: the floor (top-k routing costs about k x this).

Like for like: both MoE sides use SwiGLU experts without biases and equal input/output width
(the LLM width), the same router and expert weights (copied), so they route identically; the
outputs are checked to agree.  Our projector's real first layer (stacked encoder frames -> LLM
width, GELU, biases) is timed as an extra, informational row.

Tokens are speech tokens entering the MoE layer (after downsampling).
"""

import argparse
from typing import Dict, List, Optional

from csst_espnet.benchmarks.projector import DEFAULTS, SMALL, format_table, run, write_json


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="small shapes (runs in seconds on a laptop CPU)")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=None, help=f"default {value} (--small: {SMALL[name]})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds (median reported); default 5, --small 30")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: the cores that are idle now, at least 1; OpenMP threads that "
                        "compete with other processes for a core spin and wait, which distorts small shapes badly)")
    parser.add_argument("--no_projector_row", action="store_true", help="skip the informational first-layer row")
    parser.add_argument("--max_memory_fraction", type=float, default=0.3,
                        help="skip an implementation whose estimated working set exceeds this share of free memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    shapes = {name: getattr(args, name) for name in DEFAULTS if getattr(args, name) is not None}
    result = run(args.small, shapes, args.device, args.dtype, args.repeats, args.warmup, args.threads,
                 not args.no_projector_row, args.max_memory_fraction, args.seed)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
