#!/usr/bin/env python3
"""Memory plan of one training step of a phase config (``csst_espnet.benchmarks.memory_plan``).

    python -m csst_espnet.bin.memory_plan --config conf/train_phase2.yaml [--batch_bins N]
        [--utt_seconds 10] [--prompt_tokens 40] [--target_tokens 60] [--world_size 1 --zero_stage 0]
        [--small] [--measure] [--device cuda|cpu] [CSST_TRAIN_OPTION ...]

Builds the model on the meta device (pretrained encoder / LLM from their configs: nothing is
downloaded or read but config.json) and prints, per phase config, the parameters by trainable / frozen
and dtype, gradients, optimiser state, the teacher, activations with and without gradient
checkpointing, logits, and the peak estimate. ``--small``: the same architectures at CPU size
(``benchmarks/model_shapes.SMALL``); ``--measure`` (with ``--small``) also runs one training step of that
model on the CPU and prints its measured peak RSS growth beside the estimate. Any other option is
passed to csst_train's parser (e.g. ``--llm_conf gradient_checkpointing=false``).
"""

import argparse
import logging
import sys
from typing import List, Optional

from csst_espnet.benchmarks.memory_plan import (
    GIB, StepShape, activations_without_checkpointing, batch_size_of, format_plan, measure_cpu_step, plan,
)
from csst_espnet.tasks.csst import CSSTTask


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a training (phase) config")
    parser.add_argument("--batch_bins", type=int, default=None, help="speech samples per batch (default: the config's)")
    parser.add_argument("--utt_seconds", type=float, default=10.0)
    parser.add_argument("--prompt_tokens", type=int, default=40)
    parser.add_argument("--target_tokens", type=int, default=60)
    parser.add_argument("--src_tokens", type=int, default=40)
    parser.add_argument("--world_size", type=int, default=1, help="data-parallel ranks")
    parser.add_argument("--zero_stage", type=int, default=0, choices=(0, 1, 2), help="DeepSpeed ZeRO stage")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="where the step would run")
    parser.add_argument("--small", action="store_true", help="the same architectures at CPU size")
    parser.add_argument("--measure", action="store_true", help="also measure one CPU step (needs --small)")
    opts, rest = parser.parse_known_args(argv)
    if opts.measure and not opts.small:
        parser.error("--measure builds the model for real: give --small")
    logging.basicConfig(level=logging.WARNING)
    args = CSSTTask.get_parser().parse_args(["--config", opts.config, *rest])
    shape = StepShape(batch_size_of(args, opts.utt_seconds, opts.batch_bins), opts.utt_seconds,
                      opts.prompt_tokens, opts.target_tokens, opts.src_tokens)
    kw = dict(device=opts.device, world_size=opts.world_size, zero_stage=opts.zero_stage, small=opts.small)
    result = plan(args, shape, **kw)
    print(format_plan(opts.config, result, activations_without_checkpointing(args, shape, **kw), shape))
    if opts.measure:
        measured = measure_cpu_step(args, shape)
        ratio = result["peak"] / measured["peak_rss_growth"]
        print(f"measured on this CPU: peak RSS growth {measured['peak_rss_growth'] / GIB:.2f} GiB over the "
              f"RSS before building, step {measured['step_seconds']:.2f} s; estimate / measured = {ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
