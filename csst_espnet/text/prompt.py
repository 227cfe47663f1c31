"""The one place where prompts are rendered, for training and decoding alike.

The LLM input is ``[prompt][speech embeddings][target]``. The prompt is a function of the
utterance's task (``asr``, ``st``, or ``mt``: text translation), its source language and the target
language only, so a model decodes with exactly the prompt it was trained with. A text translation
example has no speech: its source text takes the speech's place (:meth:`PromptTemplate.around`).

With a chat template the speech belongs to the user turn: the prompt's token ids hold
:data:`SPEECH_SLOT` where the speech embeddings go (after the instruction, before the end of the
user turn and the assistant header), and the model puts them there
(``ESPnetCSSTModel.prefix_embeddings``). Without one the speech follows the prompt.
"""

from typing import Dict, List, Optional

from csst_espnet.data.kaldi_dir import TASKS, TEXT_TASKS  # noqa: F401 (the task labels, re-exported)
SPEECH_SLOT = -2  # prompt token id standing for the speech embeddings (never a vocabulary id; padding is -1)
SPEECH_TEXT = "<speech>"  # what the slot looks like in PromptTemplate.text

LANGUAGE_NAMES = {
    "zh": "Mandarin",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "cs": "code-switched",
}

DEFAULT_INSTRUCTIONS = {
    "asr": "Transcribe the speech.",
    "st": "Translate the speech into {tgt_lang}.",
    "mt": "Translate the text into {tgt_lang}.",
}


class PromptTemplate:
    """Renders the prompt that precedes the speech embeddings.

    Args:
        tokenizer: the LLM's Hugging Face tokenizer.
        target_language: code of the translation target (``{tgt_lang}`` in instructions).
        instructions: task -> instruction text; ``{src_lang}`` and ``{tgt_lang}`` are
            replaced by language names.
        use_chat_template: wrap the instruction and the speech in the tokenizer's chat template
            (a user turn followed by the assistant header); ``None`` = when the tokenizer has one.
        system: optional system message for chat templates.
    """

    def __init__(
        self,
        tokenizer,
        target_language: str = "en",
        instructions: Optional[Dict[str, str]] = None,
        use_chat_template: Optional[bool] = None,
        system: Optional[str] = None,
    ):
        self.tokenizer = tokenizer
        self.target_language = target_language
        self.instructions = dict(DEFAULT_INSTRUCTIONS, **(instructions or {}))
        unknown = set(self.instructions) - set(TASKS)
        if unknown:
            raise ValueError(f"instructions for unknown task(s) {sorted(unknown)}; tasks are {TASKS}")
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if use_chat_template and not has_template:
            raise ValueError("use_chat_template: true, but the tokenizer has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        self.system = system
        self._cache: Dict[tuple, List[int]] = {}

    def text(self, task: str, src_lang: str) -> str:
        """The prompt as a string, before tokenization (with a chat template, ``<speech>`` marks the
        speech's place)."""
        if task not in self.instructions:
            raise ValueError(f"unknown task '{task}'; tasks are {TASKS}")
        instruction = self.instructions[task].format(
            src_lang=LANGUAGE_NAMES.get(src_lang, src_lang),
            tgt_lang=LANGUAGE_NAMES.get(self.target_language, self.target_language),
        )
        if not self.use_chat_template:
            bos = self.tokenizer.bos_token or ""
            return f"{bos}{instruction}\n"
        messages = [{"role": "user", "content": f"{instruction}\n{SPEECH_TEXT}"}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if text.count(SPEECH_TEXT) != 1:
            raise ValueError(f"the chat template renders the user turn's {SPEECH_TEXT} {text.count(SPEECH_TEXT)} times")
        return text

    def ids(self, task: str, src_lang: str) -> List[int]:
        """Token ids of the prompt (cached per task and language); with a chat template one of them is
        :data:`SPEECH_SLOT`."""
        key = (task, src_lang)
        if key not in self._cache:
            text = self.text(task, src_lang)
            if self.use_chat_template:
                before, after = text.split(SPEECH_TEXT)
                self._cache[key] = self.text_ids(before) + [SPEECH_SLOT] + self.text_ids(after)
            else:
                self._cache[key] = self.text_ids(text)
        return list(self._cache[key])

    def around(self, task: str, src_lang: str, ids: List[int]) -> List[int]:
        """The prompt with token ids ``ids`` in the speech's place (text in place of speech: a text LM)."""
        prompt = self.ids(task, src_lang)
        if SPEECH_SLOT not in prompt:
            return prompt + list(ids)
        k = prompt.index(SPEECH_SLOT)
        return prompt[:k] + list(ids) + prompt[k + 1 :]

    def text_ids(self, text: str) -> List[int]:
        """Token ids of a text, without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def target_ids(self, text: str) -> List[int]:
        """Token ids of a target text, closed by the end-of-sequence token."""
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the LLM tokenizer has no eos_token; set one when saving the tokenizer")
        return self.text_ids(text) + [self.tokenizer.eos_token_id]
