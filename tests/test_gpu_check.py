"""The GPU check's CPU path (``--small``): each phase config of the reference setup builds and trains a
step (the distill phase with a teacher sharing the student's frozen backbone), decoding runs batched,
and the figures replace the check's section of the benchmarks page."""

import math

import torch

from csst_espnet.benchmarks.gpu_check import (
    BEGIN, END, REFERENCE_CONF, build_phase, decode_throughput, format_markdown, train_step, write_markdown,
)
from csst_espnet.benchmarks.memory_plan import StepShape
from csst_espnet.benchmarks.model_shapes import config_only
from csst_espnet.tasks.csst import CSSTTask

SHAPE = StepShape(batch=2, utt_seconds=1.0, prompt_tokens=4, target_tokens=4, src_tokens=3)
CPU = torch.device("cpu")


def _args(phase):
    args = CSSTTask.get_parser().parse_args(["--config", f"{REFERENCE_CONF}/train_phase{phase}.yaml"])
    return config_only(args, small=True)


def test_small_phase3_step_and_decoding(tmp_path):
    args = _args(3)
    model = build_phase(args, CPU)
    teacher = model.aux_losses["transition"].teacher
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(p.data_ptr() == frozen[n].data_ptr() for n, p in teacher.named_parameters() if n in frozen)
    assert {p.dtype for p in model.llm.parameters() if not p.requires_grad} == {torch.bfloat16}

    step = train_step(args, SHAPE, CPU)
    assert math.isfinite(step["loss"]) and step["step_seconds"] > 0
    row = decode_throughput(model, args, SHAPE, CPU, batch_size=2, beam_size=2, utterances=2, max_new_tokens=2)
    assert 1 <= row["tokens"] <= 2 and row["utt_per_s"] > 0

    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nbefore\n\n{BEGIN}\nold figures\n{END}\n\nafter\n", encoding="utf-8")
    result = {"device": "test device", "phases": {"train_phase3.yaml": step},
              "decoding": [{"batch": 2, "beam": 2, **row}]}
    write_markdown(format_markdown(result, "python -m csst_espnet.bin.gpu_check --small", SHAPE), str(page))
    text = page.read_text(encoding="utf-8")
    assert "old figures" not in text and text.count(BEGIN) == 1 and "before" in text and "after" in text
    assert "### test device" in text and "| train_phase3.yaml |" in text and "| 2 | beam 2 |" in text
