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


# ------------------------------------------------------------------ the full model under torch DDP
# Every phase's hooks at once: phase 1/2 (lang, balance, frame_phone, src_ctc) and phase 3 (transition,
# distill, with its teacher sharing the student's frozen backbone). Utterances of equal lengths, each rank
# one code-switched and one monolingual: per-rank means weighted by each rank's share of the batch (ESPnet)
# then equal global means, so the two ranks must give one process's loss and gradients exactly.
FULL_SPECS = [
    {"name": "transition", "conf": {"mode": "distill", "gamma": 0.5}},
    {"name": "lang", "weight": 0.1},
    {"name": "balance", "weight": 0.01},
    {"name": "frame_phone", "weight": 0.3, "conf": {"num_phones": 8}},
    {"name": "src_ctc", "weight": 0.2},
]


def _full_args(llm, whisper, aux_losses, teacher=None):
    from train_utils import tiny_model_args

    args = tiny_model_args(llm, whisper, aux_losses=aux_losses, teacher=teacher)
    args.projector = "moe"
    args.projector_conf = dict(groups=["zh", "en"], experts_per_group=2, top_k=2, downsample_rate=2, expert_hidden=16)
    args.model_conf = {"ce_weight": 1.0}
    return args


def _full_batch(idx, vocab):
    """Utterances ``idx`` of a 4-utterance global batch (languages en, cs, cs, zh: rank r of 2 gets r and r + 2)."""
    from conftest import synth_utterance

    gen = torch.Generator().manual_seed(0)
    n, samples, frames = 4, 4800, 30
    whole = dict(
        speech=torch.stack([torch.from_numpy(synth_utterance(i, 0.3)).float() for i in range(n)]),
        speech_lengths=torch.full((n,), samples),
        text=torch.randint(4, vocab, (n, 5), generator=gen), text_lengths=torch.full((n,), 5),
        prompt=torch.randint(4, vocab, (n, 4), generator=gen), prompt_lengths=torch.full((n,), 4),
        lang=torch.tensor([[1], [2], [2], [0]]), lang_lengths=torch.ones(n, dtype=torch.long),
        phone_ali=torch.randint(0, 8, (n, frames), generator=gen), phone_ali_lengths=torch.full((n,), frames),
        src_text=torch.randint(4, vocab, (n, 3), generator=gen), src_text_lengths=torch.full((n,), 3),
    )
    return {k: v[idx] for k, v in whole.items()}


def _full_model(llm, whisper, teacher_dir):
    from csst_espnet.tasks.csst import CSSTTask

    teacher = {"teacher_config": teacher_dir / "config.yaml", "teacher_model": teacher_dir / "model.pth"}
    torch.manual_seed(0)
    return CSSTTask.build_model(_full_args(llm, whisper, FULL_SPECS, teacher)).train()


def _full_rank(rank, world, init_file, out_file, llm, whisper, teacher_dir):
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = _full_model(llm, whisper, teacher_dir)
    ddp = DistributedDataParallel(model, find_unused_parameters=True)
    idx = torch.arange(rank, 4, world)  # ESPnet: each rank takes batch[rank::world_size]
    torch.manual_seed(1)  # dropout: LoRA's is off, the same stream on every rank otherwise
    loss, stats, weight = ddp(**_full_batch(idx, model.llm.vocab_size))
    # ESPnet's trainer: utterance-weighted average over ranks, times the world size (DDP averages grads)
    total = weight.clone()
    dist.all_reduce(total)
    (loss * weight / total * world).backward()
    reported = (loss * weight / total).detach()
    dist.all_reduce(reported)
    if rank == 0:
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        torch.save({"loss": reported, "grads": grads}, out_file)
    dist.destroy_process_group()


def test_full_model_two_ranks_match_one_process(tiny_llm, tiny_whisper, tmp_path):
    from csst_espnet.tasks.csst import CSSTTask
    from train_utils import save_run

    teacher_args = _full_args(tiny_llm, tiny_whisper, [])
    torch.manual_seed(5)
    save_run(teacher_args, CSSTTask.build_model(teacher_args), tmp_path / "config.yaml", tmp_path / "model.pth")
    model = _full_model(tiny_llm, tiny_whisper, tmp_path)
    torch.manual_seed(1)
    loss, stats, _ = model(**_full_batch(torch.arange(4), model.llm.vocab_size))
    loss.backward()
    single = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(stats[k] > 0 for k in ("transition_kl", "loss_lang", "loss_balance", "loss_frame_phone", "loss_src_ctc"))

    out = tmp_path / "ddp.pt"
    mp.spawn(_full_rank, args=(2, str(tmp_path / "init"), str(out), tiny_llm, tiny_whisper, tmp_path),
             nprocs=2, join=True)
    ddp = torch.load(out)
    assert torch.allclose(ddp["loss"], loss.detach(), atol=1e-5)
    assert single.keys() == ddp["grads"].keys() and any("lora_" in n for n in single)
    for name, grad in single.items():
        assert torch.allclose(ddp["grads"][name], grad, atol=1e-5, rtol=1e-4), name
