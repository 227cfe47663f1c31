"""Frame language labels (``lang_ali``): preprocessing, and the token labels of the routing losses."""

import math

import pytest
import torch

from conftest import SENTENCES, synth_utterance, write_data_dir
from csst_espnet.data.collate import PadCollate
from csst_espnet.tasks.csst import CSSTTask
from train_utils import data_triples, epoch_stats, tiny_config, tiny_model_args, train

LANGUAGES = ("zh", "en", "cs")


def test_preprocessor_maps_codes_to_language_indices(tiny_llm):
    from csst_espnet.text.preprocessor import build_preprocessor

    pre = build_preprocessor(str(tiny_llm), ["en", "zh", "cs"])  # indices follow --languages, not the file
    wav = synth_utterance(0)
    out = pre("spk1-u1", {"speech": wav, "text": "x", "lang": "cs", "lang_ali": "- zh zh en -"})
    assert out["lang_ali"].tolist() == [-1, 1, 1, 0, -1] and out["lang_ali"].dtype.name == "int64"
    with pytest.raises(ValueError, match=r"utterance 'spk1-u2': lang_ali frame 2 has language code 'fr'"):
        pre("spk1-u2", {"speech": wav, "text": "x", "lang_ali": "zh zh fr"})
    with pytest.raises(ValueError, match=r"utterance 'spk1-u3': lang_ali frame 0 has language code 'cs'"):
        pre("spk1-u3", {"speech": wav, "text": "x", "lang_ali": "cs"})  # code-switch is no frame language


def _moe_model(tiny_llm, tiny_whisper):
    args = tiny_model_args(tiny_llm, tiny_whisper, languages=LANGUAGES, aux_losses=[{"name": "lang"}])
    args.projector = "moe"
    args.projector_conf = dict(groups=["zh", "en"], experts_per_group=2, top_k=2, downsample_rate=2, expert_hidden=16)
    torch.manual_seed(0)
    return args, CSSTTask.build_model(args).eval()


def test_code_switched_tokens_take_their_frames_language(tiny_llm, tiny_whisper):
    """A cs utterance's tokens get the language loss where their frames have one language; a monolingual
    utterance keeps its utterance label on every token, whatever its frames say."""
    args, model = _moe_model(tiny_llm, tiny_whisper)
    pre = CSSTTask.build_preprocess_fn(args, train=True)
    # 0.6 s: 60 frames of 10 ms; a token is 40 ms (Whisper's 20 ms frames, 2 stacked) = 4 frames
    cs_ali = ["-"] * 10 + ["zh"] * 12 + ["en"] * 38  # tokens: -, -, zh (- and zh), zh, zh, mixed, en ...
    items = [
        ("u0", pre("u0", {"speech": synth_utterance(0, 0.6), "text": SENTENCES[0], "lang": "cs",
                          "lang_ali": " ".join(cs_ali)})),
        ("u1", pre("u1", {"speech": synth_utterance(1, 0.5), "text": SENTENCES[1], "lang": "zh",
                          "lang_ali": " ".join(["en"] * 50)})),
    ]
    batch = PadCollate()(items)[1]
    with torch.no_grad():
        _, stats, _ = model(**batch)
        aux, _ = model.speech_side(batch["speech"], batch["speech_lengths"])
    token_utt = aux["token_utt"]
    n0, n1 = int((token_utt == 0).sum()), int((token_utt == 1).sum())
    zh, en = LANGUAGES.index("zh"), LANGUAGES.index("en")
    labels = torch.tensor([-1, -1, zh, zh, zh, -1] + [en] * (n0 - 6) + [zh] * n1)  # zh/en are groups 0/1
    probs = torch.softmax(aux["router_logits"][0], dim=-1)  # (N, 4): experts 0, 1 zh; 2, 3 en
    group_mass = torch.stack([probs[:, :2].sum(-1), probs[:, 2:].sum(-1)], dim=-1)
    labelled = labels >= 0
    expected = -group_mass[labelled].gather(1, labels[labelled, None]).log().mean()
    assert stats["loss_lang"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["lang_frame_labelled"].item() == pytest.approx((n0 - 3) / (n0 - 3 + n1))
    # without frame labels the cs utterance has no label at all
    batch.pop("lang_ali"), batch.pop("lang_ali_lengths")
    with torch.no_grad():
        _, stats, _ = model(**batch)
    only_mono = -group_mass[token_utt == 1, zh].log().mean()
    assert stats["loss_lang"].item() == pytest.approx(only_mono.item(), rel=1e-5)
    assert stats["lang_frame_labelled"].item() == 0.0


def test_without_code_switched_utterances_frame_labels_change_nothing(tiny_llm, tiny_whisper):
    args, model = _moe_model(tiny_llm, tiny_whisper)
    pre = CSSTTask.build_preprocess_fn(args, train=True)
    items = [(f"u{i}", pre(f"u{i}", {"speech": synth_utterance(i, 0.5), "text": SENTENCES[i], "lang": lang,
                                     "lang_ali": " ".join(["-"] * 25 + ["zh"] * 25)}))
             for i, lang in enumerate(["en", "zh"])]
    batch = PadCollate()(items)[1]
    with torch.no_grad():
        _, with_frames, _ = model(**batch)
        batch.pop("lang_ali"), batch.pop("lang_ali_lengths")
        _, without, _ = model(**batch)
    assert with_frames["loss_lang"].item() == without["loss_lang"].item()
    assert with_frames["lang_frame_labelled"].item() == 0.0 and not math.isnan(without["lang_route_acc_en"].item())


def test_projector_without_language_groups_ignores_frame_labels(tiny_llm, tiny_whisper):
    args = tiny_model_args(tiny_llm, tiny_whisper, languages=LANGUAGES)  # MLP projector
    torch.manual_seed(0)
    model = CSSTTask.build_model(args).eval()
    pre = CSSTTask.build_preprocess_fn(args, train=True)
    batch = PadCollate()([("u0", pre("u0", {"speech": synth_utterance(0, 0.5), "text": SENTENCES[0], "lang": "cs",
                                            "lang_ali": " ".join(["zh"] * 50)}))])[1]
    with torch.no_grad():
        loss, _, _ = model(**batch)
        batch.pop("lang_ali"), batch.pop("lang_ali_lengths")
        assert model(**batch)[0].item() == loss.item()


def test_csst_train_reads_lang_ali(tmp_path, tiny_llm, tiny_whisper):
    """csst_train with a lang_ali column: the routing losses report the share of frame-labelled tokens."""
    utts = [(f"spk0-u{i}", synth_utterance(i, 0.5), SENTENCES[i], lang, "st")
            for i, lang in enumerate(["cs", "zh", "cs", "en"])]
    data = write_data_dir(tmp_path / "data", utts)
    codes = " ".join(["-"] * 10 + ["zh"] * 20 + ["en"] * 20)  # 0.5 s: 50 frames
    (data / "lang_ali").write_text("".join(f"{u} {codes}\n" for u, *_ in sorted(utts)))
    triples = data_triples(data) + [[str(data / "lang_ali"), "lang_ali", "text"]]
    config = tiny_config(
        tiny_llm, tiny_whisper, data, max_epoch=1, num_iters_per_epoch=2, batch_size=4, languages=list(LANGUAGES),
        projector="moe", projector_conf={"groups": ["zh", "en"], "experts_per_group": 1, "top_k": 1,
                                         "downsample_rate": 2, "expert_hidden": 16},
        aux_losses=[{"name": "lang", "weight": 0.5}],
        train_data_path_and_name_and_type=triples, valid_data_path_and_name_and_type=triples,
    )
    (stats,) = epoch_stats(train(config, tmp_path / "exp"), "valid")
    # 13 tokens of 40 ms per utterance; a cs one labels 10 by its frames (tokens 0, 1: silence, 7: zh|en)
    assert stats["lang_frame_labelled"] == pytest.approx(20 / (20 + 26), abs=1e-3)
