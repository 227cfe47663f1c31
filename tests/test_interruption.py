"""Interrupted runs: atomic checkpoints (killed while saving, full disk), training resumed after SIGKILL
mid-epoch equals an uninterrupted run, non-finite batches reported with their utterance ids."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from conftest import SENTENCES, synth_utterance, write_data_dir
from csst_espnet.train import checkpoint
from train_utils import epoch_stats, tiny_config

KILLED_WHILE_SAVING = r"""
import sys, time, torch
from csst_espnet.train.checkpoint import atomic_saves

class Slow:  # pickled halfway through the file: the writer is killed while it sleeps
    def __reduce__(self):
        print("writing", flush=True)
        time.sleep(60)
        return (int, (0,))

with atomic_saves():
    torch.save({"model": {"w": torch.ones(1000)}, "slow": Slow()}, sys.argv[1])
"""


def test_killed_while_saving_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": {"w": torch.zeros(3)}}, path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_SAVING, str(path)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.stdout.readline().strip() == "writing"
    assert (tmp_path / "checkpoint.pth.tmp").exists()  # the new checkpoint is being written beside it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(path, weights_only=True)
    assert torch.equal(state["model"]["w"], torch.zeros(3))


def test_full_disk_is_a_clear_error_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pth"
    checkpoint.atomic_save({"w": torch.zeros(3)}, path)

    def fill_disk(obj, f, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_torch_save", fill_disk)
    with checkpoint.atomic_saves(), pytest.raises(checkpoint.CheckpointWriteError) as err:
        torch.save({"w": torch.ones(3)}, path)
    assert "no space left" in str(err.value) and str(path) in str(err.value) and "intact" in str(err.value)
    assert os.listdir(tmp_path) == ["checkpoint.pth"]  # no temporary file left
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))


NAN_UTT = "spk9-utt9"


@pytest.fixture(scope="module")
def train_data(tmp_path_factory, tiny_data):
    """Training data: the six utterances of tiny_data and one whose audio has a NaN sample."""
    nan = synth_utterance(9, 0.5)
    nan[100] = np.nan
    utts = [(f"spk{i % 2}-utt{i}", synth_utterance(i, 0.4 + 0.1 * i), SENTENCES[i], "zh" if i >= 4 else "en", "st")
            for i in range(6)]
    data = write_data_dir(tmp_path_factory.mktemp("nan") / "train", utts + [(NAN_UTT, nan, SENTENCES[6], "zh", "st")])
    soundfile.write(data / "wav" / f"{NAN_UTT}.wav", nan, 16000, subtype="FLOAT")  # 16-bit PCM has no NaN
    return data


def _start(config, exp: Path, extra=(), program=("-m", "csst_espnet.bin.csst_train")):
    exp.mkdir(parents=True, exist_ok=True)
    config_file = exp.parent / f"{exp.name}.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, *program, "--config", str(config_file),
                             "--output_dir", str(exp), "--ngpu", "0", "--resume", "true", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-5000:]
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_llm, tiny_whisper, tiny_data, train_data):
    """The training config of these tests and the log of its uninterrupted run."""
    config = tiny_config(tiny_llm, tiny_whisper, train_data, max_epoch=2, num_iters_per_epoch=4, batch_size=2,
                         valid_data_path_and_name_and_type=[[str(tiny_data / n), k, t] for n, k, t in (
                             ("wav.scp", "speech", "sound"), ("text", "text", "text"), ("utt2lang", "lang", "text"),
                             ("utt2task", "task", "text"))],
                         valid_shape_file=[str(tiny_data / "speech_shape")])
    return config, _finish(_start(config, tmp_path_factory.mktemp("reference") / "exp"))


def _same_final_validation(reference_log: str, resumed_log: str) -> None:
    ref_valid, res_valid = epoch_stats(reference_log, "valid"), epoch_stats(resumed_log, "valid")
    assert len(ref_valid) == 2 and len(res_valid) == 1  # epoch 1 is restored, epoch 2 runs again
    # the same seed, one thread: equal up to float rounding
    assert res_valid[-1]["loss"] == pytest.approx(ref_valid[-1]["loss"], abs=1e-5)
    assert ref_valid[-1]["loss"] < ref_valid[0]["loss"]


def test_resume_after_sigkill_mid_epoch_equals_uninterrupted_run(tmp_path, reference):
    config, reference_log = reference
    exp = tmp_path / "killed"
    proc = _start(config, exp)
    while not (exp / "1epoch.pth").exists():  # killed in epoch 2, after the first checkpoint
        assert proc.poll() is None, proc.stdout.read()[-5000:]
        time.sleep(0.05)
    time.sleep(0.5)
    assert not (exp / "2epoch.pth").exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _finish(_start(config, exp))
    assert "The training was resumed using" in resumed
    _same_final_validation(reference_log, resumed)
    # the NaN utterance: its batches are skipped, named and counted in the log
    assert f"non-finite loss or gradient in the batch of utterances" in reference_log and NAN_UTT in reference_log
    assert "updates skipped on a non-finite loss or gradient" in reference_log

    # --nonfinite stop: the run stops at the NaN batch, naming it
    stopped = _start(config, tmp_path / "stopped", ["--nonfinite", "stop"])
    out, _ = stopped.communicate(timeout=600)
    assert stopped.returncode != 0 and "NonFiniteError" in out and NAN_UTT in out, out[-3000:]


# csst_train whose second write of checkpoint.pth (after epoch 2) stops halfway: the test kills it there
SLOW_SECOND_CHECKPOINT = r"""
import sys, time
from csst_espnet.train import checkpoint
from csst_espnet.bin.csst_train import main

real_save, calls = checkpoint._torch_save, []

def save(obj, f, **kwargs):
    real_save(obj, f, **kwargs)
    if f.name.endswith("checkpoint.pth.tmp"):
        calls.append(f.name)
        if len(calls) == 2:
            f.flush()
            print("writing the second checkpoint", flush=True)
            time.sleep(600)

checkpoint._torch_save = save
sys.argv[0] = "csst_train"
main()
"""


def test_killed_while_csst_train_saves_resumes_from_the_previous_checkpoint(tmp_path, reference):
    config, reference_log = reference
    exp = tmp_path / "killed_saving"
    proc = _start(config, exp, program=("-c", SLOW_SECOND_CHECKPOINT))
    out = []
    for line in proc.stdout:  # csst_train's log until it is halfway through the second checkpoint
        out.append(line)
        if line.strip() == "writing the second checkpoint":
            break
    assert proc.poll() is None, "".join(out)[-5000:]
    assert (exp / "checkpoint.pth.tmp").exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with torch.serialization.safe_globals(checkpoint.REPORTER_GLOBALS):
        state = torch.load(exp / "checkpoint.pth", weights_only=True, map_location="cpu")
    assert state["reporter"]["epoch"] == 1  # the checkpoint of epoch 1, whole
    resumed = _finish(_start(config, exp))
    assert "The training was resumed using" in resumed
    _same_final_validation(reference_log, resumed)
