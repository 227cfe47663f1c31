"""Keep frozen pretrained backbones out of checkpoints.

ESPnet's trainer saves ``model.state_dict()`` for every epoch, ``checkpoint.pth`` and the
averaged model, and loads them back with ``load_state_dict``. A submodule that sets
``restores_frozen_from_pretrained = True`` (the LLM, a pretrained Whisper encoder) reloads its
weights from its pretrained source whenever the model is built, so its parameters with
``requires_grad=False`` are dropped from the state dict and not reported missing on loading.
What trains (projector, LoRA, unfrozen layers) is always saved. So is, even when frozen (e.g. by
``--freeze_param`` in a later phase), whatever does not come from the pretrained source: adapter
weights (peft's ``lora_*`` parameters) and every parameter once loaded from a checkpoint
(``init_param`` of an earlier phase, a resumed or decoded model), since a checkpoint holds only
weights that trained. Without that, an encoder fine-tuned in phase 1 and frozen in phase 3 would
silently fall back to its pretrained weights.
"""

import copy
from typing import Set

import torch

ADAPTER_PREFIX = "lora_"  # peft's LoRA parameters: lora_A, lora_B, lora_embedding_*, lora_magnitude_*
FROM_CHECKPOINT = "_csst_from_checkpoint"  # attribute: names of the module's parameters loaded from a checkpoint


def is_adapter(name: str) -> bool:
    """Whether a parameter name belongs to a peft adapter (never restored from a pretrained source)."""
    return any(part.startswith(ADAPTER_PREFIX) for part in name.split("."))


def frozen_pretrained_names(model: torch.nn.Module) -> Set[str]:
    """Names of the parameters that a rebuilt model restores from pretrained sources."""
    names = set()
    for module_name, module in model.named_modules():
        if not getattr(module, "restores_frozen_from_pretrained", False):
            continue
        prefix = f"{module_name}." if module_name else ""
        from_checkpoint = getattr(module, FROM_CHECKPOINT, set())
        names.update(prefix + n for n, p in module.named_parameters()
                     if not p.requires_grad and not is_adapter(n) and n not in from_checkpoint)
    return names


def exclude_frozen_pretrained(model: torch.nn.Module) -> None:
    """Install the state-dict hooks on ``model`` (call once, on the top-level model)."""

    def drop_frozen(module, state_dict, prefix, local_metadata):
        for name in frozen_pretrained_names(module):
            state_dict.pop(prefix + name, None)

    def allow_missing_frozen(module, incompatible_keys):
        frozen = frozen_pretrained_names(module)
        missing = [k for k in incompatible_keys.missing_keys if k not in frozen]
        incompatible_keys.missing_keys[:] = missing

    def note_loaded(module, state_dict, prefix, *args):
        params = {n for n, _ in module.named_parameters()}
        loaded = {k[len(prefix):] for k in state_dict if k.startswith(prefix)} & params
        setattr(module, FROM_CHECKPOINT, getattr(module, FROM_CHECKPOINT, set()) | loaded)

    model.register_state_dict_post_hook(drop_frozen)
    model.register_load_state_dict_post_hook(allow_missing_frozen)
    for module in model.modules():
        if getattr(module, "restores_frozen_from_pretrained", False):
            module.register_load_state_dict_pre_hook(note_loaded)


def copy_sharing_frozen(module: torch.nn.Module, own: Set[str]) -> torch.nn.Module:
    """A deep copy of ``module`` that shares (same tensors, same storage) its frozen parameters and its
    non-persistent buffers, except those named in ``own``; everything else (what trains: adapters,
    unfrozen layers, and the tensors in ``own``) is copied. A distillation teacher built this way holds
    only its own trained weights beside the student's frozen backbone (``CSSTTask.load_teacher``)."""
    persistent = set(module.state_dict(keep_vars=True))
    shared = {id(p): p for n, p in module.named_parameters() if not p.requires_grad and n not in own}
    shared.update({id(b): b for n, b in module.named_buffers() if n not in persistent and n not in own})
    return copy.deepcopy(module, memo=dict(shared))
