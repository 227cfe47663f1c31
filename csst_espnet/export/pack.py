"""Pack a trained model into an ESPnet-style zip: its config, model file and the local directories
of its pretrained parts, with a ``meta.yaml`` (``csst_espnet.bin.pack_model``; see docs/architecture.md)."""

import copy
import datetime
import os
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from csst_espnet.utils.config import PRETRAINED_KEYS
from csst_espnet.utils.files import file_sha256
from csst_espnet.utils.versions import package_versions


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def _arcname(path: str) -> Tuple[str, bool]:
    """Archive name of a local path, and whether it lies inside the current directory."""
    rel = os.path.relpath(os.path.abspath(path))
    if rel.startswith(".."):
        return os.path.join("external", os.path.basename(os.path.abspath(path).rstrip(os.sep))), False
    return rel, True


def pack(exp_dir: str, model_file: str, out: str, llm_policy: str = "auto", max_include_mb: float = 2048,
         extra: Sequence[str] = ()) -> Dict:
    """Write the zip ``out`` (see ``csst_espnet.bin.pack_model`` for what it holds); returns its meta."""
    if llm_policy not in ("auto", "include", "reference"):
        raise ValueError(f"--llm_policy must be auto, include or reference, got {llm_policy!r}")
    config_path = os.path.join(exp_dir, "config.yaml")
    for p in (config_path, model_file, *extra):
        if not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p}")
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    packed_config = copy.deepcopy(config)
    files: List[Tuple[str, str]] = []  # (path on disk, archive name)
    dirs: List[Tuple[str, str]] = []
    references: Dict[str, str] = {}
    seen_dirs: Dict[str, str] = {}
    for key, sub in PRETRAINED_KEYS:
        value = config.get(key) if sub is None else (config.get(key) or {}).get(sub)
        if not value:
            continue
        name = key if sub is None else f"{key}.{sub}"
        if not os.path.isdir(value):
            references[name] = f"{value} (not a local directory: loaded by name)"
            continue
        size_mb = _dir_size(value) / 2**20
        if llm_policy == "reference" or (llm_policy == "auto" and size_mb > max_include_mb):
            references[name] = f"{value} (local directory of {size_mb:.0f} MB, not packed)"
            continue
        arc, inside = _arcname(value)
        if os.path.abspath(value) not in seen_dirs:
            seen_dirs[os.path.abspath(value)] = arc
            dirs.append((value, arc))
        if not inside:
            if sub is None:
                packed_config[key] = arc
            else:
                packed_config[key][sub] = arc
    model_arc, _ = _arcname(model_file)
    config_arc, _ = _arcname(config_path)
    files.append((model_file, model_arc))
    files += [(p, _arcname(p)[0]) for p in extra]
    for src, arc in dirs:
        for root, _, names in os.walk(src):
            for n in sorted(names):
                path = os.path.join(root, n)
                files.append((path, os.path.join(arc, os.path.relpath(path, src))))
    meta = {
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": package_versions(("csst-espnet", "espnet", "torch", "transformers", "peft")),
        "files": {"config": config_arc, "model_file": model_arc, "directories": [a for _, a in dirs],
                  "extra": [_arcname(p)[0] for p in extra]},
        "model_sha256": file_sha256(model_file),
        "references": references,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(config_arc, yaml.safe_dump(packed_config, allow_unicode=True, sort_keys=False))
        for path, arc in files:
            z.write(path, arc)
        z.writestr("meta.yaml", yaml.safe_dump(meta, allow_unicode=True, sort_keys=False))
    os.replace(tmp, out)
    return meta
