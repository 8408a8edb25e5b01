"""The BLOOMZMMS ASR task: ESPnet's ASR task with this project's components registered.

Importing this module registers, without touching ESPnet's files:
    --frontend hf_speech_encoder    --encoder e_branchformer_lid    --postencoder conv_adaptor
    --decoder hf_causal_lm          --model bloomzmms               --preprocessor bloomzmms
and adds the options --language_list, --llm_ctc_conf, --train_text_type and the data keys
utt2lang, decoder_prefix and decoder_postfix.
"""

import argparse
import logging
from typing import Callable, Optional, Tuple

import torch
from espnet2.tasks import asr as espnet_asr
from espnet2.tasks.abs_task import optim_classes
from espnet2.tasks.asr import ASRTask
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str_or_none
from transformers import AutoConfig

from bloomzmms.asr.adaptor import ConvLengthAdaptor
from bloomzmms.asr.frontend import HFSpeechEncoderFrontend
from bloomzmms.asr.lid import LIDConditionedEBranchformerEncoder
from bloomzmms.asr.llm_ctc import LLMTiedCTC
from bloomzmms.asr.llm_decoder import HFCausalLMDecoder
from bloomzmms.asr.model import BloomzmmsModel
from bloomzmms.asr.preprocessor import BloomzmmsPreprocessor

REGISTRATIONS = (
    (espnet_asr.frontend_choices, "hf_speech_encoder", HFSpeechEncoderFrontend),
    (espnet_asr.encoder_choices, "e_branchformer_lid", LIDConditionedEBranchformerEncoder),
    (espnet_asr.postencoder_choices, "conv_adaptor", ConvLengthAdaptor),
    (espnet_asr.decoder_choices, "hf_causal_lm", HFCausalLMDecoder),
    (espnet_asr.model_choices, "bloomzmms", BloomzmmsModel),
    (espnet_asr.preprocessor_choices, "bloomzmms", BloomzmmsPreprocessor),
)
for choices, name, component in REGISTRATIONS:
    choices.classes[name] = component


def llm_hidden_size(args: argparse.Namespace, model_conf: dict) -> int:
    """Hidden size of the LLM the model is built around (its decoder, or its CTC head's source)."""
    if model_conf.get("llm_weight", 0.0) > 0 or args.decoder is not None:
        name = args.decoder_conf.get("model_name_or_path", "bigscience/bloomz-7b1")
    else:
        name = args.llm_ctc_conf.get("llm_name_or_path", "bigscience/bloomz-7b1")
    return AutoConfig.from_pretrained(name).hidden_size


def read_list(value) -> list:
    """A list given inline (config.yaml of a trained model) or as a file, one entry per line."""
    if value is None or isinstance(value, (list, tuple)):
        return list(value or [])
    with open(value, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


class BloomzmmsASRTask(ASRTask):
    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="BLOOMZMMS related")
        group.add_argument(
            "--language_list",
            type=str_or_none,
            default=None,
            help="File with one language code per line: the classes of the language-ID head "
            "and the values allowed in utt2lang",
        )
        group.add_argument(
            "--llm_ctc_conf",
            action=NestedDictAction,
            default=dict(),
            help="Keyword arguments of the LLM-tied CTC head (llm_name_or_path, blank_id, "
            "embeddings_path); the head is built when model_conf.ctc_weight > 0",
        )
        group.add_argument(
            "--train_text_type",
            choices=["text", "text_int"],
            default="text",
            help="text_int: the training set's text/decoder_prefix/decoder_postfix hold LLM "
            "token ids (the published multi-instruction targets) instead of text",
        )
        parser.set_defaults(model="bloomzmms", preprocessor="bloomzmms", token_type="hugging_face")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("utt2lang", "decoder_prefix", "decoder_postfix")

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        if not args.use_preprocessor:
            return None
        if args.bpemodel is None:
            raise ValueError("--bpemodel must name the LLM's tokenizer (hub name or directory)")
        return BloomzmmsPreprocessor(
            train=train,
            tokenizer_name_or_path=args.bpemodel,
            language_list=read_list(getattr(args, "language_list", None)),
            token_id_input=train and getattr(args, "train_text_type", "text") == "text_int",
            text_cleaner=args.cleaner,
            vocab_size=len(read_list(args.token_list)),
        )

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module):
        # Frozen weights never enter the optimizer (nor its state in checkpoints).
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"--optim must be one of {list(optim_classes)}: {args.optim}")
        trainable = [p for p in model.parameters() if p.requires_grad]
        return [optim_class(trainable, **args.optim_conf)]

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> BloomzmmsModel:
        token_list = read_list(args.token_list)
        args.token_list = token_list  # stored inline in config.yaml: the model dir is portable
        language_list = read_list(getattr(args, "language_list", None))
        args.language_list = language_list
        vocab_size = len(token_list)
        logging.info(f"Vocabulary size: {vocab_size}, languages: {len(language_list)}")

        def build(choices, name, conf, **extra):
            if name is None:
                return None
            return choices.get_class(name)(**extra, **conf)

        frontend = build(espnet_asr.frontend_choices, args.frontend, args.frontend_conf)
        input_size = frontend.output_size()
        specaug = build(espnet_asr.specaug_choices, args.specaug, args.specaug_conf)
        normalize = build(espnet_asr.normalize_choices, args.normalize, args.normalize_conf)
        # Sizes fixed by the pretrained models need not be repeated in configs.
        preencoder_conf = {"input_size": input_size, **args.preencoder_conf}
        preencoder = build(espnet_asr.preencoder_choices, getattr(args, "preencoder", None), preencoder_conf)
        if preencoder is not None:
            input_size = preencoder.output_size()
        encoder_extra = {"input_size": input_size}
        if args.encoder == "e_branchformer_lid":
            encoder_extra["num_languages"] = len(language_list)
        encoder = build(espnet_asr.encoder_choices, args.encoder, args.encoder_conf, **encoder_extra)
        if args.postencoder is None:
            raise ValueError("--postencoder (the adaptor to the LLM width, e.g. conv_adaptor) is required")
        model_conf = dict(args.model_conf)
        adaptor_conf = dict(args.postencoder_conf)
        if "output_size" not in adaptor_conf:
            adaptor_conf["output_size"] = llm_hidden_size(args, model_conf)
        adaptor = build(
            espnet_asr.postencoder_choices, args.postencoder, adaptor_conf, input_size=encoder.output_size()
        )
        ctc = None
        if model_conf.get("ctc_weight", 1.0) > 0:
            ctc = LLMTiedCTC(vocab_size, adaptor.output_size(), **args.llm_ctc_conf)
        decoder = None
        if model_conf.get("llm_weight", 0.0) > 0 or args.decoder is not None:
            decoder = build(
                espnet_asr.decoder_choices, args.decoder, args.decoder_conf,
                vocab_size=vocab_size, encoder_output_size=adaptor.output_size(),
            )
        return BloomzmmsModel(
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            preencoder=preencoder,
            encoder=encoder,
            adaptor=adaptor,
            ctc=ctc,
            decoder=decoder,
            token_list=token_list,
            **model_conf,
        )
