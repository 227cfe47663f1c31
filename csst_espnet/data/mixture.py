"""Training batches drawn from a data mixture with stated task shares and temperature language sampling.

A phase config (key ``data_mixture``, read by ``CSSTTask.build_iter_factory``) says what share of the
training utterances each task gets, and how languages are drawn inside each task::

    data_mixture:
      tasks: {asr: 0.5, st: 0.4, mt: 0.1}   # shares (normalised); default: as many as the data hold
      temperature: 5.0                      # inside a task, p_l ∝ n_l^(1/T); 1: as in the data, ∞: uniform
      languages: {zh: 1, en: 1, es: 1}      # instead of temperature: fixed shares (unlisted: not drawn)

Every utterance slot of a batch draws a task by its share, then a language of that task by p_l, then
the next utterance of that (task, language) pool; each pool is gone through in a random order before
any utterance repeats. n_l is the number of utterances of language l in the task (labels from the
training data's ``task`` and ``lang`` files, or the preprocessor's defaults).

:class:`MixtureSampler` is an ESPnet ``AbsSampler``: ``generate(seed)`` draws one round of batches
from ``seed`` alone, and ESPnet's ``SequenceIterFactory`` seeds it with ``seed + round`` and cuts the
rounds into epochs (``num_iters_per_epoch``), so the batches of every epoch are the same on a rerun
and on ``--resume``. With data parallelism each batch is split over the ranks as ESPnet splits its
own (``batch[rank::world_size]``).
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from espnet2.samplers.abs_sampler import AbsSampler

MIXTURE_KEYS = ("tasks", "temperature", "languages")


def language_probabilities(counts: Mapping[str, int], temperature: float = 1.0,
                           shares: Optional[Mapping[str, float]] = None) -> Dict[str, float]:
    """p_l ∝ n_l^(1/T) over the languages of ``counts`` (utterances per language, each > 0), or the
    normalised ``shares`` of those languages (a language without a share: 0)."""
    if shares is not None:
        weights = {lang: float(shares.get(lang, 0.0)) for lang in counts}
    else:
        weights = {lang: float(n) ** (1.0 / temperature) for lang, n in counts.items()}
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"data_mixture: no language to draw from (utterances per language {dict(counts)}, "
                         f"shares {dict(shares or {})})")
    return {lang: w / total for lang, w in weights.items()}


def _positive(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{where} must be a number > 0, got {value!r}")
    return float(value)


class MixtureSampler(AbsSampler):
    """Batches of ``batch_size`` utterance ids drawn from ``labels`` (utterance id -> (task, language))
    as the ``data_mixture`` config ``conf`` says (module docstring); ``num_batches`` a round (default:
    as many as the data fill). Config errors name the bad key."""

    def __init__(self, labels: Mapping[str, Tuple[str, str]], conf: Mapping, batch_size: int,
                 num_batches: Optional[int] = None, rank: int = 0, world_size: int = 1):
        if not isinstance(conf, Mapping):
            raise ValueError(f"data_mixture must be a mapping with keys {list(MIXTURE_KEYS)}, got {conf!r}")
        unknown = sorted(set(conf) - set(MIXTURE_KEYS))
        if unknown:
            raise ValueError(f"data_mixture: unknown key(s) {unknown}; allowed {list(MIXTURE_KEYS)}")
        if "languages" in conf and "temperature" in conf:
            raise ValueError("data_mixture: give languages (fixed shares) or temperature, not both")
        if batch_size < world_size:
            raise ValueError(f"data_mixture: batch_size {batch_size} is below the {world_size} data-parallel ranks")
        pools: Dict[str, Dict[str, List[str]]] = {}
        for utt in sorted(labels):
            task, lang = labels[utt]
            pools.setdefault(task, {}).setdefault(lang, []).append(utt)
        if not pools:
            raise ValueError("data_mixture: the training data have no utterance")
        task_conf = conf.get("tasks")
        if task_conf is None:
            task_shares = {task: float(sum(map(len, by_lang.values()))) for task, by_lang in pools.items()}
        else:
            if not isinstance(task_conf, Mapping) or not task_conf:
                raise ValueError(f"data_mixture.tasks must be a mapping task -> share, got {task_conf!r}")
            task_shares = {task: _positive(v, f"data_mixture.tasks.{task}") for task, v in task_conf.items()}
            missing = [task for task in task_shares if task not in pools]
            if missing:
                raise ValueError(f"data_mixture.tasks: no training utterance of task(s) {missing} "
                                 f"(the data have {sorted(pools)})")
        temperature = _positive(conf.get("temperature", 1.0), "data_mixture.temperature")
        shares = conf.get("languages")
        if shares is not None:
            if not isinstance(shares, Mapping) or not shares:
                raise ValueError(f"data_mixture.languages must be a mapping language -> share, got {shares!r}")
            shares = {lang: _positive(v, f"data_mixture.languages.{lang}") for lang, v in shares.items()}
            drawn = {lang for task in task_shares for lang in pools[task]}
            absent = sorted(set(shares) - drawn)
            if absent:
                raise ValueError(f"data_mixture.languages: no utterance of {absent} in the tasks drawn "
                                 f"(they have {sorted(drawn)})")
        total = sum(task_shares.values())
        self.task_probs = {task: share / total for task, share in task_shares.items()}
        self.lang_probs = {
            task: language_probabilities({lang: len(u) for lang, u in pools[task].items()}, temperature, shares)
            for task in self.task_probs
        }
        self.pools = pools
        self.batch_size = batch_size
        self.num_batches = num_batches or max(1, len(labels) // batch_size)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        return iter(self.generate(0))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(batch_size={self.batch_size}, num_batches={self.num_batches}, "
                f"tasks={self.task_probs}, languages={self.lang_probs})")

    def generate(self, seed: int) -> List[Tuple[str, ...]]:
        """One round of batches, drawn from ``seed`` alone."""
        rng = np.random.RandomState(seed)
        tasks = list(self.task_probs)
        orders = {(t, l): rng.permutation(len(u)) for t in tasks for l, u in self.pools[t].items()}
        cursors = dict.fromkeys(orders, 0)
        slots = self.num_batches * self.batch_size
        drawn_tasks = rng.choice(len(tasks), size=slots, p=[self.task_probs[t] for t in tasks])
        drawn_langs = np.empty(slots, dtype=object)
        for i, task in enumerate(tasks):
            langs = list(self.lang_probs[task])
            mine = drawn_tasks == i
            drawn_langs[mine] = [langs[j] for j in rng.choice(len(langs), size=int(mine.sum()),
                                                              p=[self.lang_probs[task][l] for l in langs])]
        utts = []
        for i, lang in zip(drawn_tasks, drawn_langs):
            key = (tasks[i], lang)
            pool = self.pools[tasks[i]][lang]
            if cursors[key] == len(pool):  # gone through: a new random order
                orders[key], cursors[key] = rng.permutation(len(pool)), 0
            utts.append(pool[orders[key][cursors[key]]])
            cursors[key] += 1
        batches = [utts[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.num_batches)]
        return [tuple(batch[self.rank :: self.world_size]) for batch in batches]


def mixture_labels(keys: Sequence[str], tasks: Optional[Mapping[str, str]], langs: Optional[Mapping[str, str]],
                   default_task: str, default_lang: str) -> Dict[str, Tuple[str, str]]:
    """(task, language) of every utterance of ``keys`` from the ``task`` / ``lang`` tables (the
    preprocessor's defaults where a table is absent)."""
    out = {}
    for key in keys:
        task = (tasks or {}).get(key, default_task).strip()
        lang = (langs or {}).get(key, default_lang).strip()
        out[key] = (task, lang)
    return out
