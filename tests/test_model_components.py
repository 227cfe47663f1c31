"""Prompt, preprocessing, model assembly and components, checked against reference computations."""

import numpy as np
import pytest
import torch

from conftest import SENTENCES, synth_utterance
from csst_espnet.text.prompt import SPEECH_SLOT
from csst_espnet.utils.base_model import KEY as IDENTITY  # the base-model record in every state dict


def _build(tiny_llm, tiny_whisper, freeze_encoder=True, **llm_kwargs):
    from csst_espnet.encoder.whisper import HFWhisperEncoder
    from csst_espnet.frontend.whisper import WhisperLogMel
    from csst_espnet.llm.hf_causal_lm import HFCausalLM
    from csst_espnet.models.espnet_model import ESPnetCSSTModel
    from csst_espnet.projector.linear import MLPProjector
    from csst_espnet.text.preprocessor import build_preprocessor

    torch.manual_seed(0)
    encoder = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), freeze=freeze_encoder)
    llm = HFCausalLM(str(tiny_llm), **llm_kwargs)
    projector = MLPProjector(encoder.output_size(), llm.hidden_size, downsample_rate=2, hidden_size=32)
    model = ESPnetCSSTModel(WhisperLogMel(), None, encoder, projector, llm, ["zh", "en", "es", "cs"]).eval()
    return model, build_preprocessor(str(tiny_llm), ["zh", "en", "es", "cs"])


def _collate(pre, n):
    from csst_espnet.data.collate import PadCollate

    items = [
        (f"u{i}", pre(f"u{i}", {"speech": synth_utterance(i, 0.3 + 0.15 * i), "text": SENTENCES[i], "lang": "en"}))
        for i in range(n)
    ]
    return PadCollate()(items)[1]


def test_loss_counts_only_target_tokens(tiny_llm, tiny_whisper):
    """Model CE equals HF's own causal-LM loss with labels -100 over prompt and speech."""
    model, pre = _build(tiny_llm, tiny_whisper)
    batch = _collate(pre, 3)
    with torch.no_grad():
        _, stats, _ = model(**batch)
        embeds, lens, _ = model.encode(batch["speech"], batch["speech_lengths"])
        total, count = 0.0, 0
        for b in range(3):
            p, s, t = int(batch["prompt_lengths"][b]), int(lens[b]), int(batch["text_lengths"][b])
            ids = batch["text"][b, :t]
            seq = torch.cat([model.llm.embed(batch["prompt"][b, :p]), embeds[b, :s], model.llm.embed(ids)])
            labels = torch.cat([torch.full((p + s,), -100), ids])
            out = model.llm.model(inputs_embeds=seq[None], labels=labels[None])
            total, count = total + out.loss.item() * t, count + t
    assert stats["loss_ce"].item() == pytest.approx(total / count, rel=1e-5)


def test_prompt_identical_in_training_and_decoding(tiny_llm, tiny_whisper):
    from csst_espnet.tasks.csst import CSSTTask

    args = CSSTTask.get_parser().parse_args(["--llm_conf", f"model_name_or_path={tiny_llm}"])
    train_pre = CSSTTask.build_preprocess_fn(args, train=True)
    decode_pre = CSSTTask.build_preprocess_fn(args, train=False)
    wav = synth_utterance(0)
    for lang, task in [("zh", "asr"), ("cs", "st"), ("en", "st")]:
        a = train_pre("u", {"speech": wav, "text": "hello", "lang": lang, "task": task})
        b = decode_pre("u", {"speech": wav, "lang": lang, "task": task})
        assert a["prompt"].tolist() == b["prompt"].tolist()
    text = train_pre.template.text("st", "cs")
    assert "Translate the speech into English." in text
    assert train_pre.template.text("asr", "zh") != text


def test_augmentation_only_in_training(tiny_llm):
    from csst_espnet.tasks.csst import CSSTTask

    args = CSSTTask.get_parser().parse_args(["--llm_conf", f"model_name_or_path={tiny_llm}",
                                             "--augment_conf", "prob=1.0"])
    wav = synth_utterance(0)
    train = CSSTTask.build_preprocess_fn(args, train=True)("u", {"speech": wav, "text": "hello"})["speech"]
    valid = CSSTTask.build_preprocess_fn(args, train=False)("u", {"speech": wav, "text": "hello"})["speech"]
    assert np.array_equal(valid, wav.astype(np.float32))
    assert train.shape == wav.shape and not np.allclose(train, wav)


def test_chat_template_wraps_instruction(tiny_llm):
    from transformers import AutoTokenizer

    from csst_espnet.text.prompt import PromptTemplate

    tok = AutoTokenizer.from_pretrained(tiny_llm)
    with pytest.raises(ValueError, match="no chat template"):
        PromptTemplate(tok, use_chat_template=True)
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    template = PromptTemplate(tok, system="Be brief.")
    text = "<|system|>Be brief.\n<|user|>Translate the speech into English.\n<speech>\n<|assistant|>"
    assert template.text("st", "zh") == text  # the speech is in the user turn
    before, after = text.split("<speech>")
    ids = template.ids("st", "zh")
    assert ids == template.text_ids(before) + [SPEECH_SLOT] + template.text_ids(after)
    assert template.around("st", "zh", [7, 8]) == template.text_ids(before) + [7, 8] + template.text_ids(after)


def test_prefix_puts_the_speech_in_the_slot(tiny_llm):
    """[prompt before the slot][speech][prompt after the slot], left-padded; a prompt without a slot
    is followed by the speech."""
    from types import SimpleNamespace

    from csst_espnet.models.espnet_model import ESPnetCSSTModel

    emb = torch.nn.Embedding(20, 3)
    fake = SimpleNamespace(llm=SimpleNamespace(embed=emb))
    prompt = torch.tensor([[1, 2, SPEECH_SLOT, 3], [4, 5, -1, -1]])
    speech = torch.randn(2, 3, 3)
    out, mask = ESPnetCSSTModel.prefix_embeddings(fake, prompt, torch.tensor([4, 2]), speech, torch.tensor([2, 3]))
    e = emb.weight.detach()
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    torch.testing.assert_close(out[0], torch.stack([e[1], e[2], speech[0, 0], speech[0, 1], e[3]]))
    torch.testing.assert_close(out[1], torch.stack([e[4], e[5], speech[1, 0], speech[1, 1], speech[1, 2]]))


def test_preprocessor_errors_name_the_utterance(tiny_llm):
    from csst_espnet.text.preprocessor import build_preprocessor

    pre = build_preprocessor(str(tiny_llm), ["zh", "en", "cs"])
    wav = synth_utterance(1)
    with pytest.raises(ValueError, match="utterance 'spk1-bad'.*lang label 'fr'"):
        pre("spk1-bad", {"speech": wav, "text": "x", "lang": "fr"})
    with pytest.raises(ValueError, match="utterance 'spk1-empty'.*empty target text"):
        pre("spk1-empty", {"speech": wav, "text": "  ", "lang": "zh"})
    with pytest.raises(ValueError, match="utterance 'spk1-t'.*task label 'tts'"):
        pre("spk1-t", {"speech": wav, "text": "x", "task": "tts"})


def test_bf16_backbone_survives_espnet_dtype_cast(tiny_llm):
    from csst_espnet.llm.hf_causal_lm import HFCausalLM

    llm = HFCausalLM(str(tiny_llm), dtype="bfloat16", lora={"r": 4})
    llm.to(dtype=torch.float32)  # what ESPnet does with --train_dtype float32
    dtypes = {n: p.dtype for n, p in llm.named_parameters()}
    assert all(d == torch.bfloat16 for n, d in dtypes.items() if "lora_" not in n)
    assert all(d == torch.float32 for n, d in dtypes.items() if "lora_" in n)
    mask = torch.ones(1, 5, dtype=torch.long)
    logits = llm(llm.embed(torch.tensor([[1, 5, 6, 7, 8]])), mask)
    assert logits.shape[:2] == (1, 5) and torch.isfinite(logits.float()).all()


def test_frozen_lora_stays_in_checkpoints(tiny_llm, tiny_whisper):
    """A LoRA adapter frozen in a later phase (--freeze_param llm) is saved; the frozen base LLM is not."""
    model, _ = _build(tiny_llm, tiny_whisper, lora={"r": 4})
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()  # trained adapter weights (LoRA B starts at zero)
    model.llm.requires_grad_(False)
    state = model.state_dict()
    lora = {k for k in state if "lora_" in k}
    assert lora and all("lora_" in k for k in state if k.startswith("llm.") and k != f"llm.{IDENTITY}")
    rebuilt, _ = _build(tiny_llm, tiny_whisper, lora={"r": 4})  # as decoding builds it: adapters trainable
    assert not rebuilt.load_state_dict(state, strict=True).missing_keys
    assert all(torch.equal(rebuilt.state_dict()[k], state[k]) for k in lora)


def test_weights_trained_in_an_earlier_phase_stay_in_checkpoints_when_frozen(tiny_llm, tiny_whisper):
    """A pretrained encoder fine-tuned in phase 1 and frozen in phase 3 keeps its fine-tuned weights."""
    phase1, _ = _build(tiny_llm, tiny_whisper, freeze_encoder=False)
    with torch.no_grad():
        for p in phase1.encoder.parameters():
            p.add_(0.5)  # fine-tuned: no longer the pretrained weights
    phase3, _ = _build(tiny_llm, tiny_whisper, freeze_encoder=False)
    phase3.load_state_dict(phase1.state_dict(), strict=False)  # init_param
    phase3.encoder.requires_grad_(False)  # --freeze_param encoder
    phase3.llm.requires_grad_(False)
    state = phase3.state_dict()
    encoder = {k for k in phase1.state_dict() if k.startswith("encoder.")}
    assert encoder and encoder <= set(state)
    assert not any(k.startswith("llm.") and k != f"llm.{IDENTITY}" for k in state)  # restored from the pretrained LLM
    decoded, _ = _build(tiny_llm, tiny_whisper)
    assert not decoded.load_state_dict(state, strict=True).missing_keys
    assert all(torch.equal(decoded.state_dict()[k], phase1.state_dict()[k]) for k in encoder)


@pytest.mark.parametrize("pad_to_30s", [False, True])
def test_frontend_and_whisper_encoder_batch_equals_single(tiny_whisper, pad_to_30s):
    from csst_espnet.encoder.whisper import HFWhisperEncoder
    from csst_espnet.frontend.whisper import WhisperLogMel

    frontend = WhisperLogMel()
    encoder = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), pad_to_30s=pad_to_30s).eval()
    wavs = [torch.from_numpy(synth_utterance(i, s)) for i, s in enumerate([0.31, 0.77])]
    lengths = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    with torch.no_grad():
        feats, feat_lens = frontend(padded, lengths)
        enc, enc_lens, _ = encoder(feats, feat_lens)
        for b, wav in enumerate(wavs):
            f1, l1 = frontend(wav[None], lengths[b : b + 1])
            assert torch.allclose(feats[b, : l1[0]], f1[0], atol=1e-5)
            e1, el1, _ = encoder(f1, l1)
            assert enc_lens[b] == el1[0]
            assert torch.allclose(enc[b, : el1[0]], e1[0, : el1[0]], atol=1e-4)


def test_attention_window_limits_what_a_frame_sees(tiny_whisper):
    """With attention_window W, an encoder frame depends only on input within (layers * W + conv
    context) frames of it: changing the input past that leaves it unchanged; a window longer than the
    utterance is plain full attention; a batch still equals each utterance alone."""
    from csst_espnet.encoder.whisper import HFWhisperEncoder

    full = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), pad_to_30s=False).eval()
    windowed = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), pad_to_30s=False, attention_window=3).eval()
    wide = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), pad_to_30s=False, attention_window=10_000).eval()
    layers = full.encoder.config.encoder_layers
    torch.manual_seed(0)
    feats = torch.randn(2, 120, 80)
    lens = torch.tensor([120, 90])
    feats[1, 90:] = 0.0  # padding, as a batch has it
    changed = feats.clone()
    changed[:, 100:] += torch.randn(2, 20, 80)  # input frames 100+ -> encoder frames 50+
    with torch.no_grad():
        ref, _, _ = full(feats, lens)
        win, win_lens, _ = windowed(feats, lens)
        win_changed, _, _ = windowed(changed, lens)
        full_changed, _, _ = full(changed, lens)
        assert torch.equal(wide(feats, lens)[0], ref)
        reach = layers * 3 + 2  # attention hops plus conv2's stride-2 context
        assert torch.equal(win_changed[0, : 50 - reach], win[0, : 50 - reach])
        assert not torch.allclose(win_changed[0, 50:], win[0, 50:])
        assert not torch.allclose(full_changed[0, : 50 - reach], ref[0, : 50 - reach])  # full attention sees it
        assert not torch.allclose(win, ref)
        alone, alone_lens, _ = windowed(feats[1:, :90], lens[1:])
        assert alone_lens[0] == win_lens[1]
        assert torch.allclose(win[1, : alone_lens[0]], alone[0], atol=1e-4)
    with pytest.raises(ValueError, match="attention_window"):
        HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), attention_window=-1)


@pytest.mark.parametrize("window,pad_to_30s", [(3, False), (12, False), (3, True)])
def test_banded_local_attention_equals_the_dense_mask_reference(tiny_whisper, window, pad_to_30s):
    """The windowed encoder's banded attention (encoder/local_attention.py) gives the valid frames, and
    the gradients through them, of full attention under the T x T window mask (``banded = False``):
    float32 to 1e-5, float64 to 1e-10; across several blocks, a partial last block and padding."""
    from csst_espnet.encoder.local_attention import BLOCK, worth_banding
    from csst_espnet.encoder.whisper import HFWhisperEncoder

    torch.manual_seed(0)
    lens = torch.tensor([2 * BLOCK * 3 + 17, 2 * BLOCK + 40, 90])  # encoder frames: 3+ blocks, 1-2, under one
    assert worth_banding(int(lens.max() + 1) // 2, window)
    feats = torch.randn(3, int(lens.max()), 80)
    for b, n in enumerate(lens.tolist()):
        feats[b, n:] = 0.0
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        encoder = HFWhisperEncoder(80, model_name_or_path=str(tiny_whisper), pad_to_30s=pad_to_30s,
                                   freeze=False, attention_window=window).eval().to(dtype)
        results = []
        for banded in (True, False):
            encoder.banded = banded
            encoder.zero_grad()
            x = feats.to(dtype).clone().requires_grad_(True)
            out, out_lens, _ = encoder(x, lens)
            valid = (torch.arange(out.size(1))[None] < out_lens[:, None])[..., None]
            (out * valid).pow(2).mean().backward()
            grads = {n: p.grad for n, p in encoder.named_parameters() if p.grad is not None}
            results.append((out * valid, x.grad, grads))
        (out, x_grad, grads), (ref, ref_x_grad, ref_grads) = results
        assert torch.allclose(out, ref, atol=tol, rtol=0)
        assert torch.allclose(x_grad, ref_x_grad, atol=tol, rtol=0)
        assert grads.keys() == ref_grads.keys() and len(grads) > 0
        for name, grad in grads.items():
            assert torch.allclose(grad, ref_grads[name], atol=tol, rtol=0), name


def test_vtlp_moves_a_tone_by_the_warp_factor_in_training_only():
    """vtlp_warp stretches the spectrum: a 1 kHz tone warped by 1.2 peaks in the mel band of 1.2 kHz;
    eval mode and vtlp_warp 0 give the plain features."""
    from csst_espnet.frontend.whisper import WhisperLogMel

    t = torch.arange(16000) / 16000
    tone = lambda hz: torch.sin(2 * torch.pi * hz * t)[None]  # noqa: E731
    lengths = torch.tensor([16000])
    plain = WhisperLogMel()
    warped = WhisperLogMel(vtlp_warp=0.2)
    band = lambda feats: feats[0, 10:-10].mean(0).argmax().item()  # noqa: E731
    with torch.no_grad():
        fb = warped.warped_fbank(torch.tensor([1.2, 1.0]))
        assert torch.allclose(fb[1], plain.mel_fbank)
        power = torch.stft(tone(1000.0), 400, 160, window=torch.hann_window(400), return_complex=True).abs() ** 2
        assert (power[0].mean(1) @ fb[0]).argmax().item() == band(plain(tone(1200.0), lengths)[0])
        assert torch.equal(warped.eval()(tone(1000.0), lengths)[0], plain(tone(1000.0), lengths)[0])
        torch.manual_seed(0)
        trained = [band(warped.train()(tone(1000.0), lengths)[0]) for _ in range(20)]
    assert len(set(trained)) > 2 and band(plain(tone(1000.0), lengths)[0]) in range(min(trained), max(trained) + 1)
    with pytest.raises(ValueError, match="vtlp_warp"):
        WhisperLogMel(vtlp_warp=0.7)


def test_model_builds_from_default_options(tiny_llm, tiny_whisper):
    """Only the pretrained paths are needed; every other option has a working default."""
    from csst_espnet.models.espnet_model import ESPnetCSSTModel
    from csst_espnet.tasks.csst import CSSTTask

    args = CSSTTask.get_parser().parse_args(
        ["--llm_conf", f"model_name_or_path={tiny_llm}", "--encoder_conf", f"model_name_or_path={tiny_whisper}",
         "--frontend_conf", "n_mels=80"]
    )
    assert isinstance(CSSTTask.build_model(args), ESPnetCSSTModel)


def test_moe_projector_with_routing_losses_trains_in_the_model(tiny_llm, tiny_whisper):
    """projector: moe with lang + balance + z-loss: the total loss falls and routing stats are reported."""
    from csst_espnet.tasks.csst import CSSTTask

    torch.manual_seed(0)
    args = CSSTTask.get_parser().parse_args(
        ["--llm_conf", f"model_name_or_path={tiny_llm}", "--encoder_conf", f"model_name_or_path={tiny_whisper}",
         "--frontend_conf", "n_mels=80", "--projector", "moe",
         "--projector_conf", "{groups: [zh, en], experts_per_group: 2, top_k: 2, downsample_rate: 2, expert_hidden: 32}",
         "--aux_losses", "[{name: lang, weight: 0.5}, {name: balance, weight: 0.1}, {name: z_loss, weight: 0.001}]"]
    )
    model = CSSTTask.build_model(args)
    pre = CSSTTask.build_preprocess_fn(args, train=True)
    from csst_espnet.data.collate import PadCollate

    items = [(f"u{i}", pre(f"u{i}", {"speech": synth_utterance(i, 0.4), "text": SENTENCES[i],
                                     "lang": "zh" if i % 2 else "en"})) for i in range(4)]
    batch = PadCollate()(items)[1]
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(15):
        loss, stats, _ = model(**batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"loss_lang", "loss_balance", "loss_z_loss", "lang_route_acc_zh", "balance_load_e0"} <= set(stats)


def test_specaug_masks_features_in_training_only(tiny_llm, tiny_whisper):
    """--specaug specaug (ESPnet's SpecAugment) changes the encoder input in train mode, never in eval."""
    from csst_espnet.tasks.csst import CSSTTask
    from train_utils import tiny_model_args

    args = tiny_model_args(tiny_llm, tiny_whisper)
    plain = CSSTTask.build_model(args)
    args.specaug, args.specaug_conf = "specaug", dict(
        apply_time_warp=False, apply_freq_mask=True, freq_mask_width_range=[10, 20], num_freq_mask=2,
        apply_time_mask=False)
    model = CSSTTask.build_model(args)
    model.load_state_dict(plain.state_dict(), strict=False)
    speech = torch.from_numpy(synth_utterance(0, 0.6))[None]
    lengths = torch.tensor([speech.size(1)])
    seen = []
    model.encoder.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].clone()))
    plain.encoder.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].clone()))
    model.eval(), plain.eval()
    model.encode_frames(speech, lengths), plain.encode_frames(speech, lengths)
    assert torch.equal(seen[0], seen[1])
    model.train(), plain.train()
    model.encode_frames(speech, lengths), plain.encode_frames(speech, lengths)
    masked_bins = (seen[2] != seen[3]).any(dim=1).sum()  # (B, T, F): mel bins changed anywhere
    assert 10 <= int(masked_bins) <= 40
