"""Waveform augmentation: training on the fly, and the recipe's robustness test conditions.

Every operation keeps the length of the signal, so the frame alignments (``phone_ali``, ``lang_ali``)
stay valid: additive noise at an SNR (coloured noise, or babble made from other utterances),
a telephone channel (8 kHz, 300-3400 Hz band, 8-bit mu-law), and reverberation by room impulse
responses simulated with the image method (pyroomacoustics), the direct path kept at time 0.
Speed perturbation changes the length and lives in :mod:`csst_espnet.data.audio_dir` (stage 2).

Conditions (:func:`apply_condition`, the ``<set>_<condition>`` sets of stage 2) are written
``snr10``, ``telephone``, ``reverb`` and joined with ``+`` (``reverb+snr10``); ``long`` (utterances
joined) is a set-level condition of :func:`csst_espnet.data.audio_dir.condition_dir`.
"""

import re
from collections import deque
from typing import Deque, List, Optional, Sequence, Tuple

import numpy as np

FS = 16000
_SNR = re.compile(r"^snr(-?\d+(?:\.\d+)?)$")
WAVEFORM_CONDITIONS = ("snr<dB>", "telephone", "reverb")


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 2 else 1.0
    x = np.fft.irfft(spec * freqs ** (-exponent / 2), n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def babble(pool: Sequence[np.ndarray], n: int, talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance babble of ``n`` samples: ``talkers`` utterances of ``pool``, each looped from a
    random offset, summed at equal level."""
    out = np.zeros(n, dtype=np.float64)
    for i in rng.choice(len(pool), size=min(talkers, len(pool)), replace=False):
        x = np.asarray(pool[i], dtype=np.float64)
        x = x / (x.std() + 1e-12)
        out += np.resize(np.roll(x, -int(rng.integers(len(x)))), n)
    return (out / (out.std() + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` scaled to ``snr_db`` dB below the power of ``x``."""
    p_x = float(np.mean(np.square(x, dtype=np.float64)))
    p_n = float(np.mean(np.square(noise, dtype=np.float64))) + 1e-20
    return (x + noise * np.sqrt(p_x / (p_n * 10.0 ** (snr_db / 10.0)))).astype(np.float32)


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise ``x`` (in [-1, 1]) through ``bits``-bit mu-law coding and back."""
    mu = 2**bits - 1
    code = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    code = np.round((code + 1) / 2 * mu) / mu * 2 - 1
    return np.sign(code) * ((1 + mu) ** np.abs(code) - 1) / mu


def telephone(x: np.ndarray, fs: int = FS) -> np.ndarray:
    """A narrow-band telephone line: 8 kHz, 300-3400 Hz, 8-bit mu-law, back at ``fs``; same length."""
    from scipy.signal import butter, resample_poly, sosfilt

    y = resample_poly(np.asarray(x, dtype=np.float64), 8000, fs)
    y = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), y)
    peak = float(np.max(np.abs(y))) + 1e-12
    y = mu_law(np.clip(y / peak, -1, 1)) * peak
    y = resample_poly(y, fs, 8000)
    return np.resize(y, len(x)).astype(np.float32) if len(y) != len(x) else y.astype(np.float32)


def room_impulse_responses(count: int, seed: int, fs: int = FS, rt60: Tuple[float, float] = (0.2, 0.8)
                           ) -> List[np.ndarray]:
    """``count`` impulse responses of random shoebox rooms (3-9 x 3-8 x 2.5-3.5 m, RT60 drawn from
    ``rt60``), image method; each starts at its direct path and has unit energy."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        dims = rng.uniform([3.0, 3.0, 2.5], [9.0, 8.0, 3.5])
        e_abs, max_order = pra.inverse_sabine(float(rng.uniform(*rt60)), dims)
        room = pra.ShoeBox(dims, fs=fs, materials=pra.Material(e_abs), max_order=min(max_order, 40))
        room.add_source(rng.uniform([0.5, 0.5, 1.0], dims - 0.5))
        room.add_microphone(rng.uniform([0.5, 0.5, 1.0], dims - 0.5))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        rir = rir[int(np.argmax(np.abs(rir))):]
        out.append((rir / np.sqrt(np.sum(rir**2))).astype(np.float32))
    return out


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir`` (direct path at 0: no delay), cut to its length, at its level."""
    from scipy.signal import fftconvolve

    y = fftconvolve(np.asarray(x, dtype=np.float64), rir)[: len(x)]
    return (y * (np.std(x) / (np.std(y) + 1e-12))).astype(np.float32)


def parse_condition(condition: str) -> List[Tuple[str, Optional[float]]]:
    """``"reverb+snr10"`` -> ``[("reverb", None), ("snr", 10.0)]``; ValueError naming a bad part."""
    parts = []
    for part in condition.split("+"):
        m = _SNR.match(part)
        if m:
            parts.append(("snr", float(m.group(1))))
        elif part in ("telephone", "reverb"):
            parts.append((part, None))
        else:
            raise ValueError(f"unknown condition {part!r} in {condition!r}: use {', '.join(WAVEFORM_CONDITIONS)}"
                             " joined with '+', or 'long'")
    return parts


def noise_for(n: int, pool: Sequence[np.ndarray], rng: np.random.Generator, babble_share: float = 0.5,
              talkers: Tuple[int, int] = (3, 6)) -> np.ndarray:
    """Babble from ``pool`` (with probability ``babble_share``, if it has anything) or coloured noise."""
    if len(pool) and rng.random() < babble_share:
        return babble(pool, n, int(rng.integers(talkers[0], talkers[1] + 1)), rng)
    return coloured_noise(n, float(rng.uniform(0.0, 2.0)), rng)


def apply_condition(x: np.ndarray, condition: str, rng: np.random.Generator, pool: Sequence[np.ndarray] = (),
                    rirs: Sequence[np.ndarray] = (), babble_share: float = 0.5) -> np.ndarray:
    """``x`` under ``condition`` (:func:`parse_condition`), effects in the written order; noise is
    babble from ``pool`` (``babble_share`` of the time) or coloured; ``reverb`` takes a random
    impulse response of ``rirs``."""
    y = np.asarray(x, dtype=np.float32)
    for kind, value in parse_condition(condition):
        if kind == "snr":
            y = add_noise(y, noise_for(len(y), pool, rng, babble_share), value)
        elif kind == "telephone":
            y = telephone(y)
        else:
            if not len(rirs):
                raise ValueError("condition 'reverb' needs room impulse responses")
            y = reverberate(y, rirs[int(rng.integers(len(rirs)))])
    return y


class Augmenter:
    """On-the-fly training augmentation of single utterances (the ``augment_conf`` of a phase config).

    With probability ``prob`` an utterance is augmented: reverberation with ``reverb_prob``, noise
    with ``noise_prob`` at an SNR drawn from ``snr`` (babble of ``babble_share`` of the time, from the
    last ``pool_size`` training utterances seen), telephone channel with ``telephone_prob`` (in that
    order: room, noise, line); if none was drawn, noise alone. The rooms (``num_rirs`` impulse
    responses) and draws follow ``seed``; test conditions use other rooms (another seed).
    """

    def __init__(self, prob: float = 0.5, noise_prob: float = 0.6, snr: Tuple[float, float] = (0.0, 20.0),
                 babble_share: float = 0.5, telephone_prob: float = 0.25, reverb_prob: float = 0.25,
                 rt60: Tuple[float, float] = (0.2, 0.8), num_rirs: int = 64, pool_size: int = 32, seed: int = 0):
        for name, p in (("prob", prob), ("noise_prob", noise_prob), ("babble_share", babble_share),
                        ("telephone_prob", telephone_prob), ("reverb_prob", reverb_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment_conf: {name} must be in [0, 1], got {p}")
        if snr[0] > snr[1]:
            raise ValueError(f"augment_conf: snr must be [low, high], got {list(snr)}")
        self.prob, self.noise_prob, self.snr = prob, noise_prob, tuple(snr)
        self.babble_share, self.telephone_prob, self.reverb_prob = babble_share, telephone_prob, reverb_prob
        self.rt60, self.num_rirs, self.seed = tuple(rt60), num_rirs, seed
        self._rng: Optional[np.random.Generator] = None
        self.pool: Deque[np.ndarray] = deque(maxlen=pool_size)
        self._rirs: Optional[List[np.ndarray]] = None

    @property
    def rng(self) -> np.random.Generator:
        """Seeded by ``seed`` and the data-loader worker (workers draw different streams)."""
        if self._rng is None:
            import torch.utils.data

            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng([self.seed, info.id if info is not None else 0])
        return self._rng

    def conditions(self) -> str:
        """The next utterance's condition (``""``: clean), as :func:`apply_condition` reads it."""
        if self.rng.random() >= self.prob:
            return ""
        parts = []
        if self.rng.random() < self.reverb_prob:
            parts.append("reverb")
        noise = self.rng.random() < self.noise_prob
        line = self.rng.random() < self.telephone_prob
        if noise or not (parts or line):
            parts.append(f"snr{self.rng.uniform(*self.snr):.1f}")
        if line:
            parts.append("telephone")
        return "+".join(parts)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        condition = self.conditions()
        if "reverb" in condition and self._rirs is None:
            self._rirs = room_impulse_responses(self.num_rirs, self.seed, rt60=self.rt60)
        y = apply_condition(x, condition, self.rng, self.pool, self._rirs or (), self.babble_share) if condition else x
        self.pool.append(np.asarray(x, dtype=np.float32))
        return y
