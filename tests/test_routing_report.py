"""Routing report: the pure aggregation on synthetic aux, the written files, and the batch loop on a
real data dir (read by the decoding loader) with a stand-in model (speech frames -> MoE projector)."""

import json

import numpy as np
import pytest
import soundfile
import torch

from csst_espnet.analysis.routing import (
    aggregate_routing,
    format_markdown,
    read_frame_languages,
    routing_batches,
    token_frame_labels,
    write_report,
)
from csst_espnet.data.collate import PadCollate
from csst_espnet.data.kaldi_dir import read_table
from csst_espnet.inference.batches import data_loader
from csst_espnet.projector.moe import MoESpeechProjector


def synthetic_batches():
    # 2 groups x 2 experts, top-2, 1 layer. Batch 1: zh utt (3 tokens), en utt (2 tokens).
    aux1 = {
        "expert_index": torch.tensor([[[0, 1], [1, 2], [0, 3], [2, 3], [3, 0]]]),
        "token_utt": torch.tensor([0, 0, 0, 1, 1]),
    }
    # Batch 2: a cs utt (2 tokens) and another zh utt (1 token).
    aux2 = {"expert_index": torch.tensor([[[2, 0], [1, 3], [1, 0]]]), "token_utt": torch.tensor([0, 0, 1])}
    return [(aux1, ["zh", "en"]), (aux2, ["cs", "zh"])]


def test_aggregation_counts_by_hand():
    report = aggregate_routing(synthetic_batches(), ["zh", "en"], 2)
    assert report["experts"] == ["zh.0", "zh.1", "en.0", "en.1"]
    assert list(report["languages"]) == ["zh", "en", "cs"]  # groups first, then the rest
    zh = report["languages"]["zh"]
    assert zh["utterances"] == 2 and zh["tokens"] == 4
    # zh dispatches: [0,1],[1,2],[0,3] + [1,0] -> e0: 3, e1: 3, e2: 1, e3: 1 of 8
    layer = zh["layers"][0]
    assert layer["dispatches"] == [3, 3, 1, 1]
    assert layer["expert_share"] == pytest.approx([3 / 8, 3 / 8, 1 / 8, 1 / 8])
    assert layer["group_share"] == pytest.approx({"zh": 6 / 8, "en": 2 / 8})
    assert layer["top1_group_share"] == pytest.approx({"zh": 1.0, "en": 0.0})  # top-1: 0, 1, 0, 1
    en = report["languages"]["en"]["layers"][0]
    assert en["dispatches"] == [1, 0, 1, 2] and en["top1_group_share"] == pytest.approx({"zh": 0.0, "en": 1.0})
    cs = report["languages"]["cs"]["layers"][0]
    assert cs["dispatches"] == [1, 1, 1, 1] and cs["top1_group_share"] == pytest.approx({"zh": 0.5, "en": 0.5})


def test_aggregation_by_token_labels():
    # the tokens of batch 1 labelled one by one; None leaves a token out
    aux1 = synthetic_batches()[0][0]
    labels = ["zh/zh", None, "cs/en", "cs/en", "zh/zh"]
    report = aggregate_routing([(aux1, ["zh", "en"], labels)], ["zh", "en"], 2)
    assert list(report["languages"]) == ["cs/en", "zh/zh"]
    en = report["languages"]["cs/en"]
    assert en["tokens"] == 2 and en["utterances"] == 2  # token 2 of row 0, token 3 of row 1
    assert en["layers"][0]["dispatches"] == [1, 0, 1, 2]  # [0, 3] + [2, 3]
    zh = report["languages"]["zh/zh"]
    assert zh["tokens"] == 2 and zh["utterances"] == 2 and zh["layers"][0]["dispatches"] == [2, 1, 0, 1]


def test_token_frame_labels_follow_the_phone_alignment(tmp_path):
    (tmp_path / "phones.txt").write_text("sil 0\nen:a 1\nzh:b 2\n", encoding="utf-8")
    # 16 phone_ali frames read by 8 encoder frames (every other one), 2 encoder frames per token:
    # en en | sil sil | zh zh | en zh
    (tmp_path / "phone_ali").write_text("u1 1 1 1 1 0 0 0 0 2 2 2 2 1 1 2 2\n", encoding="utf-8")
    languages, frame_langs = read_frame_languages(str(tmp_path / "phone_ali"), str(tmp_path / "phones.txt"))
    assert languages == ["en", "zh"] and frame_langs["u1"][:6].tolist() == [0, 0, 0, 0, -1, -1]

    def labels(rate, tokens):
        projector = MoESpeechProjector(4, 4, experts_per_group=1, top_k=1, downsample_rate=rate, expert_hidden=4)
        aux = {"token_utt": torch.zeros(tokens, dtype=torch.long), "token_pos": torch.arange(tokens)}
        return token_frame_labels(aux, projector, [frame_langs["u1"]], languages, ["cs"], torch.tensor([8]), 8)

    assert labels(2, 4) == ["cs/en", None, "cs/zh", None]  # silence only, then a switch: left out
    assert labels(4, 2) == ["cs/en", None]  # silence beside one language does not hide it

    (tmp_path / "bad_ali").write_text("u2 1 7\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'u2' has phone id 7"):
        read_frame_languages(str(tmp_path / "bad_ali"), str(tmp_path / "phones.txt"))


def test_written_report(tmp_path):
    report = aggregate_routing(synthetic_batches(), ["zh", "en"], 2)
    paths = write_report(report, str(tmp_path / "routing"))
    assert json.loads(open(paths["json"]).read())["languages"]["en"]["tokens"] == 2
    markdown = open(paths["markdown"]).read()
    assert markdown == format_markdown(report)
    assert "| zh | 2 | 4 | 0.750 | 0.250 | 1.000 | 0.000 |" in markdown
    assert "| language | zh.0 | zh.1 | en.0 | en.1 |" in markdown
    assert open(paths["heatmap"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


class FramesToProjector(torch.nn.Module):
    """Stand-in for the model: waveform -> 160-sample frames (``encode_frames``) -> MoE projector."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.projector = MoESpeechProjector(
            160,
            16,
            groups=["zh", "en"],
            experts_per_group=2,
            top_k=2,
            num_layers=2,
            downsample_rate=4,
            expert_hidden=16,
        )

    def encode_frames(self, speech, speech_lengths):
        frames = speech[:, : speech.size(1) // 160 * 160].reshape(speech.size(0), -1, 160)
        return frames, torch.div(speech_lengths, 160, rounding_mode="floor")


def test_batches_from_a_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    utts = {"spk1-a": ("zh", 3200), "spk1-b": ("en", 4800), "spk2-c": ("cs", 6400)}
    (tmp_path / "wav.scp").write_text(
        "".join(f"{u} {tmp_path / (u + '.wav')}\n" for u in sorted(utts)), encoding="utf-8"
    )
    (tmp_path / "utt2lang").write_text(
        "".join(f"{u} {lang}\n" for u, (lang, _) in sorted(utts.items())), encoding="utf-8"
    )
    for u, (_, n) in utts.items():
        soundfile.write(tmp_path / f"{u}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)

    # read and batched as for decoding: ESPnet's loader, here without a preprocessor (no tokenizer)
    loader = data_loader([(str(tmp_path / "wav.scp"), "speech", "sound")], None, PadCollate(), 2, num_workers=0)
    assert [(keys, batch["speech_lengths"].tolist()) for keys, batch in loader] == [
        (["spk1-a", "spk1-b"], [3200, 4800]),
        (["spk2-c"], [6400]),
    ]
    model = FramesToProjector().eval()
    batches = routing_batches(model, loader, read_table(str(tmp_path / "utt2lang")), len(utts))
    report = aggregate_routing(batches, model.projector.groups, model.projector.experts_per_group)
    assert report["num_layers"] == 2
    for u, (lang, n) in utts.items():
        info = report["languages"][lang]
        assert info["tokens"] == -(-(n // 160) // 4)  # ceil(frames / 4)
        for layer in info["layers"]:
            assert sum(layer["dispatches"]) == 2 * info["tokens"]
            assert sum(layer["group_share"].values()) == pytest.approx(1.0)


def test_end_to_end_with_the_task(tmp_path, request):
    """config.yaml + model file of a (freshly initialised) MoE model -> the report, via the CLI."""
    import yaml

    # The conftest's session models, built here (if not built yet) under the one-thread fixture:
    # on a busy machine, tiny-model work with several OpenMP threads is many times slower.
    tiny_llm, tiny_whisper, tiny_data = (
        request.getfixturevalue(n) for n in ("tiny_llm", "tiny_whisper", "tiny_data")
    )

    from csst_espnet.bin import routing_report
    from csst_espnet.tasks.csst import CSSTTask

    conf = {
        "encoder_conf": {"model_name_or_path": str(tiny_whisper)},
        "projector": "moe",
        "projector_conf": {
            "groups": ["zh", "en"],
            "experts_per_group": 2,
            "top_k": 2,
            "downsample_rate": 2,
            "expert_hidden": 32,
        },
        "llm_conf": {"model_name_or_path": str(tiny_llm)},
        "model_conf": {"extract_feats_in_collect_stats": False},
        "aux_losses": [{"name": "lang", "weight": 0.1}, {"name": "balance", "weight": 0.01}],
    }
    (tmp_path / "in.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    args = CSSTTask.get_parser().parse_args(["--config", str(tmp_path / "in.yaml"), "--output_dir", str(tmp_path)])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vars(args)), encoding="utf-8")
    model = CSSTTask.build_model(args)
    torch.save(model.state_dict(), tmp_path / "model.pth")

    def run(out, batch_size):
        return routing_report.main(
            [
                "--config",
                str(tmp_path / "config.yaml"),
                "--model_file",
                str(tmp_path / "model.pth"),
                "--data_dir",
                str(tiny_data),
                "--output_dir",
                str(out),
                "--batch_size",
                str(batch_size),
            ]
        )

    out = tmp_path / "routing"
    report = run(out, 4)
    langs = {line.split()[1] for line in (tiny_data / "utt2lang").read_text().splitlines()}
    assert set(report["languages"]) == langs
    assert sum(info["utterances"] for info in report["languages"].values()) == 6
    for name in ("routing.json", "routing.md", "routing_heatmap.png"):
        assert (out / name).stat().st_size > 0
    # padding is masked (frontend and encoder): a token is routed alike alone and in a padded batch
    alone = run(tmp_path / "routing_alone", 1)
    assert alone["languages"] == report["languages"]
