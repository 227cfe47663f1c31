"""bench_train_step: a phase's model built from its config with local weights, steps timed by component."""

from pathlib import Path

import pytest

from csst_espnet.benchmarks.train_step import COMPONENTS, format_table, parse_phase_args, run

TINY = Path(__file__).resolve().parents[1] / "egs2" / "mini_cs" / "st1" / "conf" / "tiny"


def test_phase3_step_times_every_component_and_the_teacher():
    result = run(str(TINY / "train_phase3.yaml"), vocab_size=300, batch_size=4, steps=1, warmup=0, threads=1)
    (r,) = result["runs"]
    m = r["median_s"]
    assert not r["speech_only"]
    for name in ("data", "frontend", "encoder", "projector", "llm", "teacher", "backward", "optimizer"):
        assert m[name] > 0, name
    assert sum(m[c] for c in COMPONENTS) == pytest.approx(m["step"], rel=1e-6)
    assert result["parameters"]["trainable"] < result["parameters"]["total"]  # the LLM's own weights are frozen
    assert "| 1 |" in format_table(result)


def test_phase1_warmup_epoch_runs_no_llm():
    result = run(str(TINY / "train_phase1.yaml"), vocab_size=300, batch_size=2, steps=1, warmup=0, threads=1,
                 kinds=["asr_zh", "asr_en"], overrides=["llm_conf.lora.r=2"])
    first, full = result["runs"]
    assert (first["epoch"], first["speech_only"], full["epoch"], full["speech_only"]) == (1, True, 2, False)
    assert first["median_s"]["llm"] == 0 and full["median_s"]["llm"] > 0
    assert first["median_s"]["teacher"] == 0


def test_overrides_reach_nested_options_and_bad_ones_fail(tmp_path):
    args = parse_phase_args(str(TINY / "train_phase2.yaml"), str(tmp_path),
                            ["llm_conf.dtype=bfloat16", "batch_size=3"])
    assert args.llm_conf["dtype"] == "bfloat16" and args.llm_conf["model_name_or_path"] == str(tmp_path)
    assert args.llm_conf["lora"]["r"] == 4 and args.batch_size == 3
    with pytest.raises(ValueError, match="no_such_option"):
        parse_phase_args(str(TINY / "train_phase2.yaml"), str(tmp_path), ["no_such_option=1"])
