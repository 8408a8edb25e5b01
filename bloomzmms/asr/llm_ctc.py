"""CTC head whose output matrix IS the LLM's input-embedding matrix (bias-free, frozen).

The encoder thereby learns to emit vectors in the LLM's embedding space. The matrix is sliced
to the token list (BLOOM: 250,880 embedding rows, 250,680 tokens) and checked, instead of being
silently skipped on a shape mismatch as in the original. It is a frozen pretrained weight, so it
is a non-persistent buffer: never written into checkpoints, re-read from the LLM when built.
"""

import logging
from typing import Optional

import torch

from bloomzmms.asr.llm import load_input_embeddings, load_tokenizer


class LLMTiedCTC(torch.nn.Module):
    """CTC over the LLM vocabulary: logits = hidden @ E[:vocab_size].T.

    Args:
        vocab_size: number of entries of the token list (token id = row of E).
        encoder_output_size: width of the adaptor output; must equal the LLM's hidden size.
        llm_name_or_path: the LLM whose input embeddings form the head.
        blank_id: token id used as the CTC blank (BLOOM: ``<pad>`` = 3, never a target).
        embeddings_path: a ``torch.save``d matrix (or ``{"ctc.ctc_lo.weight": matrix}``) exported
            from the same LLM, read instead of the LLM checkpoint.
        load_weights: False leaves the matrix uninitialized (model summaries on meta device).
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        llm_name_or_path: str = "bigscience/bloomz-7b1",
        blank_id: int = 3,
        embeddings_path: Optional[str] = None,
        load_weights: bool = True,
    ):
        super().__init__()
        if not 0 <= blank_id < vocab_size:
            raise ValueError(f"blank_id {blank_id} outside the token list of {vocab_size}")
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.warned_unalignable = False
        self.llm_name_or_path = llm_name_or_path
        if load_weights:
            matrix = self.read_embeddings(llm_name_or_path, embeddings_path)
            self.tokenizer = load_tokenizer(llm_name_or_path)
        else:
            matrix = torch.empty(vocab_size, encoder_output_size)
        self.register_buffer("embedding_matrix", self.check_and_slice(matrix, encoder_output_size), persistent=False)

    @staticmethod
    def read_embeddings(llm_name_or_path: str, embeddings_path: Optional[str]) -> torch.Tensor:
        if embeddings_path is None:
            return load_input_embeddings(llm_name_or_path)
        loaded = torch.load(embeddings_path, map_location="cpu", weights_only=True)
        if isinstance(loaded, dict):
            loaded = loaded["ctc.ctc_lo.weight"]
        return loaded.float()

    def check_and_slice(self, matrix: torch.Tensor, encoder_output_size: int) -> torch.Tensor:
        rows, width = matrix.shape
        if width != encoder_output_size:
            raise ValueError(
                f"CTC head: the LLM embeddings of {self.llm_name_or_path} are {width}-dim "
                f"but the adaptor outputs {encoder_output_size}-dim vectors"
            )
        if rows < self.vocab_size:
            raise ValueError(
                f"CTC head: the token list has {self.vocab_size} entries but the LLM "
                f"{self.llm_name_or_path} has only {rows} embedding rows"
            )
        return matrix[: self.vocab_size].clone()

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.embedding_matrix.to(hidden.dtype).T

    def loss(
        self,
        hidden: torch.Tensor,
        hidden_lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Summed CTC loss over the batch; ``targets`` padded with any negative value."""
        self.warn_unalignable(hidden_lengths, targets, target_lengths)
        log_probs = torch.log_softmax(self.logits(hidden).float(), dim=-1).transpose(0, 1)
        return torch.nn.functional.ctc_loss(
            log_probs,
            targets.clamp(min=0),
            hidden_lengths,
            target_lengths,
            blank=self.blank_id,
            reduction="sum",
            zero_infinity=True,
        )

    def warn_unalignable(self, hidden_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor):
        """Warn (once) about utterances with no CTC path: each target token needs a frame, and
        a blank frame between repeated tokens. zero_infinity silently drops their loss."""
        if self.warned_unalignable:
            return
        valid = torch.arange(targets.size(1), device=targets.device)[None, :] < target_lengths[:, None]
        repeats = ((targets[:, 1:] == targets[:, :-1]) & valid[:, 1:]).sum(-1)
        unalignable = int((target_lengths + repeats > hidden_lengths).sum())
        if unalignable:
            self.warned_unalignable = True
            logging.warning(
                "CTC: %d of %d utterances in a batch have more target tokens (+ repeats) than encoder "
                "frames, so they cannot be aligned and add no loss; subsample less or use longer tokens "
                "(warned once)", unalignable, len(target_lengths))

    def detokenize(self, token_ids: list) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def greedy_decode(self, hidden: torch.Tensor, hidden_lengths: torch.Tensor) -> list:
        """Token ids per utterance: best path, repeats merged, blanks removed."""
        best = self.logits(hidden).argmax(-1)
        keep = torch.ones_like(best, dtype=torch.bool)
        keep[:, 1:] = best[:, 1:] != best[:, :-1]
        keep &= best != self.blank_id
        keep &= torch.arange(best.size(1), device=best.device)[None, :] < hidden_lengths[:, None]
        return [row[mask].tolist() for row, mask in zip(best, keep)]
