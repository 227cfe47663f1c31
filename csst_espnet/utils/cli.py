"""Command-line helpers shared by the ``csst_espnet.bin`` tools."""

import argparse


def add_option(parser: argparse.ArgumentParser, name: str, **kwargs) -> argparse.Action:
    """``--name`` with ``--name-with-dashes`` as an alias: options take dashes or underscores alike."""
    names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    return parser.add_argument(*names, dest=name, **kwargs)
