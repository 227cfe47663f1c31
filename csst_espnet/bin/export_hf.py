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
import copy
import json
import logging
import os
import sys
from functools import partial
from typing import Dict, Optional, Sequence

import yaml

from csst_espnet.utils.cli import add_option

DTYPES = ("float32", "bfloat16", "float16")


def llm_logits(lm, ids, mask):
    """Logits of a Hugging Face causal LM (fp32) for token ids."""
    import torch

    with torch.no_grad():
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return lm(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False).logits.float()


def export(config: str, model_file: str, out_dir: str, check_text: str = "we use gradient descent to train this model",
           dtype: Optional[str] = None, tolerance: float = 1e-4) -> Dict:
    import torch
    from transformers import AutoModelForCausalLM

    from csst_espnet.tasks.csst import CSSTTask

    model, args = CSSTTask.build_model_from_file(config, model_file, "cpu")
    model.eval()
    wrapper = model.llm
    tokenizer = CSSTTask.build_preprocess_fn(args, train=False).template.tokenizer
    batch = tokenizer([check_text], return_tensors="pt", add_special_tokens=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        # the logits the speech model's LLM computes (embeddings in, as in training)
        reference = wrapper(wrapper.embed(ids), mask).float()

    lm = wrapper.model
    merged = lm.merge_and_unload() if getattr(wrapper, "has_lora", False) else lm
    storage = str(next(merged.parameters()).dtype).replace("torch.", "")
    dtype = dtype or storage
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    merged = merged.to(getattr(torch, dtype))
    os.makedirs(out_dir, exist_ok=True)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

    # the speech side and a config that rebuilds the whole model on the merged LLM
    speech_state = {k: v for k, v in model.state_dict().items() if not k.startswith("llm.")}
    torch.save(speech_state, os.path.join(out_dir, "csst_speech.pth"))
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    new_conf = copy.deepcopy(conf)
    llm_conf = dict(new_conf.get("llm_conf") or {})
    llm_conf["model_name_or_path"] = out_dir
    llm_conf["lora"] = None
    llm_conf["freeze"] = True
    llm_conf["dtype"] = dtype
    new_conf["llm_conf"] = llm_conf
    new_conf["tokenizer"] = out_dir
    new_conf["init_param"] = []
    with open(os.path.join(out_dir, "csst_config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(new_conf, f, allow_unicode=True, sort_keys=False)

    loaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    loaded.eval()
    got = llm_logits(loaded, ids, mask)
    scale = float(reference.abs().max().clamp(min=1.0))
    diff = float((got - reference).abs().max())
    tol = tolerance if dtype == "float32" else max(tolerance, 5e-2)
    info = {
        "config": config,
        "model_file": model_file,
        "merged_lora": bool(getattr(wrapper, "has_lora", False)),
        "dtype": dtype,
        "check_text": check_text,
        "max_abs_logit_diff": diff,
        "relative_diff": diff / scale,
        "tolerance": tol,
    }
    with open(os.path.join(out_dir, "export.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    if diff / scale > tol:
        raise RuntimeError(f"the exported model's logits differ from the trained model's by {diff:.3g} "
                           f"(relative {diff / scale:.3g} > {tol})")
    return info


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
