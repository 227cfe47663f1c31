"""A checkpoint records the pretrained encoder and LLM it was trained on; loading it on other base
weights is refused with both named, and the same weights under another path are accepted."""

import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from csst_espnet.tasks.csst import CSSTTask
from csst_espnet.utils.base_model import KEY, decode
from train_utils import tiny_model_args


def test_checkpoint_records_its_bases_and_refuses_another_llm(tiny_llm, tiny_whisper, tmp_path):
    args = tiny_model_args(tiny_llm, tiny_whisper)
    model = CSSTTask.build_model(args)
    state = model.state_dict()
    llm_id, enc_id = decode(state[f"llm.{KEY}"]), decode(state[f"encoder.{KEY}"])
    assert llm_id["name_or_path"] == str(tiny_llm) and llm_id["revision"].startswith("sha256:")
    assert enc_id["name_or_path"] == str(tiny_whisper)

    # ESPnet's n-best averaging divides the sum of n equal tensors by n: the record survives it
    averaged = {k: (v + v + v) / 3 if v.is_floating_point() else v for k, v in state.items()}
    moved = tmp_path / "moved_llm"
    shutil.copytree(tiny_llm, moved)  # the same weights elsewhere: the same base
    CSSTTask.build_model(tiny_model_args(moved, tiny_whisper)).load_state_dict(averaged)

    other = tmp_path / "other_llm"  # other weights in the same shapes (the text LM re-trained)
    shutil.copytree(tiny_llm, other)
    lm = AutoModelForCausalLM.from_pretrained(other)
    with torch.no_grad():
        lm.lm_head.weight.add_(0.01)
    lm.save_pretrained(other)
    rebuilt = CSSTTask.build_model(tiny_model_args(other, tiny_whisper))
    with pytest.raises(ValueError, match=rf"trained on the LLM '{tiny_llm}' \(sha256:.*built on '{other}'"):
        rebuilt.load_state_dict(state)


def test_from_config_llm_records_nothing_and_saves_its_weights(tmp_path):
    from csst_espnet.llm.hf_causal_lm import HFCausalLM

    llm = HFCausalLM(config=dict(model_type="qwen2", vocab_size=32, hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    state = llm.state_dict()
    assert KEY not in state and len(state) == len(list(llm.parameters()))
    with pytest.raises(ValueError, match="exactly one of llm_conf.model_name_or_path and llm_conf.config"):
        HFCausalLM()
