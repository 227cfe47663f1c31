"""Memory plan of one training step of a phase config, from its model built on the meta device.

What ``python -m csst_espnet.bin.memory_plan`` prints (docs/benchmarks.md has the reference setup's).
The model is built as ESPnet's trainer builds it (cast to ``--train_dtype``, ``--freeze_param``
applied), on the meta device: shapes and dtypes without memory, nothing downloaded (pretrained parts
are built from their configs, ``model_shapes.config_only``). Per item, in bytes:

- weights: every parameter, by trainable / frozen and dtype;
- gradients: one per trainable parameter, in its dtype; optimiser state: float32 tensors per
  trainable parameter (Adam's two moments; ``OPTIMIZER_STATES``); with DeepSpeed ZeRO stage ≥ 1 the optimiser state, stage ≥ 2
  also the gradients, are divided over the data-parallel ranks;
- activations kept for backward, for a batch of ``batch`` utterances of ``utt_seconds`` with
  ``prompt_tokens`` + speech tokens + ``target_tokens`` in the LLM: per transformer layer and token,
  LLM (Qwen2-style, SwiGLU) 7h + 2·kv + 4·i elements (norm outputs, q/k/v, attention output, residuals,
  the gate/up products; attention probabilities are not kept with SDPA), Whisper-style encoder 8d + 2f
  per frame; with gradient checkpointing the layer inputs (h or d per token and layer) plus one layer
  recomputed. The encoder keeps activations only when some part of it trains. Element size: 2 bytes
  under autocast (``--use_amp`` on a GPU) or for bf16 weights, else the weights' dtype;
- logits: the CE's float32 logits over the vocabulary for the target tokens (the head's output, its
  float32 copy, the log-softmax and its gradient: 2 + 3·4 bytes each), and the largest chunk of the
  chunked losses (distill KL, src_ctc: ``losses/chunked.py``);
- teacher (transition, distill mode): its own trained weights only (it shares the student's frozen
  backbone, ``CSSTTask.load_teacher``); its forward pass runs without gradients.

The peak estimate is weights + gradients + optimiser + teacher + activations + logits; CUDA context and
allocator fragmentation (typically 0.5–1.5 GB) are not included. ``measure_cpu_step`` runs one real
training step of a small model on the CPU and reports the growth of the process's peak RSS, to compare.
"""

import argparse
import copy
import resource
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from csst_espnet.benchmarks.model_shapes import config_only
from csst_espnet.losses.chunked import DEFAULT_CHUNK
from csst_espnet.losses.registry import AUX_LOSSES
from csst_espnet.tasks.csst import CSSTTask, frontend_choices

GIB = 1024**3
# float32 state tensors per trainable parameter (momentum of SGD counted); others: 2, as Adam
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "adadelta": 2, "adagrad": 1, "rmsprop": 1, "sgd": 1}
SAMPLE_RATE = 16000
MEL_FRAMES_PER_SECOND = 100


@dataclass
class StepShape:
    """One training batch: ``batch`` utterances of ``utt_seconds``, their token counts."""

    batch: int
    utt_seconds: float
    prompt_tokens: int
    target_tokens: int
    src_tokens: int


def batch_size_of(args: argparse.Namespace, utt_seconds: float, batch_bins: Optional[int]) -> int:
    """Utterances per batch (over all ranks): ``batch_bins`` speech samples (``--batch_type numel`` on
    raw waveforms) of ``utt_seconds`` each, or ``--batch_size``."""
    bins = batch_bins if batch_bins is not None else (args.batch_bins if args.batch_type == "numel" else None)
    if bins is not None:
        return max(1, int(bins // (utt_seconds * SAMPLE_RATE)))
    return int(args.batch_size)


def without_teacher(args: argparse.Namespace) -> Tuple[argparse.Namespace, List[Dict]]:
    """``args`` without the hooks that need a teacher (it is planned separately), and those hooks."""
    specs = list(args.aux_losses or [])
    teacher = [s for s in specs if getattr(AUX_LOSSES.get(s["name"]), "uses_teacher", False)
               and (s.get("conf") or {}).get("mode") == "distill"]
    args = copy.copy(args)
    args.aux_losses = [s for s in specs if s not in teacher]
    return args, teacher


def build_like_trainer(args: argparse.Namespace, device: str = "meta") -> torch.nn.Module:
    """The model of ``args`` as ESPnet's trainer has it before the optimiser: built (on ``device``),
    cast to ``--train_dtype`` (bf16 frozen parts keep their dtype), ``--freeze_param`` applied."""
    input_size = args.input_size
    if args.frontend is not None:  # small, and built from data-dependent ops: always on the CPU
        input_size = frontend_choices.get_class(args.frontend)(**args.frontend_conf).output_size()
    with torch.device(device):
        backbone = CSSTTask.build_backbone(args, input_size)
    model = CSSTTask.build_model(args, backbone=backbone)
    model = model.to(dtype=getattr(torch, args.train_dtype))
    for prefix in args.freeze_param or []:
        for name, p in model.named_parameters():
            if name == prefix or name.startswith(prefix + "."):
                p.requires_grad_(False)
    return model


def parameter_table(model: torch.nn.Module) -> Dict[Tuple[bool, str], Tuple[int, int]]:
    """``(trainable, dtype) -> (parameters, bytes)``."""
    table: Dict[Tuple[bool, str], Tuple[int, int]] = {}
    for p in model.parameters():
        key = (p.requires_grad, str(p.dtype).replace("torch.", ""))
        n, b = table.get(key, (0, 0))
        table[key] = (n + p.numel(), b + p.numel() * p.element_size())
    return table


def _trains(module: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _act_bytes(module: torch.nn.Module, amp: bool) -> int:
    """Element size of a part's activations: 2 under autocast, else its weights' (smallest float) dtype."""
    if amp:
        return 2
    return min(p.element_size() for p in module.parameters() if p.is_floating_point())


def activation_bytes(model: torch.nn.Module, args: argparse.Namespace, shape: StepShape, amp: bool) -> Dict[str, int]:
    """Activations kept for backward (module docstring), per part, for one batch of ``shape``."""
    enc_conf, llm_conf = args.encoder_conf or {}, args.llm_conf or {}
    frames = int(shape.utt_seconds * MEL_FRAMES_PER_SECOND)
    if enc_conf.get("pad_to_30s"):
        frames = 30 * MEL_FRAMES_PER_SECOND
    out: Dict[str, int] = {}

    enc = model.encoder
    enc_frames = (frames - 1) // 2 + 1
    width = enc.output_size()
    if _trains(enc) and hasattr(enc, "encoder"):
        cfg = enc.encoder.config
        per_layer = 8 * cfg.d_model + 2 * cfg.encoder_ffn_dim
        layers = cfg.encoder_layers
        kept = (layers * cfg.d_model + per_layer) if enc_conf.get("gradient_checkpointing") else layers * per_layer
        out["encoder"] = shape.batch * enc_frames * kept * _act_bytes(enc, amp)
    else:
        out["encoder"] = shape.batch * enc_frames * width * 4  # its output only

    rate = (args.projector_conf or {}).get("downsample_rate", 1)
    tokens = shape.batch * -(-enc_frames // rate)
    proj = args.projector_conf or {}
    hidden = proj.get("expert_hidden", proj.get("hidden_size", width))
    top_k = proj.get("top_k", 1)
    llm_width = model.llm.hidden_size
    out["projector"] = tokens * (rate * width + 2 * top_k * hidden + 2 * llm_width) * 4

    cfg = model.llm.model.config
    heads_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv = cfg.num_key_value_heads * heads_dim
    per_layer = 7 * cfg.hidden_size + 2 * kv + 4 * cfg.intermediate_size
    layers = cfg.num_hidden_layers
    seq = shape.batch * (shape.prompt_tokens + tokens // shape.batch + shape.target_tokens)
    kept = (layers * cfg.hidden_size + per_layer) if llm_conf.get("gradient_checkpointing") else layers * per_layer
    out["llm"] = seq * kept * _act_bytes(model.llm, amp)
    return out


def logits_bytes(model: torch.nn.Module, args: argparse.Namespace, shape: StepShape, teacher: bool) -> Dict[str, int]:
    """The CE's float32 logits of all target tokens, and the largest chunk of a chunked loss."""
    vocab = model.llm.vocab_size
    per_row = vocab * (2 + 3 * 4)  # head output (bf16), float32 copy, log-softmax, its gradient
    out = {"ce": shape.batch * shape.target_tokens * per_row}
    chunks = []
    if teacher:
        chunks.append(min(DEFAULT_CHUNK, shape.batch * shape.target_tokens) * 2 * per_row)  # student + teacher
    for spec in args.aux_losses or []:
        if spec["name"] == "src_ctc":
            chunk = (spec.get("conf") or {}).get("chunk_size", DEFAULT_CHUNK)
            chunks.append(max(chunk, shape.batch) * per_row)
    out["largest_chunk"] = max(chunks, default=0)
    return out


def plan(
    args: argparse.Namespace,
    shape: StepShape,
    device: str = "cuda",
    world_size: int = 1,
    zero_stage: int = 0,
    small: bool = False,
) -> Dict:
    """The memory plan of one training step (module docstring); sizes in bytes."""
    planned, teacher_specs = without_teacher(config_only(args, small=small))
    model = build_like_trainer(planned, "meta")
    table = parameter_table(model)
    trainable = sum(n for (t, _), (n, _) in table.items() if t)
    trainable_bytes = sum(b for (t, _), (_, b) in table.items() if t)
    optimizer = OPTIMIZER_STATES.get(args.optim, 2) * 4 * trainable
    grads = trainable_bytes
    if zero_stage >= 1:
        optimizer //= world_size
    if zero_stage >= 2:
        grads //= world_size
    amp = bool(args.use_amp) and device == "cuda"
    per_rank = copy.copy(shape)
    per_rank.batch = max(1, -(-shape.batch // world_size))
    acts = activation_bytes(model, planned, per_rank, amp)
    logits = logits_bytes(model, planned, per_rank, teacher=bool(teacher_specs))
    teacher = trainable_bytes if teacher_specs else 0
    weights = sum(b for _, b in table.values())
    peak = weights + grads + optimizer + teacher + sum(acts.values()) + sum(logits.values())
    return dict(
        params=table, trainable=trainable, weights=weights, grads=grads, optimizer=optimizer, teacher=teacher,
        activations=acts, logits=logits, peak=peak, batch_per_rank=per_rank.batch, amp=amp,
        checkpointing={"encoder": bool((planned.encoder_conf or {}).get("gradient_checkpointing")),
                       "llm": bool((planned.llm_conf or {}).get("gradient_checkpointing"))},
    )


def activations_without_checkpointing(args: argparse.Namespace, shape: StepShape, **kw) -> Dict[str, int]:
    """The plan's activations with gradient checkpointing off everywhere (to print beside the plan's)."""
    args = copy.copy(args)
    args.encoder_conf = {**(args.encoder_conf or {}), "gradient_checkpointing": False}
    args.llm_conf = {**(args.llm_conf or {}), "gradient_checkpointing": False}
    return plan(args, shape, **kw)["activations"]


def format_plan(config: str, result: Dict, no_ckpt: Dict[str, int], shape: StepShape) -> str:
    g = lambda b: f"{b / GIB:8.2f} GiB"  # noqa: E731
    lines = [f"memory plan: {config}",
             f"batch: {shape.batch} utterances of {shape.utt_seconds:g} s ({result['batch_per_rank']} per rank), "
             f"{shape.prompt_tokens} prompt + {shape.target_tokens} target tokens; autocast bf16: {result['amp']}",
             "parameters:"]
    for (trains, dtype), (n, b) in sorted(result["params"].items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        lines.append(f"  {'trainable' if trains else 'frozen':9s} {dtype:9s} {n / 1e6:12.2f} M  {g(b)}")
    lines += [f"weights            {g(result['weights'])}",
              f"gradients          {g(result['grads'])}",
              f"optimiser state    {g(result['optimizer'])}",
              f"teacher (own)      {g(result['teacher'])}"]
    ckpt = result["checkpointing"]
    for part, b in result["activations"].items():
        note = " (checkpointed)" if ckpt.get(part) else ""
        lines.append(f"activations {part:9s}{g(b)}   without checkpointing {g(no_ckpt[part])}{note}")
    for part, b in result["logits"].items():
        lines.append(f"logits {part:14s}{g(b)}")
    lines.append(f"peak estimate      {g(result['peak'])}  (+ CUDA context and fragmentation)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CPU check
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def synthetic_batch(model: torch.nn.Module, args: argparse.Namespace, shape: StepShape, seed: int = 0) -> Dict:
    """A training batch of ``shape`` for ``model``: random speech, token ids, language labels
    (alternating over the languages), transcripts and frame phone labels."""
    gen = torch.Generator().manual_seed(seed)
    b, vocab = shape.batch, model.llm.vocab_size
    samples = int(shape.utt_seconds * SAMPLE_RATE)
    frames = int(shape.utt_seconds * MEL_FRAMES_PER_SECOND)
    n_lang = len(args.languages)
    return dict(
        speech=torch.randn(b, samples, generator=gen) * 0.1,
        speech_lengths=torch.full((b,), samples),
        text=torch.randint(4, vocab, (b, shape.target_tokens), generator=gen),
        text_lengths=torch.full((b,), shape.target_tokens),
        prompt=torch.randint(4, vocab, (b, shape.prompt_tokens), generator=gen),
        prompt_lengths=torch.full((b,), shape.prompt_tokens),
        lang=(torch.arange(b) % n_lang)[:, None],
        lang_lengths=torch.ones(b, dtype=torch.long),
        src_text=torch.randint(4, vocab, (b, shape.src_tokens), generator=gen),
        src_text_lengths=torch.full((b,), shape.src_tokens),
        phone_ali=torch.randint(0, 8, (b, frames), generator=gen),
        phone_ali_lengths=torch.full((b,), frames),
    )


def measure_cpu_step(args: argparse.Namespace, shape: StepShape, small: bool = True) -> Dict[str, float]:
    """Build the model for real on the CPU (``small`` shapes), run one training step (forward, backward,
    Adam step) on ``synthetic_batch``; the growth of the process's peak RSS over its RSS before building,
    and the step time."""
    planned, _ = without_teacher(config_only(args, small=small))
    torch.manual_seed(0)
    before = _rss_bytes()
    model = build_like_trainer(planned, "cpu").train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    batch = synthetic_batch(model, planned, shape)
    start = time.perf_counter()
    loss = model(**batch)[0]
    loss.backward()
    optim.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"peak_rss_growth": peak - before, "step_seconds": seconds, "loss": float(loss)}
