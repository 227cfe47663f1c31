"""Stage 15: the merged-LoRA Hugging Face export gives the trained model's logits; the packed zip
rebuilds the model elsewhere."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from train_utils import tiny_config

PY = sys.executable


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory, tiny_llm, tiny_whisper, tiny_data):
    """An experiment dir as training leaves it: config.yaml and a model whose LoRA is not zero."""
    from csst_espnet.tasks.csst import CSSTTask

    root = tmp_path_factory.mktemp("recipe")
    exp = root / "exp" / "csst_x"
    exp.mkdir(parents=True)
    conf = tiny_config(tiny_llm, tiny_whisper, tiny_data)
    conf["llm_conf"]["lora"] = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}
    conf["tokenizer"] = str(tiny_llm)
    (root / "train.yaml").write_text(yaml.safe_dump(conf))
    args = CSSTTask.get_parser().parse_args(["--config", str(root / "train.yaml"), "--output_dir", str(exp)])
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.manual_seed(1)
    model = CSSTTask.build_model(args)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:  # as if trained: LoRA B is zero at initialisation
                p.add_(0.05 * torch.randn_like(p))
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    return root, exp


def _batch(args, tiny_data):
    import soundfile

    from csst_espnet.tasks.csst import CSSTTask

    pre = CSSTTask.build_preprocess_fn(args, train=True)
    lines = lambda name: dict(l.split(" ", 1) for l in (tiny_data / name).read_text().splitlines())
    wavs, texts, langs = lines("wav.scp"), lines("text"), lines("utt2lang")
    items = [(u, pre(u, {"speech": soundfile.read(wavs[u], dtype="float32")[0], "text": texts[u], "lang": langs[u]}))
             for u in sorted(wavs)[:3]]
    return CSSTTask.build_collate_fn(args, train=True)(items)[1]


def test_export_hf_merged_lora_gives_the_same_logits(exp_dir, tmp_path, tiny_data):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from csst_espnet.export.hf import export
    from csst_espnet.tasks.csst import CSSTTask

    _, exp = exp_dir
    out = tmp_path / "hf"
    info = export(str(exp / "config.yaml"), str(exp / "valid.acc.ave.pth"), str(out))
    assert info["merged_lora"] and info["max_abs_logit_diff"] < 1e-4

    # independently of the module's own check: a plain HF load against the trained model's LLM
    model, args = CSSTTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.ave.pth")
    model.eval()
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(["we use gradient descent to train the model", "这个 模型 的 loss 很 低"], return_tensors="pt",
                padding=True)
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in n for n, _ in hf.named_parameters())
    with torch.no_grad():
        ids, mask = batch["input_ids"], batch["attention_mask"]
        want = model.llm(model.llm.embed(ids), mask)
        got = hf(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
        base = AutoModelForCausalLM.from_pretrained(args.llm_conf["model_name_or_path"]).eval()(
            input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    m = mask.bool()
    assert torch.allclose(got[m], want[m], atol=1e-4)
    assert not torch.allclose(base[m], want[m], atol=1e-2)  # the LoRA changed the LLM: merging mattered

    # the speech side rebuilds the whole model on the merged LLM, without peft
    rebuilt, rargs = CSSTTask.build_model_from_file(out / "csst_config.yaml", out / "csst_speech.pth")
    assert not rebuilt.llm.has_lora
    b = _batch(args, tiny_data)
    with torch.no_grad():
        assert rebuilt.eval()(**b)[0].item() == pytest.approx(model(**b)[0].item(), abs=1e-4)


def test_export_hf_cli_fails_clearly(tmp_path):
    r = subprocess.run([PY, "-m", "csst_espnet.bin.export_hf", "--config", str(tmp_path / "none.yaml"),
                        "--model_file", "x.pth", "--out_dir", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0


def test_pack_model_unpacks_and_decodes_elsewhere(exp_dir, tmp_path, tiny_data):
    from csst_espnet.export.pack import pack
    from csst_espnet.inference.speech2text import Speech2Text

    root, exp = exp_dir
    (root / "RESULTS.md").write_text("# RESULTS\n")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        meta = pack("exp/csst_x", "exp/csst_x/valid.acc.ave.pth", "exp/csst_x/packed.zip", extra=["RESULTS.md"])
        with pytest.raises(FileNotFoundError):
            pack("exp/csst_x", "exp/csst_x/missing.pth", "x.zip")
        ref = pack("exp/csst_x", "exp/csst_x/valid.acc.ave.pth", "exp/csst_x/ref.zip", llm_policy="reference")
    finally:
        os.chdir(cwd)
    assert meta["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert meta["versions"]["csst-espnet"] != "not installed"
    # the tiny LLM and Whisper live outside the recipe dir: packed under external/
    assert sorted(meta["files"]["directories"]) == sorted(
        ["external/" + Path(p).name for p in {ref["references"]["llm_conf.model_name_or_path"].split(" ")[0],
                                               ref["references"]["encoder_conf.model_name_or_path"].split(" ")[0]}])
    with zipfile.ZipFile(root / "exp" / "csst_x" / "packed.zip") as z:
        names = set(z.namelist())
        assert {"exp/csst_x/config.yaml", "exp/csst_x/valid.acc.ave.pth", "RESULTS.md", "meta.yaml"} <= names
        unpacked = tmp_path / "unpacked"
        z.extractall(unpacked)
    config = yaml.safe_load((unpacked / "exp" / "csst_x" / "config.yaml").read_text())
    assert config["llm_conf"]["model_name_or_path"].startswith("external/")
    os.chdir(unpacked)
    try:
        s2t = Speech2Text.from_exp_dir("exp/csst_x")
        wav = sorted((tiny_data / "wav").glob("*.wav"))[0]
        assert isinstance(s2t(str(wav))[0].text, str)
    finally:
        os.chdir(cwd)


def test_from_pretrained_loads_the_exp_dir_the_export_and_the_zip(exp_dir, tmp_path, tiny_data):
    """The same model from its experiment dir, its hf_merged export (moved elsewhere) and its packed zip
    decodes a file to the same text; the package exports Speech2Text; a wrong path names what is expected."""
    import shutil

    import numpy as np
    import soundfile

    from csst_espnet import Speech2Text
    from csst_espnet.export.hf import export
    from csst_espnet.export.pack import pack

    root, exp = exp_dir
    wav = sorted((tiny_data / "wav").glob("*.wav"))[0]
    want = Speech2Text.from_pretrained(exp, max_new_tokens=6)(str(wav), lang="cs")[0].text
    export(str(exp / "config.yaml"), str(exp / "valid.acc.ave.pth"), str(tmp_path / "hf"))
    shutil.move(tmp_path / "hf", tmp_path / "moved_hf")
    assert Speech2Text.from_pretrained(tmp_path / "moved_hf", max_new_tokens=6)(str(wav), lang="cs")[0].text == want
    cwd = os.getcwd()
    os.chdir(root)
    try:
        pack("exp/csst_x", "exp/csst_x/valid.acc.ave.pth", str(tmp_path / "packed.zip"))
    finally:
        os.chdir(cwd)
    s2t = Speech2Text.from_pretrained(tmp_path / "packed.zip", max_new_tokens=6)
    assert (tmp_path / "packed" / "meta.yaml").exists()
    assert s2t(str(wav), lang="cs")[0].text == want
    samples, rate = soundfile.read(wav, dtype="float32")
    assert s2t(samples, lang="cs")[0].text == want  # a waveform at the model's rate
    soundfile.write(tmp_path / "8k.wav", samples[::2], rate // 2)  # another rate is resampled
    assert isinstance(s2t(str(tmp_path / "8k.wav"))[0].text, str)
    with pytest.raises(FileNotFoundError, match="not an experiment directory"):
        Speech2Text.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no model file 1epoch.pth \(model files there: \['valid.acc.ave.pth'\]\)"):
        Speech2Text.from_pretrained(exp, model_file="1epoch.pth")


def test_readme_python_example(exp_dir, tmp_path, tiny_data, capsys):
    """The README's Python API example runs as written, in a recipe dir with that experiment."""
    import re
    import shutil

    root, exp = exp_dir
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "csst_train_phase3").symlink_to(exp)
    shutil.copy(sorted((tiny_data / "wav").glob("*.wav"))[0], tmp_path / "utt.wav")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
