"""Batched decoding of a data set into ESPnet's ``1best_recog/{text,token,token_int,score}``.

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
from tqdm import tqdm

from csst_espnet.inference.speech2text import Speech2Text
from csst_espnet.tasks.csst import CSSTTask
from espnet2.fileio.datadir_writer import DatadirWriter
from espnet2.utils.types import str2triple_str, str_or_none


def count_keys(data_path_and_name_and_type, key_file) -> int:
    path = key_file or data_path_and_name_and_type[0][0]
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def inference(args: argparse.Namespace) -> None:
    device = "cuda" if args.ngpu > 0 else "cpu"
    s2t = Speech2Text(
        st_train_config=args.st_train_config,
        st_model_file=args.st_model_file,
        device=device,
        beam_size=args.beam_size,
        max_new_tokens=args.max_new_tokens,
        max_len_ratio=args.max_len_ratio,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
    )
    loader = CSSTTask.build_streaming_iterator(
        data_path_and_name_and_type=args.data_path_and_name_and_type,
        dtype="float32",
        batch_size=args.batch_size,
        key_file=args.key_file,
        num_workers=args.num_workers,
        preprocess_fn=s2t.preprocess,
        collate_fn=s2t.collate,
        allow_variable_data_keys=False,
        inference=True,
    )
    total = count_keys(args.data_path_and_name_and_type, args.key_file)
    with DatadirWriter(args.output_dir) as writer, tqdm(total=total, desc="decoding", unit="utt") as bar:
        for keys, batch in loader:
            hyps = s2t.decode_batch({k: batch[k] for k in ("speech", "speech_lengths", "prompt", "prompt_lengths")})
            out = writer["1best_recog"]
            for key, hyp in zip(keys, hyps):
                out["text"][key] = hyp.text
                out["token"][key] = " ".join(hyp.token)
                out["token_int"][key] = " ".join(map(str, hyp.token_int))
                out["score"][key] = str(hyp.score)
            bar.update(len(keys))


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO", choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: decode on the (first visible) GPU")
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    parser.add_argument("--key_file", type=str_or_none, help="Decode only these utterances (one id per line)")
    parser.add_argument("--st_train_config", required=True)
    parser.add_argument("--st_model_file", required=True)
    parser.add_argument("--beam_size", type=int, default=1)
    parser.add_argument("--max_new_tokens", type=int, default=200)
    parser.add_argument("--max_len_ratio", type=float, default=0.0)
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--no_repeat_ngram_size", type=int, default=0)
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if args.ngpu > 1:
        raise ValueError("one process decodes on one GPU: split the data (--key_file) over jobs for more")
    if args.ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError("--ngpu 1 but no CUDA device is visible")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    inference(args)


if __name__ == "__main__":
    main(sys.argv[1:])
