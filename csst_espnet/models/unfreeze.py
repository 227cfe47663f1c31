"""Progressive unfreezing of the speech encoder within a training phase (PART, arXiv 2509.19745).

A phase config names when which encoder layers start training, counted in optimiser updates::

    encoder_unfreeze:
      - {step: 0, layers: last 8}     # from the first update: the last 8 layers (and the final norm)
      - {step: 2000, layers: all}     # from update 2000: the whole encoder (its input convolutions too)

Every parameter that trains at some point of the phase requires grad (and is float32) from the
start, so the optimiser, DDP and ESPnet's checkpoints hold the same parameter set all phase long;
the layers not yet unfrozen run without autograd (``HFWhisperEncoder.trainable_tail``), so they get
no gradient: no optimiser update, no weight decay, no backward cost. The update count is in the
state dict (``updates``), so ``--resume`` restores the layers that train; a new phase starts at 0
(``CSSTTrainer.run`` resets it before ESPnet's resume), whatever an ``--init_param`` model held.
"""

import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

ALL = "all"
_LAST = re.compile(r"^last\s+(\d+)$")
_ENTRY_KEYS = ("step", "layers")


def parse_schedule(spec: Sequence[Dict], num_layers: int) -> List[Tuple[int, Optional[int]]]:
    """``encoder_unfreeze`` entries -> ``[(step, tail)]`` sorted by step; ``tail``: the number of trailing
    layers that train from ``step`` on, None for the whole encoder. Errors name the bad key."""
    if not isinstance(spec, (list, tuple)):
        raise ValueError(f"encoder_unfreeze must be a list of {{step, layers}} mappings, got {spec!r}")
    schedule: List[Tuple[int, Optional[int]]] = []
    for i, entry in enumerate(spec):
        where = f"encoder_unfreeze[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping with keys {list(_ENTRY_KEYS)}, got {entry!r}")
        unknown = sorted(set(entry) - set(_ENTRY_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed {list(_ENTRY_KEYS)}")
        missing = [k for k in _ENTRY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
        step = entry["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{where}.step must be an integer >= 0 (optimiser updates), got {step!r}")
        layers = str(entry["layers"]).strip()
        match = _LAST.match(layers)
        if layers == ALL:
            tail = None
        elif match and 1 <= int(match.group(1)) <= num_layers:
            tail = int(match.group(1))
        else:
            raise ValueError(f"{where}.layers must be 'all' or 'last N' with 1 <= N <= {num_layers} "
                             f"(the encoder's layers), got {entry['layers']!r}")
        if schedule and step <= schedule[-1][0]:
            raise ValueError(f"{where}.step {step} must be after the previous entry's step {schedule[-1][0]}")
        if schedule and (schedule[-1][1] is None or (tail is not None and tail <= schedule[-1][1])):
            raise ValueError(f"{where}.layers {layers!r} must unfreeze more than the previous entry")
        schedule.append((step, tail))
    return schedule


class EncoderUnfreeze(torch.nn.Module):
    """The encoder's unfreezing schedule and the optimiser updates of the phase so far.

    ``tail()``: the number of trailing encoder layers that train now (0: none, None: all of it)."""

    def __init__(self, schedule: Sequence[Tuple[int, Optional[int]]]):
        super().__init__()
        self.schedule = list(schedule)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def on_update(self) -> None:
        self.updates += 1

    def reset(self) -> None:
        """A new phase: updates count from 0."""
        self.updates.zero_()

    def tail(self) -> Optional[int]:
        updates = int(self.updates)
        tail: Optional[int] = 0
        for step, layers in self.schedule:
            if updates >= step:
                tail = layers
        return tail

    def final_tail(self) -> Optional[int]:
        """What trains once every entry has been reached (the parameters that require grad all phase)."""
        return self.schedule[-1][1]

    def extra_repr(self) -> str:
        return ", ".join(f"step {s}: {'all' if t is None else f'last {t}'}" for s, t in self.schedule)
