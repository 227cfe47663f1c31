"""Speech-side warm-up epochs (model_conf.speech_warmup_epochs): encoder and projector train on the
auxiliary losses alone, without running the LLM; the trainer switches by epoch."""

import re

import pytest
import torch

from conftest import SENTENCES, synth_utterance
from train_utils import epoch_stats, tiny_config, train

MOE = "{groups: [zh, en], experts_per_group: 2, top_k: 1, downsample_rate: 2, expert_hidden: 32}"
ROUTING = "[{name: lang, weight: 0.5}, {name: balance, weight: 0.1}]"


def _model(tiny_llm, tiny_whisper, aux_losses=ROUTING):
    from csst_espnet.tasks.csst import CSSTTask

    args = CSSTTask.get_parser().parse_args([
        "--llm_conf", f"{{model_name_or_path: {tiny_llm}, lora: {{r: 4, alpha: 8}}}}",
        "--encoder_conf", f"{{model_name_or_path: {tiny_whisper}, freeze: false}}",
        "--frontend_conf", "n_mels=80", "--projector", "moe", "--projector_conf", MOE,
        "--languages", "[zh, en, cs]", "--aux_losses", aux_losses,
        "--model_conf", "speech_warmup_epochs=1",
    ])
    torch.manual_seed(0)
    return CSSTTask.build_model(args), CSSTTask.build_preprocess_fn(args, train=True)


def _batch(pre):
    from csst_espnet.data.collate import PadCollate

    items = [(f"u{i}", pre(f"u{i}", {"speech": synth_utterance(i, 0.4), "text": SENTENCES[i],
                                     "lang": "zh" if i % 2 else "en"})) for i in range(4)]
    return PadCollate()(items)[1]


def test_warmup_epoch_trains_the_speech_side_without_running_the_llm(tiny_llm, tiny_whisper):
    model, pre = _model(tiny_llm, tiny_whisper)
    batch = _batch(pre)

    def llm_must_not_run(*args, **kwargs):
        raise AssertionError("the LLM ran in a warm-up epoch")

    full_forward = model.llm.forward
    model.llm.forward = llm_must_not_run
    model.train().set_epoch(1)
    loss, stats, _ = model(**batch)
    assert "loss_ce" not in stats and "acc" not in stats
    assert loss.item() == pytest.approx(0.5 * stats["loss_lang"].item() + 0.1 * stats["loss_balance"].item(), rel=1e-6)
    loss.backward()
    lora = [p for n, p in model.llm.named_parameters() if p.requires_grad]
    assert lora and all(p.grad is None for p in lora)
    for part in (model.encoder, model.projector):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())

    model.llm.forward = full_forward
    model.eval()  # validation runs the whole model, even in a warm-up epoch
    assert "acc" in model(**batch)[1]
    model.train().set_epoch(2)
    assert "acc" in model(**batch)[1]


@pytest.mark.parametrize("aux_losses, message", [
    ("[]", "needs auxiliary losses"),
    ("[{name: transition, conf: {mode: mixture}}]", "['transition'] read the LLM's outputs"),
])
def test_warmup_refuses_losses_it_cannot_train(tiny_llm, tiny_whisper, aux_losses, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _model(tiny_llm, tiny_whisper, aux_losses=aux_losses)


def test_trainer_runs_warmup_epochs_then_the_whole_model(tmp_path, tiny_llm, tiny_whisper, tiny_data):
    config = tiny_config(
        tiny_llm, tiny_whisper, tiny_data, max_epoch=2, num_iters_per_epoch=3,
        projector="moe", projector_conf={"groups": ["zh", "en"], "experts_per_group": 1, "top_k": 1,
                                         "downsample_rate": 2, "expert_hidden": 32},
        languages=["zh", "en", "cs"], aux_losses=[{"name": "lang", "weight": 0.5}],
        model_conf={"extract_feats_in_collect_stats": False, "speech_warmup_epochs": 1},
    )
    log = train(config, tmp_path / "exp")
    assert "epoch 1: speech-side warm-up (1 of 1)" in log and "epoch 2: speech-side" not in log
    first, second = epoch_stats(log, "train")
    assert "loss_lang" in first and "acc" not in first
    assert "acc" in second and "loss_lang" in second
    assert "acc" in epoch_stats(log, "valid")[0]

    # the trained model loads for decoding (or as a teacher) without its training-only warm-up
    from csst_espnet.tasks.csst import CSSTTask

    model, _ = CSSTTask.build_model_from_file(model_file=str(tmp_path / "exp" / "2epoch.pth"))
    assert model.speech_warmup_epochs == 0 and len(model.aux_losses) == 0
