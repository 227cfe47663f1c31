"""A globally reduced auxiliary loss gives, under ESPnet's DDP loss scaling, the gradient of one
process on the global batch (NeMo PR #15648 was this bug: MoE aux loss mis-scaled under sharding)."""

import os
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.registry import build_aux_losses
from csst_espnet.models.espnet_model import ESPnetCSSTModel
from csst_espnet.projector.moe import MoESpeechProjector

LANGS = ("zh", "en", "es", "cs")
# Hooks that reduce their statistics over ranks (per-rank means, like CE, follow ESPnet's own
# utterance-weighted averaging instead).
SPECS = [{"name": "balance", "weight": 0.5}, {"name": "global_balance", "weight": 0.2}]


def _setup():
    torch.manual_seed(0)
    projector = MoESpeechProjector(
        input_size=8, output_size=12, groups=["zh", "en"], experts_per_group=2, top_k=2,
        downsample_rate=2, expert_hidden=16,
    )
    hooks, weights = build_aux_losses(SPECS, projector, LANGS)
    xs = torch.randn(3, 10, 8)
    lens = torch.tensor([10, 7, 4])
    lang = torch.tensor([0, 1, 3])
    return projector, SimpleNamespace(aux_losses=hooks, aux_loss_weights=weights), xs, lens, lang


def _aux_total(projector, fake_model, xs, lens, lang):
    _, _, aux = projector(xs, lens)
    inputs = AuxLossInputs(projector_aux=aux, lang=lang, languages=LANGS)
    return ESPnetCSSTModel._aux_loss(fake_model, inputs, xs.size(0), {})


def _rank(rank, world, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    projector, fake_model, xs, lens, lang = _setup()
    idx = torch.arange(rank, xs.size(0), world)  # ESPnet: each rank takes batch[rank::world_size]
    loss = _aux_total(projector, fake_model, xs[idx], lens[idx], lang[idx])
    # ESPnet's trainer: weighted average over ranks, times world size; DDP then averages grads.
    loss = loss * len(idx) / xs.size(0) * world
    loss.backward()
    for p in projector.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world
    if rank == 0:
        torch.save({n: p.grad for n, p in projector.named_parameters()}, out_file)
    dist.destroy_process_group()


def test_two_ranks_match_one_process(tmp_path):
    projector, fake_model, xs, lens, lang = _setup()
    _aux_total(projector, fake_model, xs, lens, lang).backward()
    single = {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in projector.named_parameters()}

    out = tmp_path / "grads.pt"
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    ddp = torch.load(out)
    assert any(g.abs().sum() > 0 for g in single.values())
    for name, grad in single.items():
        assert torch.allclose(ddp[name], grad, atol=1e-6), name
