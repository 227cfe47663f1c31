"""Routing report: how a trained MoE projector routes each language of a data dir.

    python -m csst_espnet.bin.routing_report --config exp/x/config.yaml \
        --model_file exp/x/valid.acc.ave.pth --data_dir data/test_cs --output_dir exp/x/routing

Runs the speech encoder and the projector (``model.encode``) over every utterance of ``wav.scp``,
groups the router decisions by the utterance's ``utt2lang`` label (``cs`` included) and writes to
``--output_dir``:

- ``routing.json``: per language and MoE layer, the share of its token-expert dispatches going to each
  language group and to each expert, and the share of its tokens whose top-1 expert is in each group;
- ``routing.md``: the same as markdown tables (language -> group share; expert utilisation);
- ``routing_heatmap.png``: languages x experts utilisation, one panel per layer.

With ``--phones`` (a phone inventory ``<phone> <id>`` whose phone names carry their language as
``<lang>:<phone>``, e.g. mini_cs's ``data/local/phones.txt``) and a ``phone_ali`` file in the data dir,
the report also groups tokens by the language of the speech they cover ("frame language"): a token
whose frames are all of one language (silence aside) gets the key ``<utterance label>/<frame
language>``, e.g. ``cs/en`` for the English stretches of code-switched utterances, the tokens the
language groups exist for.

The aggregation (``csst_espnet.analysis.routing.aggregate_routing``) is a pure function of the
projector's aux dicts.
"""

import argparse
import logging
import sys
from typing import Dict, List, Optional

from csst_espnet.analysis.routing import routing_report


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training config.yaml of the experiment")
    parser.add_argument("--model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_dir", required=True, help="Kaldi-style dir with wav.scp and utt2lang")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fs", type=int, default=16000, help="expected sampling rate")
    parser.add_argument("--max_utts", type=int, default=0, help="only the first N utterances (0: all)")
    parser.add_argument("--phones", default=None,
                        help="phone inventory '<phone> <id>' with '<lang>:' phone prefixes: with the data dir's "
                             "phone_ali, also report routing by the language of the speech each token covers")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return routing_report(args.config, args.model_file, args.data_dir, args.output_dir, args.batch_size,
                              args.device, args.fs, args.max_utts, args.phones)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"routing_report: {e}")


if __name__ == "__main__":
    main()
