"""ESPnet's trainer, telling the model which training epoch it is in and when the optimiser updates.

The model's speech-side warm-up (``model_conf.speech_warmup_epochs``) depends on the epoch; the
epoch comes from ESPnet's reporter, which ``--resume`` restores, so a resumed run continues the
schedule where it stopped.

Loss schedules (the transition's λ) count optimiser updates: the model's ``on_update`` runs after
each step the optimiser takes — once per ``accum_grad`` micro-batches, never for a step ESPnet skips
on a non-finite gradient, never in validation. Every data-parallel rank takes the same steps, so the
count is the same on all of them; the hooks keep it in the state dict, so ``--resume`` restores it.
"""

import logging

import torch

from espnet2.train.trainer import Trainer


class CSSTTrainer(Trainer):
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
        # The task has one optimiser (CSSTTask.num_optimizers); its step hook runs only for updates taken
        # (GradScaler.step skips optimizer.step on inf / NaN gradients).
        (optimizer,) = optimizers
        handle = optimizer.register_step_post_hook(lambda *_: core.on_update())
        try:
            return super().train_one_epoch(
                model=model, optimizers=optimizers, reporter=reporter, options=options,
                distributed_option=distributed_option, **kwargs
            )
        finally:
            handle.remove()
