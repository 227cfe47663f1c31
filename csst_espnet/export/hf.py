"""Export the LLM of a trained model as a plain Hugging Face checkpoint with LoRA merged in, the speech
side beside it, and check the export's logits (``csst_espnet.bin.export_hf``; see docs/architecture.md)."""

import copy
import json
import os
from typing import Dict, Optional

import yaml

DTYPES = ("float32", "bfloat16", "float16")


def llm_logits(lm, ids, mask):
    """Logits of a Hugging Face causal LM (fp32) for token ids."""
    import torch

    with torch.no_grad():
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return lm(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False).logits.float()


def export(config: str, model_file: str, out_dir: str, check_text: str = "we use gradient descent to train this model",
           dtype: Optional[str] = None, tolerance: float = 1e-4) -> Dict:
    """Write the export to ``out_dir`` (see ``csst_espnet.bin.export_hf``); returns what ``export.json`` records.
    Raises RuntimeError when the exported model's logits differ from the trained model's."""
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

    loaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32, trust_remote_code=False)
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
