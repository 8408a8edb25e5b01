"""The BLOOMZMMS model: speech encoder -> adaptor -> (LLM-tied CTC | frozen LLM decoder).

Stage 1 (CTC pretraining) and stage 2 (cross-entropy through the LLM) are two configs of this
one model: ``ctc_weight``/``llm_weight``/``lid_weight`` choose the losses, and the CTC head or
the LLM decoder is built only when its weight is non-zero.
"""

from typing import Dict, List, Optional, Tuple

import editdistance
import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from bloomzmms.asr.lid import LIDConditionedEBranchformerEncoder


class BloomzmmsModel(AbsESPnetModel):
    """Frozen frontend, E-Branchformer with language-ID self-conditioning, length adaptor,
    and either a CTC head tied to the LLM's embeddings or the frozen LLM itself."""

    def __init__(
        self,
        frontend,
        specaug,
        normalize,
        preencoder,
        encoder,
        adaptor,
        ctc=None,
        decoder=None,
        token_list: Optional[List[str]] = None,
        ctc_weight: float = 1.0,
        llm_weight: float = 0.0,
        lid_weight: float = 0.0,
        extract_feats_in_collect_stats: bool = False,
    ):
        super().__init__()
        if ctc_weight > 0 and ctc is None:
            raise ValueError("ctc_weight > 0 needs the LLM-tied CTC head")
        if llm_weight > 0 and decoder is None:
            raise ValueError("llm_weight > 0 needs a decoder (the LLM)")
        if lid_weight > 0 and not isinstance(encoder, LIDConditionedEBranchformerEncoder):
            raise ValueError("lid_weight > 0 needs the e_branchformer_lid encoder")
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.preencoder = preencoder
        self.encoder = encoder
        self.adaptor = adaptor
        self.ctc = ctc
        self.decoder = decoder
        self.token_list = token_list
        self.ctc_weight = ctc_weight
        self.llm_weight = llm_weight
        self.lid_weight = lid_weight
        # Features come from the frozen frontend inside the model: statistics need only lengths.
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats
        # A frozen pretrained speech encoder is re-read from its source at build, like the LLM.
        self.frozen_prefixes = ("frontend.encoder.",) if getattr(frontend, "freeze", False) else ()
        self._register_state_dict_hook(BloomzmmsModel._drop_frozen_pretrained)
        # Frozen pretrained tensors take no part in DDP's syncing: every process loads them.
        self._ddp_params_and_buffers_to_ignore = self.frozen_pretrained_keys()

    @staticmethod
    def _drop_frozen_pretrained(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k[len(prefix):].startswith(module.frozen_prefixes)]:
            del state_dict[key]
        return state_dict

    def frozen_pretrained_keys(self) -> List[str]:
        """Tensors never written to checkpoints: frozen pretrained weights and LLM embeddings."""
        persistent = set(self.state_dict().keys())
        names = [name for name, _ in self.named_parameters() if name not in persistent]
        return names + [name for name, _ in self.named_buffers() if name not in persistent]

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, List[Tuple[int, torch.Tensor]], torch.Tensor]:
        """LLM-space embeddings (B, S, H) with lengths, and the LID layer's hidden states."""
        feats, feats_lengths = self.frontend(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        if self.preencoder is not None:
            feats, feats_lengths = self.preencoder(feats, feats_lengths)
        encoder_out, encoder_lengths, _ = self.encoder(feats, feats_lengths)
        intermediate = []
        if isinstance(encoder_out, tuple):
            encoder_out, intermediate = encoder_out
        embeddings, embedding_lengths = self.adaptor(encoder_out, encoder_lengths)
        return embeddings, embedding_lengths, intermediate, encoder_lengths

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        utt2lang: Optional[torch.Tensor] = None,
        utt2lang_lengths: Optional[torch.Tensor] = None,
        decoder_prefix: Optional[torch.Tensor] = None,
        decoder_prefix_lengths: Optional[torch.Tensor] = None,
        decoder_postfix: Optional[torch.Tensor] = None,
        decoder_postfix_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        batch_size = speech.size(0)
        text = text[:, : int(text_lengths.max())]
        embeddings, embedding_lengths, intermediate, encoder_lengths = self.encode(speech, speech_lengths)
        stats: Dict[str, Optional[torch.Tensor]] = {}
        loss = embeddings.new_zeros(())

        if self.lid_weight > 0:
            if utt2lang is None:
                raise ValueError("lid_weight > 0 but the batch has no 'utt2lang' (language-ID targets)")
            # Layer drop may skip the LID layer in training: no LID loss for that step then.
            for _, lid_hidden in intermediate:
                loss_lid = self.encoder.lid_ctc.loss(lid_hidden, encoder_lengths, utt2lang[:, 0]) / batch_size
                loss = loss + self.lid_weight * loss_lid
                stats["loss_lid"] = loss_lid.detach()
                if not self.training:
                    predicted = self.encoder.lid_ctc.predict(lid_hidden, encoder_lengths)
                    stats["acc_lid"] = (predicted == utt2lang[:, 0]).float().mean()

        if self.ctc_weight > 0:
            loss_ctc = self.ctc.loss(embeddings, embedding_lengths, text, text_lengths) / batch_size
            loss = loss + self.ctc_weight * loss_ctc
            stats["loss_ctc"] = loss_ctc.detach()
            if not self.training:
                stats["cer_ctc"] = self.ctc_character_error_rate(embeddings, embedding_lengths, text, text_lengths)

        if self.llm_weight > 0:
            logits, label_lengths = self.decoder(
                embeddings,
                embedding_lengths,
                text,
                text_lengths,
                decoder_prefix,
                decoder_prefix_lengths,
                decoder_postfix,
                decoder_postfix_lengths,
            )
            labels = torch.cat([text, text.new_full((batch_size, 1), -1)], dim=1)
            labels[torch.arange(batch_size, device=text.device), text_lengths] = self.decoder.eos_id
            valid = torch.arange(labels.size(1), device=labels.device)[None, :] < label_lengths[:, None]
            labels = labels.masked_fill(~valid, -100)
            # Summed over tokens, divided by utterances (the paper's length_normalized_loss: false).
            loss_llm = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum"
            ) / batch_size
            loss = loss + self.llm_weight * loss_llm
            stats["loss_llm"] = loss_llm.detach()
            correct = (logits.argmax(-1) == labels) & valid
            stats["acc"] = correct.sum().float() / valid.sum().clamp(min=1)

        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def ctc_character_error_rate(self, embeddings, embedding_lengths, text, text_lengths) -> torch.Tensor:
        """Character error rate of CTC greedy decoding, on detokenized text (``cer_ctc``)."""
        hypotheses = self.ctc.greedy_decode(embeddings, embedding_lengths)
        errors, reference_chars = 0, 0
        for hypothesis, reference, length in zip(hypotheses, text, text_lengths):
            reference_text = self.ctc.detokenize(reference[: int(length)].tolist())
            errors += editdistance.eval(self.ctc.detokenize(hypothesis), reference_text)
            reference_chars += len(reference_text)
        return torch.tensor(errors / max(1, reference_chars), device=embeddings.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Strict about every trained tensor, whatever ``strict`` says.

        ESPnet loads checkpoints with ``strict=False``, which would hide real mismatches. Here
        only the frozen pretrained tensors (never saved) may be absent; if given (an exported
        LLM embedding file as ``--pretrained_model``), their shapes must match.
        """
        state_dict = dict(state_dict)
        frozen = {}
        frozen_keys = self.frozen_pretrained_keys()
        buffers = {**dict(self.named_parameters()), **dict(self.named_buffers())}
        for key in frozen_keys:
            if key in state_dict:
                frozen[key] = state_dict.pop(key)
        legacy_ctc_key = "ctc.ctc_lo.weight"
        if legacy_ctc_key in state_dict and self.ctc is not None:
            frozen["ctc.embedding_matrix"] = state_dict.pop(legacy_ctc_key)
        for key, value in frozen.items():
            if value.shape != buffers[key].shape:
                raise ValueError(f"{key}: checkpoint shape {tuple(value.shape)} != model shape {tuple(buffers[key].shape)}")
            with torch.no_grad():
                buffers[key].copy_(value)
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [key for key in result.missing_keys if key not in set(frozen_keys)]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"checkpoint does not match the model: missing {missing[:10]} "
                f"({len(missing)}), unexpected {result.unexpected_keys[:10]} "
                f"({len(result.unexpected_keys)})"
            )
        return result
