"""Small models and data created locally for the tests (no network)."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCES = [
    "we use gradient descent to train the model",
    "the loss goes down after each epoch",
    "attention layers mix information across time",
    "dropout reduces overfitting on small data",
    "我们 用 gradient descent 来 训练 这个 model",
    "这个 模型 的 loss 很 低",
    "注意力 机制 很 重要",
    "今天 我们 讲 神经 网络",
]


def build_tokenizer(out_dir: Path):
    """A byte-level BPE tokenizer trained on SENTENCES, with BOS/EOS/PAD."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(SENTENCES * 4, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    hf_tok.save_pretrained(out_dir)
    return hf_tok


def build_llm(out_dir: Path, hidden: int = 128, layers: int = 2):
    """A tiny Qwen2 causal LM sharing the tokenizer's vocabulary, saved with save_pretrained."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = build_tokenizer(out_dir)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config)
    pretrain_on_sentences(model, tok)
    model.save_pretrained(out_dir)
    return out_dir


def pretrain_on_sentences(model, tok, steps: int = 300):
    """Make the tiny LM a (tiny) pretrained LM: fit SENTENCES as ``<s> sentence </s>``."""
    import torch

    torch.set_num_threads(1)  # tiny matrices: extra threads only contend with other work
    batch = tok([f"<s>{s}</s>" for s in SENTENCES], padding=True, return_tensors="pt", add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    assert loss.item() < 0.5, f"tiny LM pretraining did not converge: {loss.item():.3f}"


def build_whisper(out_dir: Path, d_model: int = 64, layers: int = 2):
    """A tiny Whisper (80 mel bins) saved with save_pretrained."""
    import torch
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_source_positions=1500,
        max_target_positions=64,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(config).save_pretrained(out_dir)
    return out_dir


def synth_utterance(seed: int, seconds: float = 0.6, fs: int = 16000) -> np.ndarray:
    """A distinct, deterministic tone mixture per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    freqs = rng.uniform(200, 3000, size=3)
    wav = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in freqs) / 3
    return (0.3 * wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_data_dir(root: Path, utts):
    """A Kaldi-style dir: wav.scp, text, utt2lang, utt2task (+ speech_shape, text for keys).

    ``utts``: list of (utt_id, waveform, text, lang, task).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    files = {name: [] for name in ("wav.scp", "text", "utt2lang", "utt2task", "speech_shape")}
    for utt, wav, text, lang, task in sorted(utts, key=lambda u: u[0]):
        path = root / "wav" / f"{utt}.wav"
        soundfile.write(path, wav, 16000)
        files["wav.scp"].append(f"{utt} {path}")
        files["text"].append(f"{utt} {text}")
        files["utt2lang"].append(f"{utt} {lang}")
        files["utt2task"].append(f"{utt} {task}")
        files["speech_shape"].append(f"{utt} {len(wav)}")
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is fastest and immune to a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    return build_llm(tmp_path_factory.mktemp("tiny_llm"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    return build_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    utts = [
        (f"spk{i % 2}-utt{i}", synth_utterance(i, 0.4 + 0.1 * i), SENTENCES[i], "zh" if i >= 4 else "en", "st")
        for i in range(6)
    ]
    return write_data_dir(tmp_path_factory.mktemp("data") / "train", utts)


def audio_md5(data: str, sets) -> dict:
    """Utterance -> MD5 of its audio file, over the ``sets`` of the data root ``data``."""
    import hashlib

    from csst_espnet.data import kaldi_dir as kd

    out = {}
    for s in sets:
        for u, p in kd.read_table(os.path.join(data, s, "wav.scp")).items():
            with open(p, "rb") as fh:
                out[u] = hashlib.md5(fh.read()).hexdigest()
    return out
