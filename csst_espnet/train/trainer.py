"""ESPnet's trainer, telling the model which training epoch it is in and when the optimiser updates.

The model's speech-side warm-up (``model_conf.speech_warmup_epochs``) depends on the epoch; the
epoch comes from ESPnet's reporter, which ``--resume`` restores, so a resumed run continues the
schedule where it stopped.

Loss schedules (the transition's λ) and the encoder's progressive unfreezing count optimiser updates: the model's ``on_update`` runs after
each step the optimiser takes — once per ``accum_grad`` micro-batches, never for a step ESPnet skips
on a non-finite gradient, never in validation. Every data-parallel rank takes the same steps, so the
count is the same on all of them; the hooks keep it in the state dict, so ``--resume`` restores it.

Faults (docs/architecture.md §4): every checkpoint is written atomically (``train/checkpoint.py``), so
a run killed at any moment resumes (``--resume true``) from the last complete ``checkpoint.pth``.
A batch whose loss or gradient is not finite (ESPnet skips its update) is reported with its
utterance ids and counted; ``--nonfinite stop`` stops the run there instead.
"""

import dataclasses
import logging
import os
from typing import Iterable, List

import torch

from espnet2.train.trainer import Trainer, TrainerOptions
from espnet2.utils.build_dataclass import build_dataclass

from csst_espnet.train.checkpoint import atomic_saves

NONFINITE_POLICIES = ("skip", "stop")


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient under ``--nonfinite stop``."""


@dataclasses.dataclass
class CSSTTrainerOptions(TrainerOptions):
    nonfinite: str = "skip"


# oneDNN keeps compiled CPU kernels per tensor shape, 1024 by default: the shapes of variable-length
# batches fill that cache over thousands of steps and the resident memory creeps up with it (+31 MiB
# over 2,000 steps of the tiny recipe); 128 holds it flat (docs/benchmarks.md, "Memory under load").
# The environment wins.
CPU_KERNEL_CACHE = 128


def bound_cpu_kernel_cache() -> None:
    """Bound oneDNN's kernel cache (before the process runs its first kernel)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(CPU_KERNEL_CACHE))


class CSSTTrainer(Trainer):
    @classmethod
    def build_options(cls, args) -> CSSTTrainerOptions:
        options = build_dataclass(CSSTTrainerOptions, args)
        if options.nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"--nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {options.nonfinite!r}")
        return options

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        """ESPnet's training loop, every ``torch.save`` of it atomic. The phase's update count starts at 0
        (``start_phase``) before ESPnet's ``--resume`` restores a checkpoint's."""
        model = kwargs["model"] if "model" in kwargs else args[0]
        model.start_phase()
        with atomic_saves():
            super().run(*args, **kwargs)

    @classmethod
    def train_one_epoch(cls, model, optimizers, reporter, options, distributed_option, **kwargs) -> bool:
        wrapped = isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel))
        core = model.module if wrapped else model
        epoch = reporter.get_epoch()
        core.set_epoch(epoch)
        if core.speech_only:
            if distributed_option.distributed and not options.unused_parameters:
                raise ValueError(
                    "speech_warmup_epochs with data-parallel training needs --unused_parameters true: the LLM's "
                    "trainable weights get no gradient in the warm-up epochs"
                )
            logging.info(
                f"epoch {epoch}: speech-side warm-up ({epoch} of {core.speech_warmup_epochs}); the LLM is not run, "
                f"the encoder and projector learn from {list(core.aux_losses)}"
            )
        if core.encoder_unfreeze is not None and distributed_option.distributed and not options.unused_parameters:
            raise ValueError("encoder_unfreeze with data-parallel training needs --unused_parameters true: the encoder "
                             "layers not yet unfrozen get no gradient")
        # The task has one optimiser (CSSTTask.num_optimizers); its step hook runs only for updates taken
        # (GradScaler.step skips optimizer.step on inf / NaN gradients).
        (optimizer,) = optimizers
        watch = _UpdateWatch(options.accum_grad, options.nonfinite, epoch)
        handle = optimizer.register_step_post_hook(lambda *_: (core.on_update(), watch.stepped()))
        kwargs["iterator"] = watch.batches(kwargs["iterator"])
        try:
            return super().train_one_epoch(
                model=model, optimizers=optimizers, reporter=reporter, options=options,
                distributed_option=distributed_option, **kwargs
            )
        finally:
            handle.remove()
            watch.close()


class _UpdateWatch:
    """Follows the batches of an epoch and the optimiser's steps: an update window (``accum_grad``
    batches) that ends without a step had a non-finite loss or gradient (ESPnet skipped it). Each is
    logged with its utterance ids and counted; under policy ``stop`` the next batch raises
    :class:`NonFiniteError` instead."""

    def __init__(self, accum_grad: int, policy: str, epoch: int):
        self.accum_grad = accum_grad
        self.policy = policy
        self.epoch = epoch
        self.window: List[str] = []  # utterance ids since the last update
        self.batches_in_window = 0
        self.took_step = False
        self.skipped = 0
        self.skipped_utts: List[str] = []

    def stepped(self) -> None:
        self.took_step = True

    def batches(self, iterator: Iterable):
        for keys, batch in iterator:
            self._check()
            self.window.extend(keys)
            self.batches_in_window += 1
            yield keys, batch
        self._check()

    def _check(self) -> None:
        """After a full window: a step taken starts a new window; none means a skipped update."""
        if self.batches_in_window < self.accum_grad:
            return
        if not self.took_step:
            self.skipped += 1
            self.skipped_utts.extend(self.window)
            msg = (f"epoch {self.epoch}: non-finite loss or gradient in the batch of utterances "
                   f"{' '.join(self.window)}")
            if self.policy == "stop":
                raise NonFiniteError(f"{msg} (--nonfinite stop)")
            logging.warning(f"{msg}: update skipped (--nonfinite skip)")
        self.window, self.batches_in_window, self.took_step = [], 0, False

    def close(self) -> None:
        """End of the epoch (also when ESPnet stopped taking batches early): the last window, the count."""
        if self.batches_in_window >= self.accum_grad and not self.took_step:
            self.skipped += 1
            self.skipped_utts.extend(self.window)
            logging.warning(f"epoch {self.epoch}: non-finite loss or gradient in the batch of utterances "
                            f"{' '.join(self.window)}: update skipped")
        if self.skipped:
            logging.warning(f"epoch {self.epoch}: {self.skipped} updates skipped on a non-finite loss or gradient "
                            f"({len(self.skipped_utts)} utterances, e.g. {' '.join(self.skipped_utts[:10])})")
        else:
            logging.info(f"epoch {self.epoch}: 0 updates skipped on a non-finite loss or gradient")
