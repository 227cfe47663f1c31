"""Run csst_train / csst_inference on a data dir, as a recipe would (subprocesses, real CLI);
tiny models built in-process and saved as a training run leaves them."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import yaml


def data_triples(data: Path, with_text: bool = True) -> List[List[str]]:
    triples = [[str(data / "wav.scp"), "speech", "sound"]]
    if with_text:
        triples.append([str(data / "text"), "text", "text"])
    triples += [[str(data / "utt2lang"), "lang", "text"], [str(data / "utt2task"), "task", "text"]]
    return triples


def tiny_config(llm: Path, whisper: Path, data: Path, **overrides) -> Dict:
    """A small but complete training config (frozen Whisper + MLP projector + frozen LLM with LoRA)."""
    config = {
        "frontend": "whisper",
        "encoder": "whisper",
        "encoder_conf": {"model_name_or_path": str(whisper)},
        "projector": "mlp",
        "projector_conf": {"downsample_rate": 2, "hidden_size": 64},
        "llm": "hf_causal_lm",
        "llm_conf": {"model_name_or_path": str(llm), "lora": {"r": 8, "alpha": 16}},
        "model_conf": {"extract_feats_in_collect_stats": False},
        "train_data_path_and_name_and_type": data_triples(data),
        "valid_data_path_and_name_and_type": data_triples(data),
        "train_shape_file": [str(data / "speech_shape")],
        "valid_shape_file": [str(data / "speech_shape")],
        "batch_type": "unsorted",
        "batch_size": 6,
        "max_epoch": 3,
        "num_iters_per_epoch": 25,
        "optim": "adam",
        "optim_conf": {"lr": 0.005},
        "best_model_criterion": [["valid", "acc", "max"]],
        "keep_nbest_models": 1,
        "num_workers": 0,
        "num_att_plot": 0,
        "use_tensorboard": False,
        "seed": 0,
    }
    config.update(overrides)
    return config


def tiny_model_args(
    llm: Path, whisper: Path, languages: Sequence[str] = ("zh", "en", "cs"), aux_losses: Sequence[Dict] = (),
    teacher: Dict[str, str] = None,
) -> argparse.Namespace:
    """Parsed csst_train options of a tiny model (frozen Whisper, MLP projector, LLM with LoRA, ce_weight 0);
    ``teacher``: ``{teacher_config, teacher_model}`` options."""
    from csst_espnet.tasks.csst import CSSTTask

    return CSSTTask.get_parser().parse_args([
        "--encoder_conf", f"model_name_or_path={whisper}",
        "--projector_conf", "{downsample_rate: 2, hidden_size: 32}",
        "--llm_conf", f"{{model_name_or_path: {llm}, lora: {{r: 4, alpha: 8}}}}",
        "--languages", yaml.safe_dump(list(languages), default_flow_style=True),
        "--model_conf", "ce_weight=0",
        "--aux_losses", yaml.safe_dump(list(aux_losses), default_flow_style=True),
        *[arg for option, path in (teacher or {}).items() for arg in (f"--{option}", str(path))],
    ])


def save_run(args: argparse.Namespace, model, config_file: Path, model_file: Path) -> None:
    """Write ``config_file`` and ``model_file`` as csst_train writes config.yaml and *.pth."""
    import torch

    for path in (config_file, model_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(vars(args)), encoding="utf-8")
    torch.save(model.state_dict(), model_file)


def run_module(module: str, args: List[str], cwd: Path = None) -> str:
    """Run ``python -m module args``; fail with its output if it fails."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


def train(config: Dict, out_dir: Path, extra: List[str] = ()) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file = out_dir.parent / f"{out_dir.name}.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    return run_module(
        "csst_espnet.bin.csst_train",
        ["--config", str(config_file), "--output_dir", str(out_dir), "--ngpu", "0", *extra],
    )


def epoch_stats(log: str, mode: str = "valid") -> List[Dict[str, float]]:
    """Per-epoch stats of ``mode`` parsed from ESPnet's '<N>epoch results:' log lines."""
    stats = []
    for line in log.splitlines():
        if "epoch results:" not in line:
            continue
        part = line.split(f"[{mode}]", 1)
        if len(part) < 2:
            continue
        section = part[1].split("[", 1)[0]
        stats.append({k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", section)})
    return stats
