"""The projector benchmark runs at small shapes and writes both ratios."""

import json

import torch

from csst_espnet.benchmarks.projector import PEER_IMPLEMENTATIONS
from csst_espnet.bin import bench_projector


def test_small_benchmark_writes_ratios(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "bench.json"
    try:
        bench_projector.main(["--small", "--repeats", "1", "--warmup", "1", "--threads", "1", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    assert result["ours_over_peer"] > 0 and result["ours_over_k_dense"] > 0
    assert result["peer"].startswith("mixtral (")
    names = [row["name"] for row in result["rows"]]
    for implementation in PEER_IMPLEMENTATIONS:
        assert f"mixtral ({implementation})" in names
    assert result["like_for_like"] == {
        "expert_act": "swiglu",
        "expert_bias": False,
        "in_width": 256,
        "out_width": 256,
    }
    # Same weights, same routing: the peer computes what we compute.
    assert all(diff < 1e-4 for diff in result["max_abs_diff_ours_vs_peer"].values())
    printed = capsys.readouterr().out
    assert "ours_over_peer" in printed and "SwiGLU" in printed


def test_experts_only_row_runs_each_row_through_its_expert():
    import pytest

    from csst_espnet.benchmarks.projector import ExpertMatmulsOnly
    from csst_espnet.projector.moe import MoELayer, grouped_mm_supported

    if not grouped_mm_supported(torch.device("cpu"), torch.float32):
        pytest.skip("no CPU grouped_mm")
    torch.manual_seed(0)
    layer = MoELayer(16, 16, num_experts=4, top_k=2, expert_hidden=8, expert_act="swiglu", expert_bias=False)
    x = torch.randn(10, 16)
    only = ExpertMatmulsOnly(layer, x)
    rows = x.index_select(0, only.token_of)
    _, expert_index, _ = layer.route(x)
    experts = torch.sort(expert_index.reshape(-1), stable=True).values
    w_in, w_out = layer.experts.w_in, layer.experts.w_out
    expected = torch.stack([layer.experts._hidden(r @ w_in[e]) @ w_out[e] for r, e in zip(rows, experts)])
    torch.testing.assert_close(only(rows), expected, atol=1e-5, rtol=1e-5)
