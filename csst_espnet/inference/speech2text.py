"""Translate (or transcribe) speech with a trained model: ``Speech2Text``.

    from csst_espnet import Speech2Text
    s2t = Speech2Text.from_pretrained("exp/csst_train_phase3")  # or its hf_merged/ or packed.zip (stage 15)
    hyp = s2t("utt.wav", lang="cs")[0]          # a file, a waveform array (at the model's rate) or a tensor
    hyp = s2t("utt.wav", task="asr")[0]         # the transcript, for a model trained on ASR
    hyps = s2t.batch([wav1, wav2], langs=["zh", "cs"])

Prompts come from the same :class:`PromptTemplate` the model was trained with; the LLM's
``generate`` (:func:`csst_espnet.inference.generate.generate`) runs greedy or beam search with a KV
cache on the left-padded ``[prompt][speech]`` prefix built by the model, with the runaway guards on
by default: each hypothesis is limited to ``max_tokens_per_second`` tokens per second of speech plus
``max_tokens_offset`` (and ``max_new_tokens`` in all), and stops before saying one span of tokens
``loop_repeats`` times in a row. The defaults were chosen on mini_cs's dev set (docs/experiments/mini_cs.md).
With ``segment_seconds`` > 0, an utterance longer than that is cut at its pauses
(:mod:`csst_espnet.inference.segment`), its pieces are decoded as utterances of their own and their
hypotheses joined.
"""

import math
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import yaml

from csst_espnet.data.audio import read_audio, resample
from csst_espnet.inference.generate import GenerateOptions, Hypothesis, generate
from csst_espnet.inference import segment
from csst_espnet.tasks.csst import CSSTTask
from csst_espnet.utils.config import PRETRAINED_KEYS

Audio = Union[str, Path, np.ndarray, torch.Tensor]


class Speech2Text:
    """Args:
    st_train_config, st_model_file: the experiment's ``config.yaml`` (or that config, read) and model ``.pth``.
    device: ``cpu`` or ``cuda``.
    beam_size: 1 = greedy search.
    max_new_tokens: hard cap on hypothesis length.
    max_tokens_per_second, max_tokens_offset: length guard, at most ``ceil(max_tokens_per_second *
        seconds of speech + max_tokens_offset)`` tokens (max_tokens_per_second 0 = off).
    loop_repeats: loop guard, a hypothesis ends rather than say one span of tokens this many times in a row
        (0 = off; ``inference/generate.py``).
    merge_lora: fold the LLM's LoRA adapters into its (float32) weights for decoding (``HFCausalLM.merge_lora``):
        the same logits to float rounding, a third of the matmuls per adapted projection.
    segment_seconds: long-form decoding, an utterance longer than this is cut in its pauses into pieces
        decoded one by one, their hypotheses joined with a space (0 = off; ``inference/segment.py``).
    segment_min_pause, segment_quiet_ratio, segment_smooth: the pauses cut, ``pause_segments``' options.
    """

    def __init__(
        self,
        st_train_config: Union[str, Path, Dict],
        st_model_file: Optional[Union[str, Path]] = None,
        device: str = "cpu",
        beam_size: int = 1,
        max_new_tokens: int = 200,
        max_tokens_per_second: float = 8.0,
        max_tokens_offset: int = 10,
        loop_repeats: int = 3,
        merge_lora: bool = True,
        segment_seconds: float = 0.0,
        segment_min_pause: float = segment.MIN_PAUSE,
        segment_quiet_ratio: float = segment.QUIET_RATIO,
        segment_smooth: int = segment.SMOOTH,
    ):
        if isinstance(st_train_config, dict):
            model, train_args = CSSTTask.build_model_from_config(st_train_config, st_model_file, device)
        else:
            model, train_args = CSSTTask.build_model_from_file(st_train_config, st_model_file, device)
        self.model = model.eval()
        if merge_lora:
            self.model.llm.merge_lora()
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
        self.loop_repeats = loop_repeats
        self.segment_seconds = segment_seconds
        self.pause_options = dict(min_pause=segment_min_pause, quiet_ratio=segment_quiet_ratio, smooth=segment_smooth)

    @classmethod
    def from_exp_dir(cls, exp_dir: Union[str, Path], model_file: str = "valid.acc.ave.pth", **kwargs):
        exp_dir = Path(exp_dir)
        if not (exp_dir / model_file).is_file():
            have = sorted(p.name for p in exp_dir.glob("*.pth"))
            raise FileNotFoundError(f"{exp_dir}: no model file {model_file} (model files there: {have})")
        return cls(exp_dir / "config.yaml", exp_dir / model_file, **kwargs)

    @classmethod
    def from_pretrained(cls, path: Union[str, Path], model_file: str = "valid.acc.ave.pth",
                        extract_dir: Optional[Union[str, Path]] = None, **kwargs) -> "Speech2Text":
        """A trained model from where the recipe leaves it:

        - an experiment directory (``config.yaml`` and ``model_file``, e.g. ``exp/csst_train_phase3``);
        - its stage-15 Hugging Face export (``hf_merged/``: ``csst_config.yaml``, ``csst_speech.pth``, the LLM
          with LoRA merged and its tokenizer), wherever the directory was moved;
        - its stage-15 zip (``packed.zip``), extracted into ``extract_dir`` (default: beside the zip, named
          after it); the pretrained parts packed with it are found there.

        ``kwargs``: decoding options of the constructor (``device``, ``beam_size``...).
        """
        path = Path(path)
        if path.is_dir() and (path / "config.yaml").is_file():
            return cls.from_exp_dir(path, model_file, **kwargs)
        if path.is_dir() and (path / "csst_config.yaml").is_file():
            config = _read_yaml(path / "csst_config.yaml")
            here = str(path.resolve())
            config["llm_conf"] = dict(config.get("llm_conf") or {}, model_name_or_path=here)
            config["tokenizer"] = here
            return cls(config, path / "csst_speech.pth", **kwargs)
        if path.is_file() and zipfile.is_zipfile(path):
            root = Path(extract_dir) if extract_dir else path.with_suffix("")
            with zipfile.ZipFile(path) as z:
                z.extractall(root)
            meta = _read_yaml(root / "meta.yaml")
            config = _read_yaml(root / meta["files"]["config"])
            return cls(_under(config, root), root / meta["files"]["model_file"], **kwargs)
        raise FileNotFoundError(
            f"{path}: not an experiment directory (config.yaml), a stage-15 export (csst_config.yaml) "
            "or a packed model (.zip)"
        )

    def __call__(self, speech: Audio, lang: Optional[str] = None, task: Optional[str] = None) -> List[Hypothesis]:
        """Decode one utterance; returns its n-best list (n = 1)."""
        return [self.batch([speech], [lang], [task])[0]]

    def load_audio(self, speech: Audio) -> np.ndarray:
        """Mono samples at the model's rate: a file (first channel, resampled) or samples as they are."""
        if isinstance(speech, (str, Path)):
            audio, rate = read_audio(str(speech))
            return resample(audio, rate, self.fs)
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
        """Decode a collated batch (``speech``, ``prompt`` and their lengths); long utterances in pieces
        (``segment_seconds``), no more pieces at once than the batch had utterances."""
        if self.segment_seconds <= 0:
            return self._decode(batch)
        pieces, owners = self.cut_at_pauses(batch)
        if len(owners) == len(batch["speech_lengths"]):
            return self._decode(batch)
        n = len(batch["speech_lengths"])
        hyps: List[Hypothesis] = []
        for i in range(0, len(owners), n):
            hyps += self._decode({k: v[i : i + n] for k, v in pieces.items()})
        return join_hypotheses(hyps, owners)

    def cut_at_pauses(self, batch: dict) -> Tuple[dict, List[int]]:
        """The batch with each utterance replaced by its pieces (:func:`segment.pause_segments`), and for each
        piece the index of its utterance."""
        rows, owners = [], []
        for i, length in enumerate(batch["speech_lengths"].tolist()):
            wav = batch["speech"][i, :length]
            cuts = segment.pause_segments(wav.cpu().numpy(), self.fs, self.segment_seconds, **self.pause_options)
            for start, end in cuts:
                rows.append(wav[start:end])
                owners.append(i)
        index = torch.tensor(owners)
        pieces = {
            "speech": torch.nn.utils.rnn.pad_sequence(rows, batch_first=True),  # (pieces, samples)
            "speech_lengths": torch.tensor([len(r) for r in rows], dtype=batch["speech_lengths"].dtype),
            "prompt": batch["prompt"][index],
            "prompt_lengths": batch["prompt_lengths"][index],
        }
        return pieces, owners

    def _decode(self, batch: dict) -> List[Hypothesis]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        embeds, embed_lengths, _ = self.model.encode(batch["speech"], batch["speech_lengths"])
        prefix, mask = self.model.prefix_embeddings(
            batch["prompt"], batch["prompt_lengths"], embeds, embed_lengths
        )
        options = GenerateOptions(self.beam_size, self.max_new_tokens, self.loop_repeats)
        return generate(self.model.llm.model, self.tokenizer, mask, inputs_embeds=prefix, options=options,
                        max_new_tokens=self.length_limits(batch["speech_lengths"]))


def join_hypotheses(hyps: Sequence[Hypothesis], owners: Sequence[int]) -> List[Hypothesis]:
    """One hypothesis per owner (in owner order) from its pieces' hypotheses (in piece order): texts
    joined with a space, tokens concatenated, scores summed, the confidence the mean over all tokens
    (and each piece's EOS), the guard of the first piece a guard ended."""
    joined: List[Hypothesis] = []
    for owner in sorted(set(owners)):
        parts = [h for h, o in zip(hyps, owners) if o == owner]
        weights = [len(h.token_int) + 1 for h in parts]
        joined.append(Hypothesis(
            text=" ".join(h.text for h in parts if h.text),
            token=[t for h in parts for t in h.token],
            token_int=[t for h in parts for t in h.token_int],
            score=sum(h.score for h in parts),
            confidence=sum(h.confidence * w for h, w in zip(parts, weights)) / sum(weights),
            guard=next((h.guard for h in parts if h.guard), ""),
        ))
    return joined


def _read_yaml(path: Path) -> Dict:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _under(config: Dict, root: Path) -> Dict:
    """``config`` with its pretrained parts' relative paths that exist under ``root`` made absolute."""
    config = dict(config)
    for key, sub in PRETRAINED_KEYS:
        value = config.get(key) if sub is None else (config.get(key) or {}).get(sub)
        if not value or os.path.isabs(value) or not (root / value).exists():
            continue
        if sub is None:
            config[key] = str((root / value).resolve())
        else:
            config[key] = dict(config[key], **{sub: str((root / value).resolve())})
    return config
