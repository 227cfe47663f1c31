"""Turns one utterance's raw data (ESPnet dataset output) into model inputs.

In: ``speech`` (samples; absent or empty for a text translation example, task ``mt``, whose
``src_text`` goes into the prompt in the speech's place), ``text`` (target string), optional ``lang`` / ``task`` strings,
``src_text`` (source transcript), ``phone_ali`` (frame phone ids, passed on as int64) and ``lang_ali``
(a language code per 10 ms frame, ``-`` unlabelled). Out: ``speech`` float32, ``text`` target token
ids ending in EOS, ``src_text`` transcript token ids (no EOS), ``prompt`` token ids rendered by
:class:`PromptTemplate`, ``lang`` and ``task`` as one-element id arrays, ``lang_ali`` as indices
into ``languages`` (-1 unlabelled).
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np

from csst_espnet.data.augment import Augmenter
from csst_espnet.data.kaldi_dir import CODE_SWITCH, UNLABELLED_FRAME
from csst_espnet.text.prompt import TASKS, TEXT_TASKS, PromptTemplate


class CSSTPreprocessor:
    """Callable ``(utt_id, data) -> data`` used by ESPnet's dataset.

    Args:
        template: the prompt template (carries the LLM tokenizer).
        languages: language codes; a ``lang`` label is stored as its index here.
        default_task: task used when the data has no ``task`` column.
        default_lang: language used when the data has no ``lang`` column.
        augment: applied to the speech of every utterance (training only; see :class:`Augmenter`).
    """

    def __init__(
        self,
        template: PromptTemplate,
        languages: Sequence[str],
        default_task: str = "st",
        default_lang: str = "cs",
        augment: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ):
        if default_task not in TASKS:
            raise ValueError(f"default_task '{default_task}' is not one of {TASKS}")
        if default_lang not in languages:
            raise ValueError(f"default_lang '{default_lang}' is not in languages {list(languages)}")
        self.template = template
        self.languages = tuple(languages)
        self.default_task = default_task
        self.default_lang = default_lang
        self.augment = augment

    def __call__(self, uid: str, data: Dict) -> Dict[str, np.ndarray]:
        lang = self._label(uid, data, "lang", self.default_lang, self.languages)
        task = self._label(uid, data, "task", self.default_task, TASKS)
        out = {
            "lang": np.asarray([self.languages.index(lang)], dtype=np.int64),
            "task": np.asarray([TASKS.index(task)], dtype=np.int64),
        }
        if task in TEXT_TASKS:  # the source text in the speech's place; no speech
            source = str(data.get("src_text") or "").strip()
            if not source:
                raise ValueError(f"utterance '{uid}': task {task} (text translation) needs its source text in src_text")
            out["prompt"] = np.asarray(self.template.around(task, lang, self.template.text_ids(source)), dtype=np.int64)
        else:
            out["prompt"] = np.asarray(self.template.ids(task, lang), dtype=np.int64)
        if "speech" in data and task not in TEXT_TASKS:
            speech = np.asarray(data["speech"])
            if speech.ndim != 1:
                raise ValueError(f"utterance '{uid}': expected mono audio, got shape {speech.shape}")
            if speech.size == 0:
                raise ValueError(f"utterance '{uid}': empty or missing audio (only text translation, task mt, "
                                 "has none)")
            out["speech"] = speech.astype(np.float32)
            if self.augment is not None:
                out["speech"] = self.augment(out["speech"])
        if "text" in data:
            text = data["text"].strip()
            if not text:
                raise ValueError(f"utterance '{uid}': empty target text")
            out["text"] = np.asarray(self.template.target_ids(text), dtype=np.int64)
        if "phone_ali" in data:  # frame phone ids (text_int), for the frame_phone loss
            out["phone_ali"] = np.asarray(data["phone_ali"], dtype=np.int64)
        if "lang_ali" in data:  # frame language codes (text), for the routing losses
            out["lang_ali"] = self._frame_languages(uid, data["lang_ali"])
        if "src_text" in data:  # the source transcript, for the src_ctc loss
            src_text = data["src_text"].strip()
            if not src_text:
                raise ValueError(f"utterance '{uid}': empty src_text (source transcript)")
            out["src_text"] = np.asarray(self.template.text_ids(src_text), dtype=np.int64)
        return out

    def _frame_languages(self, uid: str, codes: str) -> np.ndarray:
        """``lang_ali`` codes -> indices into ``languages``; ``-`` (unlabelled) -> -1."""
        ids = {name: i for i, name in enumerate(self.languages) if name != CODE_SWITCH}
        ids[UNLABELLED_FRAME] = -1
        out = []
        for j, code in enumerate(str(codes).split()):
            if code not in ids:
                raise ValueError(
                    f"utterance '{uid}': lang_ali frame {j} has language code '{code}', not one of "
                    f"{[name for name in ids if name != UNLABELLED_FRAME]} or '{UNLABELLED_FRAME}' (unlabelled)"
                )
            out.append(ids[code])
        if not out:
            raise ValueError(f"utterance '{uid}': empty lang_ali")
        return np.asarray(out, dtype=np.int64)

    @staticmethod
    def _label(uid: str, data: Dict, name: str, default: str, allowed: Sequence[str]) -> str:
        value = data.get(name)
        value = default if value is None else str(value).strip()
        if value not in allowed:
            raise ValueError(f"utterance '{uid}': {name} label '{value}' is not one of {list(allowed)}")
        return value


def build_preprocessor(
    tokenizer_path: str,
    languages: Sequence[str],
    prompt_conf: Optional[Dict] = None,
    default_task: str = "st",
    default_lang: str = "cs",
    augment_conf: Optional[Dict] = None,
    trust_remote_code: bool = False,
) -> CSSTPreprocessor:
    """Load the LLM tokenizer from ``tokenizer_path`` and build the preprocessor; ``augment_conf``:
    the options of an :class:`Augmenter` applied to the speech (none without it). A tokenizer that
    needs its own code runs it only with ``trust_remote_code`` (``llm_conf.trust_remote_code``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, trust_remote_code=trust_remote_code)
    template = PromptTemplate(tokenizer, **(prompt_conf or {}))
    augment = Augmenter(**augment_conf) if augment_conf else None
    return CSSTPreprocessor(template, languages, default_task=default_task, default_lang=default_lang,
                            augment=augment)
