"""A Hugging Face causal LM as the decoder of the speech translation model.

Loaded with ``AutoModelForCausalLM`` from a local path or hub name, frozen, optionally with
LoRA adapters (peft) and gradient checkpointing. Frozen weights are not written into
checkpoints (see ``csst_espnet.models.frozen_state``): they are reloaded from
``model_name_or_path`` when the model is rebuilt.
"""

from typing import Dict, Optional

import torch

from csst_espnet.utils.base_model import RecordsBaseModel, identity

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def lora_config(conf: Dict, task_type: Optional[str] = None):
    """peft ``LoraConfig`` from a YAML dict (r, alpha, dropout, target_modules, ...)."""
    from peft import LoraConfig

    conf = dict(conf)
    return LoraConfig(
        r=conf.pop("r", 8),
        lora_alpha=conf.pop("alpha", 16),
        lora_dropout=conf.pop("dropout", 0.0),
        target_modules=conf.pop("target_modules", ["q_proj", "v_proj"]),
        task_type=task_type,
        **conf,
    )


class KeepFrozenDtype:
    """Mixin: ``.to(dtype)`` leaves tensors stored in ``storage_dtype`` (the frozen backbone) as they are.

    ESPnet casts the whole model to ``--train_dtype`` (float32) after building it; a backbone
    kept in bfloat16 would otherwise double its memory. Floating tensors in ``storage_dtype``
    keep that dtype; device moves still apply.
    """

    storage_dtype: Optional[torch.dtype] = None

    def _apply(self, fn, recurse=True):
        keep = self.storage_dtype
        if keep is None or keep == torch.float32:
            return super()._apply(fn, recurse)

        def apply_keeping_dtype(t):
            out = fn(t)
            if t.dtype == keep and out.is_floating_point() and out.dtype != keep:
                out = out.to(keep)
            return out

        return super()._apply(apply_keeping_dtype, recurse)


class HFCausalLM(RecordsBaseModel, KeepFrozenDtype, torch.nn.Module):
    """Causal LM wrapper: token embedding and forward on embeddings (decoding runs
    :func:`csst_espnet.inference.generate.generate` on ``.model``).

    Args:
        model_name_or_path: local directory or hub name of the pretrained LM; its identity is recorded
            in checkpoints and checked on loading (``utils/base_model.py``).
        config: a Hugging Face config dict (with ``model_type``) to build the LM from, randomly
            initialised, instead of a pretrained one (memory plans and the GPU check: exact shapes,
            nothing downloaded); its weights are then saved in checkpoints.
        dtype: storage dtype of the (frozen) weights: float32, bfloat16 or float16.
        freeze: freeze all pretrained weights (LoRA adapters still train).
        lora: peft LoRA options (``r``, ``alpha``, ``dropout``, ``target_modules``); None = no LoRA.
        gradient_checkpointing: recompute activations in backward to save memory.
        attn_implementation: ``sdpa``, ``eager`` or ``flash_attention_2``.
    """

    base_kind = "LLM"

    def __init__(
        self,
        model_name_or_path: Optional[str] = None,
        config: Optional[Dict] = None,
        dtype: str = "float32",
        freeze: bool = True,
        lora: Optional[Dict] = None,
        gradient_checkpointing: bool = False,
        attn_implementation: str = "sdpa",
        trust_remote_code: bool = False,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM

        if dtype not in DTYPES:
            raise ValueError(f"llm dtype must be one of {list(DTYPES)}, got '{dtype}'")
        if (model_name_or_path is None) == (config is None):
            raise ValueError("give exactly one of llm_conf.model_name_or_path and llm_conf.config")
        self.model_name_or_path = model_name_or_path
        self.storage_dtype = DTYPES[dtype]
        if model_name_or_path is not None:
            model = AutoModelForCausalLM.from_pretrained(
                model_name_or_path,
                dtype=self.storage_dtype,
                attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code,
            )
            self.base_identity = identity(model_name_or_path, model.config)
        else:
            config = dict(config)
            hf_config = AutoConfig.for_model(config.pop("model_type"), **config)
            model = AutoModelForCausalLM.from_config(
                hf_config, dtype=self.storage_dtype, attn_implementation=attn_implementation
            )
        if freeze:
            model.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            # Inputs are embeddings built outside the LM, so they always require grad
            # when anything upstream trains; no enable_input_require_grads() is needed.
        if lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(lora, task_type="CAUSAL_LM"))
        self.model = model
        self.has_lora = lora is not None
        # Weights that come back from model_name_or_path need not be saved; random ones must.
        self.restores_frozen_from_pretrained = model_name_or_path is not None

    def merge_lora(self) -> bool:
        """For decoding only: fold the LoRA adapters into float32 weights (``peft``'s ``merge_and_unload``),
        so that each adapted projection is one matmul instead of three and peft's per-call Python is
        gone; logits equal the adapters' to float rounding (``tests/test_generate.py``). The module
        cannot train or save its adapters afterwards. Weights stored in a lower precision keep their
        adapters (rounding the merged weights would change the outputs). Returns whether it merged."""
        if not self.has_lora or self.storage_dtype != torch.float32:
            return False
        self.model = self.model.merge_and_unload()
        self.has_lora = False
        return True

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        """Size of the output vocabulary (last dimension of the logits)."""
        return self.model.get_output_embeddings().weight.size(0)

    @property
    def embedding_dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    @property
    def input_embeddings(self) -> torch.Tensor:
        """The input embedding matrix (V, hidden_size)."""
        return self.model.get_input_embeddings().weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (...,) -> embeddings (..., hidden_size)."""
        return self.model.get_input_embeddings()(ids)

    def hidden(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Last hidden states (B, P, H) (after the final norm) at ``positions`` (P,) of inputs (B, T, H),
        or at all T positions; ``head`` turns them into logits."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.model.get_decoder()(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        )
        hidden = out.last_hidden_state
        return hidden if positions is None else hidden[:, positions]

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> logits (..., V), in the weights' dtype."""
        return self.model.get_output_embeddings()(hidden)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_positions: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Logits (B, P, V) at ``logits_positions`` (P,) of inputs (B, T, H), or at all T positions."""
        return self.head(self.hidden(inputs_embeds, attention_mask, logits_positions))
