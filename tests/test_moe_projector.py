"""MoE speech projector: routing, gates, dispatch paths against the dense reference, padding."""

import pytest
import torch

from csst_espnet.projector.moe import MoELayer, MoESpeechProjector, grouped_mm_supported

CPU_GROUPED_MM = grouped_mm_supported(torch.device("cpu"), torch.float32)
DISPATCHED = [
    "sorted",
    pytest.param("grouped_mm", marks=pytest.mark.skipif(not CPU_GROUPED_MM, reason="no CPU grouped_mm")),
]




def make_projector(seed=0, **overrides):
    torch.manual_seed(seed)
    conf = dict(
        groups=["zh", "en"],
        experts_per_group=3,
        top_k=2,
        num_layers=2,
        downsample="stack",
        downsample_rate=2,
        expert_hidden=24,
        expert_act="gelu",
    )
    conf.update(overrides)
    return MoESpeechProjector(input_size=8, output_size=16, **conf)


def batch(seed=1, lens=(9, 6, 3), dim=8):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(len(lens), max(lens), dim, generator=g)
    return xs, torch.tensor(lens)


def test_attributes_and_shapes():
    p = make_projector()
    assert p.groups == ["zh", "en"] and p.experts_per_group == 3 and p.num_experts == 6
    assert p.output_size() == 16
    xs, lens = batch()
    ys, ys_lens, aux = p(xs, lens)
    assert ys.shape == (3, 5, 16)
    assert ys_lens.tolist() == [5, 3, 2]  # ceil(len / 2)
    n = int(ys_lens.sum())
    assert aux["router_logits"].shape == (2, n, 6)
    assert aux["expert_index"].shape == (2, n, 2)
    assert aux["token_utt"].tolist() == [0] * 5 + [1] * 3 + [2] * 2
    assert aux["token_pos"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]


def test_routing_picks_true_top_k_and_gates_sum_to_one():
    p = make_projector(num_layers=1, top_k=2)
    xs, lens = batch()
    _, _, aux = p(xs, lens)
    # Recompute the router by hand on the valid stacked tokens.
    stacked, ys_lens = p.downsample(xs, lens)
    tokens = torch.cat([stacked[b, : ys_lens[b]] for b in range(len(lens))])
    probs = torch.softmax(tokens @ p.layers[0].router.weight.T, dim=-1)
    top_p, top_i = torch.topk(probs, 2, dim=-1)
    assert torch.equal(aux["expert_index"][0], top_i)
    gates = aux["expert_gates"][0]
    torch.testing.assert_close(gates.sum(-1), torch.ones(len(tokens)))
    torch.testing.assert_close(gates, top_p / top_p.sum(-1, keepdim=True))


@pytest.mark.parametrize("dispatch", DISPATCHED)
@pytest.mark.parametrize(
    "act,bias,downsample",
    [("gelu", True, "stack"), ("swiglu", False, "conv"), ("swiglu", True, "stack"), ("geglu", True, "stack")],
)
def test_dispatch_equals_dense_reference(dispatch, act, bias, downsample):
    p = make_projector(expert_act=act, expert_bias=bias, downsample=downsample, expert_hidden=32)
    xs, lens = batch()
    results = {}
    for mode in ("dense", dispatch):
        p.zero_grad()
        x = xs.clone().requires_grad_(True)
        ys, _, aux = p(x, lens, dispatch=mode)
        (ys * torch.linspace(-1, 1, ys.numel()).view_as(ys)).sum().backward()
        results[mode] = (ys.detach(), x.grad, {n: q.grad.clone() for n, q in p.named_parameters()}, aux)
    ref, got = results["dense"], results[dispatch]
    torch.testing.assert_close(got[0], ref[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=1e-5)
    for name in ref[2]:
        torch.testing.assert_close(got[2][name], ref[2][name], atol=1e-5, rtol=1e-5, msg=name)
    assert torch.equal(got[3]["expert_index"], ref[3]["expert_index"])


def test_auto_dispatch_resolution():
    layer = MoELayer(8, 16, num_experts=4, top_k=1, expert_hidden=16)
    expected = "grouped_mm" if CPU_GROUPED_MM else "sorted"
    assert layer.resolve_dispatch(torch.zeros(1, 8)) == expected
    odd = MoELayer(5, 7, num_experts=4, top_k=1, expert_hidden=3)  # rows not 16-byte aligned
    assert odd.resolve_dispatch(torch.zeros(1, 5)) == "sorted"
    with pytest.raises(ValueError, match="dispatch"):
        MoELayer(8, 16, num_experts=4, top_k=1, expert_hidden=16, dispatch="nope")
    with pytest.raises(ValueError, match="top_k"):
        MoELayer(8, 16, num_experts=4, top_k=5, expert_hidden=16)


@pytest.mark.parametrize("dispatch", DISPATCHED)
def test_idle_experts_get_zero_gradient(dispatch):
    layer = MoELayer(8, 16, num_experts=4, top_k=1, expert_hidden=16)
    with torch.no_grad():  # route everything to expert 2
        layer.router.weight.zero_()
        layer.router.weight[2] = 1.0
    x = torch.ones(5, 8)
    y, _, index, _ = layer(x, dispatch)
    assert index.unique().tolist() == [2]
    y.sum().backward()
    w_grad = layer.experts.w_in.grad
    assert w_grad is not None and w_grad[[0, 1, 3]].abs().sum() == 0 and w_grad[2].abs().sum() > 0


def test_padding_changes_nothing():
    from csst_espnet.losses.abs_aux_loss import AuxLossInputs
    from csst_espnet.losses.registry import build_aux_losses

    p = make_projector(num_layers=2)
    languages = ("zh", "en", "cs")
    hooks, _ = build_aux_losses(
        [{"name": "lang"}, {"name": "balance"}, {"name": "global_balance"}, {"name": "z_loss"}], p, languages
    )
    g = torch.Generator().manual_seed(3)
    utt = torch.randn(1, 7, 8, generator=g)
    other = torch.randn(1, 11, 8, generator=g)
    alone_ys, alone_lens, alone_aux = p(utt, torch.tensor([7]))

    # The same utterance padded with garbage, alone and next to a longer one.
    padded = torch.cat([utt, 100 * torch.randn(1, 4, 8, generator=g)], dim=1)
    ys, lens, aux = p(torch.cat([padded, other]), torch.tensor([7, 11]))
    assert lens[0] == alone_lens[0] == 4
    torch.testing.assert_close(ys[0, :4], alone_ys[0], atol=1e-6, rtol=1e-6)
    assert ys[0, 4:].abs().sum() == 0  # padding positions are zero
    mine = aux["token_utt"] == 0
    torch.testing.assert_close(aux["router_logits"][:, mine], alone_aux["router_logits"], atol=1e-6, rtol=1e-6)
    assert torch.equal(aux["expert_index"][:, mine], alone_aux["expert_index"])

    # Losses: utterance alone vs alone-with-padding are identical.
    pad_ys, pad_lens, pad_aux = p(padded, torch.tensor([7]))
    torch.testing.assert_close(pad_ys[0, :4], alone_ys[0], atol=1e-6, rtol=1e-6)
    for name, hook in hooks.items():
        a, a_stats = hook(AuxLossInputs(alone_aux, torch.tensor([0]), languages))
        b, b_stats = hook(AuxLossInputs(pad_aux, torch.tensor([0]), languages))
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6, msg=name)
        assert a_stats.keys() == b_stats.keys()


def test_bf16_forward_runs():
    p = make_projector().to(torch.bfloat16)
    xs, lens = batch()
    ys, _, aux = p(xs.to(torch.bfloat16), lens)
    assert ys.dtype == torch.bfloat16 and aux["router_logits"].dtype == torch.float32
    assert torch.isfinite(ys.float()).all()


def test_frame_labels_to_token_labels():
    p = make_projector(downsample_rate=3)
    xs, lens = torch.randn(2, 8, 8), torch.tensor([8, 5])
    _, _, aux = p(xs, lens)
    frame_lang = torch.tensor([[0, 0, 0, 1, 1, 0, 1, 1], [-1, 1, 1, -1, -1, -1, -1, -1]])
    # windows of 3: utt0 [0,0,0] [1,1,0] [1,1,-] ; utt1 [-,1,1] [-,-]
    assert p.token_lang_from_frames(frame_lang, aux).tolist() == [0, -1, 1, 1, -1]


@pytest.mark.parametrize("dispatch", ["dense"] + DISPATCHED)
def test_top1_router_learns_from_the_output_loss_alone(dispatch):
    # k = 1: the gate is the chosen expert's router probability (a renormalised single gate is 1 and
    # gives the router no gradient); a loss on the projector output alone trains the router.
    torch.manual_seed(0)
    layer = MoELayer(8, 16, num_experts=4, top_k=1, expert_hidden=16)
    x = torch.randn(6, 8)
    target = torch.linspace(-1, 1, 6 * 16).view(6, 16)

    def loss_of(weight):
        with torch.no_grad():
            layer.router.weight.copy_(weight)
        y, logits, index, gates = layer(x, dispatch)
        return (y * target).sum(), logits, index, gates

    w0 = layer.router.weight.detach().clone()
    loss, logits, index, gates = loss_of(w0)
    probs = torch.softmax(logits.detach(), dim=-1)
    torch.testing.assert_close(gates.detach(), probs.gather(1, index))
    layer.zero_grad()
    loss.backward()
    grad = layer.router.weight.grad
    assert grad is not None and grad.abs().max() > 1e-3
    # the gradient is that of the loss: central differences along it (the top-1 choice does not change)
    step = 1e-3 * grad / grad.norm()
    with torch.no_grad():
        up, _, up_index, _ = loss_of(w0 + step)
        down, _, down_index, _ = loss_of(w0 - step)
    assert torch.equal(up_index, index) and torch.equal(down_index, index)
    assert ((up - down) / 2).item() == pytest.approx((grad * step).sum().item(), rel=1e-2)


def test_router_collapse_is_a_warning_after_the_window(caplog):
    torch.manual_seed(0)
    proj = MoESpeechProjector(input_size=8, output_size=16, groups=["zh", "en"], experts_per_group=2, top_k=1,
                              downsample_rate=1, expert_hidden=8, collapse_share=0.8, collapse_window=3)
    xs, lens = torch.randn(2, 20, 8), torch.tensor([20, 15])
    proj.train()
    with caplog.at_level("WARNING"):
        for _ in range(3):  # balanced enough: the random router spreads tokens over the experts
            proj(xs, lens)
            proj.on_update()
        assert proj.collapse_warnings == 0, caplog.text
        with torch.no_grad():  # expert 3 (group en, expert 1) takes every token
            proj.layers[0].router.weight.zero_()
            proj.layers[0].router.weight[3] = 10.0
        for step in range(3):
            proj(xs.abs(), lens)
            proj.on_update()
            assert proj.collapse_warnings == (1 if step == 2 else 0)  # only when the window is complete
    assert "router collapse: layer 0, group en: expert 1 took 100.0% of the group's 105 dispatches over the last 3 updates" in caplog.text
    assert "dispatch_counts" not in proj.state_dict()
    proj.eval()  # decoding does not count
    proj(xs, lens)
    assert float(proj.dispatch_counts.sum()) == 0
