"""The frame_phone auxiliary loss: label resampling, value, learning, wiring through the model."""

import pytest
import torch

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.frame_phone import FramePhoneLoss, frame_targets
from csst_espnet.tasks.csst import CSSTTask
from train_utils import tiny_model_args
from conftest import synth_utterance


def test_frame_targets_pick_the_label_at_each_encoder_frame_centre():
    labels = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [9, 8, 7, 6, -1, -1, -1, -1]])
    out = frame_targets(labels, torch.tensor([8, 4]), torch.tensor([4, 3]), width=5)
    # utterance 0: 8 label frames on 4 encoder frames -> centres 1, 3, 5, 7; utterance 1: 4 on 3 -> 0, 2, 3
    assert out.tolist() == [[1, 3, 5, 7, -1], [9, 7, 6, -1, -1]]


def _inputs(enc, lens, labels, label_lens):
    return AuxLossInputs(projector_aux={}, lang=None, languages=("zh", "en"), encoder_out=enc,
                         encoder_out_lens=lens, phone_ali=labels, phone_ali_lens=label_lens)


def test_value_equals_cross_entropy_of_the_head_and_learns():
    torch.manual_seed(0)
    hook = FramePhoneLoss(projector=None, languages=("zh", "en"), encoder_output_size=6, num_phones=4)
    enc = torch.randn(2, 3, 6)
    labels, label_lens = torch.tensor([[1, 1, 2, 2, 3, 3], [0, 0, 2, 2, -1, -1]]), torch.tensor([6, 4])
    lens = torch.tensor([3, 2])
    loss, stats = hook(_inputs(enc, lens, labels, label_lens))
    logits = hook.head(enc)
    ref = torch.nn.functional.cross_entropy(
        torch.cat([logits[0, :3], logits[1, :2]]), torch.tensor([1, 2, 3, 0, 2]))
    assert torch.allclose(loss, ref)
    opt = torch.optim.SGD(hook.parameters(), lr=0.5)
    for _ in range(50):
        loss, stats = hook(_inputs(enc, lens, labels, label_lens))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * ref.item() and float(stats["frame_phone_acc"]) == 1.0


def test_errors_name_the_problem():
    hook = FramePhoneLoss(projector=None, languages=("zh",), encoder_output_size=4, num_phones=3)
    enc, lens = torch.zeros(1, 2, 4), torch.tensor([2])
    with pytest.raises(ValueError, match="needs phone_ali"):
        hook(_inputs(enc, lens, None, None))
    with pytest.raises(ValueError, match="phone id 5 in phone_ali, but num_phones is 3"):
        hook(_inputs(enc, lens, torch.tensor([[5, 1]]), torch.tensor([2])))


def test_through_the_model(tiny_llm, tiny_whisper):
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[{"name": "frame_phone", "conf": {"num_phones": 7}}])
    model = CSSTTask.build_model(args)
    assert model.aux_losses["frame_phone"].head.in_features == model.encoder.output_size()
    wavs = [torch.from_numpy(synth_utterance(i, 0.4 + 0.2 * i)) for i in range(2)]
    speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    speech_lengths = torch.tensor([len(w) for w in wavs])
    n_frames = speech_lengths // 160
    phone_ali = torch.stack([torch.arange(int(n_frames.max())) % 7, torch.arange(int(n_frames.max())) % 5])
    phone_ali[1, int(n_frames[1]):] = -1
    batch = dict(speech=speech, speech_lengths=speech_lengths, text=torch.tensor([[5, 6, 7], [8, 9, -1]]),
                 text_lengths=torch.tensor([3, 2]), prompt=torch.tensor([[4, 5], [6, -1]]),
                 prompt_lengths=torch.tensor([2, 1]), phone_ali=phone_ali, phone_ali_lengths=n_frames)
    loss, stats, _ = model(**batch)
    assert "loss_frame_phone" in stats and 0.0 <= float(stats["frame_phone_acc"]) <= 1.0
    assert torch.allclose(loss, stats["loss_frame_phone"])  # ce_weight 0: the hook's loss alone
    loss.backward()
    assert model.aux_losses["frame_phone"].head.weight.grad is not None
    with pytest.raises(ValueError, match="needs phone_ali"):
        batch.pop("phone_ali"), batch.pop("phone_ali_lengths")
        model(**batch)
