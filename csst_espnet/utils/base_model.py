"""Which pretrained weights a model was trained on, recorded in its checkpoints and checked on loading.

A checkpoint holds what trained (adapters, projector), not the frozen backbone, which comes back from
``model_name_or_path`` when the model is rebuilt (``models/frozen_state.py``). If those weights have
changed in between (the stage-6 text LM re-trained, a hub name now resolving to a newer revision, a
path pointing elsewhere), old adapters would silently meet new weights. So a module built on pretrained
weights (``RecordsBaseModel``: the LLM, a pretrained Whisper encoder) writes its base's identity into
every state dict under ``<prefix>base_model_identity``, and ``load_state_dict`` refuses a state dict
recorded on another base, naming both.

The identity is the name or path and the revision: for a local directory, ``sha256:`` of its weight
files (``*.safetensors``, ``*.bin``: names, sizes and contents; about 20 s for 15 GB); for a hub name,
the commit of the snapshot that was loaded. Two names with the same revision are the same base (a
moved directory). It is stored as a float64 tensor of the UTF-8 bytes of its JSON, so that ESPnet's
n-best averaging (which divides every non-integer tensor by n after summing n equal ones) leaves it
exact, and ``torch.load(weights_only=True)`` reads it.
"""

import glob
import hashlib
import json
import logging
import os
from typing import Dict, Optional

import torch

from csst_espnet.utils.files import update_digest

KEY = "base_model_identity"
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def weight_files_digest(directory: str) -> str:
    """``sha256:<hex>`` over the weight files of a local model directory (names, sizes, contents)."""
    files = sorted({f for pattern in WEIGHT_PATTERNS for f in glob.glob(os.path.join(directory, pattern))})
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_PATTERNS)}) in {directory}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{os.path.basename(path)}\0{os.path.getsize(path)}\0".encode())
        update_digest(digest, path)
    return "sha256:" + digest.hexdigest()


def identity(name_or_path: str, config=None) -> Dict[str, str]:
    """The identity of pretrained weights loaded from ``name_or_path`` (``config``: the loaded model's
    Hugging Face config, whose ``_commit_hash`` names a hub snapshot)."""
    if os.path.isdir(name_or_path):
        revision = weight_files_digest(name_or_path)
    else:
        revision = getattr(config, "_commit_hash", None) or "unknown"
    return {"name_or_path": name_or_path, "revision": revision}


def encode(ident: Dict[str, str]) -> torch.Tensor:
    return torch.tensor(list(json.dumps(ident, sort_keys=True).encode("utf-8")), dtype=torch.float64)


def decode(tensor: torch.Tensor) -> Dict[str, str]:
    return json.loads(bytes(int(round(float(x))) for x in tensor.tolist()).decode("utf-8"))


def same_base(a: Dict[str, str], b: Dict[str, str]) -> bool:
    """Same revision when both are known; otherwise the same name."""
    if a["revision"] != "unknown" and b["revision"] != "unknown":
        return a["revision"] == b["revision"]
    return a["name_or_path"] == b["name_or_path"]


class RecordsBaseModel:
    """Mixin for a ``torch.nn.Module`` built on pretrained weights: set ``base_identity`` (``identity``)
    after loading them; the module's state dicts then carry it and loading checks it (module docstring)."""

    base_identity: Optional[Dict[str, str]] = None
    base_kind: str = "pretrained model"  # how the error message calls it ("LLM", "speech encoder")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.base_identity is not None:
            destination[prefix + KEY] = encode(self.base_identity)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.pop(prefix + KEY, None)
        if saved is not None and self.base_identity is not None:
            trained_on = decode(saved)
            if not same_base(trained_on, self.base_identity):
                raise ValueError(
                    f"these weights were trained on the {self.base_kind} '{trained_on['name_or_path']}' "
                    f"({trained_on['revision']}), but this model is built on '{self.base_identity['name_or_path']}' "
                    f"({self.base_identity['revision']}): its adapters do not fit other base weights. "
                    f"Build the model on '{trained_on['name_or_path']}' at that revision, or retrain."
                )
        elif self.base_identity is not None:
            logging.warning("%s: the weights being loaded record no base %s (saved before identities were "
                            "recorded); assuming '%s'", prefix or "model", self.base_kind,
                            self.base_identity["name_or_path"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
