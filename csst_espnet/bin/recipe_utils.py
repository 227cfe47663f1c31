#!/usr/bin/env python3
"""Small data and file operations of the csst recipe pipeline (``egs2/TEMPLATE/csst1/csst.sh``).

    python -m csst_espnet.bin.recipe_utils asr_dir SRC OUT
        OUT = SRC as an ASR set: target ``text`` = ``src_text``, ``utt2task`` = asr, utterance ids
        ``<id>-asr`` (so that a set and its ASR copy decode in one job array); extra translation
        references ``text.N`` are left out; the audio, and so ``phone_ali``, are the same.
    python -m csst_espnet.bin.recipe_utils lm_text DIR OUT
        Text of a data dir for the text LM: ``OUT/mono.<lang>.txt``, the transcripts of the
        utterances whose speech is in one language <lang> (``text`` of ASR, ``src_text`` of ST
        utterances; code-switched ``cs`` ones have none), and ``OUT/pairs.tsv``
        (``src_text<TAB>text`` of ST utterances).
    python -m csst_espnet.bin.recipe_utils union_dir OUT DIR [DIR ...]
        Every utterance of the DIRs once (wav.scp, text, utt2lang, utt2task, utt2spk, phone_ali; a
        file only when every utterance has it); an id with different audio in two DIRs is an error.
    python -m csst_espnet.bin.recipe_utils split_keys SCP NJ PREFIX
        PREFIX.1.scp .. PREFIX.NJ.scp: consecutive, near-equal parts of SCP's lines.
    python -m csst_espnet.bin.recipe_utils merge_decode [--subset] KEYS OUT PART [PART ...]
        Merge ``PART/1best_recog/{text,token,token_int,score}`` into ``OUT/``; every id of KEYS
        must be decoded exactly once (``--subset``: the parts may hold more utterances, which are
        left out).
    python -m csst_espnet.bin.recipe_utils decode_cost DATA START END OUT [--jobs N] [--threads N] [--ngpu N]
        OUT (JSON): utterances per second and real-time factor of decoding DATA between the times
        START and END (seconds since the epoch), with the jobs, threads and host.
    python -m csst_espnet.bin.recipe_utils yaml2args FILE
        ``--key value`` options from a YAML mapping (lists repeat the option).
    python -m csst_espnet.bin.recipe_utils config_get FILE KEY[.SUBKEY]
        A value of a YAML config (empty when absent).
    python -m csst_espnet.bin.recipe_utils trained_tasks CONFIG
        The tasks (asr, st) of a model's training data, from its training config.yaml (stage 13
        decodes the ASR copies of the test sets only with models that trained on ASR).
"""

import argparse
import sys
from typing import Optional, Sequence

from csst_espnet.data.kaldi_dir import DuplicateKeyError
from csst_espnet.recipe import config, data_ops


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.recipe_utils", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("asr_dir"); s.add_argument("src"); s.add_argument("out")
    s = sub.add_parser("lm_text"); s.add_argument("src"); s.add_argument("out")
    s = sub.add_parser("union_dir"); s.add_argument("out"); s.add_argument("dirs", nargs="+")
    s = sub.add_parser("split_keys"); s.add_argument("scp"); s.add_argument("nj", type=int); s.add_argument("prefix")
    s = sub.add_parser("merge_decode"); s.add_argument("--subset", action="store_true"); s.add_argument("keys"); s.add_argument("out"); s.add_argument("parts", nargs="+")
    s = sub.add_parser("decode_cost"); s.add_argument("data"); s.add_argument("start", type=float); s.add_argument("end", type=float); s.add_argument("out")
    s.add_argument("--jobs", type=int, default=1); s.add_argument("--threads", type=int, default=1); s.add_argument("--ngpu", type=int, default=0)
    s = sub.add_parser("yaml2args"); s.add_argument("file")
    s = sub.add_parser("config_get"); s.add_argument("file"); s.add_argument("key")
    s = sub.add_parser("trained_tasks"); s.add_argument("file")
    return p


def run(args: argparse.Namespace) -> Optional[str]:
    """The subcommand's line of output (None: nothing to print)."""
    if args.cmd == "asr_dir":
        return f"{args.out}: {data_ops.asr_dir(args.src, args.out)} utterances (ASR targets from {args.src}/src_text)"
    if args.cmd == "lm_text":
        return f"{args.out}: {data_ops.lm_text(args.src, args.out)}"
    if args.cmd == "union_dir":
        return f"{args.out}: {data_ops.union_dir(args.out, args.dirs)} utterances from {len(args.dirs)} directories"
    if args.cmd == "split_keys":
        data_ops.split_keys(args.scp, args.nj, args.prefix)
        return None
    if args.cmd == "merge_decode":
        return f"{args.out}: {data_ops.merge_decode(args.keys, args.out, args.parts, args.subset)} utterances decoded"
    if args.cmd == "decode_cost":
        c = data_ops.decode_cost(args.data, args.start, args.end, args.out, args.jobs, args.threads, args.ngpu)
        return (f"{args.data}: {c['utterances']} utterances ({c['audio_seconds']:.1f} s) decoded in "
                f"{c['wall_seconds']:.1f} s: {c['utts_per_second']:.2f} utterances/s, RTF {c['rtf']:.3f}")
    if args.cmd == "yaml2args":
        return " ".join(config.yaml2args(args.file))
    if args.cmd == "config_get":
        return config.config_get(args.file, args.key)
    return " ".join(config.trained_tasks(args.file))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        line = run(args)
    except (data_ops.RecipeError, config.ConfigError, DuplicateKeyError, FileNotFoundError) as e:
        print(f"recipe_utils {args.cmd}: {e}", file=sys.stderr)
        return 1
    if line is not None:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
