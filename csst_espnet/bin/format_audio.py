#!/usr/bin/env python3
"""Format the audio of a Kaldi-style data directory: one mono WAV per utterance at ``--fs``.

    python -m csst_espnet.bin.format_audio [--fs 16000] [--nj 4] [--channel 0] SRC OUT

``wav.scp`` entries may be audio files of any format soundfile reads, ``x.ark:offset`` Kaldi
archives, or ``command |`` pipes that write audio to stdout. With ``segments``, every utterance is
cut from its recording. Audio is resampled to ``--fs`` (polyphase), the channel ``--channel`` is
kept, and the result is written as 16-bit PCM to ``OUT/data/<utt>.wav``. ``OUT`` gets every
per-utterance file of ``SRC`` (text, src_text, utt2lang, phone_ali, lang_ali, ...), a new ``wav.scp`` (no segments),
``utt2num_samples`` and ``utt2dur``. An utterance whose audio cannot be read keeps its text but
gets no ``wav.scp`` entry; it is listed with the reason in ``OUT/format_errors.txt`` (stage 4 of the
recipe then reports it, or drops it with ``--drop_invalid true``).
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

from csst_espnet.data.audio_dir import format_dir


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.format_audio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--fs", type=int, default=16000, help="output sampling rate")
    p.add_argument("--nj", type=int, default=1, help="parallel processes")
    p.add_argument("--channel", type=int, default=0, help="channel kept from multi-channel audio")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        counts = format_dir(args.src, args.out, args.fs, args.nj, args.channel)
    except (ValueError, FileNotFoundError) as e:
        print(f"format_audio: {e}", file=sys.stderr)
        return 1
    logging.info("%s -> %s: %d of %d utterances formatted at %d Hz%s", args.src, args.out, counts["formatted"],
                 counts["utterances"], args.fs,
                 f"; {counts['errors']} failed (see {args.out}/format_errors.txt)" if counts["errors"] else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
