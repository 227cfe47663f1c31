"""The language of a transcript or hypothesis from its script or words, per language pair.

The written rule (utterance level; ``cs`` = code-switched):

- **zh-en** (script): a transcript with Han characters (CJK unified ideographs) and Latin letters
  is ``cs``; Han only is ``zh``; Latin only is ``en``.
- **es-en, fr-en, de-en** (words, both languages in Latin script): a word is evidence of a language
  when it is in that language's list (:data:`WORDS`: frequent function and content words) or, in no
  list, has marked letters that all belong to that language (:data:`MARKS`: ``ñ`` Spanish, ``è`` French, ``ß``
  German...); it counts only when it is evidence of exactly one of the pair's languages (``no``, ``me``,
  ``a``, ``he``... are in no list; ``in``, ``so``, ``was`` are English and German, so they count for
  neither in de-en). Words of both languages is ``cs``; source words only the source language;
  English words only ``en``. Code-switched transcripts whose English words are all terms in no list
  (``usamos el gradient descent``) come out as the source language.
- A transcript with no evidence (digits, fillers such as ``mhm`` or ``okay``, words in no list) gets
  ``None``: the caller decides (the manifest importer labels it with the pair's source language
  and counts it).

A pair without a rule is an error: give the labels explicitly.

:func:`latin_language` applies the same word evidence to all of :data:`WORDS`' languages at once:
the scorer's off-target check of hypotheses in Latin script (an X->en model answering in Spanish).
"""

import re
from collections import Counter
from typing import Callable, Dict, Optional, Sequence

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

SPANISH_WORDS = frozenset("""
de la que el en los del se las por un para con una su al lo como más pero sus le ya o este sí porque esta
entre cuando muy sobre hasta hay donde quien desde todo nos durante todos uno les ni contra
otros ese eso ante ellos e esto antes algunos qué unos yo otro otras otra él tanto esa estos mucho quienes
nada muchos cual poco ella estar estas algunas algo nosotros mi mis tú te ti tu tus ellas nosotras vosotros
os mío mía míos tuyo tuya suyo suya nuestro nuestra vuestro esos esas estoy estás está estamos están
pues bueno entonces claro verdad creo tengo tiene tienen hace hacer era fue ser soy eres es son somos
hablar habla dijo aquí allí ahora siempre nunca también gracias hola casa trabajo gente cosa
cosas año años día días vez veces mucha muchas mismo misma tan tal dónde cómo cuándo porqué oye mira si hoy puede puedes vamos tenemos
""".split())

FRENCH_WORDS = frozenset("""
le la les un une des du de au aux et est sont suis être avoir ai avons avez ont était été sera ce cet cette
ces celui celle ceux qui que quoi dont où ou mais donc car ni ne pas plus moins très bien aussi encore
toujours jamais déjà je tu il elle nous vous ils elles on me te se lui leur leurs mon ma mes ton ta tes son
sa ses notre nos votre vos avec pour par sur sous dans entre chez sans vers avant après pendant depuis
comme si quand comment pourquoi combien parce oui non merci bonjour voilà alors ici là fait faire faut
peut peux pouvons pouvez veut voir va vais allons allez c'est j'ai n'est qu'il s'il aujourd'hui
quelqu'un d'abord beaucoup tout tous toute toutes même autre autres chose rien fois cours
""".split())

GERMAN_WORDS = frozenset("""
der die das den dem des ein eine einen einem einer eines und oder aber nicht kein keine ist sind bin bist
war waren wird werden wurde haben hat habe hatte sein ich du sie es wir ihr mich mir dich dir uns euch
sich mein meine meinem meinen dein unser mit von vom zu zum zur auf aus bei nach für über unter vor
hinter zwischen durch gegen ohne im ins als wie wenn dass daß weil ob was wer wo warum wann noch schon
auch nur sehr immer jetzt heute morgen gestern hier dort da dann doch ja nein bitte danke gut kann können
muss müssen soll will wollen diese dieser dieses diesen diesem jemand etwas alles alle viel viele mehr
einmal also so in an
""".split())

ENGLISH_WORDS = frozenset("""
the and of to in is that it for you was with on as have be at by this had not are but from or they
his she her an were which all we there been one their if has will would what can when who more out
do up about so said them some could him into then than its only other like time just know people
your how well think see because any these get our us most also back after use two work first way even
new want give day good very yeah really right thing things something mean kind sort actually maybe
does did doing got going gonna go my i'm it's don't that's they're you're we're can't isn't school
job money friend friends family week weekend yes sure please thanks thank
""".split())

# word lists and letters of the languages told apart by their words (all in Latin script)
WORDS: Dict[str, frozenset] = {"en": ENGLISH_WORDS, "es": SPANISH_WORDS, "fr": FRENCH_WORDS, "de": GERMAN_WORDS}
MARKS: Dict[str, re.Pattern] = {
    "en": re.compile(r"(?!)"),  # none
    "es": re.compile(r"[áéíóúñü¿¡]", re.IGNORECASE),
    "fr": re.compile(r"[àâçèéêëîïôùûÿœæ]", re.IGNORECASE),
    "de": re.compile(r"[äöüß]", re.IGNORECASE),
}
MARKED = re.compile("|".join(m.pattern for m in MARKS.values()), re.IGNORECASE)


def word_evidence(text: str, languages: Sequence[str]) -> Counter:
    """How many words of ``text`` are evidence of exactly one of ``languages`` (each a key of
    :data:`WORDS`), per language: a word in the lists of exactly one; a word in none whose marked
    letters are all letters of exactly one (``préentraînement``: French, not Spanish)."""
    out: Counter = Counter()
    for word in WORD.findall(text.lower()):
        hits = [lang for lang in languages if word in WORDS[lang]]
        if not hits:  # not a listed word: the languages that have every marked letter of it
            marked = [c for c in word if MARKED.match(c)]
            hits = [lang for lang in languages if marked and all(MARKS[lang].match(c) for c in marked)]
        if len(hits) == 1:
            out[hits[0]] += 1
    return out


def zh_en(text: str) -> Optional[str]:
    han, latin = bool(HAN.search(text)), bool(LATIN.search(text))
    if han and latin:
        return "cs"
    return "zh" if han else "en" if latin else None


def latin_pair(source: str) -> Callable[[str], Optional[str]]:
    """The rule of the pair ``source``-en, both in Latin script (see the module docstring)."""

    def rule(text: str) -> Optional[str]:
        found = word_evidence(text, (source, "en"))
        if found[source] and found["en"]:
            return "cs"
        return source if found[source] else "en" if found["en"] else None

    rule.__name__ = f"{source}_en"
    return rule


es_en, fr_en, de_en = (latin_pair(src) for src in ("es", "fr", "de"))

RULES: Dict[str, Callable[[str], Optional[str]]] = {"zh-en": zh_en, "es-en": es_en, "fr-en": fr_en, "de-en": de_en}


def rule_for(lang_pair: str) -> Callable[[str], Optional[str]]:
    """The labelling rule of ``lang_pair`` (``src-tgt``; ``en-zh`` is ``zh-en``)."""
    src, _, tgt = lang_pair.partition("-")
    for key in (f"{src}-{tgt}", f"{tgt}-{src}"):
        if key in RULES:
            return RULES[key]
    raise ValueError(f"no language labelling rule for the pair '{lang_pair}' (rules: {sorted(RULES)}); "
                     "give every utterance its language label")


def language_of(text: str, lang_pair: str) -> Optional[str]:
    """``cs``, one of the pair's languages, or None (no evidence) for ``text``."""
    return rule_for(lang_pair)(text)


def latin_language(text: str) -> Optional[str]:
    """The language of :data:`WORDS` with the most evidence words in ``text``; None without evidence
    or on a tie."""
    ranked = word_evidence(text, tuple(WORDS)).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
