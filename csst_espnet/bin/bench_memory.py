"""Memory under load: a training run of --train_steps updates (peak RSS per epoch) and decoding of
--decode_utts utterances with --jobs parallel jobs (peak RSS and growth per job).

    python -m csst_espnet.bin.bench_memory --config TRAIN.yaml --data_dir DIR --work_dir OUT \
        [--decode_utts 1000] [--jobs 2] [--train_steps 2000] [--epochs 4] [--batch_size 4] [--json FILE]

TRAIN.yaml is a complete csst_train config (model, optimiser, batch size; its data options are
replaced); DIR a data directory (wav.scp, text, utt2lang, utt2task) whose utterances are repeated to
the counts wanted. Logic in ``csst_espnet/benchmarks/memory.py``.
"""

import argparse
import json
from typing import List, Optional

from csst_espnet.benchmarks.memory import format_report, run


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="csst_train config")
    p.add_argument("--data_dir", required=True, help="data directory whose utterances are repeated")
    p.add_argument("--work_dir", required=True, help="where the data, the model and the logs go")
    p.add_argument("--decode_utts", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=2, help="parallel decoding jobs")
    p.add_argument("--train_steps", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch_size", type=int, default=4, help="decoding batch size")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between RSS samples")
    p.add_argument("--json", default=None, help="also write the report as JSON")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    report = run(args.config, args.data_dir, args.work_dir, args.decode_utts, args.jobs, args.train_steps,
                 args.epochs, args.batch_size, interval=args.interval)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
