"""The memory plan builds the model on the meta device from configs alone: its parameter counts (by
trainable / frozen and dtype) equal those of the model built for real from the pretrained files."""

import torch

from csst_espnet.benchmarks.memory_plan import StepShape, build_like_trainer, parameter_table, plan
from train_utils import tiny_model_args

SHAPE = StepShape(batch=4, utt_seconds=2.0, prompt_tokens=8, target_tokens=10, src_tokens=6)


def test_plan_counts_equal_the_instantiated_model(tiny_llm, tiny_whisper):
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[{"name": "src_ctc"}])
    args.llm_conf = {**args.llm_conf, "dtype": "bfloat16", "gradient_checkpointing": True}
    args.optim = "adamw"
    args.freeze_param = ["projector.downsample"]  # applied as ESPnet's trainer does, even if it names nothing
    real = build_like_trainer(args, "cpu")  # the pretrained tiny files, read for real
    assert all(p.device.type == "cpu" for p in real.parameters())
    result = plan(args, SHAPE, device="cpu")
    assert result["params"] == parameter_table(real)
    assert {dtype for (_, dtype) in result["params"]} == {"float32", "bfloat16"}
    trainable = sum(p.numel() for p in real.parameters() if p.requires_grad)
    assert result["trainable"] == trainable and result["optimizer"] == 8 * trainable
    assert result["teacher"] == 0
    # checkpointing keeps each layer's input instead of all its activations
    args.llm_conf = {**args.llm_conf, "gradient_checkpointing": False}
    assert plan(args, SHAPE, device="cpu")["activations"]["llm"] > result["activations"]["llm"]


def test_distill_teacher_is_planned_as_its_own_weights_only(tiny_llm, tiny_whisper):
    spec = {"name": "transition", "conf": {"mode": "distill"}}
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec])  # no teacher files: the plan needs none
    result = plan(args, SHAPE, device="cpu", world_size=2, zero_stage=2)
    trainable_bytes = sum(b for (t, _), (_, b) in result["params"].items() if t)
    assert result["teacher"] == trainable_bytes > 0
    assert result["grads"] == trainable_bytes // 2 and result["batch_per_rank"] == 2
    assert result["logits"]["largest_chunk"] > 0
