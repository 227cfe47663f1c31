"""The reference model's exact shapes, written here so that nothing is downloaded, and a training
config rewritten to build its encoder and LLM from such configs (random weights) instead of
pretrained ones: what the memory plan builds on the meta device and what the GPU check trains.

Shapes are those of the published ``config.json`` files of ``openai/whisper-large-v3`` (encoder only)
and ``Qwen/Qwen2.5-7B-Instruct``; ``SMALL`` keeps their architectures (Whisper encoder layers; Qwen2
with grouped-query attention, SwiGLU, untied head) at CPU-friendly sizes.
"""

import argparse
import copy
import json
import os
from typing import Dict, Optional

WHISPER_LARGE_V3 = dict(
    num_mel_bins=128, d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
    max_source_positions=1500,
    # the decoder is never built; its sizes only keep WhisperConfig consistent
    decoder_layers=32, decoder_attention_heads=20, decoder_ffn_dim=5120, vocab_size=51866, max_target_positions=448,
)
QWEN2_5_7B = dict(
    model_type="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
    num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768, rope_theta=1000000.0,
    rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu", bos_token_id=151643, eos_token_id=151645,
)
# Known hub names -> their architecture (the memory plan and GPU check need no download for these).
KNOWN = {
    "openai/whisper-large-v3": WHISPER_LARGE_V3,
    "Qwen/Qwen2.5-7B-Instruct": QWEN2_5_7B,
    "Qwen/Qwen2.5-7B": QWEN2_5_7B,
}
SMALL = {
    "encoder": dict(WHISPER_LARGE_V3, d_model=256, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=1024,
                    decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=256),
    "llm": dict(QWEN2_5_7B, vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096),
}


def architecture(name_or_path: str, part: str) -> Dict:
    """The config dict of a pretrained ``part`` ("encoder" or "llm"): a known hub name's from ``KNOWN``,
    a local directory's from its ``config.json`` (no weights read)."""
    if name_or_path in KNOWN:
        return dict(KNOWN[name_or_path])
    config_file = os.path.join(name_or_path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"{part} '{name_or_path}': neither a known architecture ({', '.join(KNOWN)}) nor a local directory "
            f"with config.json; give a local model directory"
        )
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    if part == "encoder":
        return {k: v for k, v in config.items() if k in WHISPER_LARGE_V3}
    keep = set(QWEN2_5_7B) | {"head_dim", "sliding_window", "use_sliding_window", "max_window_layers"}
    return {k: v for k, v in config.items() if k in keep}


def config_only(args: argparse.Namespace, small: bool = False) -> argparse.Namespace:
    """``args`` with the pretrained encoder and LLM replaced by their configs (``architecture``), or by
    ``SMALL``'s with ``small``; everything else (dtypes, LoRA, freezing, checkpointing) unchanged."""
    args = copy.copy(args)
    for part, conf_key in (("encoder", "encoder_conf"), ("llm", "llm_conf")):
        conf = dict(getattr(args, conf_key) or {})
        if part == "encoder" and args.encoder != "whisper":
            continue
        source: Optional[str] = conf.pop("model_name_or_path", None)
        if small:
            conf.pop("config", None)
            conf["config"] = dict(SMALL[part])
        elif source is not None:
            conf["config"] = architecture(source, part)
        setattr(args, conf_key, conf)
    if small and getattr(args, "frontend", None) == "whisper":
        args.frontend_conf = {**(args.frontend_conf or {}), "n_mels": SMALL["encoder"]["num_mel_bins"]}
    return args
