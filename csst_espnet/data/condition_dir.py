"""Robustness test conditions of a Kaldi-style data directory (recipe stage 2): ``<set>_<condition>``.

    condition_dir("data/test_cs", "data/test_cs_snr10", "snr10")

A waveform condition (:func:`csst_espnet.data.augment.parse_condition`: ``snr<dB>``, ``telephone``,
``reverb``, joined with ``+``) rewrites every utterance's audio at its own length; utterance ``U``
becomes ``U-<condition>`` (``+`` written ``_``: ids stay unique when sets are decoded together, and
pair with the clean set's by the suffix). Noise is babble made of other
utterances of the same set (never the utterance itself) or coloured noise; rooms are drawn with a
seed of their own, never those of training augmentation. ``long`` joins ``long_join`` consecutive
utterances (id order, so mostly one speaker) with a pause between them into one, id
``<first utt>-long``, texts (and ``word_lang``) joined with a space, frame alignments joined too
(a pause frame is unlabelled in ``lang_ali`` and continues the preceding frame's phone, i.e. its
final silence, in ``phone_ali``), so that long copies of training sets can train every loss.
Everything follows ``seed`` and the utterance id.
"""

import logging
import os
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio import cut, read_audio, to_pcm16, write_pcm16
from csst_espnet.data.audio_dir import DERIVED
from csst_espnet.data.augment import apply_condition, parse_condition, room_impulse_responses

BABBLE_POOL = 200  # utterances of the set that babble noise is made of
NUM_RIRS = 32
RIR_SEED_OFFSET = 1_000_003  # condition rooms: seed + this (training augmentation uses its own seed)
LONG = "long"
# per-utterance files a ``long`` set keeps (joined); others (utt2voice, ...) are dropped
_LONG_LABELS = ("utt2lang", "utt2task", *kd.FRAME_ALIGNMENTS)


def _load(d: kd.DataDir, utt: str) -> Tuple[np.ndarray, int]:
    """(samples, rate) of ``utt``, cut from its recording when ``d`` has segments; RuntimeError naming
    the utterance when its audio cannot be read."""
    try:
        if d.has_segments:
            reco, start, end = d.utt["segments"][utt].split()[:3]
            x, rate = read_audio(d.reco["wav.scp"][reco])
            return cut(x, rate, float(start), float(end)), rate
        return read_audio(d.utt["wav.scp"][utt])
    except Exception as e:
        raise RuntimeError(f"utterance {utt}: cannot read its audio: {e}") from e


def _utt_rng(seed: int, condition: str, utt: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(condition.encode()), zlib.crc32(utt.encode())])


def condition_dir(src: str, out: str, condition: str, seed: int = 0, long_join: int = 2,
                  pause: float = 0.3, progress: bool = True) -> Dict[str, int]:
    """Write ``src`` under ``condition`` to ``out`` (audio in ``out/wav``); returns counts
    (utterances read, utterances written)."""
    from tqdm import tqdm

    if os.path.abspath(src) == os.path.abspath(out):
        raise ValueError("SRC and OUT must differ")
    if condition != LONG:
        parse_condition(condition)  # a bad name fails before any work
    d = kd.DataDir.read(src)
    ids = d.utt_ids()
    if not ids:
        raise ValueError(f"{src}: no utterances")
    wav_dir = os.path.join(out, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    bar = tqdm(total=len(ids), desc=f"{os.path.basename(src.rstrip('/'))}_{condition}", unit="utt",
               disable=not progress, mininterval=2.0)
    if condition == LONG:
        new = _long_dir(d, ids, wav_dir, long_join, pause, bar)
    else:
        new = _waveform_dir(d, ids, wav_dir, condition, seed, bar)
    bar.close()
    new.spk = {}
    new.write(out)
    return {"utterances": len(ids), "written": len(new.utt["wav.scp"])}


def _waveform_dir(d: kd.DataDir, ids: List[str], wav_dir: str, condition: str, seed: int, bar) -> kd.DataDir:
    rng = np.random.default_rng([seed, zlib.crc32(b"babble")])
    pool_ids = sorted(rng.choice(len(ids), size=min(BABBLE_POOL, len(ids)), replace=False).tolist())
    pool = {ids[i]: _load(d, ids[i])[0] for i in pool_ids}
    rirs = room_impulse_responses(NUM_RIRS, seed + RIR_SEED_OFFSET) if "reverb" in condition else ()
    suffix = "-" + condition.replace("+", "_")
    new = kd.DataDir()
    for name, table in d.utt.items():
        if name not in DERIVED:
            new.utt[name] = {u + suffix: v for u, v in table.items()}
    wav, num, dur = {}, {}, {}
    for utt in ids:
        x, rate = _load(d, utt)
        others = [v for k, v in pool.items() if k != utt]
        y, _ = to_pcm16(apply_condition(x, condition, _utt_rng(seed, condition, utt), others, rirs))
        new_utt = utt + suffix
        wav[new_utt] = os.path.join(wav_dir, f"{new_utt}.wav")
        write_pcm16(wav[new_utt], y, rate)
        num[new_utt], dur[new_utt] = str(len(y)), f"{len(y) / rate:.4f}"
        bar.update(1)
    new.utt.update({"wav.scp": wav, "utt2num_samples": num, "utt2dur": dur})
    return new


def _join_label(values: Sequence[str], name: str, group: Sequence[str]) -> str:
    if name == "utt2lang":
        return values[0] if len(set(values)) == 1 else kd.CODE_SWITCH
    if len(set(values)) != 1:
        raise ValueError(f"long: utterances {', '.join(group)} have different {name} ({', '.join(values)})")
    return values[0]


def _long_dir(d: kd.DataDir, ids: List[str], wav_dir: str, long_join: int, pause: float, bar) -> kd.DataDir:
    if long_join < 2:
        raise ValueError(f"long_join must be at least 2, got {long_join}")
    groups = [ids[i : i + long_join] for i in range(0, len(ids), long_join)]
    if len(groups) > 1 and len(groups[-1]) < long_join:  # no single utterance left over
        last = groups.pop()
        groups[-1] += last
    new = kd.DataDir()
    texts = [n for n in d.utt if kd.is_text_file(n) or n == kd.WORD_LANG]  # joined with a space
    for name in texts + ["utt2spk"] + [n for n in _LONG_LABELS if n in d.utt]:
        new.utt[name] = {}
    wav, num, dur = {}, {}, {}
    for group in groups:
        utt = f"{group[0]}-long"
        pieces: List[np.ndarray] = []
        rate: Optional[int] = None
        frames: Dict[str, List[str]] = {name: [] for name in kd.FRAME_ALIGNMENTS if name in d.utt}
        for k, u in enumerate(group):
            x, r = _load(d, u)
            if rate is not None and r != rate:
                raise ValueError(f"long: utterances {group[0]} and {u} have different sampling rates")
            rate = r
            if k:
                pieces.append(np.zeros(int(pause * rate), dtype=np.float32))
                gap = kd.ali_num_frames(int(pause * rate), rate)
                for name, labels in frames.items():
                    labels += [kd.UNLABELLED_FRAME if name == kd.LANG_ALI else labels[-1]] * gap
            pieces.append(x)
            for name, labels in frames.items():
                labels += d.utt[name][u].split()
        y, _ = to_pcm16(np.concatenate(pieces))
        wav[utt] = os.path.join(wav_dir, f"{utt}.wav")
        write_pcm16(wav[utt], y, rate)
        num[utt], dur[utt] = str(len(y)), f"{len(y) / rate:.4f}"
        for name in texts:
            new.utt[name][utt] = " ".join(d.utt[name][u].strip() for u in group)
        new.utt["utt2spk"][utt] = d.utt["utt2spk"][group[0]]
        for name in ("utt2lang", "utt2task"):
            if name in d.utt:
                new.utt[name][utt] = _join_label([d.utt[name][u] for u in group], name, group)
        for name, labels in frames.items():
            new.utt[name][utt] = " ".join(kd.resample_ali(labels, kd.ali_num_frames(len(y), rate)))
        bar.update(len(group))
    new.utt.update({"wav.scp": wav, "utt2num_samples": num, "utt2dur": dur})
    logging.info("long: %d utterances joined into %d", len(ids), len(groups))
    return new
