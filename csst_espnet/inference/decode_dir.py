"""Decode a data set with :class:`Speech2Text` into ESPnet's ``1best_recog/{text,token,token_int,score}``
plus ``confidence`` (mean token log-probability) and ``guard`` (the runaway guard that ended the
hypothesis: ``length``, ``loop`` or ``none``); what ``csst_espnet.bin.csst_inference`` runs (see
docs/architecture.md).

Utterances are decoded longest first in batches of similar length (``batch_size`` utterances at most,
and with ``batch_bins`` at most that many padded samples), so that padding costs little; the files
list the utterances in the order of the key file (default: the ``speech`` file) all the same.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from espnet2.fileio.datadir_writer import DatadirWriter

from csst_espnet.inference.batches import sorted_batches, sorted_loader, speech_lengths
from csst_espnet.inference.generate import GUARDS, Hypothesis
from csst_espnet.inference.speech2text import Speech2Text


def decode_utterances(
    s2t: Speech2Text,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    batch_size: int = 8,
    batch_bins: int = 0,
    key_file: Optional[str] = None,
    num_workers: int = 1,
    progress: bool = True,
) -> Dict[str, Hypothesis]:
    """Every utterance's hypothesis, in the order of the key file (see the module docstring)."""
    lengths = speech_lengths(data_path_and_name_and_type, key_file)
    batches = sorted_batches(lengths, batch_size, batch_bins)
    loader = sorted_loader(data_path_and_name_and_type, s2t.preprocess, s2t.collate, batches, num_workers)
    hyps: Dict[str, Hypothesis] = {}
    with tqdm(total=len(lengths), desc="decoding", unit="utt", disable=not progress) as bar:
        for keys, batch in loader:
            out = s2t.decode_batch({k: batch[k] for k in ("speech", "speech_lengths", "prompt", "prompt_lengths")})
            hyps.update(zip(keys, out))
            bar.update(len(keys))
    return {key: hyps[key] for key in lengths}


def write_hyps(hyps: Dict[str, Hypothesis], output_dir: str) -> None:
    """``output_dir/1best_recog/<DECODE_FILES>``, one line per utterance in the order of ``hyps``."""
    with DatadirWriter(output_dir) as writer:
        out = writer["1best_recog"]
        for key, hyp in hyps.items():
            out["text"][key] = hyp.text
            out["token"][key] = " ".join(hyp.token)
            out["token_int"][key] = " ".join(map(str, hyp.token_int))
            out["score"][key] = str(hyp.score)
            out["confidence"][key] = f"{hyp.confidence:.6f}"
            out["guard"][key] = hyp.guard or "none"


def guard_counts(hyps: List[Hypothesis]) -> Dict[str, int]:
    """Hypotheses ended by each runaway guard."""
    return {g: sum(h.guard == g for h in hyps) for g in GUARDS}


def decode_dir(
    s2t: Speech2Text,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    output_dir: str,
    batch_size: int = 8,
    key_file: Optional[str] = None,
    num_workers: int = 1,
    batch_bins: int = 0,
) -> Dict[str, Hypothesis]:
    """Decode every utterance of the data (or those of ``key_file``) into ``output_dir/1best_recog``."""
    hyps = decode_utterances(s2t, data_path_and_name_and_type, batch_size, batch_bins, key_file, num_workers)
    write_hyps(hyps, output_dir)
    counts = guard_counts(list(hyps.values()))
    logging.info("%d utterances decoded; ended by a runaway guard: %s", len(hyps),
                 ", ".join(f"{g} {n}" for g, n in counts.items()))
    return hyps
