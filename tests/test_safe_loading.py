"""Safe loading: every torch.load of the package takes weights only; no Hugging Face model or tokenizer
runs code of its own unless ``llm_conf.trust_remote_code: true``."""

import argparse
import ast
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import build_tokenizer
from csst_espnet.text.preprocessor import build_preprocessor

PACKAGE = Path(__file__).resolve().parents[1] / "csst_espnet"


def _calls(predicate):
    """(file:line, call) of every call in the package whose function ``predicate(func)`` selects."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and predicate(node.func):
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_takes_weights_only():
    loads = list(_calls(lambda f: isinstance(f, ast.Attribute) and f.attr == "load"
                        and isinstance(f.value, ast.Name) and f.value.id == "torch"))
    assert loads, "the package loads model files with torch.load (tasks/csst.py)"
    unsafe = [where for where, call in loads
              if not (isinstance(_keyword(call, "weights_only"), ast.Constant) and _keyword(call, "weights_only").value is True)]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


class Payload:  # a crafted checkpoint: unpickling it runs code
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["PAYLOAD_MARK"]),))


def test_espnet_loads_in_the_task_take_weights_only(tmp_path, monkeypatch):
    """ESPnet's resume, init_param and averaging call torch.load(weights_only=False); inside
    CSSTTask.main_worker every load takes weights only, so a crafted file is refused unrun."""
    import torch
    from espnet2.tasks.abs_task import AbsTask

    from csst_espnet.tasks.csst import CSSTTask

    mark = tmp_path / "payload_ran"
    monkeypatch.setenv("PAYLOAD_MARK", str(mark))
    crafted = tmp_path / "checkpoint.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "x": Payload()}, crafted)
    good = tmp_path / "1epoch.pth"
    torch.save({"w": torch.ones(2), "reporter": {"loss": np.float64(1.5)}}, good)
    seen = {}

    def espnet_worker(args):  # what ESPnet's worker does with the files it loads
        seen["good"] = torch.load(good, map_location="cpu", weights_only=False)
        with pytest.raises(pickle.UnpicklingError):
            torch.load(crafted, map_location="cpu", weights_only=False)

    monkeypatch.setattr(AbsTask, "main_worker", classmethod(lambda cls, args: espnet_worker(args)))
    CSSTTask.main_worker(argparse.Namespace(use_deepspeed=False))
    assert not mark.exists() and float(seen["good"]["reporter"]["loss"]) == 1.5
    torch.load(crafted, weights_only=False)  # outside the task, the same file runs its code
    assert mark.exists()


def test_every_auto_class_load_says_whether_remote_code_runs():
    """AutoTokenizer / AutoModel* .from_pretrained name trust_remote_code: False, or the config's option."""
    loads = list(_calls(lambda f: isinstance(f, ast.Attribute) and f.attr == "from_pretrained"
                        and isinstance(f.value, ast.Name) and f.value.id.startswith("Auto")))
    assert len(loads) >= 5
    missing = [where for where, call in loads if _keyword(call, "trust_remote_code") is None]
    assert not missing, f"from_pretrained without trust_remote_code: {missing}"
    constant_true = [where for where, call in loads
                     if isinstance(_keyword(call, "trust_remote_code"), ast.Constant)
                     and _keyword(call, "trust_remote_code").value is not False]
    assert not constant_true, f"trust_remote_code fixed to a value other than False: {constant_true}"


CUSTOM_TOKENIZER = '''
from transformers import PreTrainedTokenizerFast


class CustomTokenizer(PreTrainedTokenizerFast):
    ran_custom_code = True
'''


def test_tokenizer_code_runs_only_with_trust_remote_code(tmp_path):
    build_tokenizer(tmp_path)
    (tmp_path / "custom_tok.py").write_text(CUSTOM_TOKENIZER, encoding="utf-8")
    config_file = tmp_path / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.update(tokenizer_class="CustomTokenizer", auto_map={"AutoTokenizer": [None, "custom_tok.CustomTokenizer"]})
    config_file.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="trust_remote_code"):
        build_preprocessor(str(tmp_path), ["zh", "en", "cs"])  # the default
    pre = build_preprocessor(str(tmp_path), ["zh", "en", "cs"], trust_remote_code=True)
    assert getattr(pre.template.tokenizer, "ran_custom_code", False)


def test_llm_code_runs_only_with_trust_remote_code(tmp_path, tiny_llm):
    from csst_espnet.llm.hf_causal_lm import HFCausalLM

    model_dir = tmp_path / "llm"
    model_dir.mkdir()
    for f in tiny_llm.iterdir():
        (model_dir / f.name).write_bytes(f.read_bytes())
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="custom_lm", auto_map={"AutoModelForCausalLM": "custom_lm.CustomLM",
                                                    "AutoConfig": "custom_lm.CustomConfig"})
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="trust_remote_code"):
        HFCausalLM(str(model_dir))


@pytest.mark.parametrize("preset", [None, "16"])
def test_worker_bounds_the_cpu_kernel_cache_unless_the_environment_does(monkeypatch, preset):
    """ESPnet's worker runs with oneDNN's kernel cache bounded (its growth is the training memory creep,
    docs/benchmarks.md); a capacity set in the environment wins."""
    from espnet2.tasks.abs_task import AbsTask

    from csst_espnet.tasks.csst import CSSTTask
    from csst_espnet.train.trainer import CPU_KERNEL_CACHE

    if preset is None:
        monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", preset)
    seen = {}
    monkeypatch.setattr(AbsTask, "main_worker", classmethod(
        lambda cls, args: seen.setdefault("capacity", os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"))))
    CSSTTask.main_worker(argparse.Namespace(use_deepspeed=False))
    assert seen["capacity"] == (preset or str(CPU_KERNEL_CACHE))
