"""Speech translation with an LLM: speech encoder -> projector -> causal LM.

The LLM sees ``[prompt][speech embeddings][target]`` (with a chat template the speech sits inside the
prompt's user turn: ``csst_espnet.text.prompt``). Prefixes (prompt + speech) are
left-padded so that every target in a batch starts at the same position P; logits are taken
only at the P-1 .. P+L-2 positions that predict target tokens, never over prompt or speech.
Decoding (``csst_espnet.inference``) builds the same left-padded prefix and calls ``generate``.
"""

import logging
from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from csst_espnet.llm.hf_causal_lm import HFCausalLM
from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.frame_phone import frame_targets
from csst_espnet.losses.routing import CODE_SWITCH
from csst_espnet.models.frozen_state import exclude_frozen_pretrained
from csst_espnet.models.unfreeze import EncoderUnfreeze
from csst_espnet.projector.abs_projector import AbsProjector
from csst_espnet.text.prompt import SPEECH_SLOT


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in value, ``scale * dx`` in backward."""
    return x * scale + x.detach() * (1.0 - scale)


class ESPnetCSSTModel(AbsESPnetModel):
    """Args:
    frontend, specaug, normalize, encoder, projector, llm: the components (frontend, specaug and
        normalize optional; specaug, e.g. SpecAugment masks, acts in training only).
    languages: language codes; ``lang`` inputs index into this list, and so do ``lang_ali`` inputs (a
        language per 10 ms frame, -1 unlabelled), which label the speech tokens of code-switched
        utterances for the routing losses (``_with_frame_languages``).
    aux_losses: auxiliary loss hooks and weights, ``{name: (module, weight)}`` (built by the task).
    ce_weight: weight of the plain target CE, the mean over the target tokens of the utterances whose
        CE no hook's loss contains (``AbsAuxLoss.ce_utterances``; each utterance's CE counts once, see
        the transition loss); the ``loss_ce``, ``acc``, ``ppl`` stats cover every target token.
    speech_warmup_epochs: the first N training epochs train the speech side alone: encoder and
        projector learn from the auxiliary losses (e.g. frame_phone, src_ctc) and the LLM is not
        run, so a step costs about 60 % of a full one. The trainer (``CSSTTrainer``) calls
        ``set_epoch``; validation always runs the whole model.
    ignore_id: padding value of target token ids.
    encoder_unfreeze: the phase's progressive unfreezing of the encoder (``models/unfreeze.py``; built by
        the task from the config key ``encoder_unfreeze``), None: the encoder trains as built.

    Utterances without speech (``speech_lengths`` 0: text translation, task ``mt``, whose source text is
    in the prompt) go through the LLM alone; the speech side runs on the others (``encode_frames``).
    """

    def __init__(
        self,
        frontend: Optional[AbsFrontend],
        normalize: Optional[AbsNormalize],
        encoder: AbsEncoder,
        projector: AbsProjector,
        llm: HFCausalLM,
        languages: Sequence[str],
        specaug: Optional[AbsSpecAug] = None,
        aux_losses: Optional[torch.nn.ModuleDict] = None,
        aux_loss_weights: Optional[Dict[str, float]] = None,
        ce_weight: float = 1.0,
        speech_warmup_epochs: int = 0,
        ignore_id: int = -1,
        extract_feats_in_collect_stats: bool = False,
        encoder_unfreeze: Optional[EncoderUnfreeze] = None,
    ):
        super().__init__()
        if projector.output_size() != llm.hidden_size:
            raise ValueError(f"projector gives width {projector.output_size()}, LLM expects {llm.hidden_size}")
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self.projector = projector
        self.llm = llm
        self.languages = tuple(languages)
        self.aux_losses = aux_losses if aux_losses is not None else torch.nn.ModuleDict()
        self.aux_loss_weights = dict(aux_loss_weights or {})
        self.ce_weight = ce_weight
        self.ignore_id = ignore_id
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats
        self.speech_warmup_epochs = speech_warmup_epochs
        self.speech_only = False
        if speech_warmup_epochs > 0:
            if len(self.aux_losses) == 0:
                raise ValueError("speech_warmup_epochs needs auxiliary losses on the speech side (e.g. frame_phone, "
                                 "src_ctc): the warm-up epochs train on them alone")
            needing = [name for name, hook in self.aux_losses.items() if hook.needs_llm_outputs]
            if needing:
                raise ValueError(f"speech_warmup_epochs: the auxiliary losses {needing} read the LLM's outputs, "
                                 "which the warm-up epochs do not compute")
        self.encoder_unfreeze = encoder_unfreeze
        exclude_frozen_pretrained(self)
        self._register_load_state_dict_pre_hook(self._drop_foreign_phase_state)

    def _drop_foreign_phase_state(self, state_dict, prefix, *args) -> None:
        """What a previous phase's model has and this phase does not use is ignored: the update count of
        its unfreezing schedule, the parameters of auxiliary losses this phase has not (e.g. the
        frame-phone head where a phase's data has no phone alignments)."""
        if self.encoder_unfreeze is None:
            state_dict.pop(prefix + "encoder_unfreeze.updates", None)
        foreign = sorted({key[len(prefix + "aux_losses."):].split(".")[0] for key in state_dict
                          if key.startswith(prefix + "aux_losses.")} - set(self.aux_losses))
        for name in foreign:
            logging.info(f"the loaded model's auxiliary loss '{name}' is not in this model: its parameters are not loaded")
            for key in [k for k in state_dict if k.startswith(f"{prefix}aux_losses.{name}.")]:
                del state_dict[key]

    def start_phase(self) -> None:
        """Start of a training run (``CSSTTrainer``, before ESPnet's resume restores a checkpoint): the
        phase's update count starts from 0, whatever the ``--init_param`` model's was."""
        if self.encoder_unfreeze is not None:
            self.encoder_unfreeze.reset()

    def set_epoch(self, epoch: int) -> None:
        """Start of training epoch ``epoch`` (1-based): speech side only while it is a warm-up epoch."""
        self.speech_only = epoch <= self.speech_warmup_epochs

    def on_update(self) -> None:
        """After each optimiser update (``CSSTTrainer``): the hooks' schedules (e.g. the transition's λ) advance."""
        for hook in self.aux_losses.values():
            hook.on_update()
        if self.encoder_unfreeze is not None:
            self.encoder_unfreeze.on_update()
        self.projector.on_update()  # the MoE projector's router-collapse check

    # ------------------------------------------------------------------ speech side
    def encode_frames(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Waveform (B, S) -> encoder output (B, T, D), lengths (B,); rows without speech (length 0) are
        not encoded: zero frames."""
        if self.encoder_unfreeze is not None:
            self.encoder.trainable_tail = self.encoder_unfreeze.tail()
        with_speech = speech_lengths > 0
        if bool(with_speech.all()):
            return self._encode_frames(speech, speech_lengths)
        batch = speech.size(0)
        rows = with_speech.nonzero().squeeze(1)
        if rows.numel() == 0:
            return speech.new_zeros(batch, 0, self.encoder.output_size()), speech_lengths.new_zeros(batch)
        lengths = speech_lengths[rows]
        enc, enc_lengths = self._encode_frames(speech[rows, : int(lengths.max())], lengths)
        out = enc.new_zeros(batch, *enc.shape[1:]).index_copy(0, rows.to(enc.device), enc)
        out_lengths = enc_lengths.new_zeros(batch).index_copy(0, rows.to(enc_lengths.device), enc_lengths)
        return out, out_lengths

    def _encode_frames(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feats, feats_lengths = speech, speech_lengths
        if self.frontend is not None:
            feats, feats_lengths = self.frontend(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        enc, enc_lengths = self.encoder(feats, feats_lengths)[:2]
        return enc, enc_lengths

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """Waveform (B, S) -> speech embeddings (B, T', H), lengths (B,), projector aux."""
        return self.projector(*self.encode_frames(speech, speech_lengths))

    def speech_side(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """Waveform (B, S) -> the projector's aux dict and the speech side: encoder output ``enc``
        (B, T, D), ``enc_lengths``, speech embeddings ``embeds`` (B, T', H), ``embed_lengths``."""
        enc, enc_lengths = self.encode_frames(speech, speech_lengths)
        embeds, embed_lengths, projector_aux = self.projector(enc, enc_lengths)
        return projector_aux, dict(enc=enc, enc_lengths=enc_lengths, embeds=embeds, embed_lengths=embed_lengths)

    def prefix_embeddings(
        self,
        prompt: torch.Tensor,
        prompt_lengths: torch.Tensor,
        speech_embeds: torch.Tensor,
        speech_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``[prompt][speech]`` embeddings (B, P, H) and attention mask (B, P); a prompt
        holding ``SPEECH_SLOT`` (a chat template's user turn) gets the speech there instead."""
        batch = prompt.size(0)
        prompt_embeds = self.llm.embed(prompt.clamp(min=0))  # (B, Lp, H)
        speech_embeds = speech_embeds.to(prompt_embeds.dtype)
        slot = prompt == SPEECH_SLOT  # (B, Lp)
        lengths = prompt_lengths - slot.sum(1) + speech_lengths
        width = int(lengths.max())
        out = prompt_embeds.new_zeros(batch, width, prompt_embeds.size(-1))
        mask = torch.zeros(batch, width, dtype=torch.long, device=prompt.device)
        for b in range(batch):
            n_prompt, n_speech = int(prompt_lengths[b]), int(speech_lengths[b])
            k = int(slot[b].nonzero()[0, 0]) if bool(slot[b].any()) else n_prompt
            start = width - int(lengths[b])
            out[b, start : start + k] = prompt_embeds[b, :k]
            out[b, start + k : start + k + n_speech] = speech_embeds[b, :n_speech]
            out[b, start + k + n_speech :] = prompt_embeds[b, k + 1 : n_prompt]
            mask[b, start:] = 1
        return out, mask

    def target_hidden(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        prompt: torch.Tensor,
        prompt_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """The LLM's last hidden states (B, L, H) at the positions that predict each token of ``text``
        (B, L), padded with ``ignore_id`` (``self.llm.head`` gives their logits); the projector's aux
        dict and the speech side (``speech_side``)."""
        projector_aux, speech_out = self.speech_side(speech, speech_lengths)
        prefix, prefix_mask = self.prefix_embeddings(
            prompt, prompt_lengths, speech_out["embeds"], speech_out["embed_lengths"]
        )
        target_mask = text != self.ignore_id  # (B, L)
        target_embeds = self.llm.embed(text.masked_fill(~target_mask, 0))
        inputs = torch.cat([prefix, target_embeds], dim=1)  # (B, P + L, H)
        mask = torch.cat([prefix_mask, target_mask.long()], dim=1)
        start = prefix.size(1)
        positions = torch.arange(start - 1, start + text.size(1) - 1, device=text.device)
        return self.llm.hidden(inputs, mask, positions), projector_aux, speech_out

    def target_logits(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        prompt: torch.Tensor,
        prompt_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """Float32 logits (B, L, V) of ``target_hidden``, the projector's aux dict and the speech side."""
        hidden, projector_aux, speech_out = self.target_hidden(speech, speech_lengths, text, prompt, prompt_lengths)
        return self.llm.head(hidden).float(), projector_aux, speech_out

    # ------------------------------------------------------------------ training
    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        prompt: torch.Tensor,
        prompt_lengths: torch.Tensor,
        lang: Optional[torch.Tensor] = None,
        lang_lengths: Optional[torch.Tensor] = None,
        task: Optional[torch.Tensor] = None,
        task_lengths: Optional[torch.Tensor] = None,
        phone_ali: Optional[torch.Tensor] = None,
        phone_ali_lengths: Optional[torch.Tensor] = None,
        lang_ali: Optional[torch.Tensor] = None,
        lang_ali_lengths: Optional[torch.Tensor] = None,
        src_text: Optional[torch.Tensor] = None,
        src_text_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        batch = speech.size(0)
        if self.training and self.speech_only:
            # speech-side warm-up epoch: no LLM, no CE; the auxiliary losses alone train
            projector_aux, speech_out = self.speech_side(speech, speech_lengths)
            stats: Dict[str, torch.Tensor] = {}
            llm_outputs = {}
            loss = 0.0
        else:
            text = text[:, : int(text_lengths.max())]
            target_mask = text != self.ignore_id  # (B, L)
            model_inputs = dict(
                speech=speech, speech_lengths=speech_lengths, text=text, prompt=prompt, prompt_lengths=prompt_lengths
            )
            hidden, projector_aux, speech_out = self.target_hidden(**model_inputs)  # (B, L, H)
            logits = self.llm.head(hidden).float()  # (B, L, V)

            token_ce = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), text, ignore_index=self.ignore_id, reduction="none"
            )  # (B, L)
            n_tokens = target_mask.sum()
            loss_ce = token_ce.sum() / n_tokens
            acc = ((logits.argmax(-1) == text) & target_mask).sum() / n_tokens
            stats = {"loss_ce": loss_ce.detach(), "acc": acc.detach(), "ppl": loss_ce.detach().exp()}
            llm_outputs = dict(
                ce_per_utt=token_ce.sum(1) / target_mask.sum(1).clamp(min=1),
                hidden=hidden,
                lm_head=self.llm.head,
                target_mask=target_mask,
                model_inputs=model_inputs,
            )
            plain = ~self._ce_in_aux_losses(None if lang is None else lang[:, 0], batch, text.device)  # (B,)
            loss = self.ce_weight * token_ce[plain].sum() / target_mask[plain].sum().clamp(min=1)

        if len(self.aux_losses) > 0:
            if lang_ali is not None:  # frame language labels: token labels of code-switched utterances
                projector_aux = self._with_frame_languages(
                    projector_aux, lang, lang_ali, lang_ali_lengths, speech_out
                )
            inputs_for_aux = AuxLossInputs(
                projector_aux=projector_aux,
                lang=None if lang is None else lang[:, 0],
                languages=self.languages,
                task=None if task is None else task[:, 0],
                **llm_outputs,
                encoder_out=speech_out["enc"],
                encoder_out_lens=speech_out["enc_lengths"],
                phone_ali=phone_ali,
                phone_ali_lens=phone_ali_lengths,
                speech_embeds=speech_out["embeds"],
                speech_embed_lens=speech_out["embed_lengths"],
                token_embeddings=self.llm.input_embeddings,
                src_text=src_text,
                src_text_lens=src_text_lengths,
            )
            loss = loss + self._aux_loss(inputs_for_aux, batch, stats)
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch), loss.device)
        return loss, stats, weight

    def _with_frame_languages(
        self,
        projector_aux: Dict[str, torch.Tensor],
        lang: Optional[torch.Tensor],
        lang_ali: torch.Tensor,
        lang_ali_lengths: torch.Tensor,
        speech_out: Dict[str, torch.Tensor],
    ) -> Dict[str, torch.Tensor]:
        """The projector's aux with the language of each speech token: ``token_lang`` (N,) (indices into
        ``languages``, -1 unlabelled) and ``token_frame_labelled`` (N,) bool, True where it comes from
        ``lang_ali`` (B, F) (a language index per 10 ms frame, -1 unlabelled).

        A token of a monolingual utterance (label neither ``cs`` nor unknown) keeps its utterance's
        label; one of a code-switched utterance takes the language of its frames, resampled to the
        encoder frames (``frame_targets``) and then to tokens (``token_lang_from_frames``: -1 where a
        token's frames mix languages or have none). Projectors without language groups: unchanged."""
        if not hasattr(self.projector, "token_lang_from_frames"):
            return projector_aux
        enc, enc_lengths = speech_out["enc"], speech_out["enc_lengths"]
        frame_lang = frame_targets(lang_ali.long(), lang_ali_lengths, enc_lengths, enc.size(1))  # (B, T)
        token_lang = self.projector.token_lang_from_frames(frame_lang, projector_aux)  # (N,)
        if lang is None:
            use_frames = torch.ones_like(token_lang, dtype=torch.bool)
        else:
            utt_lang = lang[:, 0].to(token_lang.device).long()[projector_aux["token_utt"]]  # (N,)
            use_frames = utt_lang < 0
            if CODE_SWITCH in self.languages:
                use_frames |= utt_lang == self.languages.index(CODE_SWITCH)
            token_lang = torch.where(use_frames, token_lang, utt_lang)
        return dict(projector_aux, token_lang=token_lang, token_frame_labelled=use_frames & (token_lang >= 0))

    def _ce_in_aux_losses(self, lang: Optional[torch.Tensor], batch: int, device: torch.device) -> torch.Tensor:
        """(B,) True for the utterances whose CE a hook's loss contains; the plain CE leaves them out."""
        covered = torch.zeros(batch, dtype=torch.bool, device=device)
        for hook in self.aux_losses.values():
            rows = hook.ce_utterances(lang, batch)
            if rows is not None:
                covered |= rows
        return covered

    def _aux_loss(self, inputs: AuxLossInputs, batch: int, stats: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the auxiliary losses; their values and stats go into ``stats``.

        A hook with ``reduces_across_ranks = True`` computes one global value from statistics
        all-reduced over data-parallel ranks, with gradients only through its local part.
        ESPnet scales each rank's loss by local/global batch size, which suits per-rank means;
        such a hook's gradient is scaled back by global/local so the total gradient equals
        that of one process on the global batch.
        """
        total = 0.0
        grad_scale = _global_over_local(batch)
        for name, hook in self.aux_losses.items():
            value, hook_stats = hook(inputs)
            stats[f"loss_{name}"] = value.detach()
            stats.update({k: v.detach() if torch.is_tensor(v) else v for k, v in hook_stats.items()})
            if getattr(hook, "reduces_across_ranks", False) and grad_scale != 1.0:
                value = scale_gradient(value, grad_scale)
            total = total + self.aux_loss_weights.get(name, 1.0) * value
        return total

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}


def _global_over_local(batch: int) -> float:
    """Global batch size over this rank's (1.0 without data parallelism)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1.0
    if torch.distributed.get_world_size() == 1:
        return 1.0
    device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    size = torch.tensor([float(batch)], device=device)
    torch.distributed.all_reduce(size)
    return float(size.item()) / batch
