"""csst-espnet: code-switch speech translation with LLMs, an ESPnet plugin."""

from setuptools import find_packages, setup

install_requires = [
    "espnet==202511",
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "transformers==5.23.0",
    "peft==0.21.2",
    "sentencepiece==0.2.0",
    "kaldiio==2.18.1",
    "pyyaml==6.0.3",
    "sacrebleu==2.6.0",
    "soundfile==0.14.0",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "espeakng-loader==0.2.4",
    "tensorboard==2.21.0",
    "scipy==1.17.1",
    "pyroomacoustics==0.10.1",
    "pyarrow==21.0.0",  # corpora in Hugging Face parquet (egs2/ntuml2021, egs2/cs_fleurs)
]

setup(
    name="csst-espnet",
    version="0.1.0",
    description="Code-switch speech translation with large language models, as an ESPnet plugin",
    packages=find_packages(include=["csst_espnet", "csst_espnet.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=install_requires,
    extras_require={"test": ["pytest==9.2.0"]},
)
