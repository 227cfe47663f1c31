"""Batched decoding of a data set into ESPnet's ``1best_recog/{text,token,token_int,score}``, with each
hypothesis' ``confidence`` and ``guard`` (csst_espnet.inference.decode_dir).

    python -m csst_espnet.bin.csst_inference --st_train_config exp/x/config.yaml \
        --st_model_file exp/x/valid.acc.ave.pth --output_dir exp/x/decode_test_cs \
        --data_path_and_name_and_type dump/raw/test_cs/wav.scp,speech,sound \
        --data_path_and_name_and_type dump/raw/test_cs/utt2lang,lang,text --batch_size 8
"""

import argparse
import logging
import sys
from pathlib import Path

import torch

from csst_espnet.inference import segment
from csst_espnet.inference.decode_dir import decode_dir, fingerprint, is_decoded
from csst_espnet.inference.speech2text import Speech2Text
from espnet2.utils.types import str2triple_str, str_or_none


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: decode on the (first visible) GPU")
    parser.add_argument("--num_workers", type=int, default=1, help="audio loader processes (0: in this one)")
    parser.add_argument("--batch_size", type=int, default=8, help="utterances per batch at most")
    parser.add_argument("--batch_bins", type=int, default=0,
                        help="padded speech samples per batch at most (batch size x longest; 0: batch_size only)")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    parser.add_argument("--key_file", type=str_or_none, help="Decode only these utterances (one id per line)")
    parser.add_argument("--st_train_config", required=True)
    parser.add_argument("--st_model_file", required=True)
    parser.add_argument("--beam_size", type=int, default=1)
    parser.add_argument("--max_new_tokens", type=int, default=200)
    parser.add_argument("--max_tokens_per_second", type=float, default=8.0,
                        help="length guard: at most this many tokens per second of speech (+ max_tokens_offset); 0: off")
    parser.add_argument("--max_tokens_offset", type=int, default=10)
    parser.add_argument("--loop_repeats", type=int, default=3,
                        help="loop guard: end a hypothesis rather than say one span of tokens this many times in a "
                        "row; 0: off")
    parser.add_argument("--segment_seconds", type=float, default=0.0,
                        help="long-form decoding: cut an utterance longer than this at its pauses and decode the "
                        "pieces one by one (csst_espnet.inference.segment); 0: off")
    parser.add_argument("--segment_min_pause", type=float, default=segment.MIN_PAUSE,
                        help="shortest pause cut (seconds)")
    parser.add_argument("--segment_quiet_ratio", type=float, default=segment.QUIET_RATIO,
                        help="a frame is quiet below floor + this x (speech level - floor), in dB")
    parser.add_argument("--segment_smooth", type=int, default=segment.SMOOTH,
                        help="frames (10 ms) of power averaged per frame")
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if args.ngpu > 1:
        sys.exit("csst_inference: one process decodes on one GPU: split the data (--key_file) over jobs for more")
    if args.ngpu > 0 and not torch.cuda.is_available():
        sys.exit("csst_inference: --ngpu 1 but no CUDA device is visible")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    options = {k: v for k, v in vars(args).items()
               if k not in ("log_level", "output_dir", "ngpu", "num_workers", "data_path_and_name_and_type",
                            "key_file", "st_train_config", "st_model_file")}
    done = fingerprint(args.st_model_file, args.st_train_config, args.data_path_and_name_and_type, args.key_file,
                       options)
    if is_decoded(args.output_dir, done):
        logging.info(f"{args.output_dir}: already decoded with this model, data and options: kept")
        return
    s2t = Speech2Text(
        st_train_config=args.st_train_config,
        st_model_file=args.st_model_file,
        device="cuda" if args.ngpu > 0 else "cpu",
        beam_size=args.beam_size,
        max_new_tokens=args.max_new_tokens,
        max_tokens_per_second=args.max_tokens_per_second,
        max_tokens_offset=args.max_tokens_offset,
        loop_repeats=args.loop_repeats,
        segment_seconds=args.segment_seconds,
        segment_min_pause=args.segment_min_pause,
        segment_quiet_ratio=args.segment_quiet_ratio,
        segment_smooth=args.segment_smooth,
    )
    decode_dir(s2t, args.data_path_and_name_and_type, args.output_dir, args.batch_size, args.key_file,
               args.num_workers, args.batch_bins, fingerprint=done)


if __name__ == "__main__":
    main(sys.argv[1:])
