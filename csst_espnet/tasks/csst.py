"""The ESPnet task of csst-espnet: registries, data names, preprocessing and model building.

Every component is chosen by config (``--encoder whisper --encoder_conf ...``) from this
module's own ``ClassChoices``; ESPnet's registries are not touched. ``--config`` files may name
the recipe's model definition (``model_config``, see ``csst_espnet.utils.config``).
See docs/architecture.md.
"""

import argparse
import logging
import os
from functools import partial
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np
import torch
import yaml
from typeguard import typechecked

from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.layers.utterance_mvn import UtteranceMVN
from espnet2.tasks.abs_task import AbsTask, IteratorOptions
from espnet2.train.dataset import ESPnetDataset
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.class_choices import ClassChoices
from espnet2.train.trainer import Trainer
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import int_or_none, str2bool, str_or_none

from csst_espnet.data.collate import MissingAsEmpty, PadCollate
from csst_espnet.data.kaldi_dir import read_table
from csst_espnet.data.mixture import MixtureSampler, mixture_labels
from csst_espnet.encoder.whisper import HFWhisperEncoder
from csst_espnet.frontend.whisper import WhisperLogMel
from csst_espnet.llm import text_lm
from csst_espnet.llm.hf_causal_lm import HFCausalLM
from csst_espnet.losses.registry import build_aux_losses
from csst_espnet.models.espnet_model import ESPnetCSSTModel
from csst_espnet.models.frozen_state import copy_sharing_frozen, is_adapter
from csst_espnet.models.unfreeze import EncoderUnfreeze, parse_schedule
from csst_espnet.projector.abs_projector import AbsProjector
from csst_espnet.projector.linear import MLPProjector
from csst_espnet.projector.moe import MoESpeechProjector
from csst_espnet.text.preprocessor import build_preprocessor
from csst_espnet.text.prompt import TEXT_TASKS
from csst_espnet.text.tokenizer import check_llm_tokenizer
from csst_espnet.train.checkpoint import weights_only_loads
from csst_espnet.train.trainer import CSSTTrainer, bound_cpu_kernel_cache
from csst_espnet.utils.config import ComposedConfigParser

DEFAULT_LANGUAGES = ["zh", "en", "es", "cs"]

frontend_choices = ClassChoices(
    name="frontend",
    classes=dict(whisper=WhisperLogMel, default=DefaultFrontend),
    type_check=AbsFrontend,
    default="whisper",
    optional=True,
)
specaug_choices = ClassChoices(
    name="specaug",
    classes=dict(specaug=SpecAug),
    type_check=AbsSpecAug,
    default=None,
    optional=True,
)
normalize_choices = ClassChoices(
    name="normalize",
    classes=dict(utterance_mvn=UtteranceMVN, global_mvn=GlobalMVN),
    type_check=AbsNormalize,
    default=None,
    optional=True,
)
encoder_choices = ClassChoices(
    name="encoder",
    classes=dict(whisper=HFWhisperEncoder, conformer=ConformerEncoder, e_branchformer=EBranchformerEncoder),
    type_check=AbsEncoder,
    default="whisper",
)
projector_choices = ClassChoices(
    name="projector",
    classes=dict(mlp=MLPProjector, moe=MoESpeechProjector),
    type_check=AbsProjector,
    default="mlp",
)
llm_choices = ClassChoices(
    name="llm",
    classes=dict(hf_causal_lm=HFCausalLM),
    type_check=torch.nn.Module,
    default="hf_causal_lm",
)


def yaml_value(value: str):
    """Parse a command-line value as YAML (lists and dicts of options)."""
    return yaml.safe_load(value) if isinstance(value, str) else value


class CSSTTask(AbsTask):
    num_optimizers: int = 1
    class_choices_list = [
        frontend_choices,
        specaug_choices,
        normalize_choices,
        encoder_choices,
        projector_choices,
        llm_choices,
    ]
    trainer = CSSTTrainer

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        """ESPnet's worker, every ``torch.load`` of it taking weights only (``train/checkpoint.py``), oneDNN's
        kernel cache bounded (``train/trainer.py``);
        with ``--use_deepspeed true`` ESPnet's DeepSpeed trainer runs instead of
        ``CSSTTrainer`` (ESPnet accepts DeepSpeed only in place of its own ``Trainer``), so a config that
        needs ``CSSTTrainer``'s calls (``deepspeed_problems``) is refused first."""
        bound_cpu_kernel_cache()
        with weights_only_loads():  # ESPnet's resume, init_param and averaging load weights only
            return cls._main_worker(args)

    @classmethod
    def _main_worker(cls, args: argparse.Namespace):
        if not getattr(args, "use_deepspeed", False):
            return super().main_worker(args)
        problems = deepspeed_problems(args)
        if problems:
            raise ValueError("--use_deepspeed true: ESPnet's DeepSpeed trainer " + "; ".join(problems)
                             + ". Train this phase with DDP (--use_deepspeed false)")
        cls.trainer = Trainer
        try:
            return super().main_worker(args)
        finally:
            cls.trainer = CSSTTrainer

    @classmethod
    def get_parser(cls) -> ComposedConfigParser:
        parser = super().get_parser()
        # ESPnet's parser, reading --config through load_config (model_config composition)
        parser.__class__ = ComposedConfigParser
        return parser

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--input_size", type=int_or_none, default=None, help="Feature size when --frontend none"
        )
        group.add_argument(
            "--languages",
            type=yaml_value,
            default=DEFAULT_LANGUAGES,
            help="Language codes; utt2lang labels must be among them ('cs' = code-switched)",
        )
        group.add_argument(
            "--aux_losses",
            type=yaml_value,
            default=[],
            help="Auxiliary losses, e.g. '[{name: lang, weight: 0.1}, {name: balance, weight: 0.01}]'",
        )
        group.add_argument(
            "--teacher_config",
            type=str_or_none,
            default=None,
            help="config.yaml of the previous phase's model, the teacher of losses that need one "
            "(transition, mode distill); csst.sh passes it",
        )
        group.add_argument(
            "--teacher_model",
            type=str_or_none,
            default=None,
            help="Model file of the previous phase's model (see --teacher_config)",
        )
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=dict(ce_weight=1.0, ignore_id=-1, extract_feats_in_collect_stats=False),
            help="Model options: ce_weight, speech_warmup_epochs, ignore_id, extract_feats_in_collect_stats",
        )

        group.add_argument(
            "--nonfinite",
            type=str,
            default="skip",
            choices=["skip", "stop"],
            help="A batch with a non-finite loss or gradient: skip its update (logged with its utterance ids "
            "and counted) or stop the run",
        )

        group = parser.add_argument_group(description="Phase related (docs/architecture.md §3)")
        group.add_argument(
            "--encoder_unfreeze",
            type=yaml_value,
            default=[],
            help="Progressive unfreezing of a frozen Whisper encoder within this phase, counted in optimiser "
            "updates, e.g. '[{step: 0, layers: last 8}, {step: 2000, layers: all}]'; empty: the encoder trains "
            "as encoder_conf says",
        )
        group.add_argument(
            "--train_llm_lora",
            type=str2bool,
            default=True,
            help="Train the LLM's LoRA adapters (llm_conf.lora) in this phase; false: they stay as loaded "
            "(zero-initialised adapters: the LLM as without LoRA)",
        )
        group.add_argument(
            "--data_mixture",
            type=yaml_value,
            default={},
            help="Training batches drawn by task shares and temperature language sampling "
            "(csst_espnet/data/mixture.py), e.g. '{tasks: {asr: 0.7, st: 0.3}, temperature: 5}': batch_size "
            "utterances a batch; empty: ESPnet's batch sampler (batch_type)",
        )

        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument("--use_preprocessor", type=str2bool, default=True, help="Apply preprocessing")
        group.add_argument(
            "--tokenizer",
            type=str_or_none,
            default=None,
            help="Tokenizer path or name (default: llm_conf.model_name_or_path)",
        )
        group.add_argument(
            "--prompt_conf",
            action=NestedDictAction,
            default=dict(target_language="en"),
            help="Prompt template options (target_language, instructions, use_chat_template, system)",
        )
        group.add_argument(
            "--preprocessor_conf",
            action=NestedDictAction,
            default=dict(default_task="st", default_lang="cs"),
            help="Task and language of utterances whose data lack utt2task / utt2lang",
        )
        group.add_argument(
            "--augment_conf",
            action=NestedDictAction,
            default=dict(),
            help="On-the-fly augmentation of the training speech (csst_espnet.data.augment.Augmenter "
            "options: prob, noise_prob, snr, babble_share, telephone_prob, reverb_prob, rt60, ...); "
            "empty: none. Never applied to validation data.",
        )

        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    @typechecked
    def build_collate_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Callable[[Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]]:
        return PadCollate(float_pad_value=0.0, int_pad_value=-1, optional={"speech": np.float32})

    @classmethod
    def build_dataset(
        cls, args: argparse.Namespace, iter_options: IteratorOptions, keys_to_load=None
    ) -> ESPnetDataset:
        """ESPnet's dataset, where an utterance missing from ``wav.scp`` reads as no speech (a text
        translation example; the preprocessor refuses it for other tasks)."""
        dataset = super().build_dataset(args, iter_options, keys_to_load)
        if isinstance(dataset, ESPnetDataset) and dataset.has_name("speech"):
            dataset.loader_dict["speech"] = MissingAsEmpty(dataset.loader_dict["speech"])
        return dataset

    @classmethod
    def build_iter_factory(
        cls, args: argparse.Namespace, distributed_option: DistributedOption, mode: str, kwargs: Optional[dict] = None
    ) -> AbsIterFactory:
        """ESPnet's iterators, except training batches under ``--data_mixture`` (``build_mixture_iter_factory``)."""
        if mode != "train" or not getattr(args, "data_mixture", None):
            if mode == "train":
                cls._refuse_text_only_utterances(args)
            return super().build_iter_factory(args, distributed_option, mode, kwargs)
        iter_options = cls.build_iter_options(args, distributed_option, mode)
        for key, value in (kwargs or {}).items():
            setattr(iter_options, key, value)
        return cls.build_mixture_iter_factory(args, iter_options)

    @classmethod
    def _refuse_text_only_utterances(cls, args: argparse.Namespace) -> None:
        """Text-only training utterances (no speech) are drawn by a data mixture only: ESPnet's samplers
        batch by the speech shapes and would leave them out without a word."""
        for path, name, _ in args.train_data_path_and_name_and_type:
            if name != "task":
                continue
            text_only = [utt for utt, task in read_table(path).items() if task in TEXT_TASKS]
            if text_only:
                raise ValueError(f"{path}: {len(text_only)} text-only training utterances (e.g. {text_only[0]}: "
                                 f"task {TEXT_TASKS}) are drawn only by a data_mixture; set data_mixture in the "
                                 "config (tasks: {..., mt: share}) or leave them out of this training data")

    @classmethod
    def build_mixture_iter_factory(cls, args: argparse.Namespace, iter_options: IteratorOptions) -> AbsIterFactory:
        """Batches of ``batch_size`` utterances drawn as ``--data_mixture`` says (``data/mixture.py``), from
        every utterance of the ``text`` file, labelled by the ``task`` and ``lang`` files (defaults:
        ``--preprocessor_conf``). ESPnet's ``SequenceIterFactory`` serves them (rounds seeded by
        ``--seed``, cut into epochs of ``--num_iters_per_epoch``)."""
        files = {name: path for path, name, _ in iter_options.data_path_and_name_and_type}
        tables = {name: read_table(files[name]) if name in files else None for name in ("text", "task", "lang")}
        conf = args.preprocessor_conf or {}
        labels = mixture_labels(list(tables["text"]), tables["task"], tables["lang"],
                                conf.get("default_task", "st"), conf.get("default_lang", "cs"))
        rank, world_size = 0, 1
        if iter_options.distributed:
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        sampler = MixtureSampler(labels, args.data_mixture, iter_options.batch_size, rank=rank, world_size=world_size)
        text_only = [task for task in sampler.task_probs if task in TEXT_TASKS]
        if text_only and iter_options.distributed and not args.unused_parameters:
            raise ValueError(f"data_mixture draws text-only examples ({text_only}) under data-parallel training: a "
                             "batch without speech leaves the speech side without gradient; set --unused_parameters true")
        logging.info(f"[train] data mixture: {sampler}")
        return SequenceIterFactory(
            dataset=cls.build_dataset(args, iter_options, set(labels)),
            batches=sampler,
            seed=args.seed,
            num_iters_per_epoch=iter_options.num_iters_per_epoch,
            shuffle=True,
            num_workers=args.num_workers,
            collate_fn=iter_options.collate_fn,
            pin_memory=args.ngpu > 0,
        )

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        if not args.use_preprocessor:
            return None
        return cls._preprocessor(args, augment=train)

    @classmethod
    def _preprocessor(cls, args: argparse.Namespace, augment: bool = False):
        tokenizer = args.tokenizer or args.llm_conf.get("model_name_or_path")
        if tokenizer is None:
            raise ValueError("set --tokenizer or llm_conf.model_name_or_path")
        augment_conf = getattr(args, "augment_conf", None) if augment else None
        return build_preprocessor(tokenizer, args.languages, args.prompt_conf, augment_conf=augment_conf,
                                  trust_remote_code=bool(args.llm_conf.get("trust_remote_code", False)),
                                  **args.preprocessor_conf)

    @classmethod
    def check_text_lm_prompts(cls, args: argparse.Namespace) -> None:
        """An LLM trained by ``bin/train_text_lm`` (llm_conf.model_name_or_path holds ``train_text_lm.json``)
        learnt one prompt per task and language: refuse a model whose preprocessor renders others
        (``text_lm.check_prompts``). ``build_model`` checks, so training, a distill teacher and loading a
        trained model (decoding, export: its LLM is re-read from that directory) all do."""
        llm_dir = (args.llm_conf or {}).get("model_name_or_path")
        if llm_dir and text_lm.is_text_lm(llm_dir):
            template = cls._preprocessor(args).template
            text_lm.check_prompts(llm_dir, template, args.prompt_conf, args.languages)

    @classmethod
    def check_tokenizer(cls, args: argparse.Namespace) -> None:
        """A ``--tokenizer`` other than the LLM's (``llm_conf.model_name_or_path``) must be the LLM's own:
        same vocabulary and special tokens (``text.tokenizer.check_llm_tokenizer``); ``build_model``
        checks, so training refuses before it starts."""
        llm = (args.llm_conf or {}).get("model_name_or_path")
        tokenizer = getattr(args, "tokenizer", None)
        if llm and tokenizer and os.path.abspath(tokenizer) != os.path.abspath(llm):
            check_llm_tokenizer(tokenizer, llm, bool(args.llm_conf.get("trust_remote_code", False)))

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",) if inference else ("speech", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("lang", "task", "src_text", "phone_ali", "lang_ali")

    @classmethod
    @typechecked
    def build_model(
        cls, args: argparse.Namespace, backbone: Optional[Dict[str, torch.nn.Module]] = None
    ) -> ESPnetCSSTModel:
        """The model of ``args``; ``backbone``: an ``encoder`` and an ``llm`` already built for these
        args, used instead of building (and loading) them (a teacher sharing the student's, ``load_teacher``)."""
        cls.check_tokenizer(args)
        cls.check_text_lm_prompts(args)
        if args.frontend is not None:
            frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
            input_size = frontend.output_size()
        else:
            frontend, input_size = None, args.input_size
            if input_size is None:
                raise ValueError("--input_size is required with --frontend none")
        specaug = None
        if getattr(args, "specaug", None) is not None:
            specaug = specaug_choices.get_class(args.specaug)(**args.specaug_conf)
        normalize = None
        if args.normalize is not None:
            normalize = normalize_choices.get_class(args.normalize)(**args.normalize_conf)
        if backbone is None:
            backbone = cls.build_backbone(args, input_size)
        encoder, llm = backbone["encoder"], backbone["llm"]
        projector = projector_choices.get_class(args.projector)(
            input_size=encoder.output_size(), output_size=llm.hidden_size, **args.projector_conf
        )
        encoder_unfreeze = cls.build_encoder_unfreeze(args, encoder)
        if not getattr(args, "train_llm_lora", True):
            for name, p in llm.named_parameters():
                if is_adapter(name):
                    p.requires_grad_(False)
        aux_losses, aux_weights = build_aux_losses(
            args.aux_losses,
            projector,
            args.languages,
            encoder_output_size=encoder.output_size(),
            llm_hidden_size=llm.hidden_size,
            load_teacher=partial(cls.load_teacher, args, dict(encoder=encoder, llm=llm)),
        )
        if getattr(args, "teacher_config", None) and all(getattr(h, "teacher", None) is None for h in aux_losses.values()):
            logging.info("--teacher_config %s: no loss of this config uses a teacher; not loaded", args.teacher_config)
        return ESPnetCSSTModel(
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            encoder=encoder,
            projector=projector,
            llm=llm,
            languages=args.languages,
            aux_losses=aux_losses,
            aux_loss_weights=aux_weights,
            encoder_unfreeze=encoder_unfreeze,
            **args.model_conf,
        )

    @classmethod
    def build_encoder_unfreeze(cls, args: argparse.Namespace, encoder: torch.nn.Module) -> Optional[EncoderUnfreeze]:
        """The schedule of ``--encoder_unfreeze`` (None when empty); what it ever unfreezes requires grad
        from now on (``models/unfreeze.py``). Errors name the key."""
        spec = getattr(args, "encoder_unfreeze", None) or []
        if not spec:
            return None
        if not hasattr(encoder, "unfreezable"):
            raise ValueError(f"encoder_unfreeze: the encoder '{args.encoder}' has no layer-wise unfreezing "
                             "(encoder: whisper has)")
        if not (args.encoder_conf or {}).get("freeze", True) or (args.encoder_conf or {}).get("num_trainable_layers"):
            raise ValueError("encoder_unfreeze needs a frozen encoder (encoder_conf.freeze: true, no "
                             "num_trainable_layers): the schedule says which layers train when")
        if encoder.has_lora:
            raise ValueError("encoder_unfreeze with encoder_conf.lora: the adapters of layers not yet unfrozen "
                             "would get no gradient; use one or the other")
        schedule = parse_schedule(spec, encoder.num_layers)
        encoder.unfreezable(schedule[-1][1])
        return EncoderUnfreeze(schedule)

    @classmethod
    def build_backbone(cls, args: argparse.Namespace, input_size: int) -> Dict[str, torch.nn.Module]:
        """The ``encoder`` (reading ``input_size`` features) and the ``llm`` of ``args``."""
        return dict(
            encoder=encoder_choices.get_class(args.encoder)(input_size=input_size, **args.encoder_conf),
            llm=llm_choices.get_class(args.llm)(**args.llm_conf),
        )

    @classmethod
    def build_model_from_file(
        cls, config_file: Optional[str] = None, model_file: Optional[str] = None, device: str = "cpu"
    ) -> Tuple[ESPnetCSSTModel, argparse.Namespace]:
        """A trained model for inference (decoding, routing report, export) from its training
        ``config.yaml`` (default: beside ``model_file``) and weights.

        Unlike ESPnet's loader, the auxiliary losses and the speech-side warm-up are not built:
        they only train (the warm-up would refuse a model without auxiliary losses), and a distill
        teacher would load a second full model from files that need not exist where the model is
        decoded (a packed model, another directory). The weights load strictly, frozen pretrained
        weights excepted (they come back from their pretrained source), so a wrong model file is an
        error rather than silently half-loaded.
        """
        if config_file is None:
            if model_file is None:
                raise ValueError("build_model_from_file needs config_file or model_file")
            config_file = os.path.join(os.path.dirname(model_file), "config.yaml")
        with open(config_file, encoding="utf-8") as f:
            return cls.build_model_from_config(yaml.safe_load(f), model_file, device)

    @classmethod
    def build_model_from_config(
        cls, config: Dict, model_file: Optional[str] = None, device: str = "cpu"
    ) -> Tuple[ESPnetCSSTModel, argparse.Namespace]:
        """``build_model_from_file`` on a config already read (a dict of ``config.yaml``)."""
        args = argparse.Namespace(**config)
        state = None if model_file is None else torch.load(model_file, map_location="cpu", weights_only=True)
        model = cls._trained_model(args, state)
        return model.to(device), args

    @classmethod
    def load_teacher(
        cls, args: argparse.Namespace, student: Optional[Dict[str, torch.nn.Module]] = None
    ) -> ESPnetCSSTModel:
        """The frozen previous-phase model of ``--teacher_config`` / ``--teacher_model``.

        With ``student`` (the student's ``encoder`` and ``llm``, as ``build_model`` passes them) and a
        teacher built on the same backbone (``same_backbone``), the teacher shares the student's frozen
        weights (the same tensors: a 7B LLM is in memory once) and holds only what its own checkpoint
        holds (projector, adapters, trained layers); otherwise it is built whole."""
        for option in ("teacher_config", "teacher_model"):
            path = getattr(args, option, None)
            if path is None:
                raise ValueError(
                    f"a loss needs the previous phase's model as its teacher: give --{option} "
                    "(csst.sh passes the previous phase's exp/<tag>/config.yaml and model file)"
                )
            if not os.path.isfile(path):
                raise FileNotFoundError(f"--{option} {path} does not exist (working directory {os.getcwd()})")
        if student is None:
            return cls.build_frozen_model(args.teacher_config, args.teacher_model)
        with open(args.teacher_config, encoding="utf-8") as f:
            teacher_args = argparse.Namespace(**yaml.safe_load(f))
        differs = same_backbone(args, teacher_args)
        if differs:
            logging.warning("distillation teacher %s: %s differs from the student's; the teacher is built "
                            "whole, with its own copy of the backbone", args.teacher_config, differs)
            return cls.build_frozen_model(args.teacher_config, args.teacher_model)
        state = torch.load(args.teacher_model, map_location="cpu", weights_only=True)
        backbone = {
            part: copy_sharing_frozen(module, {k[len(part) + 1 :] for k in state if k.startswith(part + ".")})
            for part, module in student.items()
        }
        model = cls._trained_model(teacher_args, state, backbone)
        return model.eval().requires_grad_(False)

    @classmethod
    def _trained_model(
        cls,
        args: argparse.Namespace,
        state: Optional[Dict[str, torch.Tensor]],
        backbone: Optional[Dict[str, torch.nn.Module]] = None,
    ) -> ESPnetCSSTModel:
        """The model of a training run's ``args`` without its auxiliary losses and warm-up, with the
        weights ``state`` loaded strictly (frozen pretrained weights excepted); see ``build_model_from_file``."""
        model_conf = {**(getattr(args, "model_conf", None) or {}), "speech_warmup_epochs": 0}
        model = cls.build_model(
            argparse.Namespace(**{**vars(args), "aux_losses": [], "model_conf": model_conf}), backbone=backbone
        )
        if state is not None:
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("aux_losses.")})
        return model

    @classmethod
    def build_frozen_model(cls, config_file: str, model_file: str) -> ESPnetCSSTModel:
        """A trained model as a frozen reference (e.g. a distillation teacher), on the CPU, in eval
        mode, no parameter requiring grad (see ``build_model_from_file``)."""
        model, _ = cls.build_model_from_file(config_file, model_file, "cpu")
        return model.eval().requires_grad_(False)


def deepspeed_problems(args: argparse.Namespace) -> List[str]:
    """What a config needs of ``CSSTTrainer`` that ESPnet's DeepSpeed trainer does not do: it never
    tells the model the epoch (``set_epoch``: speech warm-up epochs) nor each optimiser update
    (``on_update``: the transition's mixture λ ramp, the encoder's unfreezing)."""
    problems = []
    if int((args.model_conf or {}).get("speech_warmup_epochs", 0) or 0) > 0:
        problems.append("does not tell the model the epoch: model_conf.speech_warmup_epochs must be 0")
    if getattr(args, "encoder_unfreeze", None):
        problems.append("does not count optimiser updates: encoder_unfreeze would never unfreeze")
    for spec in args.aux_losses or []:
        if spec.get("name") == "transition" and (spec.get("conf") or {}).get("mode", "mixture") == "mixture":
            problems.append("does not count optimiser updates: the transition's mixture λ would never rise "
                            "(use mode: distill)")
    return problems


# Options that may differ between a student and a teacher sharing its backbone: they change what
# trains or how memory is spent, not the weights a frozen tensor holds.
_BACKBONE_FREE = ("gradient_checkpointing", "freeze", "num_trainable_layers")


def same_backbone(student: argparse.Namespace, teacher: argparse.Namespace) -> Optional[str]:
    """None if the teacher's encoder, LLM (and frontend) are built as the student's, whatever trains;
    else the first option that differs."""
    for key in ("frontend", "frontend_conf", "input_size", "encoder", "encoder_conf", "llm", "llm_conf"):
        a, b = getattr(student, key, None), getattr(teacher, key, None)
        if key.endswith("_conf"):
            a, b = ({k: v for k, v in (c or {}).items() if k not in _BACKBONE_FREE} for c in (a, b))
        if a != b:
            return key
    return None
