#!/usr/bin/env python3
"""Train a small causal LM on corpus text (the recipe's optional LLM text stage) and save it.

    python -m csst_espnet.bin.train_text_lm --tokenizer data/tokenizer --out_dir exp/text_lm \\
        --config conf/text_lm.yaml --mono zh:data/lm_text/zh.txt --mono en:data/lm_text/en.txt \\
        --pairs data/lm_text/zh2en.tsv

A ``LlamaForCausalLM`` or ``Qwen2ForCausalLM`` with the vocabulary of ``--tokenizer`` learns the text
as LM, ASR (``--mono``) and ST (``--pairs``) examples laid out like the speech model's LLM input
(``csst_espnet.llm.text_lm``). ``OUT_DIR`` is a self-contained Hugging Face model directory
(``save_pretrained`` of the model and the tokenizer) plus ``train_text_lm.json`` (config, data
counts, loss curve, validation loss).

Config keys (YAML; all optional): ``arch`` (llama | qwen2), ``hidden_size``, ``num_layers``,
``num_heads``, ``num_kv_heads``, ``intermediate_size``, ``tie_word_embeddings``, ``max_positions``,
``steps``, ``batch_size``, ``lr``, ``warmup_steps``, ``weight_decay``, ``valid_fraction``, ``seed``,
``asr_examples``, ``lm_examples``, ``source_loss``,
``prompt_conf`` (PromptTemplate options; the speech model's ``prompt_conf`` must render the same prompts:
building a model on this LM refuses one that does not).
"""

import argparse
import logging
import sys
from functools import partial
from typing import Optional, Sequence

from csst_espnet.llm import text_lm
from csst_espnet.utils.cli import add_option


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.train_text_lm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    opt = partial(add_option, p)

    opt("tokenizer", required=True, help="Hugging Face tokenizer directory (stage 5)")
    opt("out_dir", required=True)
    opt("config", default=None, help="YAML with model and training options (see above)")
    opt("mono", action="append", default=[], help="LANG:FILE monolingual text, one sentence a line")
    opt("pairs", action="append", default=[], help="TSV of 'source<TAB>target' translation pairs")
    opt("set", action="append", default=[], help="override a config key: KEY=YAML_VALUE")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        conf = text_lm.read_config(args.config, args.set)
        mono = [x for spec in args.mono for x in text_lm.read_mono(spec)]
        pairs = [x for path in args.pairs for x in text_lm.read_pairs(path)]
        info = text_lm.train(conf, args.tokenizer, args.out_dir, mono, pairs, progress=True)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"train_text_lm: {e}", file=sys.stderr)
        return 1
    logging.info("%s: %d parameters, %s examples, train loss %.3f, valid loss %s, "
                 "valid target accuracy %s, %.0f s", args.out_dir, info["parameters"], info["examples"],
                 info["final_train_loss"], info["valid_loss"], info["valid_target_accuracy"], info["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
