"""Waveform augmentation (csst_espnet.data.augment) and the robustness condition copies of a data
directory (csst_espnet.data.condition_dir)."""

import numpy as np
import pytest
import soundfile

from csst_espnet.data import augment, kaldi_dir as kd
from csst_espnet.data.condition_dir import condition_dir

FS = 16000


def _speech_like(n, seed):
    """A harmonic signal with a syllable-rate envelope: energy below 3 kHz, silences between bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    f0 = rng.uniform(100, 200)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (0.3 * x * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)).astype(np.float32)


def _power(x):
    return float(np.mean(np.square(x.astype(np.float64))))


def _band_power(x, lo, hi):
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_add_noise_reaches_the_snr():
    rng = np.random.default_rng(0)
    x = _speech_like(FS, 1)
    for snr in (0.0, 10.0, 17.5):
        noise = augment.coloured_noise(len(x), 1.0, rng)
        y = augment.add_noise(x, noise, snr)
        assert len(y) == len(x)
        assert 10 * np.log10(_power(x) / _power(y - x)) == pytest.approx(snr, abs=1e-3)


def test_coloured_noise_slope_and_babble():
    rng = np.random.default_rng(0)
    white, brown = augment.coloured_noise(FS, 0.0, rng), augment.coloured_noise(FS, 2.0, rng)
    assert np.std(white) == pytest.approx(1.0, rel=1e-3)
    low_share = lambda x: _band_power(x, 0, 500) / _band_power(x, 0, FS / 2)
    assert low_share(white) < 0.1 < 0.9 < low_share(brown)
    pool = [_speech_like(FS // 2, s) for s in range(5)]
    b = augment.babble(pool, 3 * FS, 4, rng)
    assert len(b) == 3 * FS and np.std(b) == pytest.approx(1.0, rel=1e-3)


def test_telephone_band_and_mu_law():
    x = augment.coloured_noise(2 * FS, 0.0, np.random.default_rng(0)) * 0.1
    y = augment.telephone(x)
    assert len(y) == len(x)
    in_band = _band_power(y, 300, 3400)
    assert _band_power(y, 4000, 8000) < 1e-3 * in_band and _band_power(y, 0, 150) < 0.02 * in_band
    levels = augment.mu_law(np.linspace(-1, 1, 10001))
    assert len(np.unique(np.round(levels, 9))) <= 256


def test_room_impulse_responses_and_reverb():
    rirs = augment.room_impulse_responses(3, seed=5)
    again = augment.room_impulse_responses(3, seed=5)
    other = augment.room_impulse_responses(3, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(rirs, again))
    assert not np.array_equal(rirs[0], other[0])
    for r in rirs:
        assert np.argmax(np.abs(r)) == 0 and np.sum(r.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
        assert len(r) > FS // 20  # a tail of at least 50 ms
    x = _speech_like(FS, 2)
    y = augment.reverberate(x, rirs[0])
    assert len(y) == len(x) and np.std(y) == pytest.approx(np.std(x), rel=1e-4)
    lags = [float(np.dot(x[: len(x) - k], y[k:])) for k in range(0, 400, 20)]
    assert int(np.argmax(lags)) == 0  # the direct path is not delayed: frame alignments stay valid


def test_conditions_parse_and_apply():
    assert augment.parse_condition("reverb+snr-5+telephone") == [("reverb", None), ("snr", -5.0), ("telephone", None)]
    with pytest.raises(ValueError, match="unknown condition 'noisy' in 'reverb\\+noisy'"):
        augment.parse_condition("reverb+noisy")
    x = _speech_like(FS, 3)
    with pytest.raises(ValueError, match="needs room impulse responses"):
        augment.apply_condition(x, "reverb", np.random.default_rng(0))
    y = augment.apply_condition(x, "snr20", np.random.default_rng(0), pool=[_speech_like(FS, 4)])
    assert 10 * np.log10(_power(x) / _power(y - x)) == pytest.approx(20.0, abs=1e-3)


def test_augmenter_draws():
    x = _speech_like(FS, 3)
    assert augment.Augmenter(prob=0.0)(x) is x
    aug = augment.Augmenter(prob=1.0, reverb_prob=0.0, telephone_prob=0.0, snr=(5.0, 5.0), seed=1)
    y = aug(x)
    assert 10 * np.log10(_power(x) / _power(y - x)) == pytest.approx(5.0, abs=0.06)  # "snr5.0" as written
    assert len(aug.pool) == 1
    a, b = augment.Augmenter(prob=0.7, seed=3), augment.Augmenter(prob=0.7, seed=3)
    drawn = [a.conditions() for _ in range(200)]
    assert drawn == [b.conditions() for _ in range(200)]
    clean = sum(c == "" for c in drawn)
    assert 30 < clean < 90  # about 30 % clean
    assert any("reverb" in c for c in drawn) and any("telephone" in c for c in drawn)
    assert all(c == "" or "snr" in c or "reverb" in c or "telephone" in c for c in drawn)
    with pytest.raises(ValueError, match="augment_conf: noise_prob must be in"):
        augment.Augmenter(noise_prob=1.5)


def _data_dir(path, n=5):
    wavs, texts, lang_ali, phone_ali, utt2spk = {}, {}, {}, {}, {}
    (path / "wav").mkdir(parents=True)
    for i in range(n):
        utt = f"spk{i % 2}-utt{i}"
        x = _speech_like(FS + 1600 * i, i)
        wavs[utt] = str(path / "wav" / f"{utt}.wav")
        soundfile.write(wavs[utt], x, FS, subtype="PCM_16")
        texts[utt] = f"sentence {i}"
        frames = kd.ali_num_frames(len(x), FS)
        lang_ali[utt] = " ".join(["zh"] * frames)
        phone_ali[utt] = " ".join(["0"] + [str(3 + i)] * (frames - 2) + ["0"])  # silence, phone 3 + i, silence
        utt2spk[utt] = f"spk{i % 2}"
    d = kd.DataDir()
    d.utt.update({"wav.scp": wavs, "text": texts, "text.2": texts, "utt2spk": utt2spk, kd.LANG_ALI: lang_ali,
                  kd.PHONE_ALI: phone_ali,
                  "src_text": {u: "句子 很好" for u in wavs}, kd.WORD_LANG: {u: "zh zh" for u in wavs},
                  "utt2lang": {u: "zh" if i % 2 else "cs" for i, u in enumerate(wavs)},
                  "utt2task": {u: "st" for u in wavs}})
    d.write(str(path))
    return d


def test_condition_dir_noise_and_long(tmp_path):
    src = tmp_path / "test"
    d = _data_dir(src)
    counts = condition_dir(str(src), str(tmp_path / "test_snr10"), "snr10", seed=0, progress=False)
    assert counts == {"utterances": 5, "written": 5}
    out = kd.DataDir.read(str(tmp_path / "test_snr10"))
    assert out.utt["text"] == {f"{u}-snr10": t for u, t in d.utt["text"].items()}
    for name in (kd.LANG_ALI, kd.WORD_LANG):
        assert out.utt[name] == {f"{u}-snr10": t for u, t in d.utt[name].items()}
    for u, p in d.utt["wav.scp"].items():
        x, _ = soundfile.read(p, dtype="float32")
        y, _ = soundfile.read(out.utt["wav.scp"][f"{u}-snr10"], dtype="float32")
        assert len(y) == len(x)
        assert 10 * np.log10(_power(x) / _power(y - x)) == pytest.approx(10.0, abs=0.1)
    assert kd.validate(str(tmp_path / "test_snr10"), fs=FS, progress=False).ok
    # the same seed, the same copy; another seed, other noise
    condition_dir(str(src), str(tmp_path / "again"), "snr10", seed=0, progress=False)
    condition_dir(str(src), str(tmp_path / "other"), "snr10", seed=1, progress=False)
    read = lambda p: soundfile.read(str(tmp_path / p / "wav" / "spk0-utt0-snr10.wav"))[0]
    assert np.array_equal(read("test_snr10"), read("again")) and not np.array_equal(read("test_snr10"), read("other"))

    condition_dir(str(src), str(tmp_path / "test_long"), "long", progress=False)
    long = kd.DataDir.read(str(tmp_path / "test_long"))
    ids = d.utt_ids()
    assert list(long.utt["text"]) == [f"{ids[0]}-long", f"{ids[2]}-long"]  # 5 utterances: 2 + 3
    assert long.utt["text"][f"{ids[2]}-long"] == " ".join(d.utt["text"][u] for u in ids[2:])
    assert long.utt[kd.WORD_LANG][f"{ids[2]}-long"] == "zh zh zh zh zh zh"  # one label per src_text word
    assert long.utt["utt2lang"] == {f"{ids[0]}-long": "cs", f"{ids[2]}-long": "cs"}  # cs + zh -> cs
    # frame alignments joined: 0.3 s pause = 30 frames, unlabelled language, the preceding (silence) phone
    gap = kd.ali_num_frames(int(0.3 * FS), FS)
    assert long.utt[kd.LANG_ALI][f"{ids[0]}-long"].split() == \
        d.utt[kd.LANG_ALI][ids[0]].split() + [kd.UNLABELLED_FRAME] * gap + d.utt[kd.LANG_ALI][ids[1]].split()
    assert long.utt[kd.PHONE_ALI][f"{ids[0]}-long"].split() == \
        d.utt[kd.PHONE_ALI][ids[0]].split() + ["0"] * gap + d.utt[kd.PHONE_ALI][ids[1]].split()
    assert len(long.utt[kd.PHONE_ALI][f"{ids[2]}-long"].split()) == kd.ali_num_frames(
        int(long.utt["utt2num_samples"][f"{ids[2]}-long"]), FS)
    assert kd.validate(str(tmp_path / "test_long"), fs=FS, progress=False).ok


def test_condition_dir_errors(tmp_path):
    src = tmp_path / "test"
    d = _data_dir(src, n=3)
    with pytest.raises(ValueError, match="unknown condition 'loud'"):
        condition_dir(str(src), str(tmp_path / "x"), "snr10+loud", progress=False)
    bad = d.utt_ids()[1]
    (src / "wav" / f"{bad}.wav").unlink()
    with pytest.raises(RuntimeError, match=f"utterance {bad}: cannot read its audio"):
        condition_dir(str(src), str(tmp_path / "y"), "telephone", progress=False)
