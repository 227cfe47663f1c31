"""Training configs composed of the recipe's model definition and a phase (docs/architecture.md).

A phase YAML names the one model definition of its recipe with ``model_config`` (a path relative
to the phase YAML)::

    # conf/train_phase2.yaml
    model_config: model.yaml     # frontend, encoder, projector, llm, languages, prompt
    aux_losses: [...]            # what this phase trains and how
    max_epoch: 3

The model file's keys join the phase's keys. A key in both files is an error, so no phase can
redefine the model the previous phase trained (phase N+1 loads phase N strictly); the command line
still wins over both. ESPnet writes the composed config, without ``model_config``, to
``<exp>/config.yaml``, which therefore stays a complete, self-contained config.
"""

import argparse
import os
from typing import Any, Dict, Optional, Tuple

import yaml
from espnet2.utils import config_argparse

MODEL_CONFIG_KEY = "model_config"
# (config key, sub key) of the pretrained parts a config loads from a local path or hub name
PRETRAINED_KEYS: Tuple[Tuple[str, Optional[str]], ...] = (
    ("llm_conf", "model_name_or_path"),
    ("tokenizer", None),
    ("encoder_conf", "model_name_or_path"),
)


class ConfigError(ValueError):
    """A config file that cannot be composed; the message names the file."""


def _read_mapping(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such config file")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(config).__name__}")
    return config


def load_config(path: str) -> Dict[str, Any]:
    """The config of ``path`` with its ``model_config`` (if any) merged in."""
    config = _read_mapping(path)
    model_file = config.pop(MODEL_CONFIG_KEY, None)
    if model_file is None:
        return config
    model_path = os.path.join(os.path.dirname(path), str(model_file))
    model = _read_mapping(model_path)
    if MODEL_CONFIG_KEY in model:
        raise ConfigError(f"{model_path}: a model definition cannot name another {MODEL_CONFIG_KEY}")
    repeated = sorted(set(model) & set(config))
    if repeated:
        raise ConfigError(
            f"{path} repeats {repeated} of its {MODEL_CONFIG_KEY} {model_path}: the model is defined "
            "once, there (for one experiment, override it on the command line)"
        )
    return {**model, **config}


class ComposedConfigParser(config_argparse.ArgumentParser):
    """ESPnet's ``--config`` parser, reading the config through :func:`load_config`."""

    def parse_known_args(self, args=None, namespace=None):
        known, _ = argparse.ArgumentParser.parse_known_args(self, args, namespace)
        if known.config is not None:
            try:
                config = load_config(known.config)
            except ConfigError as e:
                self.error(str(e))
            options = {action.dest for action in self._actions}
            unknown = [key for key in config if key not in options]
            if unknown:
                self.error(f"unrecognized arguments: {', '.join(unknown)} (from {known.config})")
            self.set_defaults(**config)
        return argparse.ArgumentParser.parse_known_args(self, args, namespace)
