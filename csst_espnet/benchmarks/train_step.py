"""Benchmark of one training step of a recipe phase: where the time of a step goes (what
``csst_espnet.bin.bench_train_step`` runs and docs/benchmarks.md reports).

The model is built from the phase config (``model_config`` composed, as ``csst_train`` reads it) with
locally initialised weights: the LLM is a randomly initialised causal LM of the recipe's stage-6
architecture (``text_lm.yaml`` beside the config) over a sentencepiece tokenizer trained here on the
mini_cs grammar's sentences; a loss that needs the previous phase's model (the distill transition)
gets a teacher of the same architecture saved in a temporary directory. Batches are synthetic
utterances of the demo's shapes (noise waveforms, grammar sentences as text, frame phone and language
labels), so nothing trained and no corpus is needed.

One step is what ESPnet's trainer does per batch: the dataset's preprocessing of each utterance
(tokenising, prompt rendering) and the collate (``data``), the model's forward, backward, gradient
clipping and the optimiser update. The forward is split by module hooks into frontend, encoder,
projector, LLM (the teacher's forward inside the transition loss counts as ``teacher``) and the
remainder (``losses``: CE and the auxiliary losses' own work).
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

KINDS = ("asr_zh", "asr_en", "st_zh", "cs")
COMPONENTS = ("data", "frontend", "encoder", "projector", "llm", "teacher", "losses", "backward", "optimizer")


# --------------------------------------------------------------------------------------------------
# model and data
# --------------------------------------------------------------------------------------------------


def build_text_lm(out_dir: str, text_lm_config: str, vocab_size: int, seed: int = 0) -> str:
    """A tokenizer trained on the zh-en grammar's sentences and a randomly initialised causal LM of
    ``text_lm_config``'s architecture, saved in ``out_dir`` (the LLM directory of the model)."""
    from csst_espnet.llm.text_lm import build_model, read_config
    from csst_espnet.synth.grammar_zh_en import corpus_sentences
    from csst_espnet.text.tokenizer import make_tokenizer

    sentences = corpus_sentences(seed)[:3000]
    texts = [s.source for s in sentences] + [s.target for s in sentences]
    tokenizer, _ = make_tokenizer(out_dir, texts, vocab_size=vocab_size, seed=seed, check=False)
    torch.manual_seed(seed)
    build_model(read_config(text_lm_config), tokenizer).save_pretrained(out_dir)
    return out_dir


def parse_phase_args(config: str, llm_dir: str, overrides: Sequence[str] = ()) -> argparse.Namespace:
    """csst_train's options of the phase ``config`` with the LLM directory replaced by ``llm_dir``, then
    ``overrides``: ``KEY=YAML_VALUE`` with KEY an option or a dotted path into one (``llm_conf.dtype``)."""
    from csst_espnet.tasks.csst import CSSTTask

    args = CSSTTask.get_parser().parse_args(["--config", config])
    args.llm_conf = dict(args.llm_conf, model_name_or_path=llm_dir)
    for item in overrides:
        key, sep, value = item.partition("=")
        option, *path = key.split(".")
        if not sep or not hasattr(args, option):
            raise ValueError(f"--set expects OPTION[.KEY...]=VALUE with a csst_train option, got {item!r}")
        if not path:
            setattr(args, option, yaml.safe_load(value))
            continue
        conf = dict(getattr(args, option) or {})
        setattr(args, option, conf)
        for name in path[:-1]:
            conf[name] = dict(conf.get(name) or {})
            conf = conf[name]
        conf[path[-1]] = yaml.safe_load(value)
    return args


def build_phase_model(args: argparse.Namespace, work_dir: str):
    """The model of ``args``; a teacher that a loss needs is built from the same options minus the
    losses that need one, and saved under ``work_dir`` as a previous phase's run would leave it."""
    from csst_espnet.losses.registry import AUX_LOSSES
    from csst_espnet.tasks.csst import CSSTTask

    needs_teacher = [spec for spec in args.aux_losses if getattr(AUX_LOSSES[spec["name"]], "uses_teacher", False)]
    if needs_teacher:
        teacher_args = argparse.Namespace(**vars(args))
        teacher_args.aux_losses = [spec for spec in args.aux_losses if spec not in needs_teacher]
        teacher_args.model_conf = {k: v for k, v in args.model_conf.items() if k != "ce_weight"}
        teacher = CSSTTask.build_model(teacher_args)
        args.teacher_config = os.path.join(work_dir, "teacher_config.yaml")
        args.teacher_model = os.path.join(work_dir, "teacher.pth")
        with open(args.teacher_config, "w", encoding="utf-8") as f:
            yaml.safe_dump(vars(teacher_args), f)
        torch.save(teacher.state_dict(), args.teacher_model)
    return CSSTTask.build_model(args)


class SyntheticUtterances:
    """Raw utterances as ESPnet's dataset yields them (before preprocessing), of the demo's shapes:
    noise at 16 kHz, a grammar sentence as text, frame phone ids and, for code-switched utterances,
    frame language codes. A batch's utterances last nearly alike (1.5-4 s, within 3 %), as in the
    length-sorted batches of ``batch_type: folded``."""

    def __init__(self, kinds: Sequence[str], num_phones: int, seed: int = 0, fs: int = 16000):
        from csst_espnet.synth.grammar_zh_en import corpus_sentences

        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"utterance kinds {unknown} are not among {list(KINDS)}")
        self.kinds, self.num_phones, self.fs = list(kinds), num_phones, fs
        self.sentences = corpus_sentences(seed)
        self.rng = random.Random(seed)
        self.count = 0

    def batch(self, size: int) -> List[Tuple[str, Dict]]:
        """``size`` raw utterances ``(utt_id, data)`` of about one duration."""
        seconds = self.rng.uniform(1.5, 4.0)
        return [(f"utt{self.count}", self.next(seconds * self.rng.uniform(0.97, 1.0))) for _ in range(size)]

    def next(self, seconds: float) -> Dict:
        kind = self.kinds[self.count % len(self.kinds)]
        self.count += 1
        sentence = self.rng.choice(self.sentences)
        samples = int(seconds * self.fs)
        frames = samples // (self.fs // 100)
        data = {
            "speech": np.random.default_rng(self.count).standard_normal(samples).astype(np.float32) * 0.1,
            "phone_ali": [self.rng.randrange(self.num_phones) for _ in range(frames)],
        }
        if kind == "asr_zh":
            data.update(text=sentence.source, src_text=sentence.source, lang="zh", task="asr")
        elif kind == "asr_en":
            data.update(text=sentence.target, src_text=sentence.target, lang="en", task="asr")
        elif kind == "st_zh":
            data.update(text=sentence.target, src_text=sentence.source, lang="zh", task="st")
        else:
            cut = frames // 2
            data.update(text=sentence.target, src_text=sentence.source, lang="cs", task="st",
                        lang_ali=" ".join(["zh"] * cut + ["en"] * (frames - cut)))
        return data


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------


class ComponentTimer:
    """Wall time spent inside given modules' forwards (outermost call only), by component name."""

    def __init__(self, modules: Dict[str, List[torch.nn.Module]]):
        self.seconds: Dict[str, float] = {}
        self._handles = []
        self._start: Dict[str, float] = {}
        self._depth: Dict[str, int] = {}
        for name, mods in modules.items():
            for module in mods:
                self._handles.append(module.register_forward_pre_hook(self._enter(name)))
                self._handles.append(module.register_forward_hook(self._leave(name)))

    def _enter(self, name: str) -> Callable:
        def hook(module, inputs):
            if self._depth.get(name, 0) == 0:
                self._start[name] = time.perf_counter()
            self._depth[name] = self._depth.get(name, 0) + 1

        return hook

    def _leave(self, name: str) -> Callable:
        def hook(module, inputs, output):
            self._depth[name] -= 1
            if self._depth[name] == 0:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._start[name]

        return hook

    def reset(self) -> None:
        self.seconds = {}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _llm_parts(llm) -> List[torch.nn.Module]:
    """What an LLM wrapper runs: its decoder stack and output layer (``hidden`` and ``head``)."""
    return [llm.model.get_decoder(), llm.model.get_output_embeddings()]


def _component_modules(model) -> Dict[str, List[torch.nn.Module]]:
    modules = {"frontend": [model.frontend], "encoder": [model.encoder], "projector": [model.projector],
               "llm": _llm_parts(model.llm)}
    teachers = [hook.teacher for hook in model.aux_losses.values() if getattr(hook, "teacher", None) is not None]
    if teachers:  # the teacher runs through target_hidden, not its forward: time its parts
        modules["teacher"] = [part for t in teachers for part in (t.frontend, t.encoder, t.projector, *_llm_parts(t.llm))]
    return {name: [m for m in mods if m is not None] for name, mods in modules.items()}


def build_optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """The phase's optimiser over the trainable parameters (ESPnet's choice of class by name)."""
    from espnet2.tasks.abs_task import optim_classes

    params = [p for p in model.parameters() if p.requires_grad]
    return optim_classes[args.optim](params, **args.optim_conf)


def time_steps(model, args, utterances: SyntheticUtterances, batch_size: int, steps: int, warmup: int,
               epoch: int) -> Dict:
    """Time ``warmup`` + ``steps`` training steps at training epoch ``epoch``; per-component medians."""
    from csst_espnet.tasks.csst import CSSTTask

    preprocess = CSSTTask.build_preprocess_fn(args, train=True)
    collate = CSSTTask.build_collate_fn(args, train=True)
    optimizer = build_optimizer(model, args)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    if hasattr(model, "set_epoch"):
        model.set_epoch(epoch)
    timer = ComponentTimer(_component_modules(model))
    per_step: List[Dict[str, float]] = []
    try:
        for step in range(warmup + steps):
            timer.reset()
            t0 = time.perf_counter()
            raw = utterances.batch(batch_size)
            t_data = time.perf_counter()
            _, batch = collate([(uid, preprocess(uid, data)) for uid, data in raw])
            t1 = time.perf_counter()
            loss, _, _ = model(**batch)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if hasattr(model, "on_update"):
                model.on_update()
            t4 = time.perf_counter()
            if step < warmup:
                continue
            parts = dict(timer.seconds)
            forward_modules = sum(parts.get(n, 0.0) for n in ("frontend", "encoder", "projector", "llm", "teacher"))
            parts.update(data=t1 - t_data, losses=(t2 - t1) - forward_modules, backward=t3 - t2,
                         optimizer=t4 - t3, step=t4 - t_data, synth=t_data - t0)
            per_step.append(parts)
    finally:
        timer.remove()
    medians = {name: statistics.median(s.get(name, 0.0) for s in per_step) for name in (*COMPONENTS, "step")}
    return {"epoch": epoch, "speech_only": bool(getattr(model, "speech_only", False)), "steps": steps,
            "median_s": medians, "steps_per_s": 1.0 / medians["step"],
            "step_s": [s["step"] for s in per_step]}


# --------------------------------------------------------------------------------------------------
# the run and its report
# --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def run(config: str, text_lm_config: Optional[str] = None, vocab_size: int = 800, kinds: Sequence[str] = KINDS,
        batch_size: Optional[int] = None, steps: int = 5, warmup: int = 2, epochs: Optional[Sequence[int]] = None,
        threads: int = 0, seed: int = 0, overrides: Sequence[str] = ()) -> Dict:
    """Build the phase's model and time its training steps; returns the JSON-ready result.

    ``text_lm_config``: the LLM's architecture (default: ``text_lm.yaml`` beside ``config``);
    ``batch_size``: default the config's; ``epochs``: the training epochs to time (default: the first
    epoch, and the first full epoch too when the config has speech-only warm-up epochs)."""
    if threads:
        torch.set_num_threads(threads)
    text_lm_config = text_lm_config or os.path.join(os.path.dirname(os.path.abspath(config)), "text_lm.yaml")
    random.seed(seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="bench_train_step_") as work_dir:
        t0 = time.perf_counter()
        llm_dir = build_text_lm(os.path.join(work_dir, "llm"), text_lm_config, vocab_size, seed)
        args = parse_phase_args(config, llm_dir, overrides)
        model = build_phase_model(args, work_dir)
        build_s = time.perf_counter() - t0
        num_phones = next((spec.get("conf", {}).get("num_phones", 128) for spec in args.aux_losses
                           if spec["name"] == "frame_phone"), 128)
        utterances = SyntheticUtterances(kinds, num_phones, seed)
        warm = int(args.model_conf.get("speech_warmup_epochs", 0))
        epochs = list(epochs) if epochs else ([1, warm + 1] if warm else [1])
        batch_size = batch_size or args.batch_size
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        runs = [time_steps(model, args, utterances, batch_size, steps, warmup, epoch) for epoch in epochs]
    return {
        "config": config,
        "overrides": list(overrides),
        "text_lm_config": text_lm_config,
        "batch_size": batch_size,
        "kinds": list(kinds),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "loadavg_1min": os.getloadavg()[0],
        "build_s": build_s,
        "parameters": {"trainable": trainable, "total": total},
        "runs": runs,
    }


def format_table(result: Dict) -> str:
    lines = [
        f"{' '.join([result['config'], *result['overrides']])}: batch {result['batch_size']} "
        f"({' '.join(result['kinds'])}), "
        f"{result['parameters']['trainable']:,} of {result['parameters']['total']:,} parameters trained",
        f"{result['cpu']}, {result['threads']} threads, torch {result['torch']}, {result['date']}, "
        f"load {result['loadavg_1min']:.2f}",
        "",
        "| epoch | " + " | ".join(COMPONENTS) + " | step (ms) | steps/s |",
        "|---|" + "---:|" * (len(COMPONENTS) + 2),
    ]
    for r in result["runs"]:
        m = r["median_s"]
        label = f"{r['epoch']}{' (speech only)' if r['speech_only'] else ''}"
        cells = " | ".join(f"{m[c] * 1000:.0f}" for c in COMPONENTS)
        lines.append(f"| {label} | {cells} | {m['step'] * 1000:.0f} | {r['steps_per_s']:.2f} |")
    lines.append("")
    lines.append("medians over the timed steps, ms; data = preprocessing + collate; losses = the forward "
                 "outside the listed modules (CE, auxiliary losses)")
    return "\n".join(lines)


def write_json(result: Dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
