"""Decoding throughput of a trained model: batch 1 vs length-sorted batches, greedy vs beam search.

Each setting decodes the same utterances through the recipe's own path
(:func:`csst_espnet.inference.decode_dir.decode_utterances`: audio reading, preprocessing, encoder,
projector, LLM search); settings are interleaved in rounds and the median round is reported, so that
machine noise hits all of them alike. Figures: utterances per second and the real-time factor
(decoding seconds per second of speech). See docs/benchmarks.md.
"""

import datetime
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import torch

from csst_espnet.benchmarks.projector import idle_cores
from csst_espnet.data.kaldi_dir import read_table
from csst_espnet.inference.batches import speech_lengths
from csst_espnet.inference.decode_dir import decode_utterances
from csst_espnet.inference.speech2text import Speech2Text

DEMO_EXP = "egs2/mini_cs/st1/exp/csst_train_phase3"
DEMO_DATA = "egs2/mini_cs/st1/dump/raw/test_cs"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended (the data loader's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def settings(batch_size: int, beam_size: int) -> List[Tuple[str, int, int]]:
    """``(name, batch size, beam size)`` of the four settings compared."""
    return [("batch1_greedy", 1, 1), (f"batch{batch_size}_greedy", batch_size, 1),
            (f"batch1_beam{beam_size}", 1, beam_size), (f"batch{batch_size}_beam{beam_size}", batch_size, beam_size)]


def run(exp_dir: str = DEMO_EXP, data_dir: str = DEMO_DATA, model_file: str = "valid.acc.ave.pth",
        num_utts: int = 48, batch_size: int = 16, batch_bins: int = 0, beam_size: int = 4, rounds: int = 3,
        threads: int = 0, device: str = "cpu", use_lang: bool = True, **guards) -> Dict:
    """Decode the first ``num_utts`` utterances of ``data_dir`` in each setting, ``rounds`` times;
    ``guards``: Speech2Text's guard options (its defaults otherwise)."""
    if not threads:
        idle = idle_cores()
        cores = len(os.sched_getaffinity(0))
        threads = cores if idle is None else max(1, min(cores, int(idle + 0.5)))
    torch.set_num_threads(threads)
    data = [(os.path.join(data_dir, "wav.scp"), "speech", "sound")]
    for name in ("utt2lang", "utt2task") if use_lang else ():
        if os.path.exists(os.path.join(data_dir, name)):
            data.append((os.path.join(data_dir, name), name[4:], "text"))
    keys = list(read_table(data[0][0], unique=True))[:num_utts]
    s2t = Speech2Text.from_exp_dir(exp_dir, model_file=model_file, device=device, **guards)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = os.path.join(tmp, "keys")
        with open(key_file, "w", encoding="utf-8") as f:
            f.writelines(f"{k}\n" for k in keys)
        seconds = sum(speech_lengths(data, key_file).values()) / s2t.fs
        runs = settings(batch_size, beam_size)
        times: Dict[str, List[float]] = {name: [] for name, _, _ in runs}
        cpu: Dict[str, List[float]] = {name: [] for name, _, _ in runs}
        texts: Dict[str, Dict[str, str]] = {}
        guards: Dict[str, int] = {}
        decode_utterances(s2t, data, batch_size, batch_bins, key_file, progress=False)  # warm-up
        for _ in range(rounds):
            for name, size, beam in runs:
                s2t.beam_size = beam
                start, cpu_start = time.perf_counter(), cpu_seconds()
                hyps = decode_utterances(s2t, data, size, batch_bins if size > 1 else 0, key_file, progress=False)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds() - cpu_start)
                texts[name] = {k: h.text for k, h in hyps.items()}
                guards[name] = sum(h.guard != "" for h in hyps.values())
    load_after = os.getloadavg()
    rows = {}
    for name, size, beam in runs:
        t = statistics.median(times[name])
        rows[name] = {"batch_size": size, "beam_size": beam, "seconds": round(t, 3), "utt_per_s": round(len(keys) / t, 2),
                      "rtf": round(t / seconds, 4), "guarded": guards[name], "times": [round(x, 3) for x in times[name]],
                      "cpu_seconds": round(statistics.median(cpu[name]), 3), "cpu_times": [round(x, 3) for x in cpu[name]]}
    greedy1, greedy_b, beam1, beam_b = (rows[name] for name, _, _ in runs)
    return {
        "exp_dir": exp_dir, "model_file": model_file, "data_dir": data_dir, "num_utts": len(keys),
        "speech_seconds": round(seconds, 2), "batch_bins": batch_bins, "rounds": rounds,
        "guards": {"max_tokens_per_second": s2t.max_tokens_per_second, "max_tokens_offset": s2t.max_tokens_offset,
                   "loop_repeats": s2t.loop_repeats},
        "settings": rows,
        "batched_over_batch1_greedy": round(greedy_b["utt_per_s"] / greedy1["utt_per_s"], 2),
        "beam_over_greedy_time_batched": round(beam_b["seconds"] / greedy_b["seconds"], 2),
        "beam_over_greedy_time_batch1": round(beam1["seconds"] / greedy1["seconds"], 2),
        # the same ratios in CPU seconds (this process and its loader workers): steadier than wall time
        # on a shared host, where other jobs take the cores for part of a run
        "cpu_batched_over_batch1_greedy": round(greedy1["cpu_seconds"] / greedy_b["cpu_seconds"], 2),
        "cpu_beam_over_greedy_batched": round(beam_b["cpu_seconds"] / greedy_b["cpu_seconds"], 2),
        "batched_equals_batch1": {"greedy": texts[runs[1][0]] == texts[runs[0][0]],
                                  "beam": texts[runs[3][0]] == texts[runs[2][0]]},
        "cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "threads": threads, "device": device,
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "torch": torch.__version__, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def format_table(result: Dict) -> str:
    lines = [f"{result['num_utts']} utterances ({result['speech_seconds']} s of speech) of {result['data_dir']}, "
             f"model {result['exp_dir']}; {result['cpu']}, {result['threads']} threads, load "
             f"{result['load_average_1min'][0]} -> {result['load_average_1min'][1]}; median of {result['rounds']} rounds",
             f"{'setting':<18} {'seconds':>8} {'utt/s':>7} {'RTF':>7} {'guarded':>8} {'CPU s':>7}"]
    for name, r in result["settings"].items():
        lines.append(f"{name:<18} {r['seconds']:>8.2f} {r['utt_per_s']:>7.2f} {r['rtf']:>7.4f} {r['guarded']:>8} "
                     f"{r['cpu_seconds']:>7.2f}")
    lines.append(f"batched / batch 1 (greedy, utt/s): {result['batched_over_batch1_greedy']:.2f}x (target >= 4); "
                 f"in CPU seconds: {result['cpu_batched_over_batch1_greedy']:.2f}x")
    lines.append(f"beam / greedy (time, batched): {result['beam_over_greedy_time_batched']:.2f}x (target <= 2.5); "
                 f"batch 1: {result['beam_over_greedy_time_batch1']:.2f}x; batched in CPU seconds: "
                 f"{result['cpu_beam_over_greedy_batched']:.2f}x")
    lines.append(f"batched hypotheses equal batch 1: {result['batched_equals_batch1']}")
    return "\n".join(lines)


def write_json(result: Dict, path: Optional[str]) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
