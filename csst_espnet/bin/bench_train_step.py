"""Time one training step of a recipe phase, split by component.

    python -m csst_espnet.bin.bench_train_step --config egs2/mini_cs/st1/conf/train_phase1.yaml [--json FILE]

Builds the phase's model from its config with locally initialised weights (a random LLM of the
recipe's ``text_lm.yaml`` architecture, a tokenizer trained here on the mini_cs grammar) and times
training steps on synthetic batches of the demo's shapes: data preprocessing + collate, frontend,
encoder, projector, LLM, the teacher (distill transition), the losses, backward and the optimiser
update; prints milliseconds per component and steps/s (logic: ``csst_espnet.benchmarks.train_step``).
"""

import argparse
from typing import Dict, List, Optional

from csst_espnet.benchmarks.train_step import KINDS, format_table, run, write_json


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a phase config (train_phase{1,2,3}.yaml)")
    parser.add_argument("--text_lm_config", default=None,
                        help="LLM architecture (default: text_lm.yaml beside --config)")
    parser.add_argument("--vocab_size", type=int, default=800, help="tokenizer size (the demo's --nbpe)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS,
                        help="utterance kinds of the batches, in turn")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the config's batch_size")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per epoch setting (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--epochs", type=int, nargs="+", default=None,
                        help="training epochs to time (default: 1, and the first after speech-only warm-up epochs)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="OPTION[.KEY]=VALUE",
                        help="change a csst_train option of the config, e.g. llm_conf.dtype=bfloat16 (repeatable)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    result = run(args.config, args.text_lm_config, args.vocab_size, args.kinds, args.batch_size, args.steps,
                 args.warmup, args.epochs, args.threads, args.seed,
                 args.overrides)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
