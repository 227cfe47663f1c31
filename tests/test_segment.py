"""Long-form decoding's cuts (inference/segment.py) and the joining of the pieces' hypotheses."""

import numpy as np
import pytest

from conftest import synth_utterance
from csst_espnet.inference.generate import Hypothesis
from csst_espnet.inference.segment import pause_segments
from csst_espnet.inference.speech2text import join_hypotheses

FS = 16000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * FS), dtype=np.float32)


def speech_with_pauses(noise_snr_db=None, seed=0):
    """0.2 s silence, 1 s sound, 0.5 s pause, 2 s sound, 0.3 s pause, 1 s sound: the pauses' samples."""
    parts = [silence(0.2), synth_utterance(1, 1.0), silence(0.5), synth_utterance(2, 2.0), silence(0.3),
             synth_utterance(3, 1.0)]
    wav = np.concatenate(parts)
    if noise_snr_db is not None:
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(wav.size).astype(np.float32)
        power = np.mean(wav[np.abs(wav) > 0] ** 2)
        wav = wav + noise * np.sqrt(power / 10 ** (noise_snr_db / 10))
    first = (int(1.2 * FS), int(1.7 * FS))
    second = (int(3.7 * FS), int(4.0 * FS))
    return wav, first, second


@pytest.mark.parametrize("snr", [None, 10.0])
@pytest.mark.parametrize("smooth", [1, 9])
def test_long_utterances_are_cut_inside_their_pauses(snr, smooth):
    """Cuts fall inside the pauses, in clean and noisy audio, with or without smoothing (which would
    shorten the 0.3 s pause below min_pause without its compensation)."""
    wav, first, second = speech_with_pauses(snr)
    pieces = pause_segments(wav, FS, max_seconds=2.5, min_pause=0.25, smooth=smooth)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(wav)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous, nothing lost
    cuts = [end for _, end in pieces[:-1]]
    assert len(cuts) == 2
    assert first[0] < cuts[0] < first[1] and second[0] < cuts[1] < second[1], (cuts, first, second)
    # the longest pause first: at 4 s only the 0.5 s pause is cut (pieces of ~1.45 s and ~3.55 s)
    (cut,) = [end for _, end in pause_segments(wav, FS, max_seconds=4.0, min_pause=0.25, smooth=smooth)[:-1]]
    assert first[0] < cut < first[1]


def test_short_or_pauseless_utterances_are_not_cut():
    wav, _, _ = speech_with_pauses()
    assert pause_segments(wav, FS, max_seconds=5.0) == [(0, len(wav))]
    # pauses shorter than min_pause do not count; leading and trailing silence is never a cut
    assert pause_segments(wav, FS, max_seconds=1.0, min_pause=0.6) == [(0, len(wav))]
    padded = np.concatenate([silence(1.0), synth_utterance(4, 3.0), silence(1.0)])
    assert pause_segments(padded, FS, max_seconds=1.0) == [(0, len(padded))]
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        pause_segments(wav, FS, max_seconds=0)


def test_pieces_hypotheses_join_in_order():
    a = Hypothesis("we use", ["▁we", "▁use"], [5, 6], -1.0, confidence=-0.3)
    b = Hypothesis("the model", ["▁the", "▁model"], [7, 8], -2.0, confidence=-0.6, guard="loop")
    c = Hypothesis("", [], [], -0.5, confidence=-0.5)
    d = Hypothesis("hello", ["▁hello"], [9], -0.1, confidence=-0.1)
    joined = join_hypotheses([a, b, c, d], [0, 0, 0, 1])
    assert [h.text for h in joined] == ["we use the model", "hello"]
    assert joined[0].token_int == [5, 6, 7, 8] and joined[0].token == ["▁we", "▁use", "▁the", "▁model"]
    assert joined[0].score == pytest.approx(-3.5) and joined[0].guard == "loop"
    # the mean over every token and each piece's EOS: 3 * -0.3, 3 * -0.6, 1 * -0.5 over 7
    assert joined[0].confidence == pytest.approx((3 * -0.3 + 3 * -0.6 - 0.5) / 7)
    assert joined[1] == d
