"""csst-espnet: code-switch speech translation with large language models, as an ESPnet plugin.

``from csst_espnet import Speech2Text`` (imported on first use: importing the package stays light).
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Speech2Text":
        from csst_espnet.inference.speech2text import Speech2Text

        return Speech2Text
    raise AttributeError(f"module 'csst_espnet' has no attribute {name!r}")
