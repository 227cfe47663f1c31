"""csst-espnet: code-switch speech translation with large language models, as an ESPnet plugin."""

from csst_espnet.utils.offline import quiet_nltk_download

__version__ = "0.1.0"

quiet_nltk_download()
