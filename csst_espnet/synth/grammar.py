"""Template grammars with exact translations: what every sentence grammar of :mod:`csst_espnet.synth` shares.

A grammar is a lexicon of terms in slot classes (``M``: models, ``A``: methods, ...), each term a source
word with its target-language (English) translation and, where determiners agree with it, its gender,
and a list of sentence templates written in both languages. A template names its slots ``{M}``,
``{M2}`` (a second term of class ``M``, never the same term), ``{M:def}`` (the term with the
determiner form ``def`` of the source language: ``el modelo``, ``der Klassifikator``). English slots
take the bare term; English articles are written in the template (``the {M}``).

A :class:`Sentence` (one template with its slot fills) renders

- ``source``: the source sentence, ``target``: its exact translation, ``target_alt``: a paraphrase;
- ``cs_segments(rng)``: a code-switched rendition, the source sentence with some terms said in
  English (keeping the source determiner: ``este model``, ``这个 model``) and, where the template
  marks aligned phrase boundaries with ``|`` in both languages, some phrases after the first said
  wholly in English (``usamos el gradient descent to train this model``). Its translation is
  ``target``: code-switching changes how the sentence is said, not what it means.

Language modules (``grammar_zh_en``, ``grammar_es_en``...) give the lexicon, the templates, the
determiners (:class:`Grammar` ``determiner``) and the length measure; this module renders,
enumerates and samples.
"""

import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from csst_espnet.synth.pairs import Segments

# {M}, {M2}, {M:def}, {Q2:this_acc}
_SLOT = re.compile(r"\{([A-Z])(\d?)(?::([a-z_]+))?\}")
PHRASE = "|"  # aligned phrase boundary of a template (both languages, same count)


class Term(NamedTuple):
    source: str
    target: str  # English, in the form used after "the"/"this"
    gender: str = ""  # "m", "f", "n" where the source language's determiners agree


class Template(NamedTuple):
    source: str
    target: str
    target_alt: str  # a paraphrased translation


def slots_of(template: str) -> List[str]:
    """Slot names in order of first appearance: ``['A', 'M']``."""
    seen: List[str] = []
    for m in _SLOT.finditer(template):
        name = m.group(1) + m.group(2)
        if name not in seen:
            seen.append(name)
    return seen


def phrases(template: str) -> List[str]:
    """The template's phrases (split at :data:`PHRASE`), without surrounding spaces."""
    return [p.strip() for p in template.split(PHRASE)]


def join_segments(segments: Sequence[Tuple[str, str]]) -> str:
    """Written form of language runs: runs separated by single spaces (so Mandarin runs, which have no
    spaces, get spaces only around English ones)."""
    return " ".join(t.strip() for t, _ in segments if t.strip())


def words(text: str) -> List[str]:
    """The words of a text of a spaced script, split at spaces and apostrophes (``l'encodeur``)."""
    return re.findall(r"[^\s']+", text)


def no_determiner(term: Term, form: str) -> str:
    """The determiner of a language without slot forms (Mandarin): a form is an error."""
    raise ValueError(f"slot form {form!r} of {term.source!r}: this grammar has no determiner forms")


@dataclass(frozen=True)
class Determiners:
    """Determiner forms of a language: ``forms[form][gender]`` (with its trailing space or apostrophe).
    Before a term starting with one of ``vowels`` the key ``"<gender>+v"`` is used where the form has
    one (French elision: ``l'``, ``cet``, ``de l'``)."""

    forms: Dict[str, Dict[str, str]]
    vowels: str = ""

    def __call__(self, term: Term, form: str) -> str:
        by_gender = self.forms[form]
        if term.source[:1].lower() in self.vowels and f"{term.gender}+v" in by_gender:
            return by_gender[f"{term.gender}+v"]
        return by_gender[term.gender]


@dataclass(eq=False)
class Grammar:
    """Lexicon and templates of one source language -> English.

    ``determiner(term, form)``: the source-language words before a term in slot form ``form``, with
    their trailing space or apostrophe (``"el "``, ``"l'"``). ``source_length``: the length the
    pool's cap counts (Mandarin: characters; others: words). ``code_switch``: whether the grammar
    makes code-switched renditions; only then must the source and the target of a template have the
    same phrases (:data:`PHRASE`).
    """

    source: str  # language codes of the runs of code-switched renditions
    target: str
    lexicon: Dict[str, List[Term]]
    templates: List[Template]
    source_length: Callable[[str], int]
    determiner: Callable[[Term, str], str] = no_determiner
    code_switch: bool = True

    def __post_init__(self):
        for i, t in enumerate(self.templates):
            src, tgt, alt = (slots_of(x) for x in t)
            if sorted(src) != sorted(tgt) or sorted(src) != sorted(alt):
                raise ValueError(f"template {i}: slots differ between languages: {t}")
            if PHRASE in t.target_alt or (self.code_switch and len(phrases(t.source)) != len(phrases(t.target))):
                raise ValueError(f"template {i}: the source and the target must have the same phrases: {t}")
            for m in _SLOT.finditer(t.source):  # every form of every term exists
                for term in self.lexicon[m.group(1)] if m.group(3) else ():
                    try:
                        self.determiner(term, m.group(3))
                    except KeyError as e:
                        raise ValueError(f"template {i}: no determiner {m.group(3)!r} for {term}") from e

    def render(self, template: str, terms: Dict[str, Term], target: bool) -> str:
        """A template (one language) with its slots filled; phrase marks removed."""
        def fill(m: re.Match) -> str:
            term = terms[m.group(1) + m.group(2)]
            if target:
                return term.target
            return (self.determiner(term, m.group(3)) if m.group(3) else "") + term.source

        return " ".join(_SLOT.sub(fill, p) for p in phrases(template))

    def all_sentences(self) -> List["Sentence"]:
        """Every sentence the grammar can make (two same-class slots get different terms)."""
        out: List[Sentence] = []
        for ti, t in enumerate(self.templates):
            names = slots_of(t.source)
            ranges = [range(len(self.lexicon[n[0]])) for n in names]
            for combo in itertools.product(*ranges):
                fills = tuple(zip(names, combo))
                by_class: Dict[str, List[int]] = {}
                for n, i in fills:
                    by_class.setdefault(n[0], []).append(i)
                if any(len(v) != len(set(v)) for v in by_class.values()):
                    continue
                out.append(Sentence(self, ti, fills))
        return out

    def sentence_pool(self, seed: int, max_source: Optional[int] = None,
                      max_target_words: Optional[int] = None) -> List["Sentence"]:
        """All sentences (optionally length-capped: ``source_length`` of the source, words of the
        target), with unique source and target strings, shuffled by ``seed``."""
        seen_src, seen_tgt = set(), set()
        pool = []
        for s in self.all_sentences():
            src, tgt = s.source, s.target
            if src in seen_src or tgt in seen_tgt:
                continue
            if max_source is not None and self.source_length(src) > max_source:
                continue
            if max_target_words is not None and len(tgt.split()) > max_target_words:
                continue
            seen_src.add(src)
            seen_tgt.add(tgt)
            pool.append(s)
        rng = random.Random(f"pool:{seed}")
        rng.shuffle(pool)
        return pool

    def words(self, target: bool) -> Set[str]:
        """Every word (:func:`words`) a sentence of the grammar can have in the target (English) or the
        source language: template words, terms, determiners; code-switched renditions mix the two."""
        out: Set[str] = set()
        for t in self.templates:
            for x in ((t.target, t.target_alt) if target else (t.source,)):
                out.update(words(_SLOT.sub(" ", x).replace(PHRASE, " ")))
            for m in ([] if target else _SLOT.finditer(t.source)):
                for term in self.lexicon[m.group(1)] if m.group(3) else ():
                    out.update(words(self.determiner(term, m.group(3))))
        for terms in self.lexicon.values():
            for term in terms:
                out.update(words(term.target if target else term.source))
        return out


@dataclass(frozen=True)
class Sentence:
    """One sentence of a :class:`Grammar` (a :class:`csst_espnet.synth.pairs.Sentence`)."""

    grammar: Grammar = field(compare=False, repr=False)
    template: int
    fills: Tuple[Tuple[str, int], ...]  # (slot name, lexicon index)

    @property
    def key(self) -> str:
        return f"t{self.template}:" + ",".join(f"{s}={i}" for s, i in self.fills)

    def _terms(self) -> Dict[str, Term]:
        return {s: self.grammar.lexicon[s[0]][i] for s, i in self.fills}

    @property
    def _template(self) -> Template:
        return self.grammar.templates[self.template]

    @property
    def source(self) -> str:
        return self.grammar.render(self._template.source, self._terms(), target=False)

    @property
    def target(self) -> str:
        return self.grammar.render(self._template.target, self._terms(), target=True)

    @property
    def target_alt(self) -> str:
        return self.grammar.render(self._template.target_alt, self._terms(), target=True)

    @property
    def can_switch(self) -> bool:
        return self.grammar.code_switch and len(self.fills) > 0

    def cs_segments(self, rng: random.Random, p_switch: float = 0.6) -> Segments:
        """Code-switched rendition as language runs ``[(text, source or target code), ...]``.

        Each phrase after the first (templates with phrase marks) is said in English with probability
        ``p_switch``, then each term slot with probability ``p_switch``; at least one switch. A switched
        term keeps its source determiner; the first phrase always keeps its source words.
        """
        if not self.can_switch:
            raise ValueError(f"template {self.template} has no term to switch")
        names = [s for s, _ in self.fills]
        tpl = self._template
        src_phrases, tgt_phrases = phrases(tpl.source), phrases(tpl.target)
        english = {i for i in range(1, len(src_phrases)) if rng.random() < p_switch}
        switched = {s for s in names if rng.random() < p_switch}
        if not switched and not english:
            switched = {rng.choice(names)}
        terms = self._terms()
        src, tgt = self.grammar.source, self.grammar.target
        runs: List[Tuple[str, str]] = []
        for i, (src_p, tgt_p) in enumerate(zip(src_phrases, tgt_phrases)):
            if i in english:
                runs.append((self.grammar.render(tgt_p, terms, target=True), tgt))
                continue
            pos = 0
            for m in _SLOT.finditer(src_p):
                name = m.group(1) + m.group(2)
                term = terms[name]
                det = self.grammar.determiner(term, m.group(3)) if m.group(3) else ""
                runs.append((src_p[pos : m.start()] + det, src))
                runs.append((term.target, tgt) if name in switched else (term.source, src))
                pos = m.end()
            runs.append((src_p[pos:], src))
        merged: List[Tuple[str, str]] = []
        for text, lang in runs:
            if not text.strip():
                continue
            if merged and merged[-1][1] == lang:
                merged[-1] = (_join(merged[-1][0], text), lang)
            else:
                merged.append((text, lang))
        return [(" ".join(t.split()), lang) for t, lang in merged]


def _join(a: str, b: str) -> str:
    """Two texts of one language run: as written when they meet at a space or apostrophe or are
    unspaced script (Mandarin), else with a space."""
    if a.endswith((" ", "'")) or b.startswith(" ") or not (a[-1:].isascii() or b[:1].isascii()):
        return a + b
    return a + " " + b
