"""Decoder: a frozen Hugging Face causal LM reading ``[prefix, speech, postfix, target]``.

The LLM is deliberately NOT a registered submodule: ESPnet's ``model.to(dtype)`` would upcast
or break a bfloat16/8-bit LLM, DDP would broadcast it, and ``state_dict()`` would write it into
every checkpoint. It is loaded once per process and follows the speech encoder's device.
"""

from typing import List, Optional, Tuple

import torch
from espnet2.asr.decoder.abs_decoder import AbsDecoder

from bloomzmms.asr.llm import load_causal_lm, load_tokenizer, resolve_dtype
from bloomzmms.asr.llm_inputs import build_llm_inputs, gather_positions


def pad_token_lists(token_lists: List[List[int]], device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(tokens) for tokens in token_lists], dtype=torch.long, device=device)
    padded = torch.full((len(token_lists), max(1, int(lengths.max()))), -1, dtype=torch.long, device=device)
    for row, tokens in enumerate(token_lists):
        padded[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    return padded, lengths


class HFCausalLMDecoder(AbsDecoder):
    """Frozen causal LM (BLOOM/BLOOMZ, Llama, Qwen, ...) conditioned on speech embeddings.

    Args:
        vocab_size: size of the token list (unused: the LLM's own vocabulary is scored).
        encoder_output_size: adaptor output width; must equal the LLM hidden size.
        model_name_or_path: hub name or local directory of the LLM.
        dtype: "float32" | "bfloat16" | "float16" for the LLM weights and its computation.
        quantization: None | "8bit" | "4bit" (bitsandbytes, CUDA only).
        instruction_prefix / instruction_postfix: the default instruction around the speech,
            used for utterances without their own ``decoder_prefix``/``decoder_postfix``.
        load_weights: False builds the architecture from its config only (model summaries).
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        model_name_or_path: str = "bigscience/bloomz-7b1",
        dtype: str = "float32",
        quantization: Optional[str] = None,
        instruction_prefix: str = "Repeat the sentence: ",
        instruction_postfix: str = ". ",
        load_weights: bool = True,
    ):
        super().__init__()
        self.model_name_or_path = model_name_or_path
        self.dtype_name = dtype
        self.dtype = resolve_dtype(dtype)
        self.quantization = quantization
        self.load_weights = load_weights
        llm = None
        if quantization is None:
            llm = load_causal_lm(model_name_or_path, dtype, None, load_weights=load_weights)
            hidden_size = llm.get_input_embeddings().weight.size(1)
            if hidden_size != encoder_output_size:
                raise ValueError(
                    f"{model_name_or_path} has hidden size {hidden_size} but the adaptor "
                    f"outputs {encoder_output_size}: set the adaptor's output_size to {hidden_size}"
                )
        self._llm_holder = [llm]  # a list keeps it out of the module tree (see module doc)
        if load_weights:
            self.tokenizer = load_tokenizer(model_name_or_path)
            self.eos_id = self.tokenizer.eos_token_id
            pad_id = self.tokenizer.pad_token_id
            self.pad_id = pad_id if pad_id is not None else self.eos_id
            self.register_buffer("default_prefix_ids", self.encode_text(instruction_prefix), persistent=False)
            self.register_buffer("default_postfix_ids", self.encode_text(instruction_postfix), persistent=False)

    def encode_text(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    @property
    def llm(self) -> Optional[torch.nn.Module]:
        return self._llm_holder[0]

    def llm_on(self, device: torch.device) -> torch.nn.Module:
        """The LLM on ``device``: loaded there on first use when quantized, else moved once."""
        llm = self._llm_holder[0]
        if llm is None:
            llm = load_causal_lm(self.model_name_or_path, self.dtype_name, self.quantization, device)
            self._llm_holder[0] = llm
        elif self.quantization is None and llm.device != device:
            llm.to(device)
        return llm

    def instruction_or_default(
        self,
        ids: Optional[torch.Tensor],
        lengths: Optional[torch.Tensor],
        default: torch.Tensor,
        batch_size: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if ids is None:
            return default[None, :].expand(batch_size, -1), torch.full(
                (batch_size,), default.numel(), dtype=torch.long, device=default.device
            )
        return ids, lengths

    def llm_input_segments(self, llm, speech, speech_lengths, prefix, prefix_lengths, postfix, postfix_lengths):
        embed = llm.get_input_embeddings()
        batch_size = speech.size(0)
        prefix, prefix_lengths = self.instruction_or_default(prefix, prefix_lengths, self.default_prefix_ids, batch_size)
        postfix, postfix_lengths = self.instruction_or_default(postfix, postfix_lengths, self.default_postfix_ids, batch_size)
        return [
            (embed(prefix.clamp(min=0)), prefix_lengths),
            (speech.to(self.dtype), speech_lengths),
            (embed(postfix.clamp(min=0)), postfix_lengths),
        ]

    def forward(
        self,
        hs_pad: torch.Tensor,
        hlens: torch.Tensor,
        ys_in_pad: torch.Tensor,
        ys_in_lens: torch.Tensor,
        prefix: Optional[torch.Tensor] = None,
        prefix_lengths: Optional[torch.Tensor] = None,
        postfix: Optional[torch.Tensor] = None,
        postfix_lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T+1, V) predicting ``ys_in_pad`` followed by EOS, and their lengths T_b+1.

        Only the target span goes through the output layer: BLOOM's vocabulary is 250k wide.
        """
        llm = self.llm_on(hs_pad.device)
        segments = self.llm_input_segments(llm, hs_pad, hlens, prefix, prefix_lengths, postfix, postfix_lengths)
        segments.append((llm.get_input_embeddings()(ys_in_pad.clamp(min=0)), ys_in_lens))
        inputs = build_llm_inputs(segments, padding_side="right")
        hidden = llm.base_model(inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask).last_hidden_state
        # The last instruction position predicts the first target token.
        target_hidden = gather_positions(hidden, inputs.segment_starts[:, 3] - 1, ys_in_pad.size(1) + 1)
        logits = llm.get_output_embeddings()(target_hidden).float()
        return logits, ys_in_lens + 1

    @torch.no_grad()
    def generate(
        self,
        hs_pad: torch.Tensor,
        hlens: torch.Tensor,
        prefix: Optional[torch.Tensor] = None,
        prefix_lengths: Optional[torch.Tensor] = None,
        postfix: Optional[torch.Tensor] = None,
        postfix_lengths: Optional[torch.Tensor] = None,
        num_beams: int = 1,
        max_new_tokens: int = 192,
        **generate_kwargs,
    ) -> List[List[int]]:
        """Token ids of the response for every utterance, generated as one left-padded batch."""
        llm = self.llm_on(hs_pad.device)
        segments = self.llm_input_segments(llm, hs_pad, hlens, prefix, prefix_lengths, postfix, postfix_lengths)
        inputs = build_llm_inputs(segments, padding_side="left")
        output = llm.generate(
            inputs_embeds=inputs.embeds,
            attention_mask=inputs.attention_mask,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            **generate_kwargs,
        )
        responses = []
        for row in output.tolist():
            if self.eos_id in row:
                row = row[: row.index(self.eos_id)]
            responses.append([token for token in row if token != self.pad_id])
        return responses
