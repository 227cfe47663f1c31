"""End to end through ESPnet's trainer: overfit, checkpoints without the frozen LLM, decoding."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SENTENCES
from train_utils import epoch_stats, run_module, tiny_config, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llm, tiny_whisper, tiny_data):
    """Train the tiny model on six utterances until it memorises them."""
    exp = tmp_path_factory.mktemp("exp") / "st"
    log = train(tiny_config(tiny_llm, tiny_whisper, tiny_data), exp)
    return exp, log


def test_overfits_handful_of_utterances(trained):
    exp, log = trained
    valid = epoch_stats(log, "valid")
    assert len(valid) == 3, log[-2000:]
    # CE on the memorised targets falls below 0.15 (the untrained model is far above: see
    # test_checkpoint_excludes_frozen_llm_and_reloads) and every target token is predicted.
    assert valid[-1]["loss_ce"] < 0.15, valid
    assert valid[-1]["acc"] > 0.99, valid
    assert valid[0]["loss_ce"] > valid[-1]["loss_ce"]


def test_greedy_decoding_reproduces_targets(trained, tiny_data, tmp_path):
    exp, _ = trained
    out = tmp_path / "decode"
    args = [
        "--st_train_config", str(exp / "config.yaml"),
        "--st_model_file", str(exp / "valid.acc.ave.pth"),
        "--output_dir", str(out),
        "--data_path_and_name_and_type", f"{tiny_data}/wav.scp,speech,sound",
        "--data_path_and_name_and_type", f"{tiny_data}/utt2lang,lang,text",
        "--data_path_and_name_and_type", f"{tiny_data}/utt2task,task,text",
        "--batch_size", "4",
        # the tiny utterances say 6-14 tokens in 0.4-0.9 s: faster than the default length guard allows
        "--max_tokens_per_second", "30",
    ]
    run_module("csst_espnet.bin.csst_inference", args)
    assert (out / "DONE").exists()
    # a rerun (a job array restarted after another shard failed) keeps a finished shard
    finished = (out / "1best_recog" / "text").stat().st_mtime_ns
    assert "already decoded with this model, data and options: kept" in run_module("csst_espnet.bin.csst_inference", args)
    assert (out / "1best_recog" / "text").stat().st_mtime_ns == finished
    refs = dict(line.split(" ", 1) for line in (tiny_data / "text").read_text().splitlines())
    hyps = dict(line.split(" ", 1) if " " in line else (line, "") for line in
                (out / "1best_recog" / "text").read_text().splitlines())
    assert hyps == refs
    for name in ("token", "token_int", "score", "confidence", "guard"):
        assert len((out / "1best_recog" / name).read_text().splitlines()) == len(refs)
    assert set(_table(out / "1best_recog" / "guard").values()) == {"none"}


def test_checkpoint_excludes_frozen_llm_and_reloads(trained, tiny_llm, tiny_data):
    from csst_espnet.tasks.csst import CSSTTask

    exp, _ = trained
    llm_bytes = (Path(tiny_llm) / "model.safetensors").stat().st_size
    for name in ("3epoch.pth", "valid.acc.ave.pth"):
        assert (exp / name).stat().st_size < llm_bytes / 4, (name, llm_bytes)
    # checkpoint.pth also holds Adam's two moments of every trained parameter
    assert (exp / "checkpoint.pth").stat().st_size < llm_bytes / 2
    saved = torch.load(exp / "3epoch.pth", map_location="cpu")
    assert not any(k.endswith("embed_tokens.weight") or ".lm_head." in k for k in saved)
    assert any("lora_A" in k for k in saved) and any(k.startswith("projector.") for k in saved)

    model, args = CSSTTask.build_model_from_file(exp / "config.yaml", exp / "3epoch.pth")
    torch.manual_seed(0)  # the untrained model's projector: the same whatever ran before
    fresh, _ = CSSTTask.build_model_from_file(exp / "config.yaml")
    resumed, _ = CSSTTask.build_model_from_file(exp / "config.yaml")
    state = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["model"]
    resumed.load_state_dict(state, strict=True)  # as ESPnet's --resume does

    batch = _batch(args, tiny_data)
    losses = [m.eval()(**batch)[0].item() for m in (model, resumed, fresh)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    # trained << untrained (the tiny LLM knows the few sentences even without the speech: not much above 0.5)
    assert losses[0] < 0.15 and losses[2] > 4 * losses[0], losses


def test_batched_decoding_equals_one_by_one(trained, tiny_data, tmp_path):
    """Length-sorted batches (batch_bins) give the hypotheses of one-by-one decoding, written in the
    order of wav.scp."""
    from csst_espnet.inference.batches import sorted_batches, speech_lengths
    from csst_espnet.inference.decode_dir import decode_dir
    from csst_espnet.inference.speech2text import Speech2Text

    exp, _ = trained
    data = [(f"{tiny_data}/wav.scp", "speech", "sound"), (f"{tiny_data}/utt2lang", "lang", "text"),
            (f"{tiny_data}/utt2task", "task", "text")]
    keys = [line.split()[0] for line in (tiny_data / "wav.scp").read_text().splitlines()]
    lengths = speech_lengths(data)
    batches = sorted_batches(lengths, batch_size=4, batch_bins=3 * lengths[keys[-1]])
    assert [len(b) for b in batches] == [3, 3]  # longest first, three of the longest fit the budget
    assert batches[0][0] == keys[-1] and sum(batches, []) != keys
    for beam in (1, 3):
        s2t = Speech2Text.from_exp_dir(exp, beam_size=beam)
        out = {}
        for name, size, bins in (("batched", 4, 3 * lengths[keys[-1]]), ("single", 1, 0)):
            decode_dir(s2t, data, str(tmp_path / f"{name}{beam}"), batch_size=size, batch_bins=bins)
            out[name] = {f: _table(tmp_path / f"{name}{beam}" / "1best_recog" / f)
                         for f in ("text", "token_int", "guard", "score", "confidence")}
        for f in ("text", "token_int", "guard"):
            assert list(out["batched"][f].items()) == list(out["single"][f].items()), (beam, f)
        assert list(out["batched"]["text"]) == keys
        for f in ("score", "confidence"):
            assert [float(v) for v in out["batched"][f].values()] == pytest.approx(
                [float(v) for v in out["single"][f].values()], abs=1e-4)
        if beam == 1:
            assert sorted(out["batched"]["text"].values()) == sorted(SENTENCES[:6])


def test_long_form_decoding_joins_the_hypotheses_of_the_pieces(trained, tiny_data):
    """segment_seconds: an utterance longer than it is decoded in its pause-delimited pieces, whose
    hypotheses are joined; a shorter one in the same batch decodes as without it."""
    import soundfile

    from csst_espnet.inference.segment import pause_segments
    from csst_espnet.inference.speech2text import Speech2Text, join_hypotheses

    exp, _ = trained
    wavs = [soundfile.read(w, dtype="float32")[0] for w in sorted((tiny_data / "wav").glob("*.wav"))[:3]]
    joined = np.concatenate([wavs[0], np.zeros(int(0.4 * 16000), dtype=np.float32), wavs[1]])
    seconds = len(joined) / 16000 - 0.1
    pieces = pause_segments(joined, 16000, seconds)
    assert len(pieces) == 2
    plain = Speech2Text.from_exp_dir(exp, max_tokens_per_second=30)
    long_form = Speech2Text.from_exp_dir(exp, max_tokens_per_second=30, segment_seconds=seconds)
    expected = join_hypotheses(plain.batch([joined[a:b] for a, b in pieces]), [0, 0])[0]
    got, short = long_form.batch([joined, wavs[2]])
    assert got.text == expected.text and got.token_int == expected.token_int and " " in got.text
    assert got.confidence == pytest.approx(expected.confidence, abs=1e-4)
    assert got.text != plain.batch([joined])[0].text  # the cut changed what is decoded
    ref_short = plain.batch([wavs[2]])[0]
    assert short.text == ref_short.text and short.confidence == pytest.approx(ref_short.confidence, abs=1e-4)


def test_confidence_is_mean_logprob_of_reference_pass(trained, tiny_data):
    """The untrained model (projector random, LoRA zero) on the test speech: each hypothesis'
    confidence equals the mean log-probability of its tokens and EOS in the model's forward pass."""
    from csst_espnet.inference.speech2text import Speech2Text

    exp, _ = trained
    wavs = sorted(str(w) for w in (tiny_data / "wav").glob("*.wav"))[:3]
    for beam in (1, 2):
        torch.manual_seed(0)  # the untrained projector: the same whatever ran before
        s2t = Speech2Text(exp / "config.yaml", beam_size=beam, max_tokens_per_second=0, max_new_tokens=8)
        hyps = s2t.batch(wavs)
        for wav, hyp in zip(wavs, hyps):
            items = [("u", s2t.preprocess("u", {"speech": s2t.load_audio(wav)}))]
            batch = s2t.collate(items)[1]
            ended = hyp.guard != "length"
            text = torch.tensor([hyp.token_int + [s2t.tokenizer.eos_token_id] * ended])
            logits = s2t.model.target_logits(batch["speech"], batch["speech_lengths"], text, batch["prompt"],
                                             batch["prompt_lengths"])[0]
            ref = logits.log_softmax(-1)[0].gather(1, text[0][:, None])[:, 0]
            assert hyp.confidence == pytest.approx(ref.mean().item(), abs=1e-4), (beam, hyp)
        assert len({round(h.confidence, 3) for h in hyps}) > 1 and max(h.confidence for h in hyps) < 0


def _table(path: Path):
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in path.read_text().splitlines())


def _batch(args, data_dir: Path):
    """Collated training batch of the whole data dir, built by the task's own preprocessing."""
    import soundfile

    from csst_espnet.tasks.csst import CSSTTask

    pre = CSSTTask.build_preprocess_fn(args, train=True)
    lines = lambda name: dict(l.split(" ", 1) for l in (data_dir / name).read_text().splitlines())
    wavs, texts, langs = lines("wav.scp"), lines("text"), lines("utt2lang")
    items = [
        (u, pre(u, {"speech": soundfile.read(wavs[u], dtype="float32")[0], "text": texts[u], "lang": langs[u]}))
        for u in sorted(wavs)
    ]
    return CSSTTask.build_collate_fn(args, train=True)(items)[1]


def test_full_disk_while_writing_hypotheses_is_named_and_resumable(trained, tiny_data, tmp_path, monkeypatch):
    """ENOSPC while writing 1best_recog: an error naming the output; no DONE, so the rerun decodes the
    shard again, and then finishes."""
    import errno

    from espnet2.fileio.datadir_writer import DatadirWriter

    from csst_espnet.inference import decode_dir as dd
    from csst_espnet.inference.speech2text import Speech2Text
    from csst_espnet.utils.files import DiskFullError

    exp, _ = trained
    data = [(f"{tiny_data}/wav.scp", "speech", "sound"), (f"{tiny_data}/utt2lang", "lang", "text"),
            (f"{tiny_data}/utt2task", "task", "text")]
    s2t = Speech2Text.from_exp_dir(exp, max_tokens_per_second=30)
    out = tmp_path / "decode"
    done = {"model": "tiny"}

    real_setitem, lines = DatadirWriter.__setitem__, []

    def fill_disk(writer, key, value):  # the disk fills up after three lines
        lines.append(key)
        if len(lines) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_setitem(writer, key, value)

    monkeypatch.setattr(DatadirWriter, "__setitem__", fill_disk)
    with pytest.raises(DiskFullError) as err:
        dd.decode_dir(s2t, data, str(out), batch_size=6, fingerprint=done)
    assert str(out / "1best_recog") in str(err.value) and "rerun the same command" in str(err.value)
    assert not dd.is_decoded(str(out), done)
    monkeypatch.undo()
    hyps = dd.decode_dir(s2t, data, str(out), batch_size=6, fingerprint=done)
    assert dd.is_decoded(str(out), done)
    assert _table(out / "1best_recog" / "text") == {k: h.text for k, h in hyps.items()}
