"""Memory under load (what ``csst_espnet.bin.bench_memory`` runs): resident memory of a training run of
``train_steps`` updates, per epoch, and of decoding ``decode_utts`` utterances with ``jobs`` parallel jobs.

Both run the real entry points (``csst_train``, ``csst_inference``) as subprocesses on a data directory
made of the given one's utterances repeated to the wanted count, and sample the resident set size
(VmRSS) of each process tree (the process and its DataLoader workers, summed) every ``interval``
seconds. Flat memory means: training peaks of epochs 2.. no higher than epoch 1's (plus a margin that
the caller judges); for each decoding job, the peak of the last quarter of its decoding time (from its
progress bar appearing, the model loaded, to its end) no higher than the peak of the first quarter.
"""

import os
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio import audio_info

DATA_FILES = ("wav.scp", "text", "utt2lang", "utt2task")
AUX_COLUMNS = {"phone_ali": "text_int", "lang_ali": "text", "src_text": "text"}  # column -> ESPnet loader type
NOT_OPTIONS = ("config", "distributed", "required", "version")  # keys ESPnet writes to exp/*/config.yaml


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MiB) of process ``pid`` and all its descendants (Linux ``/proc``); 0 when gone."""
    total_kb, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as f:
                total_kb += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):  # the process ended between two reads
            continue
    return total_kb / 1024.0


class RssSampler:
    """Samples ``(seconds since start, tree RSS in MiB)`` of a process in a background thread."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.samples: List[Tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_mb(self.pid)
            if rss > 0:
                self.samples.append((time.monotonic() - self.start, rss))
            self._stop.wait(self.interval)

    def stop(self) -> List[Tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def make_data(src: str, out: str, n: int) -> str:
    """A data directory of ``n`` utterances: those of ``src`` (``wav.scp``, ``text``, ``utt2lang``,
    ``utt2task``, and the auxiliary losses' columns it has) repeated with ids ``r<k>-<utt>``, and their
    ``speech_shape`` (samples)."""
    names = [*DATA_FILES, *(c for c in AUX_COLUMNS if os.path.isfile(os.path.join(src, c)))]
    tables = {name: kd.read_table(os.path.join(src, name)) for name in names}
    ids = list(tables["wav.scp"])
    if not ids:
        raise ValueError(f"{src}: no utterances")
    samples = {u: audio_info(tables["wav.scp"][u])[0] for u in ids}
    os.makedirs(out, exist_ok=True)
    width = len(str(n // len(ids)))
    new = {f"r{k // len(ids):0{width}d}-{ids[k % len(ids)]}": ids[k % len(ids)] for k in range(n)}
    for name, table in tables.items():
        kd.write_table(os.path.join(out, name), {u: table[o] for u, o in new.items()})
    kd.write_table(os.path.join(out, "speech_shape"), {u: str(samples[o]) for u, o in new.items()})
    return out


def _data_args(mode: str, data: str) -> List[str]:
    names = {"wav.scp": "speech,sound", "text": "text,text", "utt2lang": "lang,text", "utt2task": "task,text"}
    if mode:  # training: the auxiliary losses' columns too
        names.update((c, f"{c},{kind}") for c, kind in AUX_COLUMNS.items() if os.path.isfile(os.path.join(data, c)))
    flag = f"--{mode}_data_path_and_name_and_type" if mode else "--data_path_and_name_and_type"
    return [a for name, kind in names.items() if mode or name != "text"
            for a in (flag, f"{os.path.join(data, name)},{kind}")]


def _run(cmd: Sequence[str], log: str, interval: float, on_sample=None) -> List[Tuple[float, float]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(list(cmd), stdout=f, stderr=subprocess.STDOUT, env=env)
        sampler = RssSampler(proc.pid, interval)
        while proc.poll() is None:
            if on_sample is not None:
                on_sample(time.monotonic() - sampler.start)
            time.sleep(interval)
        samples = sampler.stop()
    if proc.returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}), log {log}:\n{f.read()[-3000:]}")
    return samples


def train_memory(config: str, data: str, valid: str, work_dir: str, steps: int, epochs: int,
                 interval: float = 0.2) -> Dict:
    """Train ``steps`` updates in ``epochs`` epochs with ``config``; peak tree RSS (MiB) of each epoch
    (an epoch ends when its ``<N>epoch.pth`` appears)."""
    exp = os.path.join(work_dir, "exp")
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    for mode, d in ("train", data), ("valid", valid):  # the data of this benchmark replace the config's
        conf[f"{mode}_data_path_and_name_and_type"] = [a.split(",") for a in _data_args(mode, d)[1::2]]
        conf[f"{mode}_shape_file"] = [os.path.join(d, "speech_shape")]
    for key in NOT_OPTIONS:  # so that an experiment's config.yaml serves as the benchmark's config
        conf.pop(key, None)
    conf.update(max_epoch=epochs, num_iters_per_epoch=steps // epochs, use_matplotlib=False, use_tensorboard=False)
    bench_config = os.path.join(work_dir, "train.yaml")
    with open(bench_config, "w", encoding="utf-8") as f:
        yaml.safe_dump(conf, f)
    cmd = [sys.executable, "-m", "csst_espnet.bin.csst_train", "--config", bench_config, "--output_dir", exp,
           "--ngpu", "0"]
    ends: Dict[int, float] = {}

    def mark(t: float) -> None:
        for e in range(1, epochs + 1):
            if e not in ends and os.path.exists(os.path.join(exp, f"{e}epoch.pth")):
                ends[e] = t

    samples = _run(cmd, os.path.join(work_dir, "train.log"), interval, mark)
    bounds = [0.0] + [ends.get(e, float("inf")) for e in range(1, epochs + 1)]
    per_epoch = [max((r for t, r in samples if bounds[e - 1] <= t < bounds[e]), default=float("nan"))
                 for e in range(1, epochs + 1)]
    return {"steps": steps, "epochs": epochs, "peak_rss_mb_per_epoch": per_epoch,
            "growth_after_epoch1_mb": max(per_epoch[1:], default=per_epoch[0]) - per_epoch[0],
            "model": os.path.join(exp, "valid.acc.ave.pth"), "config": os.path.join(exp, "config.yaml")}


def decode_memory(config: str, model: str, data: str, work_dir: str, jobs: int, batch_size: int,
                  interval: float = 0.2) -> Dict:
    """Decode ``data`` with ``jobs`` parallel ``csst_inference`` processes (consecutive key shards);
    per job: peak tree RSS, and growth = peak of the last quarter of its decoding time minus peak of
    the first quarter (decoding starts when the job's log shows its progress bar: model loading excluded)."""
    from csst_espnet.recipe.data_ops import split_keys

    keys = split_keys(os.path.join(data, "wav.scp"), jobs, os.path.join(work_dir, "keys"))
    results: List[Optional[List[Tuple[float, float]]]] = [None] * jobs
    decode_start: List[Optional[float]] = [None] * jobs
    errors: List[BaseException] = []

    def job(j: int) -> None:
        out = os.path.join(work_dir, f"decode.{j + 1}")
        cmd = [sys.executable, "-m", "csst_espnet.bin.csst_inference", "--st_train_config", config,
               "--st_model_file", model, "--output_dir", out,
               "--key_file", keys[j], "--batch_size", str(batch_size), *_data_args("", data)]

        def mark(t: float) -> None:
            if decode_start[j] is None and os.path.exists(log):
                with open(log, encoding="utf-8", errors="replace") as f:
                    if "decoding:" in f.read():  # decode_utterances' progress bar: the model is loaded
                        decode_start[j] = t

        log = os.path.join(work_dir, f"decode.{j + 1}.log")

        try:
            results[j] = _run(cmd, log, interval, mark)
        except BaseException as e:  # reported after every job ended
            errors.append(e)

    threads = [threading.Thread(target=job, args=(j,)) for j in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    out = []
    for samples, start in zip(results, decode_start):
        end = samples[-1][0]
        start = end if start is None else start
        span = (end - start) / 4
        quarter = [max((r for t, r in samples if start + q * span <= t <= start + (q + 1) * span),
                       default=float("nan")) for q in range(4)]
        out.append({"peak_rss_mb": max(r for _, r in samples), "peak_per_quarter_mb": quarter,
                    "growth_mb": quarter[3] - quarter[0], "seconds": end, "decoding_seconds": end - start})
    return {"jobs": out, "utterances": sum(1 for _ in open(os.path.join(data, "wav.scp"), encoding="utf-8"))}


def run(config: str, data_dir: str, work_dir: str, decode_utts: int = 1000, jobs: int = 2, train_steps: int = 2000,
        epochs: int = 4, batch_size: int = 4, valid_utts: int = 8, interval: float = 0.2) -> Dict:
    """Train, then decode with the trained model; returns both reports and the host."""
    import platform

    with open(config, encoding="utf-8") as f:
        batch = yaml.safe_load(f).get("batch_size")
    os.makedirs(work_dir, exist_ok=True)
    train_data = make_data(data_dir, os.path.join(work_dir, "train_data"), max(train_steps // epochs * (batch or 1), 1))
    valid = make_data(data_dir, os.path.join(work_dir, "valid_data"), valid_utts)
    decode_data = make_data(data_dir, os.path.join(work_dir, "decode_data"), decode_utts)
    train = train_memory(config, train_data, valid, work_dir, train_steps, epochs, interval)
    decode = decode_memory(train["config"], train["model"], decode_data, work_dir, jobs, batch_size, interval)
    return {"host": _cpu_model() or platform.machine(), "train": train, "decode": decode}


def _cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), or "" where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def format_report(report: Dict) -> str:
    tr, de = report["train"], report["decode"]
    lines = [f"training: {tr['steps']} updates in {tr['epochs']} epochs; peak RSS per epoch (MiB): "
             + ", ".join(f"{x:.0f}" for x in tr["peak_rss_mb_per_epoch"])
             + f"; growth after epoch 1: {tr['growth_after_epoch1_mb']:+.0f} MiB"]
    for j, job in enumerate(de["jobs"], 1):
        lines.append(f"decoding job {j}/{len(de['jobs'])} ({de['utterances']} utterances in all): peak RSS "
                     f"{job['peak_rss_mb']:.0f} MiB, growth over decoding (last quarter - first quarter) "
                     f"{job['growth_mb']:+.0f} MiB, {job['decoding_seconds']:.0f} s decoding of {job['seconds']:.0f} s")
    return "\n".join(lines)
