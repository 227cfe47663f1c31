"""csst-espnet: code-switch speech translation with large language models, as an ESPnet plugin."""

__version__ = "0.1.0"
