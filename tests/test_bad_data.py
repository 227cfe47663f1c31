"""The bad-data matrix: each fault of a data directory, made in a valid directory, is reported by
``data_dir validate`` with its kind, file, line and utterance, and counted in the summary; the same
fault met after validation (a deleted audio file) stops training and decoding naming the utterance."""

import os

import numpy as np
import pytest
import soundfile

from csst_espnet.bin import data_dir as cli
from csst_espnet.data import kaldi_dir as kd
from conftest import build_tokenizer
from test_kaldi_dir import make_dir, set_line

UTT = "spkA-u1"  # the utterance each case breaks (line 1 of every per-utterance file)


def _wav_of(d):
    return kd.read_table(os.path.join(d, "wav.scp"))[UTT]


def _write_bytes(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


def _append(path, text: str):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _truncate(d):
    path = _wav_of(d)
    with open(path, "rb") as f:
        data = f.read()
    _write_bytes(path, data[: len(data) // 2])


def _long_audio(d):
    soundfile.write(_wav_of(d), np.full(32000, 0.1, np.float32), 16000, subtype="PCM_16")
    set_line(os.path.join(d, "utt2dur"), UTT, f"{UTT} 2.0")


def _segments(d):
    """A directory with segments (one recording per utterance); the segment of UTT ends after its audio."""
    wav = kd.read_table(os.path.join(d, "wav.scp"))
    kd.write_table(os.path.join(d, "segments"),
                   {u: f"{u} 0 {5.0 if u == UTT else 0.5}" for u in wav})
    os.remove(os.path.join(d, "utt2dur"))


def _unsorted(d):
    path = os.path.join(d, "utt2task")
    with open(path, encoding="utf-8") as f:
        rows = f.read().splitlines()
    rows[0], rows[1] = rows[1], rows[0]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def _train_dir(d, utts, src_text):
    root = os.path.dirname(d)
    train = make_dir(root, "train", spk_utts=utts)
    if src_text:
        set_line(os.path.join(train, "src_text"), next(iter(utts.values()))[0],
                 f"{next(iter(utts.values()))[0]} 句子 {UTT}")
    return ["--train_dirs", train]


def _word_lang(d):
    """word_lang for every utterance (src_text: a Mandarin word, an id), one label short for UTT."""
    src = kd.read_table(os.path.join(d, "src_text"))
    kd.write_table(os.path.join(d, kd.WORD_LANG), {u: "zh" if u == UTT else "zh en" for u in src})


# name: (make the fault in directory d and return extra CLI options, kind, file, exit status)
CASES = {
    "missing audio file": (lambda d: os.remove(_wav_of(d)), "missing_audio", "wav.scp", 1),
    "unreadable audio": (lambda d: _write_bytes(_wav_of(d), b"RIFF-not-audio"), "unreadable_audio", "wav.scp", 1),
    "truncated audio": (_truncate, "truncated_audio", "wav.scp", 1),
    "zero-length audio": (lambda d: soundfile.write(_wav_of(d), np.zeros(0, np.float32), 16000),
                          "empty_audio", "wav.scp", 1),
    "all-silent audio": (lambda d: soundfile.write(_wav_of(d), np.zeros(16000, np.float32), 16000),
                         "silent_audio", "wav.scp", 1),
    "NaN samples": (lambda d: soundfile.write(_wav_of(d), np.r_[np.full(15999, 0.1), np.nan].astype(np.float32),
                                              16000, subtype="FLOAT"), "non_finite_audio", "wav.scp", 1),
    "inf samples": (lambda d: soundfile.write(_wav_of(d), np.r_[np.full(15999, 0.1), np.inf].astype(np.float32),
                                              16000, subtype="FLOAT"), "non_finite_audio", "wav.scp", 1),
    "wrong sample rate": (lambda d: soundfile.write(_wav_of(d), np.full(8000, 0.1, np.float32), 8000),
                          "sample_rate", "wav.scp", 1),
    "multi-channel audio": (lambda d: soundfile.write(_wav_of(d), np.full((16000, 2), 0.1, np.float32), 16000),
                            "multi_channel", "wav.scp", 1),
    "empty text": (lambda d: set_line(os.path.join(d, "text"), UTT, UTT), "empty_text", "text", 1),
    "whitespace-only text": (lambda d: set_line(os.path.join(d, "text"), UTT, f"{UTT} \t  "), "empty_text", "text", 1),
    "invalid UTF-8": (lambda d: _write_bytes(os.path.join(d, "text"), f"{UTT} caf".encode() + b"\xe9\n"
                                             + open(os.path.join(d, "text"), "rb").read().split(b"\n", 1)[1]),
                      "invalid_utf8", "text", 1),
    "CR line ends (CRLF)": (lambda d: _write_bytes(os.path.join(d, "text"), open(os.path.join(d, "text"), "rb")
                                                   .read().replace(b"\n", b"\r\n")), "control_char", "text", 1),
    "control character": (lambda d: set_line(os.path.join(d, "text"), UTT, f"{UTT} a\x07bell"),
                          "control_char", "text", 1),
    "duplicate id": (lambda d: _append(os.path.join(d, "text"), f"{UTT} another sentence\n"),
                     "duplicate_id", "text", 1),
    "id missing from a file": (lambda d: set_line(os.path.join(d, "utt2lang"), UTT, ""), "missing_id", "utt2lang", 1),
    "unsorted file": (_unsorted, "unsorted", "utt2task", 1),
    "unknown language label": (lambda d: set_line(os.path.join(d, "utt2lang"), UTT, f"{UTT} fr"),
                               "unknown_language", "utt2lang", 1),
    "language label contradicts script": (lambda d: set_line(os.path.join(d, "utt2lang"), UTT, f"{UTT} en"),
                                          "language_script", "src_text", 1),
    "word languages not one per word": (_word_lang, "word_lang", "word_lang", 1),
    "segment beyond the recording": (_segments, "segment_out_of_range", "segments", 1),
    "audio longer than the encoder takes": (lambda d: _long_audio(d) or ["--max_encoder_dur", "1.5"],
                                            "exceeds_encoder", "utt2dur", 1),
    "target longer than the decoder's limit": (
        lambda d: set_line(os.path.join(d, "text"), UTT, f"{UTT} " + "attention layers mix " * 8)
        or ["--max_target_tokens", "20", "--tokenizer", "TOKENIZER"], "target_too_long", "text", 1),
    "test speaker in training": (lambda d: _train_dir(d, {"spkA": ["spkA-u9"]}, False),
                                 "speaker_in_train", "utt2spk", 0),
    "test sentence in training": (lambda d: _train_dir(d, {"spkT": ["spkT-u1"]}, True),
                                  "sentence_in_train", "src_text", 0),
}


# the line an issue names when it is not the utterance's line 1: the repeat, the first line out of
# order, none for an id absent from the file
LINE = {"duplicate_id": 6, "unsorted": 2, "missing_id": "-"}


@pytest.mark.parametrize("case", list(CASES))
def test_each_fault_is_named_with_kind_file_line_and_utterance(case, tmp_path, capsys):
    make_fault, kind, file, status = CASES[case]
    d = make_dir(tmp_path)
    extra = make_fault(d) or []
    if "TOKENIZER" in extra:
        build_tokenizer(tmp_path / "tokenizer")
        extra = [str(tmp_path / "tokenizer") if a == "TOKENIZER" else a for a in extra]
    rc = cli.main(["validate", d, "--languages", "zh,en,cs", "--fs", "16000", "--min_dur", "0.1", *extra])
    out = capsys.readouterr()
    report = out.out + out.err
    assert rc == status, report
    line = next(ln for ln in report.splitlines() if f"utt {UTT}:" in ln and f" {kind}: " in ln)
    assert line.startswith(f"{os.path.join(d, file)}:{LINE.get(kind, 1)}:"), line
    assert f"{kind}=" in report.splitlines()[-1], report  # counted per kind in the summary
    if status == 0:
        assert "warnings: " in report.splitlines()[-1] and kind not in kd.validate(d, progress=False).bad_utts()
    assert kind in kd.ISSUE_KINDS


def test_drop_invalid_drops_the_faulty_utterances_with_their_reasons(tmp_path):
    d = make_dir(tmp_path)
    soundfile.write(_wav_of(d), np.zeros(16000, np.float32), 16000)                   # spkA-u1 silent
    set_line(os.path.join(d, "utt2lang"), "spkB-u1", "spkB-u1 en")                     # script contradiction
    assert cli.main(["validate", d, "--languages", "zh,en,cs"]) == 1
    assert cli.main(["validate", d, "--languages", "zh,en,cs", "--drop_invalid", "true"]) == 0
    dropped = dict(line.split("\t", 1) for line in open(os.path.join(d, "dropped.txt"), encoding="utf-8").read().splitlines())
    assert set(dropped) == {"spkA-u1", "spkB-u1"}
    assert "silent_audio" in dropped["spkA-u1"] and "language_script" in dropped["spkB-u1"]
    assert kd.DataDir.read(d).utt_ids() == ["spkA-u2", "spkA-u3", "spkB-u2"]


def test_wrong_sample_rate_refused_or_resampled(tmp_path, capsys):
    d = make_dir(tmp_path)
    rng = np.random.default_rng(0)
    soundfile.write(_wav_of(d), (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
    assert cli.main(["validate", d, "--fs", "16000"]) == 1
    assert cli.main(["validate", d, "--fs", "16000", "--resample", "true"]) == 0
    assert "resampled 1 recordings to 16000 Hz" in capsys.readouterr().out
    new = _wav_of(d)
    assert new == os.path.join(d, "resampled", f"{UTT}.wav")
    info = soundfile.info(new)
    assert (info.samplerate, info.frames) == (16000, 16000)
    assert kd.validate(d, fs=16000, progress=False).ok


def test_audio_deleted_after_validation_stops_training_and_decoding_naming_the_utterance(tmp_path, caplog):
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    from csst_espnet.inference.batches import data_loader

    d = make_dir(tmp_path)
    assert kd.validate(d, progress=False).ok
    os.remove(kd.read_table(os.path.join(d, "wav.scp"))["spkA-u3"])
    data = [(os.path.join(d, "wav.scp"), "speech", "sound")]
    # decoding (and the routing report): the batch loader
    with pytest.raises(RuntimeError, match=rf"utterance spkA-u3 \({os.path.join(d, 'wav.scp')}:3\)"):
        for _ in data_loader(data, None, CommonCollateFn(), batch_size=2, num_workers=0):
            pass
    # training: ESPnet's dataset logs the utterance before the error stops the run
    with pytest.raises(Exception), caplog.at_level("ERROR"):
        ESPnetDataset(data)["spkA-u3"]
    assert "id=spkA-u3" in caplog.text
