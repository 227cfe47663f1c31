"""The language label of a transcript from its script or words, per language pair.

The written rule (utterance level; ``cs`` = code-switched):

- **zh-en** (script): a transcript with Han characters (CJK unified ideographs) and Latin letters
  is ``cs``; Han only is ``zh``; Latin only is ``en``.
- **es-en** (words, both languages in Latin script): a word is Spanish when it has one of
  ``á é í ó ú ñ ü ¿ ¡`` or is in :data:`SPANISH_WORDS`, English when it is in :data:`ENGLISH_WORDS`
  (frequent function and content words that are not also Spanish words; ``no``, ``me``, ``a``,
  ``he``... are in neither list). Spanish and English words is ``cs``; Spanish only ``es``;
  English only ``en``.
- A transcript with no evidence (digits, fillers such as ``mhm`` or ``okay``, words in neither list) gets
  ``None``: the caller decides (the manifest importer labels it with the pair's source language
  and counts it).

A pair without a rule is an error: give the labels explicitly.
"""

import re
from typing import Callable, Dict, Optional

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
SPANISH_MARKS = re.compile(r"[áéíóúñü¿¡]", re.IGNORECASE)

SPANISH_WORDS = frozenset("""
de la que el en los del se las por un para con una su al lo como más pero sus le ya o este sí porque esta
entre cuando muy sobre hasta hay donde quien desde todo nos durante todos uno les ni contra
otros ese eso ante ellos e esto antes algunos qué unos yo otro otras otra él tanto esa estos mucho quienes
nada muchos cual poco ella estar estas algunas algo nosotros mi mis tú te ti tu tus ellas nosotras vosotros
os mío mía míos tuyo tuya suyo suya nuestro nuestra vuestro esos esas estoy estás está estamos están
pues bueno entonces claro verdad creo tengo tiene tienen hace hacer era fue ser soy eres es son somos
hablar habla dijo aquí allí ahora siempre nunca también gracias hola casa trabajo gente cosa
cosas año años día días vez veces mucha muchas mismo misma tan tal dónde cómo cuándo porqué oye mira
""".split())

ENGLISH_WORDS = frozenset("""
the and of to in is that it for you was with on as have be at by this had not are but from or they
his she her an were which all we there been one their if has will would what can when who more out
do up about so said them some could him into then than its only other like time just know people
your how well think see because any these get our us most also back after use two work first way even
new want give day good very yeah really right thing things something mean kind sort actually maybe
does did doing got going gonna go my i'm it's don't that's they're you're we're can't isn't work school
job money friend friends family week weekend yes sure please thanks thank
""".split())


def zh_en(text: str) -> Optional[str]:
    han, latin = bool(HAN.search(text)), bool(LATIN.search(text))
    if han and latin:
        return "cs"
    return "zh" if han else "en" if latin else None


def es_en(text: str) -> Optional[str]:
    spanish = english = False
    for word in WORD.findall(text.lower()):
        if SPANISH_MARKS.search(word) or word in SPANISH_WORDS:
            spanish = True
        elif word in ENGLISH_WORDS:
            english = True
    if spanish and english:
        return "cs"
    return "es" if spanish else "en" if english else None


RULES: Dict[str, Callable[[str], Optional[str]]] = {"zh-en": zh_en, "es-en": es_en}


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
