"""Edit-distance error rates: WER (words), CER (characters), MER (mixed).

MER, the mixed error rate of code-switch ASR, counts every CJK character as one
token and every other whitespace-free run (an English word) as one token, so
``我们用gradient descent`` is ``我 们 用 gradient descent``.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

CJK_RANGES = (
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF), (0x30000, 0x3134F),
)
_CJK_CLASS = "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES)
_MIXED = re.compile(f"[{_CJK_CLASS}]|[^\\s{_CJK_CLASS}]+")
_CJK_CHAR = re.compile(f"[{_CJK_CLASS}]")
_LETTER = f"[^\\W\\d_{_CJK_CLASS}]"  # a letter that is not a CJK character
_LATIN_WORD = re.compile(f"{_LETTER}(?:{_LETTER}|['’-]{_LETTER})*")


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in CJK_RANGES)


def normalize(text: str) -> str:
    """Lower case, punctuation removed (apostrophes inside words kept), spaces collapsed."""
    out = []
    chars = list(unicodedata.normalize("NFKC", text).lower())
    for i, c in enumerate(chars):
        cat = unicodedata.category(c)
        if cat.startswith("P") or cat.startswith("S"):
            inner = c in "'’" and 0 < i < len(chars) - 1 and chars[i - 1].isalnum() and chars[i + 1].isalnum()
            out.append(c if inner else " ")
        else:
            out.append(c)
    return " ".join("".join(out).split())


def words(text: str) -> List[str]:
    return text.split()


def chars(text: str) -> List[str]:
    return [c for c in text if not c.isspace()]


def mixed(text: str) -> List[str]:
    return _MIXED.findall(text)


TOKENIZERS: Dict[str, Callable[[str], List[str]]] = {"wer": words, "cer": chars, "mer": mixed}


def cjk_tokens(text: str) -> List[str]:
    return _CJK_CHAR.findall(text)


def latin_words(text: str) -> List[str]:
    """Words of a non-CJK script containing letters (English words in zh-en text)."""
    return _LATIN_WORD.findall(text)


@dataclass
class Alignment:
    sub: int = 0
    dele: int = 0
    ins: int = 0
    ref_len: int = 0
    ops: List[Tuple[str, str, str]] = field(default_factory=list)  # (op, ref, hyp) op in C S D I

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins


def align(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Levenshtein alignment (unit costs) with a backtrace.

    Ties are broken towards match/substitution, then deletion, then insertion.
    """
    n, m = len(ref), len(hyp)
    # dp[i][j]: distance between ref[:i] and hyp[:j]
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        dp[i][0] = i
    for j in range(1, m + 1):
        dp[0][j] = j
    for i in range(1, n + 1):
        ri = ref[i - 1]
        row, prev = dp[i], dp[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (0 if ri == hyp[j - 1] else 1)
            row[j] = min(diag, prev[j] + 1, row[j - 1] + 1)
    a = Alignment(ref_len=n)
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dp[i][j] == dp[i - 1][j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1):
            if ref[i - 1] == hyp[j - 1]:
                a.ops.append(("C", ref[i - 1], hyp[j - 1]))
            else:
                a.ops.append(("S", ref[i - 1], hyp[j - 1]))
                a.sub += 1
            i, j = i - 1, j - 1
        elif i > 0 and dp[i][j] == dp[i - 1][j] + 1:
            a.ops.append(("D", ref[i - 1], ""))
            a.dele += 1
            i -= 1
        else:
            a.ops.append(("I", "", hyp[j - 1]))
            a.ins += 1
            j -= 1
    a.ops.reverse()
    return a


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    return align(ref, hyp).errors


@dataclass
class ErrorCounts:
    sub: int = 0
    dele: int = 0
    ins: int = 0
    ref_len: int = 0
    num_utts: int = 0

    def add(self, a: Alignment) -> None:
        self.sub += a.sub
        self.dele += a.dele
        self.ins += a.ins
        self.ref_len += a.ref_len
        self.num_utts += 1

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def rate(self) -> float:
        """Error rate in percent (errors / reference tokens); 0 for an empty reference."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len

    def as_dict(self) -> Dict[str, float]:
        return {"rate": self.rate if self.rate != float("inf") else None, "sub": self.sub, "del": self.dele, "ins": self.ins,
                "ref_tokens": self.ref_len, "utts": self.num_utts}


def error_rate(refs: Sequence[str], hyps: Sequence[str], kind: str = "wer", norm: bool = True) -> ErrorCounts:
    """Corpus error counts of ``kind`` in ``wer``, ``cer``, ``mer``."""
    tok = TOKENIZERS[kind]
    c = ErrorCounts()
    for r, h in zip(refs, hyps):
        if norm:
            r, h = normalize(r), normalize(h)
        c.add(align(tok(r), tok(h)))
    return c


def mixed_language_split(refs: Sequence[str], hyps: Sequence[str], norm: bool = True) -> Dict[str, ErrorCounts]:
    """MER errors split by the language of the token: ``zh`` (CJK) and ``en`` (other).

    Substitutions and deletions count for the reference token's language,
    insertions for the inserted token's language.
    """
    out = {"zh": ErrorCounts(), "en": ErrorCounts()}
    for r, h in zip(refs, hyps):
        if norm:
            r, h = normalize(r), normalize(h)
        a = align(mixed(r), mixed(h))
        seen = set()
        for op, rt, ht in a.ops:
            lang = "zh" if (rt or ht) and is_cjk((rt or ht)[0]) else "en"
            c = out[lang]
            seen.add(lang)
            if op in ("C", "S", "D"):
                c.ref_len += 1
            if op == "S":
                c.sub += 1
            elif op == "D":
                c.dele += 1
            elif op == "I":
                c.ins += 1
        for lang in seen:
            out[lang].num_utts += 1
    return out
