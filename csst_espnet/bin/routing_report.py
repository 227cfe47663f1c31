"""Routing report: how a trained MoE projector routes each language of a data dir.

    python -m csst_espnet.bin.routing_report --config exp/x/config.yaml \
        --model_file exp/x/valid.acc.ave.pth --data_dir data/test_cs --output_dir exp/x/routing

Runs the speech encoder and the projector (``model.encode``) over every utterance of ``wav.scp``,
groups the router decisions by the utterance's ``utt2lang`` label (``cs`` included) and writes to
``--output_dir``:

- ``routing.json``: per language and MoE layer, the share of its token-expert dispatches going to each
  language group and to each expert, and the share of its tokens whose top-1 expert is in each group;
- ``routing.md``: the same as markdown tables (language -> group share; expert utilisation);
- ``routing_heatmap.png``: languages x experts utilisation, one panel per layer.

With ``--phones`` (a phone inventory ``<phone> <id>`` whose phone names carry their language as
``<lang>:<phone>``, e.g. mini_cs's ``data/local/phones.txt``) and a ``phone_ali`` file in the data dir,
the report also groups tokens by the language of the speech they cover ("frame language"): a token
whose frames are all of one language (silence aside) gets the key ``<utterance label>/<frame
language>``, e.g. ``cs/en`` for the English stretches of code-switched utterances, the tokens the
language groups exist for.

The aggregation (``aggregate_routing``) is a pure function of the projector's aux dicts.
"""

import argparse
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from csst_espnet.losses.frame_phone import frame_targets

logger = logging.getLogger(__name__)

UNLABELLED = "-"


# --------------------------------------------------------------------------------------------------
# aggregation (pure)
# --------------------------------------------------------------------------------------------------


def aggregate_routing(
    batches: Iterable[Tuple], groups: Sequence[str], experts_per_group: int
) -> Dict:
    """Routing statistics per language from ``(projector aux, language of each batch row)`` pairs,
    or per token label from ``(aux, row languages, label of each token)`` triples (a label of None
    leaves the token out; ``utterances`` then counts the rows with a token of the label).

    aux needs ``expert_index (L, N, k)`` and ``token_utt (N,)`` (as ``MoESpeechProjector`` returns).
    Returns a JSON-ready dict (see ``format_markdown`` for how it reads).
    """
    groups = list(groups)
    num_experts = len(groups) * experts_per_group
    dispatches: Dict[str, np.ndarray] = OrderedDict()  # lang -> (L, E) dispatch counts
    top1: Dict[str, np.ndarray] = {}  # lang -> (L, E) top-1 counts
    tokens: Dict[str, int] = {}
    utterances: Dict[str, int] = {}
    num_layers = None
    for aux, langs, *token_labels in batches:
        index = aux["expert_index"]
        if index.dim() == 2:
            index = index.unsqueeze(0)
        index = index.detach().cpu().long()  # (L, N, k)
        token_utt = aux["token_utt"].detach().cpu().long()  # (N,)
        num_layers = index.size(0) if num_layers is None else num_layers
        if index.size(0) != num_layers:
            raise ValueError(f"inconsistent number of MoE layers: {index.size(0)} vs {num_layers}")
        if token_labels:
            labels = np.asarray(token_labels[0], dtype=object)
            groups_of_batch = [
                (label, torch.from_numpy(labels == label)) for label in dict.fromkeys(labels) if label is not None
            ]
        else:
            groups_of_batch = [(lang or UNLABELLED, token_utt == row) for row, lang in enumerate(langs)]
        for lang, mine in groups_of_batch:
            if lang not in dispatches:
                dispatches[lang] = np.zeros((num_layers, num_experts), dtype=np.int64)
                top1[lang] = np.zeros((num_layers, num_experts), dtype=np.int64)
                tokens[lang], utterances[lang] = 0, 0
            utterances[lang] += len(set(token_utt[mine].tolist())) if token_labels else 1
            tokens[lang] += int(mine.sum())
            chosen = index[:, mine]  # (L, n_tokens, k)
            for layer in range(num_layers):
                dispatches[lang][layer] += np.bincount(chosen[layer].reshape(-1).numpy(), minlength=num_experts)
                top1[lang][layer] += np.bincount(chosen[layer, :, 0].numpy(), minlength=num_experts)

    def shares(counts: np.ndarray) -> List[float]:
        total = counts.sum()
        return [float(c) / total if total else 0.0 for c in counts]

    def per_group(values: List[float]) -> Dict[str, float]:
        return {
            g: float(sum(values[i * experts_per_group : (i + 1) * experts_per_group])) for i, g in enumerate(groups)
        }

    languages = OrderedDict()
    for lang in sorted(
        dispatches, key=lambda name: (name not in groups, groups.index(name) if name in groups else 0, name)
    ):
        layers = []
        for layer in range(num_layers):
            expert_share = shares(dispatches[lang][layer])
            layers.append(
                {
                    "group_share": per_group(expert_share),
                    "top1_group_share": per_group(shares(top1[lang][layer])),
                    "expert_share": expert_share,
                    "dispatches": [int(c) for c in dispatches[lang][layer]],
                }
            )
        languages[lang] = {"utterances": utterances[lang], "tokens": tokens[lang], "layers": layers}
    return {
        "groups": groups,
        "experts_per_group": experts_per_group,
        "experts": [f"{g}.{j}" for g in groups for j in range(experts_per_group)],
        "num_layers": num_layers or 0,
        "languages": languages,
    }


def format_markdown(report: Dict) -> str:
    """Markdown tables: language -> group share, and expert utilisation per language, per layer."""
    groups, experts = report["groups"], report["experts"]
    lines = ["# Routing report", ""]
    lines.append(
        "Group share: share of a language's token-expert dispatches (top-k) that go to each group's experts; "
        "top-1: share of its tokens whose first choice is in the group. Expert utilisation: share of its "
        "dispatches per expert."
    )
    if "frame_languages" in report:
        lines += ["", "Frame language: tokens grouped as `<utterance label>/<language of the speech they cover>` "
                  "(from phone_ali); tokens over silence or a language switch are left out."]
    for layer in range(report["num_layers"]):
        suffix = f" (MoE layer {layer + 1})" if report["num_layers"] > 1 else ""
        tables = [("Language", report["languages"])]
        if "frame_languages" in report:
            tables.append(("Frame language", report["frame_languages"]))
        for title, table in tables:
            lines += ["", f"## {title} -> group share{suffix}", ""]
            lines.append(
                f"| {title.lower()} | utts | tokens | "
                + " | ".join(f"-> {g}" for g in groups)
                + " | "
                + " | ".join(f"top-1 {g}" for g in groups)
                + " |"
            )
            lines.append("|---|---:|---:|" + "---:|" * (2 * len(groups)))
            for lang, info in table.items():
                stats = info["layers"][layer]
                cells = [f"{stats['group_share'][g]:.3f}" for g in groups] + [
                    f"{stats['top1_group_share'][g]:.3f}" for g in groups
                ]
                lines.append(f"| {lang} | {info['utterances']} | {info['tokens']} | " + " | ".join(cells) + " |")
        lines += ["", f"## Expert utilisation{suffix}", ""]
        lines.append("| language | " + " | ".join(experts) + " |")
        lines.append("|---|" + "---:|" * len(experts))
        for lang, info in report["languages"].items():
            lines.append(
                f"| {lang} | " + " | ".join(f"{v:.3f}" for v in info["layers"][layer]["expert_share"]) + " |"
            )
    return "\n".join(lines) + "\n"


def plot_heatmap(report: Dict, path: str) -> None:
    """Languages x experts utilisation heatmap (one panel per MoE layer), PNG via matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs, experts = list(report["languages"]), report["experts"]
    num_layers = max(report["num_layers"], 1)
    fig, axes = plt.subplots(
        1, num_layers, figsize=(1.0 + 0.7 * len(experts) * num_layers, 1.2 + 0.5 * max(len(langs), 1)), squeeze=False
    )
    for layer, ax in enumerate(axes[0]):
        data = np.array(
            [report["languages"][lang]["layers"][layer]["expert_share"] for lang in langs] or [[0.0] * len(experts)]
        )
        image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=max(float(data.max()), 1e-6), aspect="auto")
        ax.set_xticks(range(len(experts)), experts, rotation=45, ha="right")
        ax.set_yticks(range(len(langs)), langs)
        for boundary in range(1, len(report["groups"])):
            ax.axvline(boundary * report["experts_per_group"] - 0.5, color="white", linewidth=2)
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.2f}",
                    ha="center",
                    va="center",
                    color="w" if data[i, j] < 0.6 * data.max() else "k",
                    fontsize=7,
                )
        ax.set_xlabel("expert (group.index)")
        ax.set_title(f"layer {layer + 1}" if num_layers > 1 else "expert utilisation")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: Dict, output_dir: str) -> Dict[str, str]:
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, "routing.json"),
        "markdown": os.path.join(output_dir, "routing.md"),
        "heatmap": os.path.join(output_dir, "routing_heatmap.png"),
    }
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(format_markdown(report))
    plot_heatmap(report, paths["heatmap"])
    return paths


# --------------------------------------------------------------------------------------------------
# data and model
# --------------------------------------------------------------------------------------------------


def read_kaldi_map(path: str) -> "OrderedDict[str, str]":
    entries = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(maxsplit=1)
            if parts:
                entries[parts[0]] = parts[1] if len(parts) > 1 else ""
    return entries


class AudioReader:
    """Waveforms of a Kaldi data dir as float32 in [-1, 1]: plain files via soundfile; pipes, ark
    entries and ``segments`` via kaldiio."""

    def __init__(self, data_dir: str, fs: int = 16000):
        self.fs = fs
        wav_scp = os.path.join(data_dir, "wav.scp")
        segments = os.path.join(data_dir, "segments")
        self.entries = read_kaldi_map(wav_scp)
        plain = all(os.path.isfile(v) for v in self.entries.values())
        self.kaldi = None
        if os.path.exists(segments) or not plain:
            import kaldiio

            self.kaldi = kaldiio.load_scp(wav_scp, segments=segments if os.path.exists(segments) else None)
            self.keys = list(self.kaldi.keys())
        else:
            self.keys = list(self.entries)

    def __call__(self, utt: str) -> np.ndarray:
        if self.kaldi is not None:
            value = self.kaldi[utt]
            rate, wav = value if isinstance(value, tuple) else (self.fs, value)
            if np.issubdtype(wav.dtype, np.integer):
                wav = wav.astype(np.float32) / float(np.iinfo(wav.dtype).max + 1)
        else:
            import soundfile

            wav, rate = soundfile.read(self.entries[utt], dtype="float32", always_2d=False)
        if rate != self.fs:
            raise ValueError(f"{utt}: sampling rate {rate} Hz, expected {self.fs} Hz (resample the data dir)")
        if wav.ndim > 1:
            wav = wav.mean(axis=1)
        return np.asarray(wav, dtype=np.float32)


def read_frame_languages(phone_ali: str, phones: str) -> Tuple[List[str], Dict[str, torch.Tensor]]:
    """The languages of a phone inventory whose names are ``<lang>:<phone>``, and per utterance the
    language of each ``phone_ali`` frame as an index into them (F,), -1 for phones without a prefix."""
    language_of = {phone_id.strip(): phone.split(":", 1)[0] if ":" in phone else None
                   for phone, phone_id in read_kaldi_map(phones).items()}
    languages = sorted({name for name in language_of.values() if name is not None})
    index_of = {phone_id: languages.index(name) if name else -1 for phone_id, name in language_of.items()}
    out = {}
    for utt, ids in read_kaldi_map(phone_ali).items():
        unknown = [i for i in ids.split() if i not in index_of]
        if unknown:
            raise ValueError(f"{phone_ali}: utterance '{utt}' has phone id {unknown[0]}, which {phones} does not list")
        out[utt] = torch.tensor([index_of[i] for i in ids.split()], dtype=torch.long)
    return languages, out


def token_frame_labels(
    aux: Dict[str, torch.Tensor],
    projector: torch.nn.Module,
    frame_langs: Sequence[torch.Tensor],
    languages: Sequence[str],
    row_langs: Sequence[str],
    enc_lengths: torch.Tensor,
    width: int,
) -> List[Optional[str]]:
    """``<row language>/<frame language>`` of every token (N,), or None for tokens over silence only
    or over a switch: the phone_ali languages (``read_frame_languages``) are resampled to the encoder
    frames as for the ``frame_phone`` loss (``frame_targets``), then labelled by the routing losses'
    rule (``MoESpeechProjector.token_lang_from_frames``)."""
    ali = torch.nn.utils.rnn.pad_sequence(list(frame_langs), batch_first=True, padding_value=-1)
    ali_lengths = torch.tensor([len(f) for f in frame_langs])
    frames = frame_targets(ali, ali_lengths, enc_lengths.cpu(), width)  # (B, T) language ids
    token_lang = projector.token_lang_from_frames(frames, {k: v.cpu() for k, v in aux.items()})  # (N,)
    return [f"{row_langs[u] or UNLABELLED}/{languages[t]}" if t >= 0 else None
            for u, t in zip(aux["token_utt"].tolist(), token_lang.tolist())]


def iterate_batches(
    model: torch.nn.Module,
    reader,
    utt2lang: Dict[str, str],
    utts: Sequence[str],
    batch_size: int,
    device: str = "cpu",
    frame_langs: Optional[Tuple[List[str], Dict[str, torch.Tensor]]] = None,
) -> Iterator[Tuple]:
    """Run the speech encoder and the projector on padded batches; yield ``(projector aux, language
    of each row)``, with ``frame_langs`` (``read_frame_languages``) also the frame-language label of
    every token (``token_frame_labels``)."""
    from tqdm import tqdm

    with tqdm(total=len(utts), desc="routing", unit="utt") as progress:
        for start in range(0, len(utts), batch_size):
            keys = utts[start : start + batch_size]
            wavs = [torch.from_numpy(reader(key)) for key in keys]
            lengths = torch.tensor([len(w) for w in wavs])
            speech = torch.zeros(len(wavs), int(lengths.max()))
            for i, w in enumerate(wavs):
                speech[i, : len(w)] = w
            with torch.no_grad():
                enc, enc_lengths = model.encode_frames(speech.to(device), lengths.to(device))
                _, _, aux = model.projector(enc, enc_lengths)
            if "expert_index" not in aux:
                raise ValueError(
                    "the model's projector does not route (no 'expert_index' in its aux): not an MoE projector"
                )
            langs = [utt2lang.get(key, UNLABELLED) for key in keys]
            if frame_langs is None:
                yield aux, langs
            else:
                languages, per_utt = frame_langs
                missing = [key for key in keys if key not in per_utt]
                if missing:
                    raise ValueError(f"utterance '{missing[0]}' has no phone_ali entry")
                yield aux, langs, token_frame_labels(
                    aux, model.projector, [per_utt[k] for k in keys], languages, langs, enc_lengths, enc.size(1)
                )
            progress.update(len(keys))


def projector_of(model: torch.nn.Module):
    projector = getattr(model, "projector", None)
    if projector is None or not hasattr(projector, "groups"):
        raise ValueError("the model has no MoE projector (needs model.projector with .groups)")
    return projector


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training config.yaml of the experiment")
    parser.add_argument("--model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_dir", required=True, help="Kaldi-style dir with wav.scp and utt2lang")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fs", type=int, default=16000, help="expected sampling rate")
    parser.add_argument("--max_utts", type=int, default=0, help="only the first N utterances (0: all)")
    parser.add_argument("--phones", default=None,
                        help="phone inventory '<phone> <id>' with '<lang>:' phone prefixes: with the data dir's "
                             "phone_ali, also report routing by the language of the speech each token covers")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from csst_espnet.tasks.csst import CSSTTask

    model, _ = CSSTTask.build_model_from_file(args.config, args.model_file, args.device)
    model.eval()
    projector = projector_of(model)

    reader = AudioReader(args.data_dir, fs=args.fs)
    lang_file = os.path.join(args.data_dir, "utt2lang")
    if not os.path.exists(lang_file):
        raise FileNotFoundError(f"{lang_file} not found: the report groups utterances by language")
    utt2lang = read_kaldi_map(lang_file)
    utts = reader.keys[: args.max_utts] if args.max_utts else reader.keys

    frame_langs = None
    if args.phones:
        ali_file = os.path.join(args.data_dir, "phone_ali")
        if not os.path.exists(ali_file):
            raise FileNotFoundError(f"{ali_file} not found: --phones reports routing by the frames' phone_ali")
        frame_langs = read_frame_languages(ali_file, args.phones)
    batches = iterate_batches(model, reader, utt2lang, utts, args.batch_size, args.device, frame_langs)
    if frame_langs is None:
        report = aggregate_routing(batches, projector.groups, projector.experts_per_group)
    else:
        # two aggregations over one encoder pass: keep only what aggregate_routing reads
        kept = [({k: aux[k] for k in ("expert_index", "token_utt")}, *rest) for aux, *rest in batches]
        report = aggregate_routing([batch[:2] for batch in kept], projector.groups, projector.experts_per_group)
        by_frames = aggregate_routing(kept, projector.groups, projector.experts_per_group)
        report["frame_languages"] = by_frames["languages"]
    report.update(config=args.config, model_file=args.model_file, data_dir=args.data_dir)
    paths = write_report(report, args.output_dir)
    logger.info("wrote %s", ", ".join(paths.values()))
    return report


if __name__ == "__main__":
    main()
