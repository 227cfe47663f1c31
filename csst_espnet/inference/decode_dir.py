"""Decode a data set with :class:`Speech2Text` into ESPnet's ``1best_recog/{text,token,token_int,score}``
plus ``confidence`` (mean token log-probability) and ``guard`` (the runaway guard that ended the
hypothesis: ``length``, ``loop`` or ``none``); what ``csst_espnet.bin.csst_inference`` runs (see
docs/architecture.md).

Utterances are decoded longest first in batches of similar length (``batch_size`` utterances at most,
and with ``batch_bins`` at most that many padded samples), so that padding costs little; the files
list the utterances in the order of the key file (default: the ``speech`` file) all the same.
With a fingerprint (:func:`fingerprint`), a finished decoding leaves it in ``output_dir/DONE``
(:func:`is_decoded`): a job array rerun after a failure redoes only the shards that did not finish.
A full disk while writing is an error naming the output (``utils/files.py``: ``DiskFullError``), and
leaves no ``DONE``, so the rerun decodes that shard again.
"""

import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from espnet2.fileio.datadir_writer import DatadirWriter

from csst_espnet.inference.batches import sorted_batches, sorted_loader, speech_lengths
from csst_espnet.inference.generate import GUARDS, Hypothesis
from csst_espnet.inference.speech2text import Speech2Text
from csst_espnet.utils.files import disk_full_named, file_sha256


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
    loader = sorted_loader(data_path_and_name_and_type, s2t.preprocess, s2t.collate, batches, num_workers, key_file)
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
    fingerprint: Optional[Dict] = None,
) -> Dict[str, Hypothesis]:
    """Decode every utterance of the data (or those of ``key_file``) into ``output_dir/1best_recog``;
    with a ``fingerprint``, write it to ``output_dir/DONE`` when done (see the module docstring)."""
    done_file = os.path.join(output_dir, DONE)
    if os.path.exists(done_file):
        os.remove(done_file)
    hyps = decode_utterances(s2t, data_path_and_name_and_type, batch_size, batch_bins, key_file, num_workers)
    with disk_full_named(os.path.join(output_dir, "1best_recog"), "rerun the same command: this output has no "
                         f"{DONE} file and is decoded again; outputs with one (other shards) are kept"):
        write_hyps(hyps, output_dir)
        if fingerprint is not None:
            with open(done_file + ".tmp", "w", encoding="utf-8") as f:
                json.dump(fingerprint, f, indent=1, sort_keys=True)
            os.replace(done_file + ".tmp", done_file)
    counts = guard_counts(list(hyps.values()))
    logging.info("%d utterances decoded; ended by a runaway guard: %s", len(hyps),
                 ", ".join(f"{g} {n}" for g, n in counts.items()))
    return hyps


DONE = "DONE"


def is_decoded(output_dir: str, fingerprint: Dict) -> bool:
    """Whether ``output_dir`` holds a finished decoding with this fingerprint."""
    done_file = os.path.join(output_dir, DONE)
    if not os.path.exists(done_file):
        return False
    with open(done_file, encoding="utf-8") as f:
        return json.load(f) == json.loads(json.dumps(fingerprint))  # as JSON stores it (tuples -> lists)


def fingerprint(model_file: str, config_file: str, data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                key_file: Optional[str], options: Dict) -> Dict:
    """What a decoding's output depends on: the model file (path, size, time), the contents of the
    config, data and key files, and the decoding options."""
    st = os.stat(model_file)
    return {
        "model": [os.path.abspath(model_file), st.st_size, st.st_mtime_ns],
        "config": file_sha256(config_file),
        "data": [[name, kind, file_sha256(path)] for path, name, kind in data_path_and_name_and_type],
        "keys": file_sha256(key_file) if key_file else None,
        "options": options,
    }
