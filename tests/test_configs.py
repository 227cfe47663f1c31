"""Every shipped training config passes --print_config and --dry_run.

Pretrained paths in the configs (hub names, recipe outputs) are swapped for the tiny local
models; a distillation teacher (a recipe output named by relative path) is a tiny model saved at
that path under a stand-in recipe dir, the working directory of the run. Everything else
(projector, losses, LoRA, optimiser, ...) is validated as shipped.
"""

from pathlib import Path

import pytest
import torch
import yaml

from csst_espnet.tasks.csst import CSSTTask
from train_utils import run_module, save_run, tiny_model_args

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("conf/**/train*.yaml")) + sorted(ROOT.glob("egs2/*/*/conf/**/train*.yaml"))


def _local_overrides(config: dict, tiny_llm: Path, tiny_whisper: Path) -> list:
    args = ["--llm_conf", f"model_name_or_path={tiny_llm}"]
    if config.get("encoder") == "whisper" and "model_name_or_path" in config.get("encoder_conf", {}):
        args += ["--encoder_conf", f"model_name_or_path={tiny_whisper}", "--frontend_conf", "n_mels=80"]
    if config.get("tokenizer"):
        args += ["--tokenizer", str(tiny_llm)]
    return args


def _recipe_dir_with_teachers(config: dict, tiny_llm: Path, tiny_whisper: Path, root: Path):
    """A working directory holding a tiny model at every distill teacher path of ``config`` (None if none)."""
    teachers = [
        spec["conf"] for spec in config.get("aux_losses") or []
        if spec["name"] == "transition" and (spec.get("conf") or {}).get("mode") == "distill"
    ]
    if not teachers:
        return None
    args = tiny_model_args(tiny_llm, tiny_whisper)
    torch.manual_seed(0)
    model = CSSTTask.build_model(args)
    for conf in teachers:
        paths = [Path(conf["teacher_config"]), Path(conf["teacher_model"])]
        assert not any(p.is_absolute() for p in paths), f"teacher paths must be relative to the recipe dir: {paths}"
        save_run(args, model, root / paths[0], root / paths[1])
    return root


def test_configs_are_found():
    assert any(p.name == "train_csst_whisper_qwen_moe.yaml" for p in CONFIGS)


@pytest.mark.parametrize("config_file", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_print_config_and_dry_run(config_file, tiny_llm, tiny_whisper, tmp_path):
    printed = run_module("csst_espnet.bin.csst_train", ["--config", str(config_file), "--print_config"])
    assert "llm_conf:" in printed and "projector:" in printed

    config = yaml.safe_load(config_file.read_text())
    out = tmp_path / "dry"
    run_module(
        "csst_espnet.bin.csst_train",
        ["--config", str(config_file), "--dry_run", "true", "--output_dir", str(out), "--ngpu", "0",
         *_local_overrides(config, tiny_llm, tiny_whisper)],
        cwd=_recipe_dir_with_teachers(config, tiny_llm, tiny_whisper, tmp_path / "recipe"),
    )
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["projector"] == config["projector"]
    assert written["aux_losses"] == config.get("aux_losses", [])
