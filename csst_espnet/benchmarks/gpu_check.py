"""The GPU check: one training step of each phase config of the reference setup and batched decoding,
on random weights in the exact shapes of Whisper large-v3 and Qwen2.5-7B (``model_shapes``), with
nothing downloaded (what ``python -m csst_espnet.bin.gpu_check`` runs; docs/benchmarks.md).

Per phase config: the model built as the trainer builds it (``memory_plan.build_like_trainer``,
directly on the device), bf16 autocast where the config asks for it, one warm-up and one timed
training step (forward, backward, AdamW step) on a ``memory_plan.synthetic_batch``; the peak memory
(GPU: ``torch.cuda.max_memory_allocated``; CPU: the growth of the process's peak RSS) and the step
time. A distill phase gets its teacher as the task builds it (``copy_sharing_frozen``: the student's
frozen backbone, its own projector and adapters), since no phase-2 files exist here.

Decoding: the phase-2 model through the one generation routine (``inference/generate.py``) from
``[prompt][speech]`` embeddings; utterances/s and real-time factor for batch 1 and 16, greedy and
beam 4, ``max_new_tokens`` new tokens each (random weights rarely emit EOS early; the table gives the
tokens generated). A stand-in tokenizer gives ids as text: there is no Qwen tokenizer offline.
"""

import argparse
import datetime
import os
import platform
import re
import time
from typing import Dict, List, Optional

import torch

from csst_espnet.benchmarks.memory_plan import StepShape, build_like_trainer, synthetic_batch, without_teacher
from csst_espnet.benchmarks.model_shapes import config_only
from csst_espnet.inference.generate import GenerateOptions, generate
from csst_espnet.losses.registry import build_aux_losses
from csst_espnet.models.frozen_state import copy_sharing_frozen
from csst_espnet.tasks.csst import CSSTTask

REFERENCE_CONF = "egs2/TEMPLATE/csst1/conf/whisper_large_v3_qwen2.5_7b"
PHASES = ("train_phase1.yaml", "train_phase2.yaml", "train_phase3.yaml")
BEGIN, END = "<!-- gpu_check:begin -->", "<!-- gpu_check:end -->"


class IdsTokenizer:
    """What ``generate`` needs of a tokenizer, for a model without one: ids written as text."""

    def __init__(self, eos_token_id: int):
        self.eos_token_id = eos_token_id
        self.pad_token_id = eos_token_id

    def decode(self, ids: List[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))

    def convert_ids_to_tokens(self, ids: List[int]) -> List[str]:
        return [str(i) for i in ids]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"CPU: {model} ({os.cpu_count()} cores)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    from csst_espnet.benchmarks.memory_plan import _rss_bytes

    return _rss_bytes()


def _peak(device: torch.device, base: int) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def build_phase(args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    """The phase's model on ``device``; a distill transition gets a teacher sharing its frozen backbone."""
    planned, teacher_specs = without_teacher(args)
    model = build_like_trainer(planned, str(device))
    if teacher_specs:
        backbone = {part: copy_sharing_frozen(getattr(model, part), set()) for part in ("encoder", "llm")}
        plain = argparse.Namespace(**{**vars(planned), "aux_losses": []})
        teacher = CSSTTask.build_model(plain, backbone=backbone).to(device).eval().requires_grad_(False)
        hooks, weights = build_aux_losses(teacher_specs, model.projector, planned.languages,
                                          load_teacher=lambda: teacher)
        for key, hook in hooks.items():
            model.aux_losses[key] = hook.to(device)
        model.aux_loss_weights.update(weights)
    return model


def train_step(args: argparse.Namespace, shape: StepShape, device: torch.device) -> Dict[str, float]:
    """Peak memory (bytes, over build and two steps) and the time of the second step (s)."""
    base = _peak_reset(device)
    torch.manual_seed(0)
    model = build_phase(args, device).train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch = {k: v.to(device) for k, v in synthetic_batch(model, args, shape).items()}
    amp = bool(args.use_amp) and device.type == "cuda"
    seconds = 0.0
    for _ in range(2):
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(**batch)[0]
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        _sync(device)
        seconds = time.perf_counter() - start
    peak = _peak(device, base)
    del model, optim
    return {"peak_bytes": peak, "step_seconds": seconds, "loss": float(loss)}


@torch.no_grad()
def decode_throughput(
    model: torch.nn.Module, args: argparse.Namespace, shape: StepShape, device: torch.device,
    batch_size: int, beam_size: int, utterances: int, max_new_tokens: int,
) -> Dict[str, float]:
    """Decode ``utterances`` utterances of ``shape.utt_seconds`` in batches of ``batch_size``."""
    model.eval()
    tokenizer = IdsTokenizer(eos_token_id=model.llm.model.config.eos_token_id or 0)
    options = GenerateOptions(beam_size=beam_size, max_new_tokens=max_new_tokens)
    amp = bool(args.use_amp) and device.type == "cuda"
    one = StepShape(batch_size, shape.utt_seconds, shape.prompt_tokens, 1, 1)
    batch = {k: v.to(device) for k, v in synthetic_batch(model, args, one).items()}
    tokens, elapsed = 0, 0.0
    for _ in range(max(1, utterances // batch_size)):
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            embeds, lengths, _ = model.encode(batch["speech"], batch["speech_lengths"])
            prefix, mask = model.prefix_embeddings(batch["prompt"], batch["prompt_lengths"], embeds, lengths)
            hyps = generate(model.llm.model, tokenizer, mask, inputs_embeds=prefix, options=options)
        _sync(device)
        elapsed += time.perf_counter() - start
        tokens += sum(len(h.token_int) for h in hyps)
    done = max(1, utterances // batch_size) * batch_size
    return {"utt_per_s": done / elapsed, "rtf": elapsed / (done * shape.utt_seconds), "tokens": tokens / done}


def run(conf_dir: str, small: bool, device: torch.device, shape: StepShape, decode_utterances: int,
        max_new_tokens: int) -> Dict:
    result = {"device": device_name(device), "phases": {}, "decoding": []}
    args_of = {}
    for name in PHASES:
        args = CSSTTask.get_parser().parse_args(["--config", os.path.join(conf_dir, name)])
        args_of[name] = config_only(args, small=small)
        result["phases"][name] = train_step(args_of[name], shape, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    args = args_of["train_phase2.yaml"]
    torch.manual_seed(0)
    model = build_phase(args, device)
    for batch_size in (1, 16):
        for beam in (1, 4):
            row = decode_throughput(model, args, shape, device, batch_size, beam, decode_utterances, max_new_tokens)
            result["decoding"].append({"batch": batch_size, "beam": beam, **row})
    return result


def format_markdown(result: Dict, command: str, shape: StepShape) -> str:
    gib = 1024**3
    date = datetime.date.today().isoformat()
    lines = [BEGIN, f"### {result['device']} — torch {torch.__version__}, {date}", "", "```sh", command, "```", "",
             f"Training step: {shape.batch} utterances of {shape.utt_seconds:g} s, {shape.prompt_tokens} prompt + "
             f"{shape.target_tokens} target tokens; peak memory over building and two steps, time of the second.",
             "", "| phase config | peak memory | step time |", "|---|---:|---:|"]
    for name, row in result["phases"].items():
        lines.append(f"| {name} | {row['peak_bytes'] / gib:.2f} GiB | {row['step_seconds']:.2f} s |")
    lines += ["", "Decoding (phase-2 model, random weights):", "",
              "| batch | search | utterances/s | real-time factor | tokens/utterance |", "|---:|---|---:|---:|---:|"]
    for row in result["decoding"]:
        search = "greedy" if row["beam"] == 1 else f"beam {row['beam']}"
        lines.append(f"| {row['batch']} | {search} | {row['utt_per_s']:.2f} | {row['rtf']:.4f} | {row['tokens']:.0f} |")
    lines.append(END)
    return "\n".join(lines)


def write_markdown(section: str, path: str) -> None:
    """Put ``section`` between the gpu_check markers of ``path`` (appended under a heading if absent)."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## GPU check: the reference setup's training steps and decoding\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
