"""Every shipped training config passes --print_config and --dry_run.

Pretrained paths in the configs (hub names, recipe outputs) are swapped for the tiny local
models; a distillation teacher (csst.sh passes the previous phase's model) is a tiny saved model.
Everything else (projector, losses, LoRA, optimiser, ...) is validated as shipped. A recipe's
phase configs take their model from its one model definition (``model_config``).
"""

import io
from pathlib import Path

import pytest
import torch
import yaml

from csst_espnet.bin import csst_train
from csst_espnet.tasks.csst import CSSTTask
from csst_espnet.utils.config import ConfigError, load_config
from train_utils import save_run, tiny_model_args

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("conf/**/train*.yaml")) + sorted(ROOT.glob("egs2/*/*/conf/**/train*.yaml"))


def _local_overrides(config: dict, tiny_llm: Path, tiny_whisper: Path) -> list:
    args = ["--llm_conf", f"model_name_or_path={tiny_llm}"]
    if config.get("encoder") == "whisper" and "model_name_or_path" in config.get("encoder_conf", {}):
        args += ["--encoder_conf", f"model_name_or_path={tiny_whisper}", "--frontend_conf", "n_mels=80"]
        if config.get("encoder_unfreeze"):  # layer counts of the real encoder: at most the tiny one's 2
            schedule = [{**e, "layers": e["layers"] if e["layers"] == "all" else f"last {min(int(e['layers'].split()[1]), 2)}"}
                        for e in config["encoder_unfreeze"]]
            args += ["--encoder_unfreeze", yaml.safe_dump(schedule, default_flow_style=True)]
    if config.get("tokenizer"):
        args += ["--tokenizer", str(tiny_llm)]
    return args


def _teacher_args(config: dict, tiny_llm: Path, tiny_whisper: Path, root: Path) -> list:
    """--teacher_config/--teacher_model of a tiny saved model if ``config`` distills (as csst.sh passes them)."""
    if not any(spec["name"] == "transition" and (spec.get("conf") or {}).get("mode") == "distill"
               for spec in config.get("aux_losses") or []):
        return []
    args = tiny_model_args(tiny_llm, tiny_whisper)
    torch.manual_seed(0)
    save_run(args, CSSTTask.build_model(args), root / "config.yaml", root / "valid.acc.ave.pth")
    return ["--teacher_config", str(root / "config.yaml"), "--teacher_model", str(root / "valid.acc.ave.pth")]


def test_configs_are_found():
    assert any(p.parent.name == "whisper_large_v3_qwen2.5_7b" and p.name == "train_phase3.yaml" for p in CONFIGS)


@pytest.mark.parametrize("config_file", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_print_config_and_dry_run(config_file, tiny_llm, tiny_whisper, tmp_path):
    """``csst_train --print_config`` (ESPnet's steps: parse the config, print) and ``--dry_run true`` (the
    entry point's main), in this process."""
    assert CSSTTask.get_parser().parse_args(["--config", str(config_file), "--print_config"]).print_config
    printed = io.StringIO()
    CSSTTask.print_config(file=printed)
    assert "llm_conf:" in printed.getvalue() and "projector:" in printed.getvalue()

    config = load_config(str(config_file))
    out = tmp_path / "dry"
    csst_train.main(["--config", str(config_file), "--dry_run", "true", "--output_dir", str(out), "--ngpu", "0",
                     *_local_overrides(config, tiny_llm, tiny_whisper),
                     *_teacher_args(config, tiny_llm, tiny_whisper, tmp_path / "teacher")])
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["projector_conf"] == config["projector_conf"]
    assert written["encoder_conf"] == {**config["encoder_conf"], **_encoder_override(config, tiny_whisper)}
    assert written["aux_losses"] == config.get("aux_losses", [])
    assert "model_config" not in written  # the effective config is complete by itself


def _encoder_override(config: dict, tiny_whisper: Path) -> dict:
    local = _local_overrides(config, Path("unused"), tiny_whisper)
    return {"model_name_or_path": str(tiny_whisper)} if "--encoder_conf" in local else {}


@pytest.mark.parametrize("recipe_conf", sorted({p.parent for p in CONFIGS if (p.parent / "model.yaml").exists()}),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_recipe_phases_share_one_model_definition(recipe_conf):
    """Every training config beside a model.yaml takes its model from there, or from a named variant
    beside it (``model_<variant>.yaml``: a comparison model, e.g. the MLP projector's), and repeats none
    of it."""
    models = {p.name: yaml.safe_load(p.read_text()) for p in recipe_conf.glob("model*.yaml")}
    for config_file in sorted(recipe_conf.glob("train*.yaml")):
        raw = yaml.safe_load(config_file.read_text())
        assert raw.get("model_config") in models, config_file
        model = models[raw["model_config"]]
        assert not set(raw) & set(model), config_file
        composed = load_config(str(config_file))
        assert {k: composed[k] for k in model} == model


def test_model_config_errors_name_the_file(tmp_path):
    (tmp_path / "model.yaml").write_text("projector: moe\nprojector_conf: {groups: [zh, en]}\n")
    phase = tmp_path / "phase.yaml"
    phase.write_text("model_config: model.yaml\nprojector: mlp\nmax_epoch: 2\n")
    with pytest.raises(ConfigError, match=r"phase.yaml repeats \['projector'\] of its model_config .*model.yaml"):
        load_config(str(phase))
    phase.write_text("model_config: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml: no such config file"):
        load_config(str(phase))
    (tmp_path / "model.yaml").write_text("model_config: other.yaml\n")
    phase.write_text("model_config: model.yaml\n")
    with pytest.raises(ConfigError, match="cannot name another model_config"):
        load_config(str(phase))


def test_command_line_wins_over_the_model_definition(tmp_path):
    (tmp_path / "model.yaml").write_text("projector: moe\nlanguages: [zh, en, cs]\n")
    phase = tmp_path / "phase.yaml"
    phase.write_text("model_config: model.yaml\nmax_epoch: 2\n")
    args = CSSTTask.get_parser().parse_args(["--config", str(phase), "--projector", "mlp"])
    assert (args.projector, args.languages, args.max_epoch) == ("mlp", ["zh", "en", "cs"], 2)
    phase.write_text("model_config: model.yaml\nbogus_option: 1\n")
    with pytest.raises(SystemExit):
        CSSTTask.get_parser().parse_args(["--config", str(phase)])


def test_deepspeed_refuses_what_only_the_csst_trainer_does():
    """ESPnet's DeepSpeed trainer replaces CSSTTrainer: a config needing its epoch or update calls is refused
    before anything is built; the reference 7B phase configs need neither."""
    from csst_espnet.tasks.csst import deepspeed_problems

    ref = ROOT / "egs2/TEMPLATE/csst1/conf/whisper_large_v3_qwen2.5_7b"
    for phase in (1, 2, 3):
        assert deepspeed_problems(CSSTTask.get_parser().parse_args(["--config", str(ref / f"train_phase{phase}.yaml")])) == []
    args = CSSTTask.get_parser().parse_args(["--config", str(ref / "train_phase3.yaml"), "--use_deepspeed", "true",
                                             "--aux_losses", "[{name: transition, conf: {mode: mixture}}]"])
    with pytest.raises(ValueError, match="--use_deepspeed true: .*mixture λ would never rise"):
        CSSTTask.main_worker(args)


DECODE_CONFIGS = sorted(p for p in ROOT.glob("egs2/*/*/conf/**/decode*.yaml") if "espnet_st" not in p.name)


@pytest.mark.parametrize("config_file", DECODE_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_decode_configs_are_csst_inference_options(config_file):
    """Every shipped decode.yaml, as stage 13 turns it into options (yaml2args), parses as csst_inference's."""
    from csst_espnet.bin import csst_inference
    from csst_espnet.recipe.config import yaml2args

    required = ["--output_dir", "o", "--data_path_and_name_and_type", "a,speech,sound",
                "--st_train_config", "c", "--st_model_file", "m"]
    args = csst_inference.get_parser().parse_args(yaml2args(str(config_file)) + required)
    assert args.beam_size >= 1 and args.segment_seconds >= 0


def test_decode_configs_are_found():
    assert ROOT / "egs2" / "mini_cs" / "st1" / "conf" / "decode.yaml" in DECODE_CONFIGS
