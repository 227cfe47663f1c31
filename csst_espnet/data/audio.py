"""Audio I/O and signal operations shared by every data stage: reading, resampling, cutting, PCM.

See docs/architecture.md (data). ``wav.scp`` entries are audio files soundfile reads,
``x.ark:offset`` Kaldi archive entries, or ``command |`` pipes writing audio to stdout.
"""

import io
import math
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Tuple

import numpy as np

_ARK = re.compile(r"^(.+\.ark):\d+$")


def _is_ark(entry: str) -> bool:
    return bool(_ARK.match(entry)) and not os.path.exists(entry)


def read_audio(entry: str, channel: int = 0) -> Tuple[np.ndarray, int]:
    """(mono float32 samples, rate) of a ``wav.scp`` entry."""
    import soundfile

    entry = entry.strip()
    if entry.endswith("|"):
        proc = subprocess.run(entry[:-1], shell=True, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"command failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:200]}")
        data, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    elif _is_ark(entry):
        import kaldiio

        loaded = kaldiio.load_mat(entry)
        if not isinstance(loaded, tuple):
            raise RuntimeError("ark entry is not audio")
        rate, arr = loaded
        arr = np.asarray(arr)
        data = arr.astype(np.float32) / 32768.0 if arr.dtype == np.int16 else arr.astype(np.float32)
        data = data.reshape(len(data), -1)  # (samples, channels)
    else:
        data, rate = soundfile.read(entry, dtype="float32", always_2d=True)
    if channel >= data.shape[1]:
        raise RuntimeError(f"no channel {channel} (audio has {data.shape[1]})")
    return np.ascontiguousarray(data[:, channel]), int(rate)


def audio_info(entry: str) -> Tuple[int, int]:
    """(num_samples, sample_rate) of a ``wav.scp`` entry from its header: a file path or ``x.ark:offset``.

    Raises on missing or unreadable audio; pipes (``cmd |``) are not supported.
    """
    entry = entry.strip()
    if entry.endswith("|"):
        raise ValueError("pipe entries are not supported")
    if _is_ark(entry):
        import kaldiio

        archive = _ARK.match(entry).group(1)
        if not os.path.exists(archive):
            raise FileNotFoundError(f"no such file: {archive}")
        loaded = kaldiio.load_mat(entry)
        if isinstance(loaded, tuple):
            rate, arr = loaded
            return int(arr.shape[0]), int(rate)
        raise ValueError("ark entry is not audio")
    if not os.path.exists(entry):
        raise FileNotFoundError(f"no such file: {entry}")
    import soundfile

    info = soundfile.info(entry)
    if info.frames <= 0:
        raise ValueError("audio has no samples")
    return int(info.frames), int(info.samplerate)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling of float samples from ``rate`` to ``target`` Hz; float32 out.

    Speed perturbation is the same operation with ``rate``/``target`` in the ratio of the factor.
    """
    if rate == target or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(x, target // g, rate // g).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times as fast at the same sampling rate (len / factor samples):
    tempo and pitch change together, as with sox ``speed``."""
    ratio = Fraction(factor).limit_denominator(100)
    # read at rate numerator, written at rate denominator: len * denominator / numerator samples
    return resample(x, ratio.numerator, ratio.denominator)


def cut(x: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    """Samples of ``x`` from ``start`` to ``end`` seconds; raises when the segment lies outside."""
    a = max(0, int(round(start * rate)))
    b = min(len(x), int(round(end * rate)))
    if b <= a:
        raise RuntimeError(f"segment {start:.2f}-{end:.2f}s is outside the {len(x) / rate:.2f}s recording")
    return x[a:b]


def to_pcm16(x: np.ndarray) -> Tuple[np.ndarray, int]:
    """16-bit samples and the number of clipped samples."""
    clipped = int(np.count_nonzero(np.abs(x) > 1.0))
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16), clipped


def write_pcm16(path: str, y: np.ndarray, rate: int) -> None:
    """Write 16-bit samples (from :func:`to_pcm16`) as a mono WAV file."""
    import soundfile

    soundfile.write(path, y, rate, subtype="PCM_16", format="WAV")


SILENCE_PEAK = 1.0 / 32768  # all-silent audio: no sample above one 16-bit step


@dataclass
class AudioCheck:
    """What :func:`inspect_audio` found in one recording."""

    num_samples: int
    rate: int
    channels: int
    declared_samples: Optional[int]  # what a PCM WAV header announces (None: not a PCM WAV file)
    non_finite: int  # NaN or inf samples
    peak: float  # largest |sample| among the finite ones (0.0 for no samples)

    @property
    def truncated(self) -> bool:
        return self.declared_samples is not None and self.declared_samples > self.num_samples

    @property
    def silent(self) -> bool:
        return self.num_samples > 0 and self.peak <= SILENCE_PEAK


def inspect_audio(entry: str) -> AudioCheck:
    """Read a ``wav.scp`` entry whole (every channel) and report its length, channels, header size,
    non-finite samples and peak. Raises as :func:`read_audio` does on missing or unreadable audio."""
    entry = entry.strip()
    if entry.endswith("|") or _is_ark(entry):
        x, rate = read_audio(entry)
        data = x[:, None]
        declared = None
    else:
        import soundfile

        if not os.path.exists(entry):
            raise FileNotFoundError(f"no such file: {entry}")
        data, rate = soundfile.read(entry, dtype="float32", always_2d=True)
        declared = _pcm_wav_declared_samples(entry)
    finite = np.isfinite(data)
    non_finite = int(data.size - np.count_nonzero(finite))
    peak = float(np.max(np.abs(data[finite]))) if non_finite < data.size else 0.0
    return AudioCheck(int(data.shape[0]), int(rate), int(data.shape[1]), declared, non_finite, peak)


def _pcm_wav_declared_samples(path: str) -> Optional[int]:
    """Samples the header of a PCM WAV file announces (its data chunk size), None for other files."""
    import wave

    try:
        with wave.open(path, "rb") as w:
            return int(w.getnframes())
    except (wave.Error, EOFError):
        return None
