"""Synthetic Mandarin–English code-switch corpus ``mini_cs`` (machine-learning lectures).

    python -m csst_espnet.data.mini_cs --out data --seed 777 --preset tiny|demo [--nj 2]

Speech is synthesised offline with eSpeak NG (the ``espeakng-loader`` wheel):
Mandarin runs with voice ``cmn+VARIANT``, English runs with ``en-us+VARIANT`` or
``en+VARIANT``; a code-switched utterance concatenates its runs, so it really
changes voice and language mid-utterance. Each speaker is a voice variant with
its own pitch and speaking rate; the variants of the test speakers are never used
in training or dev. Everything is a function of ``--seed``: same seed, same text
files and byte-identical audio.

Sets (Kaldi data dirs under ``--out``): ``train_asr_zh``, ``train_asr_en`` (ASR),
``train_st_zh`` (Mandarin speech -> English), ``train_cs`` (code-switch -> English,
about a tenth of the monolingual data), ``dev`` (half Mandarin ST, half CS ST),
``test_cs``, ``test_mono`` (Mandarin ST), the test sets with a paraphrased second
reference ``text.2``. Dev/test sentences never occur in training data nor in the
LM text under ``--out/lm_text`` (``zh.txt``, ``en.txt``, ``zh2en.tsv``).

Phone alignments come for free from eSpeak's phoneme events: every set has a
``phone_ali`` file, ``<utt> id id ...``, one phone id per 10 ms frame of its wav
(160 samples at 16 kHz; ceil(samples / 160) frames, the last one possibly partial),
the phone at the frame's centre. Phones carry the language of their run (``zh:ong``,
``en:u:``; stress marks dropped), pauses and the added silences are ``sil`` = 0. The
inventory, ``--out/local/phones.txt`` (``<phone> <id>``), is ``sil`` then the sorted
union of the phones of all sets, so ids agree across sets (it depends on the preset
and seed; its size is ``num_phones`` in ``mini_cs_stats.json``).
"""

import argparse
import hashlib
import json
import logging
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.data import espeak, kaldi_dir
from csst_espnet.data.kaldi_dir import DataDir, sort_key
from csst_espnet.data.mini_cs_text import Sentence, join_segments, sentence_pool

FS = 16000
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3")
TEST_VARIANTS = ("m6", "m7", "f4", "f5")  # held out: only in test_cs / test_mono
EN_VOICES = ("en-us", "en")  # American / British English
ZH_VOICE = "cmn"
ZH_RATE = 205  # eSpeak words-per-minute setting; per speaker and utterance scaled
EN_RATE = 185
# sentence length caps that keep utterances at about 1.5-4 s
MAX_ZH_CHARS = 14
MAX_EN_WORDS = 9

SET_NAMES = ("train_asr_zh", "train_asr_en", "train_st_zh", "train_cs", "dev", "test_cs", "test_mono")
TEST_SETS = ("test_cs", "test_mono")

PRESETS: Dict[str, Dict[str, int]] = {
    # a few utterances per set, for tests and CI (seconds to make)
    "tiny": dict(train_asr_zh=6, train_asr_en=6, train_st_zh=6, train_cs=3, dev=4,
                 test_cs=3, test_mono=3, lm_extra=30, train_speakers=4, test_speakers=2),
    # sized for the whole recipe on 2 CPU cores in about ten minutes
    "demo": dict(train_asr_zh=600, train_asr_en=600, train_st_zh=600, train_cs=180, dev=120,
                 test_cs=150, test_mono=150, lm_extra=1500, train_speakers=16, test_speakers=8),
}
# utterance-id tags per set (ids are unique over the whole corpus)
TAGS = {"train_asr_zh": "asrzh", "train_asr_en": "asren", "train_st_zh": "stzh", "train_cs": "cs",
        "dev": "dev", "test_cs": "tcs", "test_mono": "tmono"}


@dataclass(frozen=True)
class Speaker:
    spk: str
    variant: str
    en_voice: str
    pitch: int  # eSpeak pitch 0..100
    rate_scale: float

    @property
    def zh_voice(self) -> str:
        return f"{ZH_VOICE}+{self.variant}"

    @property
    def en_full_voice(self) -> str:
        return f"{self.en_voice}+{self.variant}"


def make_speakers(seed: int, n: int, prefix: str, variants: Sequence[str]) -> List[Speaker]:
    out = []
    for i in range(n):
        rng = random.Random(f"spk:{seed}:{prefix}:{i}")
        out.append(Speaker(
            spk=f"{prefix}{i + 1:02d}",
            variant=variants[i % len(variants)],
            en_voice=EN_VOICES[(i + i // len(variants)) % len(EN_VOICES)],
            pitch=rng.randint(30, 70),
            rate_scale=round(rng.uniform(0.9, 1.12), 3),
        ))
    return out


@dataclass
class Utt:
    utt: str
    spk: Speaker
    set: str
    lang: str  # zh, en, cs (of the speech)
    task: str  # asr, st
    segments: List[Tuple[str, str]]  # [(text, 'zh'|'en')] as spoken
    text: str
    src_text: str
    text2: Optional[str]
    seed: int
    key: str


@dataclass
class SynthJob:
    utt: str
    path: str
    segments: List[Tuple[str, str]]
    zh_voice: str
    en_voice: str
    zh_rate: int
    en_rate: int
    pitch: int
    seed: int


def _int_seed(*parts) -> int:
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def _trim_bounds(x: np.ndarray, sr: int, margin_s: float = 0.015) -> Tuple[int, int]:
    """[start, end) of ``x`` without its leading and trailing near-silence (plus a margin)."""
    if len(x) == 0:
        return 0, 0
    a = np.abs(x.astype(np.int32))
    thr = max(64, int(0.02 * a.max()))
    idx = np.nonzero(a > thr)[0]
    if len(idx) == 0:
        return 0, 0
    m = int(margin_s * sr)
    return max(0, idx[0] - m), min(len(x), idx[-1] + 1 + m)


def frame_labels(phones: "espeak.Phones", sr: int, num_samples: int) -> List[str]:
    """The phone at the centre of every 10 ms frame of a ``num_samples`` clip at ``FS``.

    ``phones``: ``[(start, phone)]`` at ``sr`` over the clip before resampling to ``FS``
    (polyphase resampling keeps the timing), sorted by start, the first at 0; of phones
    starting at the same sample, the last one counts.
    """
    starts = np.array([s for s, _ in phones])
    n = kaldi_dir.ali_num_frames(num_samples, FS)
    hop = FS // kaldi_dir.ALI_FRAMES_PER_SECOND
    centres = np.minimum(np.arange(n) * hop + hop // 2, num_samples - 1) * (sr / FS)
    return [phones[i][1] for i in np.searchsorted(starts, centres, side="right") - 1]


def synth_utterance(engine: "espeak.ESpeak", job: SynthJob) -> Tuple[str, int, str, List[str]]:
    """Synthesise one utterance to a 16 kHz 16-bit wav; returns (utt, samples, md5, frame phones)."""
    import soundfile

    rng = np.random.default_rng(job.seed)
    sr = engine.sample_rate
    pieces: List[np.ndarray] = []
    phones: espeak.Phones = []  # over the concatenated runs, at the engine's rate
    pos = 0
    for k, (text, lang) in enumerate(job.segments):
        voice, rate = (job.zh_voice, job.zh_rate) if lang == "zh" else (job.en_voice, job.en_rate)
        x, run_phones = engine.synth_phones(text, voice, rate=rate, pitch=job.pitch, seed=job.seed + k)
        a, b = _trim_bounds(x, sr)
        if b == a:
            raise espeak.ESpeakError(f"{job.utt}: no audio for {text!r} ({lang})")
        if pieces:  # short pause at a language switch
            pieces.append(np.zeros(int(rng.uniform(0.03, 0.09) * sr), dtype=np.int16))
            phones.append((pos, espeak.SILENCE))
            pos += len(pieces[-1])
        pieces.append(x[a:b])
        # silence until eSpeak's first phone; phones that began before the trimmed start go on from it
        phones.append((pos, espeak.SILENCE))
        phones += [(pos + max(s, a) - a, p if p == espeak.SILENCE else f"{lang}:{p}")
                   for s, p in run_phones if s < b]
        pos += b - a
    lead = np.zeros(int(rng.uniform(0.08, 0.2) * sr), dtype=np.int16)
    tail = np.zeros(int(rng.uniform(0.08, 0.2) * sr), dtype=np.int16)
    phones = [(0, espeak.SILENCE)] + [(s + len(lead), p) for s, p in phones] + [(len(lead) + pos, espeak.SILENCE)]
    y = espeak.resample_to(np.concatenate([lead] + pieces + [tail]), sr, FS)
    y = y * float(rng.uniform(0.6, 0.9)) / max(1e-3, float(np.abs(y).max()))
    y = y + rng.normal(0.0, 2.0 / 32768, size=len(y)).astype(np.float32)  # faint dither
    pcm = np.clip(np.round(y * 32768), -32768, 32767).astype(np.int16)
    os.makedirs(os.path.dirname(job.path), exist_ok=True)
    soundfile.write(job.path, pcm, FS, subtype="PCM_16", format="WAV")
    return job.utt, len(pcm), hashlib.md5(pcm.tobytes()).hexdigest(), frame_labels(phones, sr, len(pcm))


# ---------------------------------------------------------------- corpus plan
def plan_corpus(seed: int, sizes: Dict[str, int]) -> Tuple[Dict[str, List[Utt]], Dict[str, List[Tuple[str, str]]], Dict]:
    """Decide every utterance (text, speaker, voice) and the LM text, without audio."""
    pool = sentence_pool(seed, MAX_ZH_CHARS, MAX_EN_WORDS)
    switchable = [s for s in pool if s.can_switch]
    held: Dict[str, List[Sentence]] = {}
    used_keys = set()

    def take(n: int, need_switch: bool) -> List[Sentence]:
        out = []
        for s in pool:
            if len(out) == n:
                break
            if s.key in used_keys or (need_switch and not s.can_switch):
                continue
            out.append(s)
            used_keys.add(s.key)
        if len(out) < n:
            raise ValueError(f"the sentence grammar is too small for {n} more held-out sentences")
        return out

    held["test_cs"] = take(sizes["test_cs"], True)
    held["test_mono"] = take(sizes["test_mono"], False)
    n_dev_cs = sizes["dev"] // 2
    held["dev_cs"] = take(n_dev_cs, True)
    held["dev_mono"] = take(sizes["dev"] - n_dev_cs, False)
    train_pool = [s for s in pool if s.key not in used_keys]
    train_switchable = [s for s in train_pool if s.can_switch]
    assert switchable

    train_spk = make_speakers(seed, sizes["train_speakers"], "tr", TRAIN_VARIANTS)
    test_spk = make_speakers(seed, sizes["test_speakers"], "te", TEST_VARIANTS)

    sets: Dict[str, List[Utt]] = {}
    used_train: set = set()

    def draw(name: str, n: int, need_switch: bool) -> List[Sentence]:
        src = train_switchable if need_switch else train_pool
        if n > len(src):
            raise ValueError(f"{name}: {n} utterances asked, the grammar has {len(src)} training sentences")
        rng = random.Random(f"draw:{seed}:{name}")
        chosen = rng.sample(src, n)
        used_train.update(s.key for s in chosen)
        return chosen

    def build(name: str, sents: Sequence[Tuple[Sentence, str, str]], speakers: List[Speaker]) -> List[Utt]:
        """sents: (sentence, speech kind zh|en|cs, task)."""
        utts = []
        for i, (s, kind, task) in enumerate(sents):
            rng = random.Random(f"utt:{seed}:{name}:{i}")
            spk = speakers[rng.randrange(len(speakers))]
            if kind == "zh":
                segs = [(s.zh, "zh")]
                src = s.zh
            elif kind == "en":
                segs = [(s.en, "en")]
                src = s.en
            else:
                segs = s.cs_segments(rng)
                src = join_segments(segs)
            text = src if task == "asr" else s.en
            utts.append(Utt(
                utt=f"{spk.spk}-{TAGS[name]}{i:05d}", spk=spk, set=name, lang=kind, task=task,
                segments=segs, text=text, src_text=src,
                text2=(s.en_alt if name in TEST_SETS else None),
                seed=_int_seed(seed, name, i), key=s.key,
            ))
        return utts

    sets["train_asr_zh"] = build("train_asr_zh", [(s, "zh", "asr") for s in draw("train_asr_zh", sizes["train_asr_zh"], False)], train_spk)
    sets["train_asr_en"] = build("train_asr_en", [(s, "en", "asr") for s in draw("train_asr_en", sizes["train_asr_en"], False)], train_spk)
    sets["train_st_zh"] = build("train_st_zh", [(s, "zh", "st") for s in draw("train_st_zh", sizes["train_st_zh"], False)], train_spk)
    sets["train_cs"] = build("train_cs", [(s, "cs", "st") for s in draw("train_cs", sizes["train_cs"], True)], train_spk)
    dev = [(s, "zh", "st") for s in held["dev_mono"]] + [(s, "cs", "st") for s in held["dev_cs"]]
    random.Random(f"dev:{seed}").shuffle(dev)
    sets["dev"] = build("dev", dev, train_spk)
    sets["test_cs"] = build("test_cs", [(s, "cs", "st") for s in held["test_cs"]], test_spk)
    sets["test_mono"] = build("test_mono", [(s, "zh", "st") for s in held["test_mono"]], test_spk)

    # ---- LM text: training sentences plus extra ones, never a dev/test sentence
    zh_lines: List[str] = []
    en_lines: List[str] = []
    pairs: List[Tuple[str, str]] = []
    for u in sets["train_asr_zh"] + sets["train_st_zh"]:
        zh_lines.append(u.src_text)
    for u in sets["train_asr_en"]:
        en_lines.append(u.src_text)
    for u in sets["train_st_zh"] + sets["train_cs"]:
        en_lines.append(u.text)
        pairs.append((u.src_text, u.text))
    extra = [s for s in train_pool if s.key not in used_train][: sizes["lm_extra"]]
    rng = random.Random(f"lm:{seed}")
    for s in extra:
        zh_lines.append(s.zh)
        en_lines.append(s.en)
        pairs.append((s.zh, s.en))
        if s.can_switch and rng.random() < 0.5:
            pairs.append((join_segments(s.cs_segments(rng)), s.en))
    lm = {"zh": _dedup(zh_lines), "en": _dedup(en_lines), "zh2en": _dedup(pairs)}
    info = {
        "sentences_in_grammar": len(pool),
        "held_out_sentences": len(used_keys),
        "lm_extra_sentences": len(extra),
        "train_speakers": [asdict(s) for s in train_spk],
        "test_speakers": [asdict(s) for s in test_spk],
    }
    return sets, lm, info


def _dedup(items):
    seen = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def synth_jobs(utts: Sequence[Utt], wav_dir: str) -> List[SynthJob]:
    jobs = []
    for u in utts:
        rng = random.Random(f"rate:{u.seed}")
        jitter = rng.uniform(0.94, 1.06)
        jobs.append(SynthJob(
            utt=u.utt, path=os.path.join(wav_dir, u.set, f"{u.utt}.wav"), segments=u.segments,
            zh_voice=u.spk.zh_voice, en_voice=u.spk.en_full_voice,
            zh_rate=int(round(ZH_RATE * u.spk.rate_scale * jitter)),
            en_rate=int(round(EN_RATE * u.spk.rate_scale * jitter)),
            pitch=max(0, min(100, u.spk.pitch + rng.randint(-4, 4))), seed=u.seed,
        ))
    return jobs


def phone_inventory(labels: Dict[str, List[str]]) -> Dict[str, int]:
    """``sil`` = 0, then every other phone of ``labels`` in sorted order."""
    phones = sorted({p for seq in labels.values() for p in seq} - {espeak.SILENCE}, key=sort_key)
    return {p: i for i, p in enumerate([espeak.SILENCE] + phones)}


def write_set(out_dir: str, utts: Sequence[Utt], jobs: Sequence[SynthJob], nsamples: Dict[str, int],
              labels: Dict[str, List[str]], phone_ids: Dict[str, int]) -> None:
    d = DataDir()
    d.utt["wav.scp"] = {j.utt: j.path for j in jobs}
    d.utt["utt2spk"] = {u.utt: u.spk.spk for u in utts}
    d.utt["text"] = {u.utt: u.text for u in utts}
    d.utt["src_text"] = {u.utt: u.src_text for u in utts}
    d.utt["utt2lang"] = {u.utt: u.lang for u in utts}
    d.utt["utt2task"] = {u.utt: u.task for u in utts}
    d.utt["utt2dur"] = {u.utt: f"{nsamples[u.utt] / FS:.4f}" for u in utts}
    d.utt["utt2num_samples"] = {u.utt: str(nsamples[u.utt]) for u in utts}
    d.utt[kaldi_dir.PHONE_ALI] = {u.utt: " ".join(str(phone_ids[p]) for p in labels[u.utt]) for u in utts}
    d.utt["utt2voice"] = {
        u.utt: f"{j.zh_voice if u.lang != 'en' else j.en_voice}"
               + (f",{j.en_voice}" if u.lang == "cs" else "")
               + f" rate={j.zh_rate if u.lang != 'en' else j.en_rate} pitch={j.pitch}"
        for u, j in zip(utts, jobs)
    }
    if any(u.text2 is not None for u in utts):
        d.utt["text.2"] = {u.utt: u.text2 for u in utts}
    d.write(out_dir)


def write_lm_text(out_dir: str, lm: Dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "zh.txt"), "w", encoding="utf-8") as f:
        f.writelines(x + "\n" for x in lm["zh"])
    with open(os.path.join(out_dir, "en.txt"), "w", encoding="utf-8") as f:
        f.writelines(x + "\n" for x in lm["en"])
    with open(os.path.join(out_dir, "zh2en.tsv"), "w", encoding="utf-8") as f:
        f.writelines(f"{a}\t{b}\n" for a, b in lm["zh2en"])


def generate(
    out: str,
    seed: int = 777,
    preset: str = "tiny",
    wav_dir: Optional[str] = None,
    nj: int = 2,
    sizes: Optional[Dict[str, int]] = None,
    progress: bool = True,
) -> Dict:
    """Make the corpus; returns the statistics also written to ``out/local/mini_cs_stats.json``."""
    from tqdm import tqdm

    cfg = dict(PRESETS[preset])
    cfg.update({k: v for k, v in (sizes or {}).items() if v is not None})
    out = os.path.abspath(out)
    wav_dir = os.path.abspath(wav_dir or os.path.join(os.path.dirname(out), "db", "mini_cs", "wav"))
    if not espeak.is_available():
        raise espeak.ESpeakError("eSpeak NG is not available: pip install espeakng-loader")

    sets, lm, info = plan_corpus(seed, cfg)
    all_jobs: List[SynthJob] = []
    jobs_of: Dict[str, List[SynthJob]] = {}
    for name in SET_NAMES:
        jobs_of[name] = synth_jobs(sets[name], wav_dir)
        all_jobs.extend(jobs_of[name])
        sd = os.path.join(wav_dir, name)
        if os.path.isdir(sd):  # no stale audio from an earlier, larger run
            for fn in os.listdir(sd):
                if fn.endswith(".wav"):
                    os.remove(os.path.join(sd, fn))

    # import what the forked children use once here, not once per child
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401

    t0 = time.time()
    nsamples: Dict[str, int] = {}
    md5: Dict[str, str] = {}
    labels: Dict[str, List[str]] = {}
    bar = tqdm(total=len(all_jobs), desc="synthesising mini_cs", unit="utt", disable=not progress,
               mininterval=1.0)
    for utt, n, h, lab in espeak.run_isolated(synth_utterance, all_jobs, nj=nj):
        nsamples[utt] = n
        md5[utt] = h
        labels[utt] = lab
        bar.update(1)
    bar.close()
    synth_s = time.time() - t0

    stats: Dict = {"preset": preset, "seed": seed, "sizes": cfg, "wav_dir": wav_dir, "nj": nj,
                   "synthesis_seconds": round(synth_s, 1), "sets": {}}
    phone_ids = phone_inventory(labels)
    for name in SET_NAMES:
        write_set(os.path.join(out, name), sets[name], jobs_of[name], nsamples, labels, phone_ids)
        durs = [nsamples[u.utt] / FS for u in sets[name]]
        stats["sets"][name] = {
            "utterances": len(durs), "hours": round(sum(durs) / 3600, 4),
            "min_dur": round(min(durs), 2), "mean_dur": round(sum(durs) / len(durs), 2),
            "max_dur": round(max(durs), 2),
            "languages": {k: sum(1 for u in sets[name] if u.lang == k) for k in ("zh", "en", "cs") if any(u.lang == k for u in sets[name])},
        }
    write_lm_text(os.path.join(out, "lm_text"), lm)
    stats["lm_text"] = {"zh": len(lm["zh"]), "en": len(lm["en"]), "zh2en": len(lm["zh2en"])}
    stats["total_utterances"] = len(all_jobs)
    stats["total_hours"] = round(sum(nsamples.values()) / FS / 3600, 4)
    stats["audio_md5"] = hashlib.md5("".join(f"{k}{md5[k]}" for k in sorted(md5, key=sort_key)).encode()).hexdigest()
    stats.update({k: v for k, v in info.items() if not k.endswith("speakers")})
    stats["speakers"] = {"train": info["train_speakers"], "test": info["test_speakers"]}
    stats["num_phones"] = len(phone_ids)
    os.makedirs(os.path.join(out, "local"), exist_ok=True)
    with open(os.path.join(out, "local", "phones.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{p} {i}\n" for p, i in phone_ids.items())
    with open(os.path.join(out, "local", "mini_cs_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
    return stats


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m csst_espnet.data.mini_cs",
        description="Synthesise the mini_cs Mandarin-English code-switch corpus with eSpeak NG.",
    )

    def opt(name, **kw):
        names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        p.add_argument(*names, dest=name, **kw)

    opt("out", default="data", help="where the data directories go")
    opt("seed", type=int, default=777, help="everything (text, speakers, audio) follows from it")
    opt("preset", choices=sorted(PRESETS), default="tiny", help="corpus size")
    opt("wav_dir", default=None, help="where the audio goes (default: OUT/../db/mini_cs/wav)")
    opt("nj", type=int, default=2, help="synthesis processes")
    for k in PRESETS["tiny"]:
        opt(f"n_{k}", type=int, default=None, help=f"override the preset's {k}")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    sizes = {k: getattr(args, f"n_{k}") for k in PRESETS["tiny"]}
    stats = generate(args.out, seed=args.seed, preset=args.preset, wav_dir=args.wav_dir,
                     nj=args.nj, sizes=sizes)
    for name, s in stats["sets"].items():
        logging.info("%-13s %5d utt %7.3f h  dur %.2f/%.2f/%.2f s  %s", name, s["utterances"],
                     s["hours"], s["min_dur"], s["mean_dur"], s["max_dur"], s["languages"])
    logging.info("lm_text: %s", stats["lm_text"])
    logging.info("phone_ali: %d phones (sil = 0) in %s", stats["num_phones"],
                 os.path.join(args.out, "local", "phones.txt"))
    logging.info("total %d utterances, %.3f h, synthesis %.1f s with %d jobs (audio md5 %s)",
                 stats["total_utterances"], stats["total_hours"], stats["synthesis_seconds"],
                 stats["nj"], stats["audio_md5"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
