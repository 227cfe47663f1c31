"""Decoding throughput of a trained model: batch 1 vs length-sorted batches, greedy vs beam search.

    python -m csst_espnet.bin.bench_decode [--exp_dir egs2/mini_cs/st1/exp/csst_train_phase3] \\
        [--data_dir egs2/mini_cs/st1/dump/raw/test_cs] [--num_utts 48] [--batch_size 16] [--beam_size 4] \\
        [--json FILE]

Prints utterances per second and the real-time factor of each setting side by side (one run, settings
interleaved in rounds, medians), and the ratios the decoding targets are stated in. The harness is
``csst_espnet/benchmarks/decode.py``; figures are in docs/benchmarks.md.
"""

import argparse
from typing import Dict, List, Optional

from espnet2.utils.types import str2bool

from csst_espnet.benchmarks.decode import DEMO_DATA, DEMO_EXP, format_table, run, write_json


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", default=DEMO_EXP, help="trained model's experiment dir (default: the demo's)")
    parser.add_argument("--model_file", default="valid.acc.ave.pth")
    parser.add_argument("--data_dir", default=DEMO_DATA, help="data dir with wav.scp (utt2lang, utt2task used if there)")
    parser.add_argument("--use_lang", type=str2bool, default=True, help="pass utt2lang / utt2task as decoding does")
    parser.add_argument("--num_utts", type=int, default=48, help="the first N utterances of wav.scp")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--batch_bins", type=int, default=0, help="padded samples per batch at most (0: off)")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of every setting (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the cores idle now)")
    parser.add_argument("--device", default="cpu")
    for name, kind in (("max_tokens_per_second", float), ("max_tokens_offset", int), ("loop_repeats", int)):
        parser.add_argument(f"--{name}", type=kind, default=None, help="guard option (default: Speech2Text's)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    result = run(args.exp_dir, args.data_dir, args.model_file, args.num_utts, args.batch_size, args.batch_bins,
                 args.beam_size, args.rounds, args.threads, args.device, args.use_lang,
                 **{k: getattr(args, k) for k in ("max_tokens_per_second", "max_tokens_offset", "loop_repeats")
                    if getattr(args, k) is not None})
    print(format_table(result))
    write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
