"""YAML configs of the csst recipe: command-line options from a config, one value of a config, and
the tasks a model was trained on. See docs/architecture.md (recipe)."""

from typing import List

import yaml

from csst_espnet.data import kaldi_dir as kd


class ConfigError(ValueError):
    """A config the recipe cannot turn into options."""


def yaml2args(path: str) -> List[str]:
    """``--key value`` options from a YAML mapping (a list repeats the option; null is left out)."""
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise ConfigError(f"{path}: expected a mapping of options")
    args: List[str] = []
    for key, value in conf.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            if not text or any(c.isspace() for c in text):
                raise ConfigError(f"{path}: option {key}: value {text!r} is empty or contains spaces")
            args += [f"--{key}", text]
    return args


def config_get(path: str, key: str) -> str:
    """The value of ``KEY[.SUBKEY...]`` in a YAML config as text; "" when absent or null."""
    with open(path, encoding="utf-8") as f:
        value = yaml.safe_load(f) or {}
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return "" if value is None else str(value)


def trained_tasks(path: str) -> List[str]:
    """Tasks (asr, st) of a model's training data, from its training config: the values of the
    ``task`` data file, or ``preprocessor_conf.default_task`` when the data has none."""
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    for entry in conf.get("train_data_path_and_name_and_type") or []:
        if len(entry) == 3 and entry[1] == "task":
            return sorted(set(kd.read_table(entry[0], unique=True).values()))
    return [(conf.get("preprocessor_conf") or {}).get("default_task", "st")]
