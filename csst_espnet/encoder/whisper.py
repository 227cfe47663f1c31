"""The encoder of a Hugging Face Whisper model, as an ESPnet encoder.

(B, T, n_mels) log-mel -> (B, ceil(T/2), d_model). Loaded from a pretrained Whisper
(``model_name_or_path``) or built from a config dict (small from-scratch or test setups).
Frozen by default, optional LoRA on its attention. With ``pad_to_30s: false`` an utterance
is encoded at its own length (positions 0..T'-1, padding masked out in attention) instead of
Whisper's fixed 30 s window, so short utterances do not pay for 30 s of compute. With
``attention_window`` the attention is computed on the band of blocks around each frame
(``encoder/local_attention.py``) rather than as full attention under a T × T mask.
"""

from typing import Dict, Optional, Tuple

import torch

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask

from csst_espnet.encoder.local_attention import LOCAL_WINDOW, worth_banding
from csst_espnet.llm.hf_causal_lm import DTYPES, KeepFrozenDtype, lora_config
from csst_espnet.utils.base_model import RecordsBaseModel, identity


class HFWhisperEncoder(RecordsBaseModel, KeepFrozenDtype, AbsEncoder):
    """Args:
    input_size: frontend feature size; must equal the model's ``num_mel_bins``.
    model_name_or_path: pretrained Whisper (any size) to take the encoder from.
    config: a ``WhisperConfig`` dict, used when no pretrained model is given.
    freeze: freeze the encoder weights (LoRA adapters still train).
    lora: peft LoRA options, e.g. ``{r: 8, target_modules: [q_proj, v_proj]}``.
    pad_to_30s: pad every batch to Whisper's 3000 frames, as Whisper was trained.
    num_trainable_layers: with ``freeze``, unfreeze the last N layers (for the whole run; PART's progressive
        unfreezing within a phase is the phase config's ``encoder_unfreeze``, ``models/unfreeze.py``).
    attention_window: if > 0, a frame attends only to frames at most this many positions away
        (20 ms each), so what it encodes depends on its neighbourhood, not on the whole utterance.
    dtype: storage dtype of the frozen weights (float32, bfloat16, float16); what trains (unfrozen
        layers, LoRA) stays float32, and the output is float32.
    """

    base_kind = "speech encoder"

    def __init__(
        self,
        input_size: int,
        model_name_or_path: Optional[str] = None,
        config: Optional[Dict] = None,
        freeze: bool = True,
        lora: Optional[Dict] = None,
        pad_to_30s: bool = False,
        num_trainable_layers: int = 0,
        gradient_checkpointing: bool = False,
        attention_window: int = 0,
        dtype: str = "float32",
    ):
        super().__init__()
        from transformers import WhisperConfig, WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        if (model_name_or_path is None) == (config is None):
            raise ValueError("give exactly one of encoder_conf.model_name_or_path and encoder_conf.config")
        if model_name_or_path is not None:
            whisper = WhisperModel.from_pretrained(model_name_or_path)
            self.base_identity = identity(model_name_or_path, whisper.config)
            encoder = whisper.get_encoder()
        else:
            # the decoder's token ids are unused; WhisperConfig's defaults (50256...) would only make
            # transformers warn that they are outside a small config's vocabulary
            unused_ids = dict(pad_token_id=None, bos_token_id=None, eos_token_id=None, decoder_start_token_id=0)
            encoder = WhisperEncoder(WhisperConfig(**{**unused_ids, **config}))
        if encoder.config.num_mel_bins != input_size:
            raise ValueError(
                f"frontend gives {input_size} mel bins but the Whisper encoder expects "
                f"{encoder.config.num_mel_bins}: set frontend_conf.n_mels"
            )
        if freeze:
            encoder.requires_grad_(False)
            for layer in encoder.layers[len(encoder.layers) - num_trainable_layers :] if num_trainable_layers else []:
                layer.requires_grad_(True)
        if gradient_checkpointing:
            encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora is not None:
            from peft import inject_adapter_in_model

            encoder = inject_adapter_in_model(lora_config(lora), encoder)
        if dtype not in DTYPES:
            raise ValueError(f"encoder_conf.dtype must be one of {list(DTYPES)}, got '{dtype}'")
        self.storage_dtype = DTYPES[dtype]
        for p in encoder.parameters():
            p.data = p.data.to(torch.float32 if p.requires_grad else self.storage_dtype)
        self.encoder = encoder
        self.pad_to_30s = pad_to_30s
        if attention_window < 0:
            raise ValueError(f"encoder_conf.attention_window must be >= 0, got {attention_window}")
        self.attention_window = attention_window
        # False: the window as a T × T additive mask on full attention (the reference the banded path is tested against)
        self.banded = True
        if attention_window:
            encoder.config._attn_implementation = LOCAL_WINDOW  # SDPA unless a call passes local_window
        # Weights from a pretrained model come back from model_name_or_path; a from-config
        # encoder has random weights that must be saved.
        self.restores_frozen_from_pretrained = model_name_or_path is not None
        self.has_lora = lora is not None
        # Layers that run with autograd (progressive unfreezing, models/unfreeze.py): None, all of them;
        # k, the last k layers and the final norm (the rest run without autograd: no gradient reaches them).
        self.trainable_tail: Optional[int] = None

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    def unfreezable(self, tail: Optional[int]) -> None:
        """Make what progressive unfreezing trains at most require grad, in float32: the last ``tail``
        layers and the final norm, or (None) the whole encoder but Whisper's fixed positional table."""
        enc = self.encoder
        modules = [enc] if tail is None else [*enc.layers[len(enc.layers) - tail :], enc.layer_norm]
        for module in modules:
            for name, p in module.named_parameters():
                if module is enc and name.startswith("embed_positions."):
                    continue
                p.requires_grad_(True)
                p.data = p.data.to(torch.float32)

    def output_size(self) -> int:
        return self.encoder.config.d_model

    def forward(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        enc = self.encoder
        max_frames = enc.config.max_source_positions * 2
        if xs_pad.size(1) > max_frames:
            raise ValueError(f"input of {xs_pad.size(1)} frames exceeds Whisper's {max_frames} (30 s)")
        frames = max_frames if self.pad_to_30s else xs_pad.size(1)
        feats = torch.nn.functional.pad(xs_pad, (0, 0, 0, frames - xs_pad.size(1))).transpose(1, 2)
        feats = feats.to(enc.conv1.weight.dtype)  # (B, n_mels, T)

        tail = self.trainable_tail
        held = len(enc.layers) if tail is None else len(enc.layers) - tail  # layers before the trainable tail
        banded = self.banded and worth_banding((frames + 1) // 2, self.attention_window)
        with torch.set_grad_enabled(torch.is_grad_enabled() and tail is None):  # the stem trains with 'all' only
            hidden, olens, hidden_keys = self._stem(feats, ilens, banded)
        # banded: the window (and the utterance of each frame) go to the attention (local_attention.py), no
        # mask; the valid frames of the batch are packed into one row, so that no layer computes padding
        local, valid = {}, None
        if banded:
            local = dict(local_window=self.attention_window)
            if not self.pad_to_30s:
                valid = ~make_pad_mask(olens, maxlen=hidden.size(1)).to(hidden.device)  # (B, T')
                local["segments"] = torch.arange(len(olens), device=hidden.device).repeat_interleave(
                    olens.to(hidden.device))[None]  # (1, N)
                padded_shape, hidden = hidden.shape, hidden[valid][None]  # (1, N, d_model)
        masks = {}  # per dtype: layers may differ (frozen ones in ``dtype``, trained ones in float32)
        for i, layer in enumerate(enc.layers):
            with torch.set_grad_enabled(torch.is_grad_enabled() and (tail is None or i >= held)):
                dtype = layer.fc1.weight.dtype
                if hidden_keys is not None and dtype not in masks:
                    masks[dtype] = torch.zeros(hidden_keys.shape, dtype=dtype, device=hidden.device).masked_fill(
                        hidden_keys, torch.finfo(dtype).min)
                hidden = layer(hidden.to(dtype), masks.get(dtype), **local)
        with torch.set_grad_enabled(torch.is_grad_enabled() and tail != 0):
            hidden = enc.layer_norm(hidden.to(enc.layer_norm.weight.dtype))
        if valid is not None:  # unpack: padding frames are zeros
            hidden = hidden.new_zeros(padded_shape[:2] + hidden.shape[2:]).masked_scatter(valid[..., None], hidden[0])
        return hidden[:, : int(olens.max())].float(), olens, None

    def _stem(
        self, feats: torch.Tensor, ilens: torch.Tensor, banded: bool = False
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Log-mel (B, n_mels, T) -> input of the first layer (B, T', d_model), its lengths, and the
        attention's hidden keys (B or 1, 1, T' or 1, T') (None: every key visible, or ``banded``: the
        attention hides them itself)."""
        enc = self.encoder
        hidden = torch.nn.functional.gelu(enc.conv1(feats))  # (B, d_model, T)
        # Zero conv1 outputs past each length so conv2 sees what it sees for the utterance alone.
        in_pad = make_pad_mask(ilens, maxlen=hidden.size(2)).to(hidden.device)
        hidden = hidden.masked_fill(in_pad[:, None, :], 0.0)
        hidden = torch.nn.functional.gelu(enc.conv2(hidden)).transpose(1, 2)  # (B, T', d_model)
        hidden = hidden + enc.embed_positions.weight[: hidden.size(1)]
        hidden = torch.nn.functional.dropout(hidden, p=enc.dropout, training=self.training)
        olens = torch.div(ilens - 1, 2, rounding_mode="floor") + 1

        # Additive mask: padding frames are hidden from every query, and with attention_window so is
        # every frame too far from the query. Hidden keys get finfo.min, not -inf, so a query that sees
        # none (a padding frame) gets a uniform average rather than NaN.
        hidden_keys = None
        if banded:
            return hidden, olens, None
        if not self.pad_to_30s:
            hidden_keys = make_pad_mask(olens, maxlen=hidden.size(1)).to(hidden.device)[:, None, None, :]  # (B, 1, 1, T')
        if self.attention_window:
            pos = torch.arange(hidden.size(1), device=hidden.device)
            far = ((pos[:, None] - pos[None, :]).abs() > self.attention_window)[None, None]  # (1, 1, T', T')
            hidden_keys = far if hidden_keys is None else hidden_keys | far
        return hidden, olens, hidden_keys
