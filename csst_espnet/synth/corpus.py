"""Synthetic code-switch speech-translation corpora: ``mini_cs`` (Mandarin-English lectures) and
``mini_multi`` (Mandarin, Spanish, French, German -> English).

    python -m csst_espnet.bin.synth_corpus --out data --seed 777 --preset tiny|small|demo [--nj 2] \
        [--pair zh-en | --pair zh-en,es-en,fr-en,de-en]

Built for one language pair or several with the same target (:mod:`csst_espnet.synth.pairs`;
``SRC``/``TGT`` below are their language codes, ``zh``/``en`` for the default ``zh-en``). Speech
is synthesised offline with eSpeak NG (the ``espeakng-loader`` wheel): for ``zh-en`` Mandarin runs
with voice ``cmn+VARIANT``, English runs with ``en-us+VARIANT`` or ``en+VARIANT``; a code-switched
utterance concatenates its runs, so it really changes voice and language mid-utterance. Each
speaker is a voice variant with its own pitch and speaking rate, and speaks every language of the
corpus; the variant families of the ``_unseen`` speakers are never used in training, dev or the
other test sets. Everything is a function of ``--seed``: same seed, same text files and
byte-identical audio.

Sets of one pair (Kaldi data dirs under ``--out``): ``train_asr_SRC``, ``train_asr_TGT`` (ASR),
``train_st_SRC`` (source speech -> target text), ``train_cs`` (code-switch -> target, about a
tenth of the monolingual data), ``dev`` (half source ST, half CS ST), ``test_cs``,
``test_mono`` (source ST), the test sets with a paraphrased second reference ``text.2``, and
``dev_unseen``, ``test_cs_unseen``, ``test_mono_unseen`` (the same utterances spoken by held-out
voice families). With several pairs every source language has its own sets, named with its code
(``train_asr_es``, ``train_st_es``, ``train_cs_es``, ``test_cs_es``, ``test_mono_es``,
``test_mono_es_unseen``; code-switched sets only for the pairs that code-switch), English ASR
is one set of sentences of every grammar, and ``dev`` mixes every source language.
Dev/test sentences, and their translations, never occur in training data nor in the LM text
under ``--out/lm_text`` (``SRC.txt`` and ``SRC2TGT.tsv`` of every source, ``TGT.txt``).

Phone alignments come for free from eSpeak's phoneme events: every set has a
``phone_ali`` file, ``<utt> id id ...``, one phone id per 10 ms frame of its wav
(160 samples at 16 kHz; ceil(samples / 160) frames, the last one possibly partial),
the phone at the frame's centre. Phones carry the language of their run (``zh:ong``,
``en:u:``; stress marks dropped), pauses and the added silences are ``sil`` = 0. The
inventory, ``--out/local/phones.txt`` (``<phone> <id>``), is ``sil`` then the sorted
union of the phones of all sets, so ids agree across sets (it depends on the preset
and seed; its size is ``num_phones`` in ``mini_cs_stats.json``). The same frames give
every set a ``lang_ali`` file, ``<utt> code code ...``: the language of each frame's phone
(``zh``, ``en``...), ``-`` for silence. The language runs give every set a ``word_lang`` file,
``<utt> code code ...``: the language of each word (whitespace-separated token) of ``src_text``
(a Mandarin run without spaces is one word).
"""

import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.data import audio, kaldi_dir
from csst_espnet.data.kaldi_dir import DataDir, sort_key
from csst_espnet.synth import espeak
from csst_espnet.synth.pairs import Language, LanguagePair, Segments, Sentence, get_pairs

FS = 16000
CS = "cs"  # utt2lang of code-switched speech

# eSpeak NG voice variants come in families (the variant's name without its trailing number, in
# lower case: m1..m8 -> "m", klatt..klatt6 -> "klatt"). Whole families are held out: the unseen
# test sets speak with TEST_FAMILIES, dev_unseen with DEV_FAMILIES, and neither is ever heard in
# training, dev or the clean test sets; every other variant (DEV/TEST: none of them) is a training voice.
TEST_FAMILIES = ("iven", "steph", "edward", "andy", "annie", "belinda", "grandpa", "pablo", "zac", "travis")
DEV_FAMILIES = ("gene", "ricishaymax", "linda", "caleb", "quincy", "michel")
# sentences per utterance: probabilities of 1, 2, 3 (every set; utterances of about 1.5 to 12 s)
SENTENCES_PER_UTT = (0.6, 0.3, 0.1)
SPEAKER_PITCH = (20, 80)  # eSpeak pitch 0..100, drawn per speaker
SPEAKER_RATE = (0.85, 1.2)  # scale of the language's speaking rate, drawn per speaker
# share of a CS sentence's term slots (and aligned phrases) said in the target language, drawn per utterance
SWITCH_SHARE = (0.15, 1.0)

# speaker groups: train (training voices), test (new speakers, training voice families), dev_unseen /
# test_unseen (held-out voice families)
UNSEEN = "_unseen"  # suffix of a set with the sentences and renditions of its base set, spoken by the
                    # speakers of held-out voice families: dev_unseen (DEV_FAMILIES), test_*_unseen (TEST_FAMILIES)

PRESETS: Dict[str, Dict[str, int]] = {
    # Utterances per set of every source language ({source}: zh, es...; train_cs, test_cs: of each pair
    # that code-switches); dev: utterances per source language; lm_extra: LM sentences per source
    # language; speakers (each speaks every language) of the training and of each test group.
    # a few utterances per set, for tests and CI (seconds to make)
    "tiny": {"train_asr_{source}": 6, "train_asr_{target}": 6, "train_st_{source}": 6, "train_cs": 3,
             "dev": 4, "test_cs": 3, "test_mono": 3, "lm_extra": 30, "train_speakers": 4,
             "test_speakers": 2},
    # a multilingual corpus whose recipe trains on a CPU (egs2/mini_multi/st1/README.md: sizes, cost)
    "small": {"train_asr_{source}": 150, "train_asr_{target}": 150, "train_st_{source}": 150, "train_cs": 100,
              "dev": 16, "test_cs": 20, "test_mono": 20, "lm_extra": 300, "train_speakers": 24,
              "test_speakers": 6},
    # sized for the whole recipe on 2 CPU cores (README: what it costs)
    "demo": {"train_asr_{source}": 420, "train_asr_{target}": 420, "train_st_{source}": 420,
             "train_cs": 150, "dev": 100, "test_cs": 120, "test_mono": 120, "lm_extra": 1500,
             "train_speakers": 48, "test_speakers": 8},
}


def voice_families(variants: Sequence[str]) -> Dict[str, List[str]]:
    """Variants by family (see :data:`TEST_FAMILIES`); names with spaces are left out."""
    out: Dict[str, List[str]] = {}
    for v in sorted(variants):
        if " " not in v:
            out.setdefault(v.rstrip("0123456789").lower(), []).append(v)
    return out


def voice_groups(variants: Sequence[str]) -> Dict[str, List[str]]:
    """The variants of each speaker group: ``train`` (also ``test``), ``dev_unseen``, ``test_unseen``."""
    families = voice_families(variants)
    missing = [f for f in TEST_FAMILIES + DEV_FAMILIES if f not in families]
    if missing:
        raise ValueError(f"eSpeak NG has no voice variants of the families {missing}")
    held = set(TEST_FAMILIES + DEV_FAMILIES)
    train = [v for f, vs in families.items() if f not in held for v in vs]
    groups = {"train": train, "test": train,
              "dev_unseen": [v for f in DEV_FAMILIES for v in families[f]],
              "test_unseen": [v for f in TEST_FAMILIES for v in families[f]]}
    return groups


@dataclass(frozen=True)
class SetInfo:
    name: str
    tag: str  # utterance ids: <speaker>-<tag><number>, unique over the corpus
    group: str  # speaker group
    source: Optional[str]  # the source language of its sentences (None: English ASR, dev)
    base: Optional[str] = None  # the set whose utterances an ``_unseen`` set speaks again


def _suffix(pairs: Sequence[LanguagePair], src: str) -> str:
    """What the names of a source language's sets add: nothing in a one-pair corpus (``test_cs``),
    ``_<source>`` in a multilingual one (``test_cs_es``)."""
    return "" if len(pairs) == 1 else f"_{src}"


def set_table(pairs: Sequence[LanguagePair]) -> List[SetInfo]:
    """The sets of a corpus of ``pairs`` in the order they are made. One pair (zh-en): train_asr_zh,
    train_asr_en, train_st_zh, train_cs, dev, dev_unseen, test_cs, test_mono, test_cs_unseen,
    test_mono_unseen. Several: train_asr_<source> of each, train_asr_en, train_st_<source>,
    train_cs_<source> (of the pairs that code-switch), dev, dev_unseen, test_cs_<source>,
    test_mono_<source>, and the ``_unseen`` copies of the test sets."""
    tgt = pairs[0].target.code
    srcs = [p.source.code for p in pairs]
    cs = [p.source.code for p in pairs if p.code_switch]
    one = len(pairs) == 1

    def tag(base: str, src: str) -> str:
        return base if one else base + src

    out = [SetInfo(f"train_asr_{s}", f"asr{s}", "train", s) for s in srcs]
    out.append(SetInfo(f"train_asr_{tgt}", f"asr{tgt}", "train", None))
    out += [SetInfo(f"train_st_{s}", f"st{s}", "train", s) for s in srcs]
    out += [SetInfo(f"train_cs{_suffix(pairs, s)}", tag("cs", s), "train", s) for s in cs]
    out += [SetInfo("dev", "dev", "train", None), SetInfo("dev" + UNSEEN, "devu", "dev_unseen", None, "dev")]
    tests = [SetInfo(f"test_cs{_suffix(pairs, s)}", tag("tcs", s), "test", s) for s in cs]
    tests += [SetInfo(f"test_mono{_suffix(pairs, s)}", tag("tmono", s), "test", s) for s in srcs]
    return out + tests + [SetInfo(t.name + UNSEEN, t.tag + "u", "test_unseen", t.source, t.name) for t in tests]


def set_names(pairs: Sequence[LanguagePair]) -> List[str]:
    """The sets, in the order they are made (zh-en: train_asr_zh, train_asr_en, train_st_zh, ...)."""
    return [x.name for x in set_table(pairs)]


def test_sets(pairs: Sequence[LanguagePair]) -> List[str]:
    """The test sets (each with a paraphrased second reference ``text.2``)."""
    return [x.name for x in set_table(pairs) if x.name.startswith("test_")]


def unseen_of(pairs: Sequence[LanguagePair]) -> Dict[str, str]:
    """Each ``_unseen`` set -> the set whose utterances it speaks again."""
    return {x.name: x.base for x in set_table(pairs) if x.base}


def preset_sizes(preset: str, pairs: Sequence[LanguagePair]) -> Dict[str, int]:
    """The preset's sizes: utterances per set (by set name; ``dev``: in all), ``lm_extra`` (per source
    language), speaker counts."""
    tgt = pairs[0].target.code
    out: Dict[str, int] = {}
    for key, n in PRESETS[preset].items():
        if "{source}" in key:
            out.update({key.format(source=p.source.code): n for p in pairs})
        elif key in ("train_cs", "test_cs", "test_mono"):
            out.update({key + _suffix(pairs, p.source.code): n for p in pairs
                        if p.code_switch or key == "test_mono"})
        elif key == "dev":
            out[key] = n * len(pairs)
        else:
            out[key.format(target=tgt)] = n
    return out


def corpus_languages(pairs: Sequence[LanguagePair]) -> List[Language]:
    """The languages of a corpus of ``pairs``: the sources, then the target."""
    return [p.source for p in pairs] + [pairs[0].target]


@dataclass(frozen=True)
class Speaker:
    spk: str
    variant: str  # eSpeak voice variant, the same in every language
    voices: Tuple[Tuple[str, str], ...]  # (language code, eSpeak voice without variant)
    pitch: int  # eSpeak pitch 0..100
    rate_scale: float

    def voice(self, lang: str) -> str:
        return f"{dict(self.voices)[lang]}+{self.variant}"

    def record(self, languages: Sequence[Language]) -> Dict:
        """As ``mini_cs_stats.json`` lists it: the voice only of the languages that offer a choice."""
        choice = {lang.code for lang in languages if len(lang.voices + lang.unseen_voices) > 1}
        chosen = {f"{lang}_voice": v for lang, v in self.voices if lang in choice}
        return {"spk": self.spk, "variant": self.variant, **chosen, "pitch": self.pitch,
                "rate_scale": self.rate_scale}


def make_speakers(seed: int, n: int, prefix: str, variants: Sequence[str], languages: Sequence[Language],
                  unseen: bool = False) -> List[Speaker]:
    """``n`` speakers, each a variant of ``variants`` (in a shuffled order, all used before one
    repeats), a voice per language (``unseen``: the held-out accents too), pitch and rate."""
    order = list(variants)
    random.Random(f"variants:{seed}:{prefix}").shuffle(order)
    out = []
    for i in range(n):
        rng = random.Random(f"spk:{seed}:{prefix}:{i}")
        out.append(Speaker(
            spk=f"{prefix}{i + 1:02d}",
            variant=order[i % len(order)],
            voices=tuple((lang.code, rng.choice(lang.voices + (lang.unseen_voices if unseen else ())))
                         for lang in languages),
            pitch=rng.randint(*SPEAKER_PITCH),
            rate_scale=round(rng.uniform(*SPEAKER_RATE), 3),
        ))
    return out


@dataclass
class Utt:
    utt: str
    spk: Speaker
    set: str
    lang: str  # source, target or CS code (of the speech)
    task: str  # asr, st
    sentences: List[Segments]  # as spoken: the language runs of each sentence
    text: str
    src_text: str
    text2: Optional[str]
    seed: int
    keys: Tuple[str, ...]  # of its sentences


@dataclass
class SynthJob:
    utt: str
    path: str
    sentences: List[Segments]
    voices: Dict[str, Tuple[str, int]]  # language code -> (eSpeak voice, rate)
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


def frame_language(phone: str) -> str:
    """The ``lang_ali`` label of a frame's phone: its language (``zh:ong`` -> ``zh``), ``-`` for silence."""
    return kaldi_dir.UNLABELLED_FRAME if phone == espeak.SILENCE else phone.split(":", 1)[0]


def synth_utterance(engine: "espeak.ESpeak", job: SynthJob) -> Tuple[str, int, str, List[str]]:
    """Synthesise one utterance to a 16 kHz 16-bit wav; returns (utt, samples, md5, frame phones)."""
    import soundfile

    rng = np.random.default_rng(job.seed)
    sr = engine.sample_rate
    pieces: List[np.ndarray] = []
    phones: espeak.Phones = []  # over the concatenated runs, at the engine's rate
    pos = 0
    runs = [(text, lang, i) for i, segments in enumerate(job.sentences) for text, lang in segments]
    for k, (text, lang, sentence) in enumerate(runs):
        voice, rate = job.voices[lang]
        x, run_phones = engine.synth_phones(text, voice, rate=rate, pitch=job.pitch, seed=job.seed + k)
        a, b = _trim_bounds(x, sr)
        if b == a:
            raise espeak.ESpeakError(f"{job.utt}: no audio for {text!r} ({lang})")
        if pieces:  # a short pause at a language switch, a longer one between sentences
            pause = (0.2, 0.45) if sentence != runs[k - 1][2] else (0.03, 0.09)
            pieces.append(np.zeros(int(rng.uniform(*pause) * sr), dtype=np.int16))
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
    pcm16 = np.concatenate([lead] + pieces + [tail])  # int16 at the engine's rate
    y = audio.resample(pcm16.astype(np.float32) / 32768.0, sr, FS)
    y = y * float(rng.uniform(0.6, 0.9)) / max(1e-3, float(np.abs(y).max()))
    y = y + rng.normal(0.0, 2.0 / 32768, size=len(y)).astype(np.float32)  # faint dither
    pcm = np.clip(np.round(y * 32768), -32768, 32767).astype(np.int16)
    os.makedirs(os.path.dirname(job.path), exist_ok=True)
    soundfile.write(job.path, pcm, FS, subtype="PCM_16", format="WAV")
    return job.utt, len(pcm), hashlib.md5(pcm.tobytes()).hexdigest(), frame_labels(phones, sr, len(pcm))


# ---------------------------------------------------------------- corpus plan
def plan_corpus(
    pairs: Sequence[LanguagePair], seed: int, sizes: Dict[str, int]
) -> Tuple[Dict[str, List[Utt]], Dict[str, List], Dict]:
    """Decide every utterance (text, speaker, voice) and the LM text of a corpus of ``pairs`` (one pair,
    or several with the same target), without audio.

    Returns (utterances of each set, LM text keyed ``SRC`` / ``TGT`` / ``SRC2TGT`` for every source
    language, facts for the stats). A dev/test sentence's translation is never a training sentence's
    of any language, nor in the LM text.
    """
    tgt = pairs[0].target.code
    by_src = {p.source.code: p for p in pairs}
    table = {x.name: x for x in set_table(pairs)}
    languages = corpus_languages(pairs)
    pools = {src: p.sentences(seed) for src, p in by_src.items()}
    used_keys: Dict[str, set] = {src: set() for src in by_src}
    held_targets: Dict[str, set] = {"dev": set(), "test": set()}  # translations held out, by role

    def sfx(src: str) -> str:
        return _suffix(pairs, src)

    def lengths(name: str, n: int) -> List[int]:
        """Sentences in each of the ``n`` utterances of set ``name``."""
        rng = random.Random(f"lengths:{seed}:{name}")
        return rng.choices(range(1, len(SENTENCES_PER_UTT) + 1), weights=SENTENCES_PER_UTT, k=n)

    def grouped(sents: Sequence[Sentence], ks: Sequence[int]) -> List[List[Sentence]]:
        out, i = [], 0
        for k in ks:
            out.append(list(sents[i : i + k]))
            i += k
        return out

    def take(name: str, src: str, n: int, need_switch: bool, role: str) -> List[List[Sentence]]:
        """Held-out sentences of ``src`` for ``n`` utterances of a ``role`` (dev or test) set, never used
        again. Their translations are never held out for the other role; translations already held
        out for this role by another language come first (grammars with one English side make test
        sets of the same English sentences, so few translations are lost to training)."""
        ks = lengths(name, n)
        fresh = [s for s in pools[src] if s.key not in used_keys[src] and (s.can_switch or not need_switch)
                 and not any(s.target in held for r, held in held_targets.items() if r != role)]
        fresh = [s for s in fresh if s.target in held_targets[role]] + \
                [s for s in fresh if s.target not in held_targets[role]]
        out = fresh[: sum(ks)]
        used_keys[src].update(s.key for s in out)
        held_targets[role].update(s.target for s in out)
        if len(out) < sum(ks):
            raise ValueError(f"the {src} sentence grammar is too small for {sum(ks)} more held-out sentences")
        return grouped(out, ks)

    # held-out sentences: (sentences, speech kind, source) of each test set and of dev
    held: Dict[str, List[Tuple[List[Sentence], str]]] = {}
    dev: List[Tuple[List[Sentence], str, str]] = []
    dev_share = [sizes["dev"] // len(pairs) + (i < sizes["dev"] % len(pairs)) for i in range(len(pairs))]
    for (src, p), n_dev in zip(by_src.items(), dev_share):
        if p.code_switch:
            held[f"test_cs{sfx(src)}"] = [(g, CS) for g in take(f"test_cs{sfx(src)}", src,
                                                                  sizes[f"test_cs{sfx(src)}"], True, "test")]
        held[f"test_mono{sfx(src)}"] = [(g, src) for g in take(f"test_mono{sfx(src)}", src,
                                                                sizes[f"test_mono{sfx(src)}"], False, "test")]
        n_dev_cs = n_dev // 2 if p.code_switch else 0
        dev_cs = take(f"dev_cs{sfx(src)}", src, n_dev_cs, True, "dev") if p.code_switch else []
        dev += [(g, src, src) for g in take(f"dev_mono{sfx(src)}", src, n_dev - n_dev_cs, False, "dev")]
        dev += [(g, CS, src) for g in dev_cs]
    held_out = held_targets["dev"] | held_targets["test"]
    train_pool = {src: [s for s in pool if s.key not in used_keys[src] and s.target not in held_out]
                  for src, pool in pools.items()}

    variants = voice_groups(espeak.voice_variants())
    speakers = {
        "train": make_speakers(seed, sizes["train_speakers"], "tr", variants["train"], languages),
        "test": make_speakers(seed, sizes["test_speakers"], "te", variants["test"], languages),
        "dev_unseen": make_speakers(seed, sizes["test_speakers"], "du", variants["dev_unseen"], languages,
                                    unseen=True),
        "test_unseen": make_speakers(seed, sizes["test_speakers"], "tu", variants["test_unseen"], languages,
                                     unseen=True),
    }

    sets: Dict[str, List[Utt]] = {}
    used_train: set = set()  # (source, sentence key)

    def draw(name: str, srcs: Sequence[str], need_switch: bool) -> List[List[Sentence]]:
        """Training sentences of the sources ``srcs`` for the utterances of set ``name``."""
        candidates = [(src, s) for src in srcs for s in train_pool[src] if s.can_switch or not need_switch]
        ks = lengths(name, sizes[name])
        if sum(ks) > len(candidates):
            raise ValueError(f"{name}: {sum(ks)} sentences asked, the grammar has {len(candidates)} training sentences")
        rng = random.Random(f"draw:{seed}:{name}")
        chosen = rng.sample(candidates, sum(ks))
        used_train.update((src, s.key) for src, s in chosen)
        return grouped([s for _, s in chosen], ks)

    def rendition(group: List[Sentence], kind: str, src: Optional[str], rng: random.Random) -> List[Segments]:
        """The language runs of each sentence: all source, all target, or code-switched (each
        sentence of a CS utterance switches terms, or, with several sentences, is said wholly in
        one language; at least one switches)."""
        if kind != CS:
            return [[(s.target if kind == tgt else s.source, kind)] for s in group]
        p_switch = rng.uniform(*SWITCH_SHARE)
        out = []
        for s in group:
            r = rng.random() if len(group) > 1 else 1.0
            out.append([(s.source, src)] if r < 0.15 else [(s.target, tgt)] if r < 0.3
                       else s.cs_segments(rng, p_switch=p_switch))
        if all(len(segs) == 1 for segs in out):
            out[0] = group[0].cs_segments(rng, p_switch=p_switch)
        return out

    def build(name: str, groups: Sequence[Tuple[List[Sentence], str, Optional[str]]], task: str) -> List[Utt]:
        """groups: (sentences, speech kind: a language code or CS, their source language)."""
        spk_list = speakers[table[name].group]
        utts = []
        for i, (group, kind, src) in enumerate(groups):
            rng = random.Random(f"utt:{seed}:{name}:{i}")
            spk = spk_list[rng.randrange(len(spk_list))]
            runs = rendition(group, kind, src, rng)
            # (every pair writes English alike: English ASR has no source language of its own)
            join = by_src[src].join_segments if src else pairs[0].join_segments
            text_src = " ".join(join(segs) for segs in runs)
            utts.append(Utt(
                utt=f"{spk.spk}-{table[name].tag}{i:05d}", spk=spk, set=name, lang=kind, task=task,
                sentences=runs, text=text_src if task == "asr" else " ".join(s.target for s in group),
                src_text=text_src,
                text2=" ".join(s.target_alt for s in group) if name.startswith("test_") else None,
                seed=_int_seed(seed, name, i), keys=tuple(s.key for s in group),
            ))
        return utts

    def unseen(name: str, base: List[Utt]) -> List[Utt]:
        """The utterances of ``base`` (same runs, same synthesis seed) by the speakers of ``name``."""
        spk_list = speakers[table[name].group]
        out = []
        for i, u in enumerate(base):
            spk = spk_list[random.Random(f"utt:{seed}:{name}:{i}").randrange(len(spk_list))]
            out.append(Utt(utt=f"{spk.spk}-{table[name].tag}{i:05d}", spk=spk, set=name, lang=u.lang, task=u.task,
                           sentences=u.sentences, text=u.text, src_text=u.src_text, text2=u.text2,
                           seed=u.seed, keys=u.keys))
        return out

    for src in by_src:
        name = f"train_asr_{src}"
        sets[name] = build(name, [(g, src, src) for g in draw(name, [src], False)], "asr")
    name = f"train_asr_{tgt}"
    sets[name] = build(name, [(g, tgt, None) for g in draw(name, list(by_src), False)], "asr")
    for src, p in by_src.items():
        name = f"train_st_{src}"
        sets[name] = build(name, [(g, src, src) for g in draw(name, [src], False)], "st")
        if p.code_switch:
            name = f"train_cs{sfx(src)}"
            sets[name] = build(name, [(g, CS, src) for g in draw(name, [src], True)], "st")
    random.Random(f"dev:{seed}").shuffle(dev)
    sets["dev"] = build("dev", [(g, kind, src) for g, kind, src in dev], "st")
    for name, groups in held.items():
        sets[name] = build(name, [(g, kind, table[name].source) for g, kind in groups], "st")
    for name, base in unseen_of(pairs).items():
        sets[name] = unseen(name, sets[base])

    # ---- LM text: training sentences plus extra ones, never a dev/test sentence
    src_lines: Dict[str, List[str]] = {src: [] for src in by_src}
    tgt_lines: List[str] = [u.src_text for u in sets[f"train_asr_{tgt}"]]
    pair_lines: Dict[str, List[Tuple[str, str]]] = {src: [] for src in by_src}
    extra_count = 0
    for src, p in by_src.items():
        st = sets[f"train_st_{src}"] + (sets[f"train_cs{sfx(src)}"] if p.code_switch else [])
        src_lines[src] += [u.src_text for u in sets[f"train_asr_{src}"] + sets[f"train_st_{src}"]]
        for u in st:
            tgt_lines.append(u.text)
            pair_lines[src].append((u.src_text, u.text))
        extra = [s for s in train_pool[src] if (src, s.key) not in used_train][: sizes["lm_extra"]]
        extra_count += len(extra)
        rng = random.Random(f"lm:{seed}{sfx(src)}")
        for s in extra:
            src_lines[src].append(s.source)
            tgt_lines.append(s.target)
            pair_lines[src].append((s.source, s.target))
            if s.can_switch and rng.random() < 0.5:
                pair_lines[src].append((p.join_segments(s.cs_segments(rng)), s.target))
        # the extra sentences again in lines of 1-3, as utterances have them (the LLM translates them whole)
        for group in grouped(extra, lengths(f"lm_extra{sfx(src)}", len(extra))):
            if len(group) > 1:
                src_lines[src].append(" ".join(s.source for s in group))
                tgt_lines.append(" ".join(s.target for s in group))
                pair_lines[src].append((src_lines[src][-1], tgt_lines[-1]))
    lm = {src: _dedup(lines) for src, lines in src_lines.items()}
    lm[tgt] = _dedup(tgt_lines)
    lm.update({f"{src}2{tgt}": _dedup(lines) for src, lines in pair_lines.items()})
    info = {
        "sentences_in_grammar": sum(len(pool) for pool in pools.values()),
        "held_out_sentences": sum(len(keys) for keys in used_keys.values()),
        "lm_extra_sentences": extra_count,
        "speakers": {group: [s.record(languages) for s in spk] for group, spk in speakers.items()},
        "voice_families": {"dev_unseen": list(DEV_FAMILIES), "test_unseen": list(TEST_FAMILIES)},
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


def synth_jobs(utts: Sequence[Utt], wav_dir: str, languages: Sequence[Language]) -> List[SynthJob]:
    jobs = []
    for u in utts:
        rng = random.Random(f"rate:{u.seed}")
        jitter = rng.uniform(0.94, 1.06)
        jobs.append(SynthJob(
            utt=u.utt, path=os.path.join(wav_dir, u.set, f"{u.utt}.wav"), sentences=u.sentences,
            voices={lang.code: (u.spk.voice(lang.code), int(round(lang.rate * u.spk.rate_scale * jitter)))
                    for lang in languages},
            pitch=max(0, min(100, u.spk.pitch + rng.randint(-4, 4))), seed=u.seed,
        ))
    return jobs


def phone_inventory(labels: Dict[str, List[str]]) -> Dict[str, int]:
    """``sil`` = 0, then every other phone of ``labels`` in sorted order."""
    phones = sorted({p for seq in labels.values() for p in seq} - {espeak.SILENCE}, key=sort_key)
    return {p: i for i, p in enumerate([espeak.SILENCE] + phones)}


def word_languages(sentences: Sequence[Segments]) -> List[str]:
    """The language of every whitespace-separated word of the written runs (``join_segments`` puts a
    space between runs): the ``word_lang`` labels of an utterance."""
    return [lang for segments in sentences for text, lang in segments for _ in text.split()]


def _voice_desc(u: Utt, j: SynthJob, languages: Sequence[Language]) -> str:
    """utt2voice: ``VOICE[,VOICE] rate=R pitch=P``, the source voice first in code-switched speech."""
    spoken = {lang for segments in u.sentences for _, lang in segments}
    langs = [lang.code for lang in languages if lang.code in spoken]
    return ",".join(j.voices[lang][0] for lang in langs) + f" rate={j.voices[langs[0]][1]} pitch={j.pitch}"


def write_set(out_dir: str, utts: Sequence[Utt], jobs: Sequence[SynthJob], nsamples: Dict[str, int],
              labels: Dict[str, List[str]], phone_ids: Dict[str, int], languages: Sequence[Language]) -> None:
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
    d.utt[kaldi_dir.LANG_ALI] = {u.utt: " ".join(frame_language(p) for p in labels[u.utt]) for u in utts}
    d.utt[kaldi_dir.WORD_LANG] = {}
    for u in utts:
        langs = word_languages(u.sentences)
        if len(langs) != len(u.src_text.split()):
            raise ValueError(f"{out_dir}: utterance {u.utt}: {len(langs)} word languages for the "
                             f"{len(u.src_text.split())} words of {u.src_text!r}")
        d.utt[kaldi_dir.WORD_LANG][u.utt] = " ".join(langs)
    d.utt["utt2voice"] = {u.utt: _voice_desc(u, j, languages) for u, j in zip(utts, jobs)}
    if any(u.text2 is not None for u in utts):
        d.utt["text.2"] = {u.utt: u.text2 for u in utts}
    d.write(out_dir)


def write_lm_text(out_dir: str, lm: Dict, pairs: Sequence[LanguagePair]) -> None:
    """``LANG.txt`` of every language, ``SRC2TGT.tsv`` (source TAB translation) of every pair."""
    os.makedirs(out_dir, exist_ok=True)
    for lang in corpus_languages(pairs):
        with open(os.path.join(out_dir, f"{lang.code}.txt"), "w", encoding="utf-8") as f:
            f.writelines(x + "\n" for x in lm[lang.code])
    for p in pairs:
        name = f"{p.source.code}2{p.target.code}"
        with open(os.path.join(out_dir, f"{name}.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{a}\t{b}\n" for a, b in lm[name])


def generate(
    out: str,
    pair: str = "zh-en",
    seed: int = 777,
    preset: str = "tiny",
    wav_dir: Optional[str] = None,
    nj: int = 2,
    sizes: Optional[Dict[str, int]] = None,
    progress: bool = True,
) -> Dict:
    """Make the corpus of ``pair``: one language pair (``zh-en``) or several with the same target,
    comma-separated (``zh-en,es-en,fr-en,de-en``); returns the statistics also written to
    ``out/local/mini_cs_stats.json``. ``sizes`` overrides entries of :func:`preset_sizes`."""
    from tqdm import tqdm

    pairs = get_pairs(pair)
    languages = corpus_languages(pairs)
    cfg = preset_sizes(preset, pairs)
    cfg.update({k: v for k, v in (sizes or {}).items() if v is not None})
    out = os.path.abspath(out)
    wav_dir = os.path.abspath(wav_dir or os.path.join(os.path.dirname(out), "db", "mini_cs", "wav"))
    if not espeak.is_available():
        raise espeak.ESpeakError("eSpeak NG is not available: pip install espeakng-loader")

    sets, lm, info = plan_corpus(pairs, seed, cfg)
    all_jobs: List[SynthJob] = []
    jobs_of: Dict[str, List[SynthJob]] = {}
    for name in set_names(pairs):
        jobs_of[name] = synth_jobs(sets[name], wav_dir, languages)
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
    bar = tqdm(total=len(all_jobs), desc=f"synthesising {pair}", unit="utt", disable=not progress, mininterval=1.0)
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
    kinds = [lang.code for lang in languages] + [CS]
    for name in set_names(pairs):
        write_set(os.path.join(out, name), sets[name], jobs_of[name], nsamples, labels, phone_ids, languages)
        durs = [nsamples[u.utt] / FS for u in sets[name]]
        stats["sets"][name] = {
            "utterances": len(durs), "hours": round(sum(durs) / 3600, 4),
            "min_dur": round(min(durs), 2), "mean_dur": round(sum(durs) / len(durs), 2),
            "max_dur": round(max(durs), 2),
            "languages": {k: n for k in kinds if (n := sum(1 for u in sets[name] if u.lang == k))},
        }
    write_lm_text(os.path.join(out, "lm_text"), lm, pairs)
    stats["lm_text"] = {k: len(v) for k, v in lm.items()}
    stats["total_utterances"] = len(all_jobs)
    stats["total_hours"] = round(sum(nsamples.values()) / FS / 3600, 4)
    stats["audio_md5"] = hashlib.md5("".join(f"{k}{md5[k]}" for k in sorted(md5, key=sort_key)).encode()).hexdigest()
    stats.update(info)
    stats["num_phones"] = len(phone_ids)
    os.makedirs(os.path.join(out, "local"), exist_ok=True)
    with open(os.path.join(out, "local", "phones.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{p} {i}\n" for p, i in phone_ids.items())
    with open(os.path.join(out, "local", "mini_cs_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
    return stats


def log_summary(stats: Dict, out: str) -> None:
    """Log what :func:`generate` made (``out``: its output directory)."""
    for name, s in stats["sets"].items():
        logging.info("%-19s %5d utt %7.3f h  dur %.2f/%.2f/%.2f s  %s", name, s["utterances"],
                     s["hours"], s["min_dur"], s["mean_dur"], s["max_dur"], s["languages"])
    logging.info("lm_text: %s", stats["lm_text"])
    logging.info("phone_ali: %d phones (sil = 0) in %s", stats["num_phones"],
                 os.path.join(out, "local", "phones.txt"))
    logging.info("total %d utterances, %.3f h, synthesis %.1f s with %d jobs (audio md5 %s)",
                 stats["total_utterances"], stats["total_hours"], stats["synthesis_seconds"],
                 stats["nj"], stats["audio_md5"])
