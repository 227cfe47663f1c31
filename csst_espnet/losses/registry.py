"""Auxiliary-loss hooks selectable by name from the YAML config.

    aux_losses:
      - name: lang            # a key of AUX_LOSSES
        weight: 0.1           # multiplies the hook's unweighted loss (default 1.0)
        conf: {}              # constructor options of the hook
      - name: balance
        weight: 0.01
        conf: {token_set: label_or_dispatched}

A spec may also give ``key`` (default: ``name``) to use one hook twice with different options; the
key names the hook in the returned ModuleDict and, unless ``conf.stat_prefix`` says otherwise, prefixes
its stats.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from csst_espnet.losses.frame_phone import FramePhoneLoss
from csst_espnet.losses.routing import GlobalBalanceLoss, IntraGroupBalanceLoss, LanguageLoss, RouterZLoss
from csst_espnet.losses.src_ctc import SourceCTCLoss
from csst_espnet.losses.transition import TransitionLoss

AUX_LOSSES = {
    "lang": LanguageLoss,
    "balance": IntraGroupBalanceLoss,
    "global_balance": GlobalBalanceLoss,
    "z_loss": RouterZLoss,
    "transition": TransitionLoss,
    "frame_phone": FramePhoneLoss,
    "src_ctc": SourceCTCLoss,
}

_SPEC_KEYS = {"name", "weight", "conf", "key"}


def build_aux_losses(
    specs: Optional[Sequence[Dict[str, Any]]],
    projector: torch.nn.Module,
    languages: Sequence[str],
    encoder_output_size: Optional[int] = None,
    llm_hidden_size: Optional[int] = None,
    load_teacher: Optional[Callable[[], torch.nn.Module]] = None,
) -> Tuple[torch.nn.ModuleDict, Dict[str, float]]:
    """Build the hooks of ``specs``: returns ``(ModuleDict key -> hook, dict key -> weight)``.

    Hooks with ``uses_encoder_output = True`` also get ``encoder_output_size``, hooks with
    ``uses_llm_width = True`` get ``llm_hidden_size``, hooks with ``uses_teacher = True`` get
    ``load_teacher`` (a callable returning the frozen previous-phase model; the task provides it,
    so that no hook imports the task).
    """
    hooks = torch.nn.ModuleDict()
    weights: Dict[str, float] = {}
    for i, spec in enumerate(specs or []):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(
                f"aux_losses[{i}] must be a mapping with a 'name' (one of {sorted(AUX_LOSSES)}), got {spec!r}"
            )
        unknown_keys = set(spec) - _SPEC_KEYS
        if unknown_keys:
            raise ValueError(
                f"aux_losses[{i}] ({spec['name']}): unknown keys {sorted(unknown_keys)}, allowed {sorted(_SPEC_KEYS)}"
            )
        name = spec["name"]
        if name not in AUX_LOSSES:
            raise ValueError(f"unknown aux loss '{name}' in aux_losses[{i}]; known: {', '.join(sorted(AUX_LOSSES))}")
        key = spec.get("key", name)
        if key in hooks:
            raise ValueError(f"aux loss key '{key}' is used twice; give one of them another 'key'")
        conf = dict(spec.get("conf") or {})
        conf.setdefault("stat_prefix", key)
        try:
            if getattr(AUX_LOSSES[name], "uses_encoder_output", False):
                if encoder_output_size is None:
                    raise ValueError(f"aux loss '{key}' reads the encoder output: give encoder_output_size")
                conf["encoder_output_size"] = encoder_output_size
            if getattr(AUX_LOSSES[name], "uses_llm_width", False):
                if llm_hidden_size is None:
                    raise ValueError(f"aux loss '{key}' reads the LLM's embeddings: give llm_hidden_size")
                conf["llm_hidden_size"] = llm_hidden_size
            if getattr(AUX_LOSSES[name], "uses_teacher", False):
                conf["load_teacher"] = load_teacher
            hooks[key] = AUX_LOSSES[name](projector=projector, languages=tuple(languages), **conf)
        except TypeError as e:
            raise ValueError(f"aux loss '{key}' ({AUX_LOSSES[name].__name__}): bad conf {conf}: {e}") from e
        weights[key] = float(spec.get("weight", 1.0))
    return hooks, weights


def known_aux_losses() -> List[str]:
    return sorted(AUX_LOSSES)
