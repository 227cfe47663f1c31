"""Installed versions of the packages a result depends on (for RESULTS.md and packed models)."""

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, Sequence

RESULT_PACKAGES = ("csst-espnet", "torch", "espnet", "transformers", "peft", "sacrebleu")


def package_versions(dists: Sequence[str] = RESULT_PACKAGES) -> Dict[str, str]:
    """``{"python": ..., dist: version}``; a distribution that is not installed reads "not installed"."""
    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out
