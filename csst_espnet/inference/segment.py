"""Long-form decoding: cut an utterance at its pauses into segments of at most ``max_seconds``.

A model trained on utterances of a few sentences drops sentences from a longer input; decoding the
input's pauses-delimited pieces one by one and joining the hypotheses keeps them. Pauses are found
by frame energy relative to the utterance itself, so that noise sets the silence floor:

- 10 ms frames, energy in dB of the mean power of ``smooth`` frames around each (noise makes single
  frames of a pause flicker above the threshold); ``floor`` and ``speech`` are the 5th and 90th
  percentiles of the utterance's frames, and a frame is quiet below ``floor + quiet_ratio * (speech -
  floor)``;
- a pause is a run of at least ``min_pause`` seconds of quiet frames with sound on both sides;
- an utterance longer than ``max_seconds`` is cut in the middle of its longest pause (the one nearer the
  middle among equals), and each side again while it is too long and has a pause.

Only utterances longer than ``max_seconds`` are cut: shorter ones decode exactly as without it.
"""

from typing import List, Tuple

import numpy as np

FRAME_SECONDS = 0.01
# defaults chosen on mini_cs's dev condition copies (docs/experiments/mini_cs.md)
MIN_PAUSE, QUIET_RATIO, SMOOTH = 0.2, 0.3, 5


def frame_energies(wav: np.ndarray, fs: int, smooth: int = 1) -> np.ndarray:
    """Energy (dB) of consecutive 10 ms frames (a last partial frame counts as a frame), each the mean
    power of the ``smooth`` frames centred on it."""
    hop = max(1, int(round(FRAME_SECONDS * fs)))
    n = -(-len(wav) // hop)
    padded = np.zeros(n * hop, dtype=np.float64)
    padded[: len(wav)] = wav
    power = np.mean(padded.reshape(n, hop) ** 2, axis=1)
    if smooth > 1:
        power = np.convolve(np.pad(power, (smooth // 2, smooth - 1 - smooth // 2), mode="edge"),
                            np.full(smooth, 1.0 / smooth), mode="valid")
    return 10.0 * np.log10(power + 1e-10)


def pauses(energies: np.ndarray, min_frames: int, quiet_ratio: float) -> List[Tuple[int, int]]:
    """``(first, end)`` frame ranges of the quiet runs of at least ``min_frames`` frames that have
    sound on both sides."""
    if len(energies) == 0:
        return []
    floor, speech = np.percentile(energies, 5), np.percentile(energies, 90)
    quiet = energies < floor + quiet_ratio * (speech - floor)
    runs, start = [], None
    for i, q in enumerate(quiet.tolist() + [False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames and start > 0 and i < len(quiet):
                runs.append((start, i))
            start = None
    return runs


def pause_segments(wav: np.ndarray, fs: int, max_seconds: float, min_pause: float = MIN_PAUSE,
                   quiet_ratio: float = QUIET_RATIO, smooth: int = SMOOTH) -> List[Tuple[int, int]]:
    """``(start, end)`` sample ranges covering ``wav`` in order: one range when it is at most
    ``max_seconds`` long or has no pause, else the pieces of the cuts described in the module docstring."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    hop = max(1, int(round(FRAME_SECONDS * fs)))
    max_frames = max_seconds / FRAME_SECONDS
    # smoothing shortens a pause by about smooth - 1 frames (the loud frames beside it leak in)
    min_frames = max(1, int(round(min_pause / FRAME_SECONDS)) - (smooth - 1))
    runs = pauses(frame_energies(wav, fs, smooth), min_frames, quiet_ratio)
    cuts: List[int] = []  # frame indices

    def cut(first: int, end: int) -> None:
        if end - first <= max_frames:
            return
        inside = [(a, b) for a, b in runs if a > first and b < end]
        if not inside:
            return
        middle = (first + end) / 2
        a, b = max(inside, key=lambda r: (r[1] - r[0], -abs((r[0] + r[1]) / 2 - middle)))
        point = (a + b) // 2
        cut(first, point)
        cuts.append(point)
        cut(point, end)

    n_frames = -(-len(wav) // hop)
    cut(0, n_frames)
    bounds = [0] + [min(len(wav), c * hop) for c in cuts] + [len(wav)]
    return list(zip(bounds[:-1], bounds[1:]))
