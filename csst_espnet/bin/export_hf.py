#!/usr/bin/env python3
"""Export the LLM of a trained model as a plain Hugging Face checkpoint with LoRA merged in.

    python -m csst_espnet.bin.export_hf --config exp/x/config.yaml --model_file exp/x/valid.acc.ave.pth \\
        --out_dir exp/x/hf_merged [--check_text "we use gradient descent"] [--dtype float32]

The model is built as for decoding; its LLM (a peft model when it has LoRA) is merged with
``merge_and_unload`` and saved with ``save_pretrained``, together with the tokenizer, so that
``AutoModelForCausalLM.from_pretrained(OUT_DIR)`` needs neither peft nor csst-espnet. The export is
checked: the saved model is loaded again and must give the same logits as the trained model's LLM
on ``--check_text`` (relative tolerance ``--tolerance``).

The speech side is exported beside it, for rebuilding the whole speech translation model without
peft: ``csst_speech.pth`` (every parameter but the LLM's) and ``csst_config.yaml`` (the training
config with the LLM taken from ``OUT_DIR`` and no LoRA)::

    CSSTTask.build_model_from_file("OUT_DIR/csst_config.yaml", "OUT_DIR/csst_speech.pth")
"""

import argparse
import logging
import sys
from functools import partial
from typing import Optional, Sequence

from csst_espnet.export.hf import export
from csst_espnet.utils.cli import add_option


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.export_hf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    opt = partial(add_option, p)

    opt("config", required=True)
    opt("model_file", required=True)
    opt("out_dir", required=True)
    opt("check_text", default="we use gradient descent to train this model")
    opt("dtype", default=None, help="dtype of the saved weights (default: the LLM's storage dtype)")
    opt("tolerance", type=float, default=1e-4, help="relative logit tolerance of the check (float32)")
    args = p.parse_args(argv)
    try:
        info = export(args.config, args.model_file, args.out_dir, args.check_text, args.dtype, args.tolerance)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"export_hf: {e}", file=sys.stderr)
        return 1
    logging.info("%s: merged LLM (%s, LoRA merged: %s), logits match within %.2g (max abs diff %.3g)",
                 args.out_dir, info["dtype"], info["merged_lora"], info["tolerance"], info["max_abs_logit_diff"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
