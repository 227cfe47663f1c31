"""Benchmark of the MoE projector's MoE layer against Hugging Face Mixtral's sparse-MoE block: forward +
backward timed in interleaved rounds, like for like (what ``csst_espnet.bin.bench_projector`` runs and
docs/benchmarks.md describes)."""

import json
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional

import torch

from csst_espnet.projector.moe import MoELayer, grouped_mm_fn, grouped_mm_supported

DEFAULTS = dict(
    encoder_width=1280,
    stack=5,
    tokens=1500,
    groups=2,
    experts_per_group=4,
    top_k=2,
    expert_hidden=2048,
    llm_width=3584,
)
SMALL = dict(
    encoder_width=64, stack=4, tokens=256, groups=2, experts_per_group=4, top_k=2, expert_hidden=128, llm_width=256
)
PEER_IMPLEMENTATIONS = ("eager", "grouped_mm", "batched_mm")


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Contender:
    """One timed module with its input and output gradient."""

    def __init__(self, module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor):
        self.module, self.x, self.grad = module, x, grad
        self.params = [p for p in module.parameters() if p.requires_grad]

    def step(self) -> float:
        """Seconds of ``module(x)`` + backward of ``(out * grad).sum()`` (grads to input and weights),
        with fresh gradients as after ``optimizer.zero_grad()``."""
        self.x.grad = None
        for p in self.params:
            p.grad = None
        _sync(self.x.device)
        start = time.perf_counter()
        self.module(self.x).backward(self.grad)
        _sync(self.x.device)
        return time.perf_counter() - start


def time_interleaved(contenders: Dict[str, Contender], repeats: int, warmup: int) -> Dict[str, Dict]:
    """Round-robin timing: every round runs each contender once, so machine noise and drift hit all
    of them alike.  Returns per name the median and min seconds, or the error of one that fails."""
    results: Dict[str, Dict] = {}
    alive = dict(contenders)
    for name, contender in list(alive.items()):
        try:
            for _ in range(max(warmup, 1)):  # at least one untimed run (lazy initialisation)
                contender.step()
        except (RuntimeError, NotImplementedError, KeyError) as e:  # an implementation that does not run
            results[name] = {"status": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
            del alive[name]
    times = {name: [] for name in alive}
    for _ in range(repeats):
        for name, contender in alive.items():
            times[name].append(contender.step())
    for name, ts in times.items():
        results[name] = {"status": "ok", "median_s": statistics.median(ts), "min_s": min(ts), "times_s": ts}
    return results


def idle_cores(interval: float = 1.0) -> Optional[float]:
    """Idle CPU cores (of this process's affinity set) over ``interval`` seconds, from /proc/stat."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, total (without guest time)

    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    machine_cores = os.cpu_count() or 1
    idle = machine_cores * (idle1 - idle0) / max(total1 - total0, 1)
    return min(idle, len(os.sched_getaffinity(0)))


def _free_memory_bytes(device: torch.device) -> Optional[int]:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------------------------------
# the three contenders
# --------------------------------------------------------------------------------------------------


class OursMoE(torch.nn.Module):
    """Our MoE layer with a fixed dispatch, returning only the output (like the peer)."""

    def __init__(self, layer: MoELayer, dispatch: str):
        super().__init__()
        self.layer = layer
        self.dispatch = dispatch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.dispatch)[0]


class ExpertMatmulsOnly(torch.nn.Module):
    """Our layer's experts alone on rows already sorted by expert: the two grouped matmuls and the
    activation, no routing, sorting or permutation (what the rest of the layer adds is ours minus this)."""

    def __init__(self, layer: MoELayer, x: torch.Tensor):
        super().__init__()
        self.experts = layer.experts
        with torch.no_grad():
            _, expert_index, _ = layer.route(x)
        sorted_expert, order = torch.sort(expert_index.reshape(-1), stable=True)
        ends = torch.searchsorted(sorted_expert, torch.arange(layer.num_experts, device=x.device), right=True)
        self.register_buffer("offsets", ends.to(torch.int32), persistent=False)
        self.token_of = torch.div(order, layer.top_k, rounding_mode="floor")

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        grouped_mm = grouped_mm_fn()
        h = grouped_mm(rows, self.experts.w_in, offs=self.offsets)
        return grouped_mm(self.experts._hidden(h), self.experts.w_out, offs=self.offsets)


class DenseSwiGLU(torch.nn.Module):
    """One expert's shape as a plain dense MLP: width -> SwiGLU(hidden) -> width."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.gate_up = torch.nn.Linear(width, 2 * hidden, bias=False)
        self.down = torch.nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(torch.nn.functional.silu(gate) * up)


def build_peer(ours: MoELayer, width: int, hidden: int, num_experts: int, top_k: int, implementation: str):
    """Mixtral's sparse-MoE block with our layer's weights copied in (Mixtral stores (E, out, in))."""
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    config = MixtralConfig(
        hidden_size=width,
        intermediate_size=hidden,
        num_local_experts=num_experts,
        num_experts_per_tok=top_k,
        hidden_act="silu",
        router_jitter_noise=0.0,
        num_hidden_layers=1,
        num_attention_heads=8,
        num_key_value_heads=8,
        vocab_size=32,
    )
    config._experts_implementation = implementation
    block = MixtralSparseMoeBlock(config)
    with torch.no_grad():
        block.gate.weight.copy_(ours.router.weight)
        block.experts.gate_up_proj.copy_(ours.experts.w_in.transpose(1, 2))
        block.experts.down_proj.copy_(ours.experts.w_out.transpose(1, 2))
    return _PeerWrapper(block)


class _PeerWrapper(torch.nn.Module):
    """Mixtral's block takes (B, T, D); feed it our flat (N, D) tokens as one sequence."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x.unsqueeze(0)).squeeze(0)


def _peer_working_set(implementation: str, tokens: int, top_k: int, width: int, hidden: int, elsize: int) -> int:
    """Rough bytes an implementation needs beyond the weights (batched_mm gathers weights per pair)."""
    pairs = tokens * top_k
    activations = pairs * (width + 3 * hidden + width) * elsize * 2
    if implementation == "batched_mm":
        return activations + 2 * pairs * 3 * width * hidden * elsize  # gathered weights + their grads
    return activations


# --------------------------------------------------------------------------------------------------
# the run and its report
# --------------------------------------------------------------------------------------------------


def run(
    small: bool = False,
    shapes: Optional[Dict[str, int]] = None,
    device: str = "cpu",
    dtype: str = "float32",
    repeats: Optional[int] = None,
    warmup: int = 2,
    threads: int = 0,
    projector_row: bool = True,
    max_memory_fraction: float = 0.3,
    seed: int = 0,
) -> Dict:
    """Build and time every contender; returns the JSON-ready result (``format_table`` prints it).

    ``shapes`` override ``DEFAULTS`` (``SMALL`` with ``small``); ``repeats`` defaults to 5 (``small``: 30);
    ``threads`` 0: the cores that are idle now; ``projector_row``: also time our projector's first layer."""
    dtype_name = dtype
    shapes = {**(SMALL if small else DEFAULTS), **(shapes or {})}
    if repeats is None:
        repeats = 30 if small else 5
    device = torch.device(device)
    dtype = getattr(torch, dtype_name)
    idle = None
    if device.type == "cpu":
        if not threads:
            idle = idle_cores()
            cores = len(os.sched_getaffinity(0))
            threads = cores if idle is None else max(1, min(cores, int(idle + 0.5)))
            print(
                f"threads: {threads} ({'?' if idle is None else f'{idle:.1f}'} of {cores} cores idle)",
                file=sys.stderr,
            )
        torch.set_num_threads(threads)
    torch.manual_seed(seed)

    width, hidden = shapes["llm_width"], shapes["expert_hidden"]
    tokens, top_k = shapes["tokens"], shapes["top_k"]
    num_experts = shapes["groups"] * shapes["experts_per_group"]
    elsize = torch.finfo(dtype).bits // 8

    # Like-for-like layers: SwiGLU experts, no biases, width -> width.
    ours_layer = MoELayer(
        width, width, num_experts, top_k, hidden, expert_act="swiglu", expert_bias=False, dispatch="auto"
    )
    ours_layer = ours_layer.to(device=device, dtype=dtype)
    ours_dispatch = ours_layer.resolve_dispatch(torch.empty(0, width, device=device, dtype=dtype))

    x = torch.randn(tokens, width, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(tokens, width, device=device, dtype=dtype)
    free = _free_memory_bytes(device)

    # Build every contender first, then time them round-robin.
    rows: List[Dict] = []
    contenders: Dict[str, Contender] = {}

    def add(name: str, kind: str, module: Optional[torch.nn.Module], note: str = "", inputs=None) -> Dict:
        row = {"name": name, "kind": kind, "note": note, "status": "skipped", "median_s": None}
        rows.append(row)
        if module is not None:
            contenders[name] = Contender(module, *(inputs if inputs is not None else (x, grad)))
        return row

    ours_row = add(f"ours ({ours_dispatch})", "ours", OursMoE(ours_layer, ours_dispatch))
    if ours_dispatch == "grouped_mm":
        add("ours (sorted)", "ours_alt", OursMoE(ours_layer, "sorted"), note="informational")
        only = ExpertMatmulsOnly(ours_layer, x)
        sorted_rows = x.detach().index_select(0, only.token_of).requires_grad_(True)
        add("ours: experts' grouped matmuls only", "info", only, inputs=(sorted_rows, torch.randn_like(sorted_rows)),
            note="rows pre-sorted by expert: no routing, sort or permutation; informational")

    # The peer, every experts implementation; check it computes what we compute.
    max_diff = {}
    with torch.no_grad():
        ours_out = ours_layer(x, ours_dispatch)[0].float()
    for implementation in PEER_IMPLEMENTATIONS:
        name = f"mixtral ({implementation})"
        need = _peer_working_set(implementation, tokens, top_k, width, hidden, elsize)
        if free is not None and need > max_memory_fraction * free:
            note = f"needs ~{need / 2**30:.0f} GiB (> {max_memory_fraction:.0%} of free memory)"
            add(name, "peer", None, note=note)
            continue
        peer = build_peer(ours_layer, width, hidden, num_experts, top_k, implementation).to(
            device=device, dtype=dtype
        )
        try:
            with torch.no_grad():
                max_diff[implementation] = (peer(x).float() - ours_out).abs().max().item()
        except (RuntimeError, NotImplementedError, KeyError):
            pass  # reported as failed by the timing below
        add(name, "peer", peer)

    dense_row = add("dense MLP (1 expert shape)", "dense", DenseSwiGLU(width, hidden).to(device=device, dtype=dtype))

    if projector_row:
        in_width = shapes["encoder_width"] * shapes["stack"]
        first = MoELayer(in_width, width, num_experts, top_k, hidden, expert_act="gelu", expert_bias=True)
        first = first.to(device=device, dtype=dtype)
        xf = torch.randn(tokens, in_width, device=device, dtype=dtype, requires_grad=True)
        dispatch = first.resolve_dispatch(xf)
        add(
            f"ours: projector layer 1 ({dispatch})",
            "info",
            OursMoE(first, dispatch),
            note=f"{in_width}->{width}, gelu, biases; informational",
            inputs=(xf, grad),
        )

    load_before = os.getloadavg()[0]
    if device.type == "cpu" and load_before > 0.5:
        print(
            f"warning: 1-minute load average is {load_before:.2f}: other processes compete for the CPU cores, "
            "timings will be noisy (the rounds are interleaved, so ratios suffer less than absolute times)",
            file=sys.stderr,
        )
    print(
        f"timing forward+backward of {tokens} tokens on {device} ({dtype_name}): "
        f"{warmup} warm-up + {repeats} interleaved rounds of {len(contenders)} modules",
        file=sys.stderr,
        flush=True,
    )
    for name, timing in time_interleaved(contenders, repeats, warmup).items():
        row = next(r for r in rows if r["name"] == name)
        row.update(status=timing["status"])
        if timing["status"] == "ok":
            row.update(median_s=timing["median_s"], min_s=timing["min_s"], times_s=timing["times_s"])
        else:
            row["note"] = timing["error"]

    def paired(a: Dict, b: Optional[Dict], factor: float = 1.0) -> Optional[float]:
        """Median over rounds of a's time / (factor * b's time in the same round)."""
        if not b or not a.get("times_s") or not b.get("times_s"):
            return None
        return statistics.median(ta / (factor * tb) for ta, tb in zip(a["times_s"], b["times_s"]))

    peers = [r for r in rows if r["kind"] == "peer" and r["median_s"] is not None]
    peer_row = min(peers, key=lambda r: r["median_s"]) if peers else None
    ours_s = ours_row["median_s"]
    result = {
        "shapes": shapes,
        "like_for_like": {"expert_act": "swiglu", "expert_bias": False, "in_width": width, "out_width": width},
        "device": str(device),
        "device_name": _device_name(device),
        "dtype": dtype_name,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "torch": torch.__version__,
        "transformers": _transformers_version(),
        "repeats": repeats,
        "loadavg_1min": [load_before, os.getloadavg()[0]],
        "idle_cores_at_start": idle,
        "warmup": warmup,
        "ours_dispatch": ours_dispatch,
        "grouped_mm_supported": grouped_mm_supported(device, dtype),
        "max_abs_diff_ours_vs_peer": max_diff,
        "rows": rows,
        "peer": peer_row["name"] if peer_row else None,
        "ours_s": ours_s,
        "peer_s": peer_row["median_s"] if peer_row else None,
        "dense_s": dense_row["median_s"],
        "ours_over_peer": ours_s / peer_row["median_s"] if peer_row and ours_s else None,
        "ours_over_k_dense": ours_s / (top_k * dense_row["median_s"]) if ours_s and dense_row["median_s"] else None,
        "ours_over_peer_paired": paired(ours_row, peer_row),
        "ours_over_k_dense_paired": paired(ours_row, dense_row, top_k),
    }
    return result


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores"


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def format_table(result: Dict) -> str:
    s = result["shapes"]
    lines = [
        f"MoE layer forward+backward: {s['tokens']} tokens, {s['groups']}x{s['experts_per_group']} experts, "
        f"top-{s['top_k']}, expert hidden {s['expert_hidden']}, width {s['llm_width']}",
        f"like for like: SwiGLU experts, no biases, equal in/out width {s['llm_width']} on both sides, same weights",
        f"device {result['device']} ({result['device_name']}), {result['dtype']}, torch {result['torch']}, "
        f"transformers {result['transformers']}, threads {result['threads']}, "
        f"median of {result['repeats']} interleaved rounds after {result['warmup']} warm-up",
        "",
        "| implementation | fwd+bwd (ms) | vs ours | note |",
        "|---|---:|---:|---|",
    ]
    ours = result["ours_s"]
    for row in result["rows"]:
        t = row["median_s"]
        ratio = f"{t / ours:.2f}x" if t and ours else ""
        ms = f"{t * 1000:.1f}" if t else row["status"]
        note = row["note"] + (" **peer**" if row["name"] == result["peer"] else "")
        lines.append(f"| {row['name']} | {ms} | {ratio} | {note.strip()} |")
    lines.append("")
    fmt = lambda v: f"{v:.3f}" if v is not None else "n/a"  # noqa: E731
    lines.append(
        f"ours_over_peer = {fmt(result['ours_over_peer'])} (target <= 1.0), "
        f"ours_over_k_dense = {fmt(result['ours_over_k_dense'])} (target <= 1.3)"
    )
    lines.append(
        "paired (median over rounds of the per-round ratio): "
        f"ours_over_peer = {fmt(result['ours_over_peer_paired'])}, "
        f"ours_over_k_dense = {fmt(result['ours_over_k_dense_paired'])}"
    )
    if result["max_abs_diff_ours_vs_peer"]:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in result["max_abs_diff_ours_vs_peer"].items())
        lines.append(f"max |ours - peer| output difference: {diffs}")
    return "\n".join(lines)


def write_json(result: Dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
