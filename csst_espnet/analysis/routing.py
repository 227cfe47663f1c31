"""Routing report: how a trained MoE projector routes each language of a data dir.

The speech encoder and the projector run over the data dir's batches (read and batched as for
decoding, ``csst_espnet.inference.batches``); ``aggregate_routing``, a pure function of the
projector's aux dicts, groups the router decisions by ``utt2lang`` label and, with a phone
alignment, by the language of the speech each token covers. See docs/architecture.md.
"""

import json
import logging
import os
import tempfile
from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from csst_espnet.data.audio import audio_info
from csst_espnet.data.kaldi_dir import read_table
from csst_espnet.inference.batches import data_loader
from csst_espnet.losses.frame_phone import frame_targets
from csst_espnet.tasks.csst import CSSTTask

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


def read_frame_languages(phone_ali: str, phones: str) -> Tuple[List[str], Dict[str, torch.Tensor]]:
    """The languages of a phone inventory whose names are ``<lang>:<phone>``, and per utterance the
    language of each ``phone_ali`` frame as an index into them (F,), -1 for phones without a prefix."""
    language_of = {phone_id.strip(): phone.split(":", 1)[0] if ":" in phone else None
                   for phone, phone_id in read_table(phones).items()}
    languages = sorted({name for name in language_of.values() if name is not None})
    index_of = {phone_id: languages.index(name) if name else -1 for phone_id, name in language_of.items()}
    out = {}
    for utt, ids in read_table(phone_ali).items():
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


def routing_batches(
    model: torch.nn.Module,
    loader: Iterable[Tuple[List[str], Dict[str, torch.Tensor]]],
    utt2lang: Dict[str, str],
    total: int,
    device: str = "cpu",
    frame_langs: Optional[Tuple[List[str], Dict[str, torch.Tensor]]] = None,
) -> Iterator[Tuple]:
    """Run the speech encoder and the projector on the loader's ``(keys, batch)`` pairs
    (``csst_espnet.inference.batches.data_loader``); yield ``(projector aux, language of each row)``,
    with ``frame_langs`` (``read_frame_languages``) also the frame-language label of every token
    (``token_frame_labels``). ``total``: the utterances, for the progress bar."""
    with tqdm(total=total, desc="routing", unit="utt") as progress:
        for keys, batch in loader:
            with torch.no_grad():
                enc, enc_lengths = model.encode_frames(batch["speech"].to(device), batch["speech_lengths"].to(device))
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


def routing_report(
    config: str,
    model_file: str,
    data_dir: str,
    output_dir: str,
    batch_size: int = 8,
    device: str = "cpu",
    fs: int = 16000,
    max_utts: int = 0,
    phones: Optional[str] = None,
) -> Dict:
    """The report of a trained model (``config``, ``model_file``) on the first ``max_utts`` (0: all)
    utterances of ``data_dir``'s ``wav.scp`` (audio at ``fs`` Hz), grouped by its ``utt2lang`` and with
    ``phones`` also by frame language (its ``phone_ali``); written to ``output_dir`` (``write_report``)."""
    model, train_args = CSSTTask.build_model_from_file(config, model_file, device)
    model.eval()
    projector = projector_of(model)

    wav_scp = os.path.join(data_dir, "wav.scp")
    wav = read_table(wav_scp)
    lang_file = os.path.join(data_dir, "utt2lang")
    if not os.path.exists(lang_file):
        raise FileNotFoundError(f"{lang_file} not found: the report groups utterances by language")
    utt2lang = read_table(lang_file)
    keys = list(wav)[:max_utts] if max_utts else list(wav)
    for key in keys:
        rate = audio_info(wav[key])[1]
        if rate != fs:
            raise ValueError(f"{key}: sampling rate {rate} Hz, expected {fs} Hz (resample the data dir)")

    frame_langs = None
    if phones:
        ali_file = os.path.join(data_dir, "phone_ali")
        if not os.path.exists(ali_file):
            raise FileNotFoundError(f"{ali_file} not found: --phones reports routing by the frames' phone_ali")
        frame_langs = read_frame_languages(ali_file, phones)
    with tempfile.TemporaryDirectory() as tmp:  # the loader takes the utterances to read as a key file
        key_file = os.path.join(tmp, "keys")
        with open(key_file, "w", encoding="utf-8") as f:
            f.writelines(f"{key}\n" for key in keys)
        loader = data_loader(
            [(wav_scp, "speech", "sound")],
            CSSTTask.build_preprocess_fn(train_args, train=False),
            CSSTTask.build_collate_fn(train_args, train=False),
            batch_size,
            key_file,
        )
        batches = routing_batches(model, loader, utt2lang, len(keys), device, frame_langs)
        if frame_langs is None:
            report = aggregate_routing(batches, projector.groups, projector.experts_per_group)
        else:
            # two aggregations over one encoder pass: keep only what aggregate_routing reads
            kept = [({k: aux[k] for k in ("expert_index", "token_utt")}, *rest) for aux, *rest in batches]
            report = aggregate_routing([batch[:2] for batch in kept], projector.groups, projector.experts_per_group)
            by_frames = aggregate_routing(kept, projector.groups, projector.experts_per_group)
            report["frame_languages"] = by_frames["languages"]
    report.update(config=config, model_file=model_file, data_dir=data_dir)
    paths = write_report(report, output_dir)
    logger.info("wrote %s", ", ".join(paths.values()))
    return report
