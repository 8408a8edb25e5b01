"""Intermediate language-ID CTC inside a stock E-Branchformer encoder.

The LID head's posterior conditions the layers after ``lid_layer`` (self-conditioned CTC). Its
target is ONE language token per utterance, scored against the encoder frames of that layer
with their true lengths, so the CTC loss is always feasible (the original repeated the language
token once per text token and halved the lengths twice, which made the loss infinite and zeroed).
"""

from typing import List, Optional, Tuple

import torch
from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder


class LanguageIDCTC(torch.nn.Module):
    """Frame-level language posterior; index 0 is the CTC blank, languages are 1..N."""

    def __init__(self, hidden_size: int, num_languages: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, num_languages + 1)

    def softmax(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(hidden), dim=-1)

    def loss(
        self, hidden: torch.Tensor, hidden_lengths: torch.Tensor, language_ids: torch.Tensor
    ) -> torch.Tensor:
        """Summed CTC loss over the batch of the one-token targets ``language_ids`` (B,)."""
        log_probs = torch.log_softmax(self.linear(hidden).float(), dim=-1).transpose(0, 1)
        targets = (language_ids + 1).view(-1, 1)
        return torch.nn.functional.ctc_loss(
            log_probs,
            targets,
            hidden_lengths,
            torch.ones_like(hidden_lengths),
            blank=0,
            reduction="sum",
            zero_infinity=False,
        )

    def predict(self, hidden: torch.Tensor, hidden_lengths: torch.Tensor) -> torch.Tensor:
        """Language index per utterance: the language with the highest mean frame posterior."""
        posterior = self.softmax(hidden)[..., 1:]
        mask = torch.arange(hidden.size(1), device=hidden.device)[None, :] < hidden_lengths[:, None]
        return (posterior * mask[..., None]).sum(1).argmax(-1)


class LIDConditionedEBranchformerEncoder(EBranchformerEncoder):
    """Stock E-Branchformer whose intermediate CTC at ``lid_layer`` is a language-ID head.

    Returns ``((output, [(lid_layer, hidden_at_lid_layer)]), lengths, None)`` like ESPnet's
    encoders with intermediate CTC; the intermediate entry is missing when layer drop skipped
    that layer.
    """

    def __init__(self, input_size: int, num_languages: int, lid_layer: int = 3, **kwargs):
        if num_languages < 1:
            raise ValueError("num_languages must be >= 1: give the task a --language_list")
        super().__init__(
            input_size,
            interctc_layer_idx=[lid_layer],
            interctc_use_conditioning=True,
            **kwargs,
        )
        self.lid_layer = lid_layer
        self.lid_ctc = LanguageIDCTC(self.output_size(), num_languages)
        self.conditioning_layer = torch.nn.Linear(num_languages + 1, self.output_size())

    def forward(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states=None, **kwargs
    ) -> Tuple[Tuple[torch.Tensor, List[Tuple[int, torch.Tensor]]], torch.Tensor, Optional[torch.Tensor]]:
        kwargs.pop("ctc", None)
        outputs, lengths, _ = super().forward(xs_pad, ilens, prev_states, ctc=self.lid_ctc, **kwargs)
        if not isinstance(outputs, tuple):
            outputs = (outputs, [])
        return outputs, lengths, None
