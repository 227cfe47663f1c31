"""The src_ctc auxiliary loss: value, learning, skipped and infeasible utterances, wiring through the
model and the preprocessor."""

import numpy as np
import pytest
import torch

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.src_ctc import SourceCTCLoss
from csst_espnet.tasks.csst import CSSTTask
from train_utils import tiny_model_args
from conftest import synth_utterance


def _inputs(embeds, embed_lens, table, labels, label_lens):
    return AuxLossInputs(projector_aux={}, lang=None, languages=("zh", "en"), speech_embeds=embeds,
                         speech_embed_lens=embed_lens, token_embeddings=table, src_text=labels,
                         src_text_lens=label_lens)


def _greedy(logits, length, blank):
    out, prev = [], blank
    for v in logits[:length].argmax(-1).tolist():
        if v != prev and v != blank:
            out.append(v)
        prev = v
    return out


def test_value_is_ctc_over_scaled_cosine_logits_and_learns():
    torch.manual_seed(0)
    hook = SourceCTCLoss(projector=None, languages=("zh", "en"), llm_hidden_size=8)
    table = torch.randn(5, 8)  # the LLM's token embeddings (V = 5); blank is index 5
    embeds = torch.randn(2, 6, 8, requires_grad=True)
    labels, label_lens = torch.tensor([[1, 3, 3], [4, 0, -1]]), torch.tensor([3, 2])
    embed_lens = torch.tensor([6, 4])
    loss, _ = hook(_inputs(embeds, embed_lens, table, labels, label_lens))

    full = torch.cat([table, hook.blank[None]])
    cos = torch.nn.functional.cosine_similarity(embeds[:, :, None], full[None, None], dim=-1)  # (B, T, V + 1)
    log_probs = (hook.log_scale.exp() * cos).log_softmax(-1)
    ref = [torch.nn.functional.ctc_loss(log_probs[b, : embed_lens[b]], labels[b, : label_lens[b]],
                                        embed_lens[b : b + 1], label_lens[b : b + 1], blank=5, reduction="sum")
           / label_lens[b]
           for b in range(2)]
    assert torch.allclose(loss, torch.stack(ref).mean(), atol=1e-5)

    opt = torch.optim.Adam([embeds, hook.log_scale, hook.blank], lr=0.1)
    first = loss.item()
    for _ in range(100):
        loss, _ = hook(_inputs(embeds, embed_lens, table, labels, label_lens))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    logits = hook.logits(embeds, table)
    assert [_greedy(logits[b], int(embed_lens[b]), blank=5) for b in range(2)] == [[1, 3, 3], [4, 0]]
    assert table.grad is None  # the LLM's embeddings are read, never trained


def test_utterances_without_transcript_are_left_out_and_infeasible_ones_counted():
    torch.manual_seed(0)
    hook = SourceCTCLoss(projector=None, languages=("zh",), llm_hidden_size=4)
    table, embeds = torch.randn(6, 4), torch.randn(3, 4, 4)
    labels = torch.tensor([[1, 2, -1, -1, -1], [-1, -1, -1, -1, -1], [1, 2, 3, 4, 5]])
    label_lens, embed_lens = torch.tensor([2, 0, 5]), torch.tensor([4, 4, 4])
    loss, stats = hook(_inputs(embeds, embed_lens, table, labels, label_lens))
    alone, _ = hook(_inputs(embeds[:1], embed_lens[:1], table, labels[:1], label_lens[:1]))
    # utterance 1 has no transcript (left out); utterance 2 has 5 labels on 4 frames (infeasible: 0)
    assert torch.allclose(loss, alone / 2) and float(stats["src_ctc_infeasible"]) == 1.0
    loss, stats = hook(_inputs(embeds[1:2], embed_lens[1:2], table, labels[1:2], label_lens[1:2]))
    assert float(loss) == 0.0 and loss.requires_grad


def test_errors_name_the_problem():
    hook = SourceCTCLoss(projector=None, languages=("zh",), llm_hidden_size=4)
    table, embeds, lens = torch.randn(3, 4), torch.randn(1, 4, 4), torch.tensor([4])
    with pytest.raises(ValueError, match="needs src_text in the data"):
        hook(_inputs(embeds, lens, table, None, None))
    with pytest.raises(ValueError, match="token id 7 in src_text, but the LLM has 3 tokens"):
        hook(_inputs(embeds, lens, table, torch.tensor([[7, 1]]), torch.tensor([2])))
    with pytest.raises(ValueError, match="init_scale must be positive"):
        SourceCTCLoss(projector=None, languages=("zh",), llm_hidden_size=4, init_scale=0.0)


def test_through_the_model_trains_the_speech_side_only(tiny_llm, tiny_whisper):
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[{"name": "src_ctc"}])
    model = CSSTTask.build_model(args)
    assert model.aux_losses["src_ctc"].blank.numel() == model.llm.hidden_size
    wavs = [torch.from_numpy(synth_utterance(i, 0.8 + 0.2 * i)) for i in range(2)]
    speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    batch = dict(speech=speech, speech_lengths=torch.tensor([len(w) for w in wavs]),
                 text=torch.tensor([[5, 6, 7], [8, 9, -1]]), text_lengths=torch.tensor([3, 2]),
                 prompt=torch.tensor([[4, 5], [6, -1]]), prompt_lengths=torch.tensor([2, 1]),
                 src_text=torch.tensor([[10, 11], [12, -1]]), src_text_lengths=torch.tensor([2, 1]))
    loss, stats, _ = model(**batch)
    assert torch.allclose(loss, stats["loss_src_ctc"]) and float(loss) > 0  # ce_weight 0: the hook alone
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    assert model.llm.input_embeddings.grad is None
    with pytest.raises(ValueError, match="needs src_text"):
        batch.pop("src_text"), batch.pop("src_text_lengths")
        model(**batch)


def test_preprocessor_tokenizes_src_text_without_eos(tiny_llm):
    from csst_espnet.text.preprocessor import build_preprocessor

    pre = build_preprocessor(str(tiny_llm), ["zh", "en", "cs"])
    out = pre("u1", {"text": "hello world", "src_text": "hello world", "task": "st", "lang": "en"})
    assert out["src_text"].dtype == np.int64
    assert out["src_text"].tolist() == pre.template.text_ids("hello world")
    assert out["text"].tolist() == out["src_text"].tolist() + [pre.template.tokenizer.eos_token_id]
    with pytest.raises(ValueError, match="utterance 'u2': empty src_text"):
        pre("u2", {"text": "hello", "src_text": "  "})


def test_chunked_equals_full_vocabulary_ctc_in_value_and_gradients(monkeypatch):
    """Chunks of 2 positions and vocabulary blocks of 3 rows give the full-vocabulary CTC (1e-5),
    repeated tokens included, in the loss and in every gradient."""
    import csst_espnet.losses.src_ctc as src_ctc

    monkeypatch.setattr(src_ctc, "VOCAB_BLOCK", 3)
    torch.manual_seed(1)
    hook = SourceCTCLoss(projector=None, languages=("zh", "en"), llm_hidden_size=8, chunk_size=2).double()
    table = torch.randn(7, 8, dtype=torch.float64)
    embeds = torch.randn(3, 9, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[2, 2, 5, 2], [6, 0, -1, -1], [1, 3, 1, -1]])
    label_lens, embed_lens = torch.tensor([4, 2, 3]), torch.tensor([9, 5, 7])
    loss, _ = hook(_inputs(embeds, embed_lens, table, labels, label_lens))
    grads = torch.autograd.grad(loss, [embeds, hook.blank, hook.log_scale])

    full = torch.nn.functional.normalize(torch.cat([table, hook.blank[None]]), dim=-1)
    cos = torch.nn.functional.normalize(embeds, dim=-1) @ full.T
    log_probs = (hook.log_scale.exp() * cos).log_softmax(-1).transpose(0, 1)  # (T, B, V + 1), unchunked
    ref = (torch.nn.functional.ctc_loss(log_probs, labels.clamp(min=0), embed_lens, label_lens, blank=7,
                                        reduction="none") / label_lens).mean()
    ref_grads = torch.autograd.grad(ref, [embeds, hook.blank, hook.log_scale])
    assert torch.allclose(loss, ref, atol=1e-5)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-5)
