"""Transition loss: the move from previous-phase data (monolingual ST) to code-switch ST.

Utterances of both kinds are in one training set, told apart by their language label
(``cs`` = code-switch; every other label, and -1, is previous-phase). In a batch, C are its
code-switch utterances and P the others; CE(S) is the mean over the utterances b of S of CE_b,
utterance b's mean target-token CE; a kind absent from a batch contributes nothing.

Each utterance's CE is counted once (docs/architecture.md §2): ``ce_utterances`` names the
utterances whose CE this loss contains — every one in mixture mode, C in distill mode — and the
model's plain CE (weight ``model_conf.ce_weight``) is the mean over the target tokens of the others
only, CE_tok(S) = Σ_{b∈S} Σ_t ce_bt / Σ_{b∈S} n_b. With w the hook's weight, the objective is

    mixture:  w · [(1 - λ) · CE(P) + λ · CE(C)]                 (ce_weight has no utterance left)
    distill:  ce_weight · CE_tok(P) + w · [CE(C) + γ · τ² · KL(P)]

(plus the other hooks). Distill with ``ce_weight: 0``: the previous-phase utterances learn from the
teacher only; with ``ce_weight: 1`` (mini_cs phase 3) also from their references.

Mixture mode (``mode: mixture``; options ``ramp_steps``, ``start``): λ = start + (1 - start) ·
min(1, k / ramp_steps) after k optimiser updates. The trainer counts them (``on_update``, from
``CSSTTrainer``): every micro-batch of one update (``accum_grad``) sees the same λ, a step skipped on a
non-finite gradient and validation do not move it, and k is in the state dict (``step``), so
``--resume`` continues the ramp. Stats: ``<prefix>_lambda``, ``<prefix>_ce_cs``, ``<prefix>_ce_prev``.

Distill mode (``mode: distill``; options ``gamma``, ``temperature``): KL(P) = KL(p_teacher ‖ p_student),
p = softmax(logits / τ) over the vocabulary, averaged over the target tokens of P. The teacher is
the frozen previous-phase model, which the task loads from ``--teacher_config`` / ``--teacher_model``
(csst.sh passes phase 2's ``config.yaml`` and model file); it must share the student's tokenizer.
Built on the same backbone, it shares the student's frozen encoder and LLM tensors and holds only
its own trained weights (``CSSTTask.load_teacher``). The logits of both sides are computed from
hidden states ``chunk_size`` target tokens at a time, each chunk checkpointed (``losses/chunked.py``).
Stats: ``<prefix>_ce_cs``, ``<prefix>_kl``.

Data parallelism: λ depends on the update count only, the same on every rank. CE(C), CE(P) and
KL(P) are means over this rank's utterances, like the plain CE; ESPnet weights rank r's loss by
B_r / B (its share of the global batch), so the objective is Σ_r B_r / B · L_r — per-rank kind
means, as gradient accumulation gives per-micro-batch ones.

Which to choose: mixture needs nothing but the data and costs nothing extra, but previous-phase
data keep only the weight 1 - λ, which falls to 0, so what phase 2 learnt may drift away late in
phase 3. Distill keeps the student's output distribution on previous-phase data close to the
phase-2 model for the whole phase (γ sets how close) and learns from full teacher distributions
rather than one reference, at the price of a teacher forward pass on the previous-phase part of
every batch and a copy of the trained weights (projector, adapters) in memory.
"""

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs
from csst_espnet.losses.chunked import DEFAULT_CHUNK, at_least_float32, map_chunks

MODES = ("mixture", "distill")
_MODE_OPTIONS = {
    "mixture": ("ramp_steps", "start"),
    "distill": ("gamma", "temperature"),
}


class TransitionLoss(AbsAuxLoss):
    """Args: see the module docstring; options of the other mode are errors.

    The distill teacher is held outside the module tree: it has no entry in ``parameters()``,
    ``state_dict()`` or the optimizer, but follows the hook's device and dtype moves.
    """

    needs_llm_outputs = True
    uses_teacher = True

    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str],
        mode: str = "mixture",
        ramp_steps: Optional[int] = None,
        start: Optional[float] = None,
        load_teacher: Optional[Callable[[], torch.nn.Module]] = None,
        gamma: Optional[float] = None,
        temperature: Optional[float] = None,
        cs_label: str = "cs",
        chunk_size: int = DEFAULT_CHUNK,
        stat_prefix: str = "transition",
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"transition mode '{mode}' is not available; available: {', '.join(MODES)}")
        given = dict(ramp_steps=ramp_steps, start=start, gamma=gamma, temperature=temperature)
        foreign = [k for k, v in given.items() if v is not None and k not in _MODE_OPTIONS[mode]]
        if foreign:
            raise ValueError(f"transition mode '{mode}' takes {list(_MODE_OPTIONS[mode])}, not {foreign}")
        if cs_label not in languages:
            raise ValueError(f"transition cs_label '{cs_label}' is not in languages {list(languages)}")
        self.mode = mode
        self.cs_index = list(languages).index(cs_label)
        self.prefix = stat_prefix
        self.chunk_size = chunk_size
        # Outside the module tree (see the class docstring); None in mixture mode.
        object.__setattr__(self, "teacher", None)
        if mode == "mixture":
            self.ramp_steps = 1000 if ramp_steps is None else ramp_steps
            self.start = 0.0 if start is None else start
            if self.ramp_steps < 1 or not 0.0 <= self.start <= 1.0:
                raise ValueError(f"need ramp_steps >= 1 and 0 <= start <= 1, got {self.ramp_steps}, {self.start}")
            # Optimiser updates taken (on_update); saved in checkpoints so that --resume continues the ramp.
            self.register_buffer("step", torch.zeros((), dtype=torch.long))
        else:
            self.gamma = 1.0 if gamma is None else gamma
            self.temperature = 1.0 if temperature is None else temperature
            if self.gamma < 0 or self.temperature <= 0:
                raise ValueError(f"need gamma >= 0 and temperature > 0, got {self.gamma}, {self.temperature}")
            if load_teacher is None:
                raise ValueError("transition mode 'distill' needs the previous phase's model (load_teacher)")
            object.__setattr__(self, "teacher", load_teacher())

    def _apply(self, fn, recurse=True):
        # .to() / .cuda() / .half() on the student reach the teacher too.
        if recurse and self.teacher is not None:
            self.teacher._apply(fn)
        return super()._apply(fn, recurse)

    def weight(self) -> float:
        """λ after the optimiser updates taken so far (mixture mode)."""
        progress = min(1.0, float(self.step) / self.ramp_steps)
        return self.start + (1.0 - self.start) * progress

    def on_update(self) -> None:
        if self.mode == "mixture":
            self.step += 1

    def ce_utterances(self, lang: Optional[torch.Tensor], batch: int) -> torch.Tensor:
        """Every utterance in mixture mode, the code-switch ones in distill mode (module docstring)."""
        if self.mode == "mixture":
            return torch.ones(batch, dtype=torch.bool, device=self.step.device)
        return self._is_cs(lang)

    def _is_cs(self, lang: Optional[torch.Tensor]) -> torch.Tensor:
        if lang is None:
            raise ValueError("the transition loss needs utt2lang in the training data (lang)")
        return lang == self.cs_index

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        is_cs = self._is_cs(inputs.lang)
        ce = inputs.ce_per_utt
        zero = ce.new_zeros(())
        ce_cs = ce[is_cs].mean() if is_cs.any() else zero
        if self.mode == "distill":
            kl = self._kl(inputs, ~is_cs) if (~is_cs).any() else zero
            loss = ce_cs + self.gamma * kl
            return loss, {f"{self.prefix}_ce_cs": ce_cs.detach(), f"{self.prefix}_kl": kl.detach()}

        lam = self.weight()
        ce_prev = ce[~is_cs].mean() if (~is_cs).any() else zero
        loss = (1.0 - lam) * ce_prev + lam * ce_cs
        stats = {
            f"{self.prefix}_lambda": torch.tensor(lam),
            f"{self.prefix}_ce_cs": ce_cs.detach(),
            f"{self.prefix}_ce_prev": ce_prev.detach(),
        }
        return loss, stats

    def _kl(self, inputs: AuxLossInputs, rows: torch.Tensor) -> torch.Tensor:
        """τ² · KL(teacher ‖ student), averaged over the target tokens of utterances ``rows`` (B,); logits
        over the vocabulary a chunk of target tokens at a time (``losses/chunked.py``)."""
        if inputs.hidden is None or inputs.lm_head is None or inputs.target_mask is None or not inputs.model_inputs:
            raise ValueError("transition distill mode needs the model's hidden states, lm_head, target_mask and "
                             "model_inputs")
        vocab = inputs.lm_head(inputs.hidden[:1, :1].detach()).size(-1)  # one position's logits
        if self.teacher.llm.vocab_size != vocab:
            raise ValueError(
                f"transition distill: the teacher's vocabulary has {self.teacher.llm.vocab_size} tokens, "
                f"the student's {vocab}; the teacher must use the student's tokenizer"
            )
        batch = {k: v[rows] for k, v in inputs.model_inputs.items()}
        batch["speech"] = batch["speech"][:, : int(batch["speech_lengths"].max())]
        with torch.no_grad():
            teacher_hidden = self.teacher.target_hidden(**batch)[0]  # (B', L, H)
        # The N target tokens of those rows, in the same (row, position) order on both sides.
        mask = inputs.target_mask[rows]  # (B', L)
        tau = self.temperature

        def kl_sum(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:  # (n, H), (n, H) -> ()
            s_logits, t_logits = at_least_float32(inputs.lm_head(student)), at_least_float32(self.teacher.llm.head(teacher))
            return torch.nn.functional.kl_div(torch.log_softmax(s_logits / tau, dim=-1),
                                              torch.log_softmax(t_logits / tau, dim=-1),
                                              log_target=True, reduction="sum")

        student = inputs.hidden[inputs.target_mask & rows[:, None]]  # (N, H)
        kl = sum(map_chunks(kl_sum, self.chunk_size, student, teacher_hidden[mask]))
        return tau**2 * kl / mask.sum().clamp(min=1)
