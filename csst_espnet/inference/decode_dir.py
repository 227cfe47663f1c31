"""Decode a data set in batches with :class:`Speech2Text` into ESPnet's ``1best_recog/{text,token,
token_int,score}`` (what ``csst_espnet.bin.csst_inference`` runs; see docs/architecture.md)."""

import hashlib
import json
import os
from typing import Dict, Optional, Sequence, Tuple

from tqdm import tqdm

from espnet2.fileio.datadir_writer import DatadirWriter

from csst_espnet.inference.batches import count_keys, data_loader
from csst_espnet.inference.speech2text import Speech2Text


def decode_dir(
    s2t: Speech2Text,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    output_dir: str,
    batch_size: int = 8,
    key_file: Optional[str] = None,
    num_workers: int = 1,
    fingerprint: Optional[Dict] = None,
) -> None:
    """Decode every utterance of the data (or those of ``key_file``) and write one line per utterance
    to ``output_dir/1best_recog/{text,token,token_int,score}``.

    With a ``fingerprint`` (:func:`fingerprint`), a finished decoding leaves it in ``output_dir/DONE``
    (:func:`is_decoded`): a job array rerun after a failure redoes only the shards that did not finish."""
    done_file = os.path.join(output_dir, DONE)
    if os.path.exists(done_file):
        os.remove(done_file)
    loader = data_loader(data_path_and_name_and_type, s2t.preprocess, s2t.collate, batch_size, key_file, num_workers)
    total = count_keys(data_path_and_name_and_type, key_file)
    with DatadirWriter(output_dir) as writer, tqdm(total=total, desc="decoding", unit="utt") as bar:
        for keys, batch in loader:
            hyps = s2t.decode_batch({k: batch[k] for k in ("speech", "speech_lengths", "prompt", "prompt_lengths")})
            out = writer["1best_recog"]
            for key, hyp in zip(keys, hyps):
                out["text"][key] = hyp.text
                out["token"][key] = " ".join(hyp.token)
                out["token_int"][key] = " ".join(map(str, hyp.token_int))
                out["score"][key] = str(hyp.score)
            bar.update(len(keys))
    if fingerprint is not None:
        with open(done_file + ".tmp", "w", encoding="utf-8") as f:
            json.dump(fingerprint, f, indent=1, sort_keys=True)
        os.replace(done_file + ".tmp", done_file)


DONE = "DONE"


def is_decoded(output_dir: str, fingerprint: Dict) -> bool:
    """Whether ``output_dir`` holds a finished decoding with this fingerprint."""
    done_file = os.path.join(output_dir, DONE)
    if not os.path.exists(done_file):
        return False
    with open(done_file, encoding="utf-8") as f:
        return json.load(f) == json.loads(json.dumps(fingerprint))  # as JSON stores it (tuples -> lists)


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(model_file: str, config_file: str, data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                key_file: Optional[str], options: Dict) -> Dict:
    """What a decoding's output depends on: the model file (path, size, time), the contents of the
    config, data and key files, and the decoding options."""
    st = os.stat(model_file)
    return {
        "model": [os.path.abspath(model_file), st.st_size, st.st_mtime_ns],
        "config": _file_digest(config_file),
        "data": [[name, kind, _file_digest(path)] for path, name, kind in data_path_and_name_and_type],
        "keys": _file_digest(key_file) if key_file else None,
        "options": options,
    }
