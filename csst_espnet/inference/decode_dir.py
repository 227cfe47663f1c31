"""Decode a data set in batches with :class:`Speech2Text` into ESPnet's ``1best_recog/{text,token,
token_int,score}`` (what ``csst_espnet.bin.csst_inference`` runs; see docs/architecture.md)."""

from typing import Optional, Sequence, Tuple

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
) -> None:
    """Decode every utterance of the data (or those of ``key_file``) and write one line per utterance
    to ``output_dir/1best_recog/{text,token,token_int,score}``."""
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
