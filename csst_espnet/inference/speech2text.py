"""Translate (or transcribe) speech with a trained model: ``Speech2Text``.

    s2t = Speech2Text.from_exp_dir("exp/st_phase3")
    hyp = s2t("utt.wav", lang="cs")[0]          # a file, a waveform array or a tensor
    hyps = s2t.batch([wav1, wav2], langs=["zh", "cs"])

Prompts come from the same :class:`PromptTemplate` the model was trained with; the LLM's
``generate`` (:func:`csst_espnet.inference.generate.generate`) runs greedy or beam search with a KV
cache on the left-padded ``[prompt][speech]`` prefix built by the model, with the runaway guards on
by default: each hypothesis is limited to ``max_tokens_per_second`` tokens per second of speech plus
``max_tokens_offset`` (and ``max_new_tokens`` in all), and stops before repeating an n-gram of
``loop_ngram`` tokens. The defaults were chosen on mini_cs's dev set (docs/experiments/mini_cs.md).
"""

import math
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import soundfile
import torch

from csst_espnet.inference.generate import GenerateOptions, Hypothesis, generate
from csst_espnet.tasks.csst import CSSTTask

Audio = Union[str, Path, np.ndarray, torch.Tensor]


class Speech2Text:
    """Args:
    st_train_config, st_model_file: the experiment's ``config.yaml`` and model ``.pth``.
    device: ``cpu`` or ``cuda``.
    beam_size: 1 = greedy search.
    max_new_tokens: hard cap on hypothesis length.
    max_tokens_per_second, max_tokens_offset: length guard, at most ``ceil(max_tokens_per_second *
        seconds of speech + max_tokens_offset)`` tokens (max_tokens_per_second 0 = off).
    loop_ngram: loop guard, a hypothesis ends rather than repeat an n-gram of this many tokens (0 = off).
    """

    def __init__(
        self,
        st_train_config: Union[str, Path],
        st_model_file: Optional[Union[str, Path]] = None,
        device: str = "cpu",
        beam_size: int = 1,
        max_new_tokens: int = 200,
        max_tokens_per_second: float = 8.0,
        max_tokens_offset: int = 10,
        loop_ngram: int = 4,
    ):
        model, train_args = CSSTTask.build_model_from_file(st_train_config, st_model_file, device)
        self.model = model.eval()
        self.train_args = train_args
        self.device = device
        self.preprocess = CSSTTask.build_preprocess_fn(train_args, train=False)
        self.collate = CSSTTask.build_collate_fn(train_args, train=False)
        self.tokenizer = self.preprocess.template.tokenizer
        self.fs = (train_args.frontend_conf or {}).get("fs", 16000)
        self.beam_size = beam_size
        self.max_new_tokens = max_new_tokens
        self.max_tokens_per_second = max_tokens_per_second
        self.max_tokens_offset = max_tokens_offset
        self.loop_ngram = loop_ngram

    @classmethod
    def from_exp_dir(cls, exp_dir: Union[str, Path], model_file: str = "valid.acc.ave.pth", **kwargs):
        exp_dir = Path(exp_dir)
        return cls(exp_dir / "config.yaml", exp_dir / model_file, **kwargs)

    def __call__(self, speech: Audio, lang: Optional[str] = None, task: Optional[str] = None) -> List[Hypothesis]:
        """Decode one utterance; returns its n-best list (n = 1)."""
        return [self.batch([speech], [lang], [task])[0]]

    def load_audio(self, speech: Audio) -> np.ndarray:
        if isinstance(speech, (str, Path)):
            audio, rate = soundfile.read(str(speech), dtype="float32")
            if rate != self.fs:
                raise ValueError(f"{speech}: sample rate {rate} Hz, the model expects {self.fs} Hz")
            return audio
        if isinstance(speech, torch.Tensor):
            return speech.detach().cpu().numpy()
        return np.asarray(speech)

    @torch.no_grad()
    def batch(
        self,
        speeches: Sequence[Audio],
        langs: Optional[Sequence[Optional[str]]] = None,
        tasks: Optional[Sequence[Optional[str]]] = None,
        keys: Optional[Sequence[str]] = None,
    ) -> List[Hypothesis]:
        """Decode a batch of utterances together; one hypothesis each, in input order."""
        n = len(speeches)
        langs = langs or [None] * n
        tasks = tasks or [None] * n
        keys = keys or [f"utt{i}" for i in range(n)]
        items = []
        for key, speech, lang, task in zip(keys, speeches, langs, tasks):
            data = {"speech": self.load_audio(speech), "lang": lang, "task": task}
            items.append((key, self.preprocess(key, data)))
        _, batch = self.collate(items)
        return self.decode_batch(batch)

    def length_limits(self, speech_lengths: torch.Tensor) -> Optional[List[int]]:
        """The length guard's limit of each utterance (``speech_lengths`` in samples); None when off."""
        if self.max_tokens_per_second <= 0:
            return None
        seconds = speech_lengths.double().cpu() / self.fs
        return [math.ceil(self.max_tokens_per_second * s + self.max_tokens_offset) for s in seconds.tolist()]

    @torch.no_grad()
    def decode_batch(self, batch: dict) -> List[Hypothesis]:
        """Decode a collated batch (``speech``, ``prompt`` and their lengths)."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        embeds, embed_lengths, _ = self.model.encode(batch["speech"], batch["speech_lengths"])
        prefix, mask = self.model.prefix_embeddings(
            batch["prompt"], batch["prompt_lengths"], embeds, embed_lengths
        )
        options = GenerateOptions(self.beam_size, self.max_new_tokens, self.loop_ngram)
        return generate(self.model.llm.model, self.tokenizer, mask, inputs_embeds=prefix, options=options,
                        max_new_tokens=self.length_limits(batch["speech_lengths"]))
