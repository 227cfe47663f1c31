"""Fisher Spanish-English with the code-switched / monolingual split of Weller et al. (2022).

Raw layout read (three LDC / public sources):

- ``speech``: LDC2010S01, ``<speech>/data/speech/<conversation>.sph`` (NIST SPHERE, 8 kHz, two channels);
  files soundfile cannot decode (shorten-compressed SPHERE) are read through ``sph2pipe`` when it is on
  the PATH.
- ``transcripts``: LDC2010T04, ``<transcripts>/data/transcripts/<conversation>.tdf`` (or under
  ``fisher_spa_tr/``): tab-separated segments (file, channel, start, end, speaker, ..., transcript in
  field 8), a ``file;unicode`` header and ``;;MM`` comment lines, not counted.
- ``translations``: the Fisher-CallHome corpus (github joshua-decoder/fisher-callhome-corpus, after
  ``make``): ``mapping/fisher_<split>`` (a line per utterance: conversation and the ``_``-joined 1-based
  numbers of its tdf segments), ``corpus/ldc/fisher_<split>.es`` (the Spanish transcript of each line) and
  the English translations, ``fisher_train.en`` and four references ``fisher_<split>.en.{0,1,2,3}`` for
  dev, dev2 and test.

An utterance spans its segments (start of the first to end of the last) on their channel. Every
conversation side is written once as an 8 kHz mono WAV ``<audio_dir>/<conversation>-<A|B>.wav`` (stage 3
resamples to 16 kHz); the speaker is the side.

**CS / monolingual split** (Weller et al. 2022, ``fisher/extract_cs_words_from_raw_data.py`` of
apple/ml-code-switched-speech-translation): an utterance is code-switched (``cs``) when the LDC
transcripts of its segments hold a ``<foreign lang="...">`` element whose text is neither empty nor
``(())``; every other utterance is monolingual Spanish (``es``). Their fixes of malformed tags
(``lang+``, ``lan=``, `` /foreign>``, an unclosed element closed by the next one) are applied. The
transcript (``src_text``) is the ``.es`` line without ``<foreign>`` tags (their words kept).

Sets: ``train``, ``dev``, ``dev2``, ``test`` each whole and as ``_cs`` / ``_mono``; ``eval_cs`` and
``eval_mono`` are dev + dev2 + test, the evaluation sets of Weller et al. The four references of dev,
dev2 and test are ``text``, ``text.2``, ``text.3``, ``text.4``.
"""

import logging
import os
import re
import shutil
from typing import Dict, List, Sequence, Tuple

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio import read_audio, to_pcm16, write_pcm16
from csst_espnet.data.manifest import Entry, ImportSummary, ManifestError, cs_subsets, to_data_dir

SPLITS = ("train", "dev", "dev2", "test")
EVAL_SPLITS = ("dev", "dev2", "test")
LANG_PAIR = "es-en"
SIDES = ("A", "B")
_FOREIGN = re.compile(r"<foreign\b[^>]*>(.*?)(?=</foreign>|<foreign\b|$)", re.S)
_TAG = re.compile(r"</?foreign\b[^>]*>")


def _fix_tags(text: str) -> str:
    return (text.replace('lang+"', 'lang="').replace('lan="', 'lang="').replace(" /foreign>", "</foreign>"))


def is_code_switched(transcript: str) -> bool:
    """Weller et al.'s rule: a ``<foreign>`` element with text other than nothing or ``(())``."""
    return any(t.strip() not in ("", "(())") for t in _FOREIGN.findall(_fix_tags(transcript)))


def strip_foreign_tags(text: str) -> str:
    return " ".join(_TAG.sub(" ", _fix_tags(text)).split())


def _find_dir(root: str, candidates: Sequence[str], what: str) -> str:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Fisher: no {what} directory {root}")
    for c in candidates:
        if os.path.isdir(os.path.join(root, c)):
            return os.path.join(root, c)
    raise FileNotFoundError(f"Fisher: {root} has none of {list(candidates)} ({what})")


def read_tdf(path: str) -> List[Tuple[int, float, float, str]]:
    """Segments (channel, start, end, transcript) of a tdf file, numbered from 1 as the mapping counts."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Fisher: no transcript file {path}")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if ";;MM" in line or "file;unicode" in line or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            try:
                out.append((int(cols[1]), float(cols[2]), float(cols[3]), cols[7] if len(cols) > 7 else ""))
            except (IndexError, ValueError):
                raise ManifestError(f"{path}:{n}: not a tdf segment line (file, channel, start, end, ...)") from None
    return out


def _lines(path: str) -> List[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Fisher: no file {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def _side_audio(speech_dir: str, conv: str, channel: int, audio_dir: str) -> str:
    """The 8 kHz mono WAV of one conversation side (written once)."""
    out = os.path.join(audio_dir, f"{conv}-{SIDES[channel]}.wav")
    if os.path.isfile(out):
        return out
    sph = os.path.join(speech_dir, f"{conv}.sph")
    if not os.path.isfile(sph):
        raise FileNotFoundError(f"Fisher: no audio {sph}")
    try:
        samples, rate = read_audio(sph, channel)
    except Exception as e:
        if shutil.which("sph2pipe") is None:
            raise ManifestError(f"{sph}: cannot read the audio ({type(e).__name__}: {e}); a shorten-compressed "
                                "SPHERE file needs sph2pipe on the PATH") from None
        samples, rate = read_audio(f"sph2pipe -f wav {sph} |", channel)
    os.makedirs(audio_dir, exist_ok=True)
    write_pcm16(out, to_pcm16(samples)[0], rate)
    return out


def read_split(split: str, speech: str, transcripts: str, translations: str, audio_dir: str) -> List[Entry]:
    speech_dir = _find_dir(speech, ("data/speech",), "LDC2010S01 speech")
    tdf_dir = _find_dir(transcripts, ("data/transcripts", "fisher_spa_tr/data/transcripts"), "LDC2010T04 transcripts")
    mapping_path = os.path.join(translations, "mapping", f"fisher_{split}")
    mapping = [line.split() for line in _lines(mapping_path) if line.strip()]
    es_path = os.path.join(translations, "corpus", "ldc", f"fisher_{split}.es")
    ref_paths = ([os.path.join(translations, "corpus", "ldc", f"fisher_{split}.en")] if split == "train" else
                 [os.path.join(translations, "corpus", "ldc", f"fisher_{split}.en.{k}") for k in range(4)])
    texts = {p: _lines(p) for p in [es_path, *ref_paths]}
    for p, t in texts.items():
        if len(t) != len(mapping):
            raise ManifestError(f"{p}: {len(t)} lines, {mapping_path} has {len(mapping)}")
    tdfs: Dict[str, List] = {}
    entries = []
    for i, (conv, ids) in enumerate(mapping):
        where = f"{mapping_path}:{i + 1}"
        if conv not in tdfs:
            tdfs[conv] = read_tdf(os.path.join(tdf_dir, f"{conv}.tdf"))
        try:
            segs = [tdfs[conv][int(k) - 1] for k in ids.split("_")]
        except (IndexError, ValueError):
            raise ManifestError(f"{where}: segments {ids} are not in {os.path.join(tdf_dir, conv + '.tdf')} "
                                f"({len(tdfs[conv])} segments)") from None
        channel = segs[0][0]
        cs = is_code_switched(" ".join(s[3] for s in segs))
        entries.append(Entry(
            where=where,
            audio=os.path.abspath(_side_audio(speech_dir, conv, channel, audio_dir)),
            start=segs[0][1], end=segs[-1][2],
            transcript=strip_foreign_tags(texts[es_path][i]),
            translations=[texts[p][i].strip() for p in ref_paths],
            lang="cs" if cs else "es", task="st",
            speaker=f"{conv}-{SIDES[channel]}", id=f"{split}-{i + 1:06d}",
        ))
    return entries


def prepare(speech: str, transcripts: str, translations: str, out: str, audio_dir: str,
            splits: Sequence[str] = SPLITS) -> Dict[str, ImportSummary]:
    """Write every split (whole, ``_cs``, ``_mono``) and ``eval_cs`` / ``eval_mono`` under ``out``."""
    summaries = {}
    for split in splits:
        d, summaries[split] = to_data_dir(read_split(split, speech, transcripts, translations, audio_dir), LANG_PAIR)
        d.write(os.path.join(out, split))
        for name, sub in cs_subsets(d).items():
            if len(sub):
                sub.write(os.path.join(out, f"{split}_{name}"))
    if all(s in splits for s in EVAL_SPLITS):
        for name in ("cs", "mono"):
            parts = [os.path.join(out, f"{s}_{name}") for s in EVAL_SPLITS if os.path.isdir(os.path.join(out, f"{s}_{name}"))]
            n = kd.write_combined(os.path.join(out, f"eval_{name}"), parts)
            logging.info("%s/eval_%s: %d utterances (dev + dev2 + test)", out, name, n)
    return summaries
