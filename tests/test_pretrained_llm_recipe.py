"""A new corpus in two steps with a pretrained LLM and its own tokenizer.

``setup.sh`` makes the recipe, manifests (TSV) are its corpus, the LLM is a Qwen2-architecture model
(tiny config, random init, saved locally) with its own Hugging Face byte-level BPE tokenizer and chat
template (trained here with ``tokenizers``, not SentencePiece). Stages 1-14 run through the three
phases with ``--token_type pretrained``; a tokenizer that is not the LLM's is refused before training.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import yaml

from conftest import SENTENCES, synth_utterance

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "csst1"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ZH = {"注意力 机制 很 重要": "attention is important", "今天 我们 讲 神经 网络": "today we talk about neural networks"}
CS = {SENTENCES[4]: "we use gradient descent to train this model", SENTENCES[5]: "the loss of this model is low"}


def train_tokenizer(out_dir: Path, vocab_size: int):
    """A byte-level BPE tokenizer with Qwen's special tokens and a chat template, like Qwen2's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = SENTENCES + list(ZH.values()) + list(CS.values()) + ["Transcribe the speech.", "Translate the speech into English."]
    tok.train_from_iterator(text * 4, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 chat_template=CHAT_TEMPLATE)
    hf.save_pretrained(out_dir)
    return hf


def build_qwen2(out_dir: Path) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = train_tokenizer(out_dir, 420)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok) + 12, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(out_dir)
    return out_dir


def write_manifests(recipe: Path) -> None:
    """train (English, Mandarin and code-switched lectures), dev and test as TSV manifests."""
    audio = recipe / "corpus"
    audio.mkdir()
    rows = {"train": [], "dev": [], "test": []}
    items = ([(s, s, "en") for s in SENTENCES[:4]] + [(z, e, "zh") for z, e in ZH.items()]
             + [(c, e, "cs") for c, e in CS.items()])
    for i, (src, tgt, kind) in enumerate(items * 3):
        name = f"lec{i % 3}/{kind}_{i:02d}.wav"
        (audio / name).parent.mkdir(exist_ok=True)
        soundfile.write(audio / name, synth_utterance(i, 0.5 + 0.05 * (i % 4)), 16000)
        split = "train" if i < 16 else "dev" if i < 18 else "test"
        speaker = f"teacher {i % 3}" if i % 2 else ""  # half without a speaker: one per recording
        rows[split].append(f"../corpus/{name}\t{src}\t{tgt}\t{speaker}")
    (recipe / "manifests").mkdir()
    for split, lines in rows.items():
        (recipe / "manifests" / f"{split}.tsv").write_text("audio\ttranscript\ttranslation\tspeaker\n"
                                                          + "\n".join(lines) + "\n", encoding="utf-8")


def write_conf(recipe: Path, llm: Path) -> None:
    model = yaml.safe_load((REPO / "egs2" / "mini_cs" / "st1" / "conf" / "tiny" / "model.yaml").read_text())
    model["llm_conf"]["model_name_or_path"] = str(llm)
    model["encoder_conf"]["config"].update(d_model=32, encoder_ffn_dim=64)
    model["projector_conf"]["expert_hidden"] = 32
    (recipe / "conf" / "model.yaml").write_text(yaml.safe_dump(model))
    common = dict(model_config="model.yaml", batch_type="folded", batch_size=4, valid_batch_size=8,
                  fold_length=[80000], max_epoch=1, num_iters_per_epoch=2, optim="adamw", optim_conf={"lr": 0.002},
                  best_model_criterion=[["valid", "acc", "max"]], keep_nbest_models=1, num_workers=0, num_att_plot=0,
                  use_tensorboard=False, use_matplotlib=False, seed=0,
                  model_conf={"extract_feats_in_collect_stats": False})
    routing = [{"name": "lang", "weight": 0.1}, {"name": "balance", "weight": 0.01}]
    for phase, losses in ((1, routing), (2, routing),
                          (3, [{"name": "transition", "weight": 1.0, "conf": {"mode": "distill"}}, *routing])):
        (recipe / "conf" / f"train_phase{phase}.yaml").write_text(yaml.safe_dump(dict(common, aux_losses=losses)))
    (recipe / "conf" / "decode.yaml").write_text(yaml.safe_dump({"batch_size": 4, "beam_size": 1, "max_new_tokens": 6}))


def run(recipe: Path, *args: str):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1")
    return subprocess.run(["./run.sh", "--ngpu", "0", "--nj", "1", "--inference_nj", "1", *args], cwd=recipe,
                          env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("new_corpus")
    llm = build_qwen2(root / "qwen2_tiny")
    recipe = root / "egs2" / "lectures" / "st1"
    r = subprocess.run(["bash", str(TEMPLATE / "setup.sh"), str(recipe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    write_manifests(recipe)
    write_conf(recipe, llm)
    r = run(recipe, "--stop_stage", "14", "--routing_report", "false")  # the routing report has its own tests
    assert r.returncode == 0, f"run.sh failed ({r.returncode}):\n{r.stderr[-6000:]}"
    return recipe, llm, r.stderr


def test_stages_1_to_14_with_the_llms_own_tokenizer(recipe):
    st1, llm, log = recipe
    stages = [line.split("\t")[0] for line in (st1 / "exp" / "stage_times.tsv").read_text().splitlines()]
    assert stages == ["1", "3", "4", "9", "10", "11", "12", "13", "14"]
    assert "Stage 5: skipped (--token_type pretrained: the LLM's own tokenizer)" in log
    assert not (st1 / "data" / "tokenizer").exists()
    for n in (1, 2, 3):
        exp = st1 / "exp" / f"csst_train_phase{n}"
        config = yaml.safe_load((exp / "config.yaml").read_text())
        assert config["tokenizer"] is None and config["llm_conf"]["model_name_or_path"] == str(llm)
        assert (exp / "valid.acc.ave.pth").exists()
    # the manifests became CS / monolingual sets with derived labels
    assert set((st1 / "data" / "train_cs" / "utt2lang").read_text().split()[1::2]) == {"cs"}
    assert set((st1 / "data" / "train_mono" / "utt2lang").read_text().split()[1::2]) == {"en", "zh"}
    assert set((st1 / "data" / "train_mono_asr" / "utt2task").read_text().split()[1::2]) == {"asr"}
    decoded = list((st1 / "exp" / "csst_train_phase3").glob("decode_*/test_cs/text"))
    assert len(decoded) == 1 and len(decoded[0].read_text().splitlines()) == 2
    assert (st1 / "RESULTS.md").exists()


def test_a_tokenizer_that_is_not_the_llms_is_refused_before_training(recipe, tmp_path):
    st1, llm, _ = recipe
    other = tmp_path / "other_tokenizer"
    train_tokenizer(other, 380)  # same specials and template, another vocabulary
    before = sorted((st1 / "exp").rglob("*.pth"))
    r = run(st1, "--stage", "10", "--stop_stage", "10", "--token_type", "sentencepiece", "--tokenizer_dir", str(other),
            "--phase1_tag", "refused")
    assert r.returncode != 0
    log = r.stderr + "".join(p.read_text() for p in (st1 / "exp" / "refused").rglob("*.log"))
    assert f"the tokenizer {other} does not match the LLM {llm}: vocabulary" in log
    assert sorted((st1 / "exp").rglob("*.pth")) == before  # nothing trained
