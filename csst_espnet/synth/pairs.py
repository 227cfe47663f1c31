"""Language pairs of a synthetic corpus: what the builder needs from one, and the registry.

A pair ``"<source>-<target>"`` (``"zh-en"``) says: speech in the *source* language is translated
into the *target* language, and code-switched speech is source-language speech with some terms
said in the target language. The builder (:mod:`csst_espnet.synth.corpus`) knows nothing else
about the languages: their codes, eSpeak voices and speaking rates come from :class:`Language`,
the sentences from the pair's grammar through :class:`Sentence` and :class:`LanguagePair`.

A corpus is made of one pair or of several with the same target (:func:`get_pairs`): the
multilingual corpus ``zh-en,es-en,fr-en,de-en`` has speech of four source languages translated into
English.

To add a pair: write a module with a sentence grammar that defines ``PAIR`` (a
:class:`LanguagePair`; :mod:`csst_espnet.synth.grammar` renders template grammars), and add it to
:data:`PAIRS`.
"""

import importlib
import random
from dataclasses import dataclass
from typing import Callable, List, Protocol, Sequence, Tuple

# language runs of an utterance as spoken: [(text, language code)], consecutive runs differ in language
Segments = List[Tuple[str, str]]


@dataclass(frozen=True)
class Language:
    code: str  # utt2lang value, phone prefix (``zh:ong``), part of set and LM-text names
    voices: Tuple[str, ...]  # eSpeak voices without variant; a speaker gets one (see corpus.make_speakers)
    rate: int  # eSpeak words-per-minute setting, scaled per speaker and utterance
    unseen_voices: Tuple[str, ...] = ()  # accents only the speakers of the held-out voice families use


class Sentence(Protocol):
    """One sentence of a grammar, with exact translations by construction."""

    @property
    def key(self) -> str:
        """Unique over the grammar (held-out sentences are tracked by it)."""

    @property
    def source(self) -> str:
        """Source-language transcript (written form)."""

    @property
    def target(self) -> str:
        """Its target-language translation; also the transcript of its target-language rendition."""

    @property
    def target_alt(self) -> str:
        """A paraphrased second translation (the test sets' ``text.2``)."""

    @property
    def can_switch(self) -> bool:
        """Whether :meth:`cs_segments` can be called."""

    def cs_segments(self, rng: random.Random, p_switch: float = 0.6) -> Segments:
        """A code-switched rendition drawn with ``rng``, with runs of both languages: each
        switchable term (and phrase, where the grammar aligns phrases) in the target language with
        probability ``p_switch``, at least one."""


@dataclass(frozen=True)
class LanguagePair:
    name: str  # "zh-en"
    source: Language
    target: Language
    # every usable sentence (length-capped for utterances of a few seconds), shuffled by the seed
    sentences: Callable[[int], List[Sentence]]
    # written form of language runs
    join_segments: Callable[[Sequence[Tuple[str, str]]], str]
    # whether its sentences have code-switched renditions (then a corpus has code-switched sets of the pair)
    code_switch: bool = True


# the target language of every pair: American, British and New York voices in training; Scottish and
# Caribbean accents only for the speakers of held-out voice families
ENGLISH = Language("en", voices=("en-us", "en", "en-us-nyc", "en-gb-x-rp"), rate=185,
                   unseen_voices=("en-gb-scotland", "en-029"))

# pair -> module defining PAIR (imported on first use)
PAIRS = {f"{src}-en": f"csst_espnet.synth.grammar_{src}_en" for src in ("zh", "es", "fr", "de")}


def get_pair(name: str) -> LanguagePair:
    """The registered pair ``name``; ValueError listing the available pairs for another name."""
    if name not in PAIRS:
        raise ValueError(f"unknown language pair {name!r}; available: {', '.join(sorted(PAIRS))}")
    return importlib.import_module(PAIRS[name]).PAIR


def get_pairs(spec: str) -> Tuple[LanguagePair, ...]:
    """The registered pairs of ``spec``, comma-separated (``zh-en,es-en``): the languages of one corpus,
    so one target language and each source language once; ValueError otherwise."""
    pairs = tuple(get_pair(name.strip()) for name in spec.split(","))
    if len({p.target.code for p in pairs}) > 1:
        raise ValueError(f"the pairs {spec!r} have different target languages")
    if len({p.source.code for p in pairs}) < len(pairs):
        raise ValueError(f"the pairs {spec!r} repeat a source language")
    return pairs
