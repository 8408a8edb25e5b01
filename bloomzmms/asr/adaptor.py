"""Adaptor: strided Conv1d(kernel 2, stride 2) + ReLU layers, then a projection to the LLM width."""

from typing import Tuple

import torch
from espnet2.asr.postencoder.abs_postencoder import AbsPostEncoder


class ConvLengthAdaptor(AbsPostEncoder):
    """Halves the frame rate ``num_layers`` times and maps to the LLM's hidden size.

    Padded frames are zeroed first and odd lengths are padded by one frame, so an utterance's
    output does not depend on the other utterances of its batch, and no frame is dropped.
    """

    def __init__(self, input_size: int, output_size: int = 4096, num_layers: int = 1):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(input_size, input_size, kernel_size=2, stride=2)
            for _ in range(num_layers)
        )
        self.projection = torch.nn.Linear(input_size, output_size)
        self._output_size = output_size

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, input: torch.Tensor, input_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden, lengths = input, input_lengths
        for conv in self.convs:
            mask = torch.arange(hidden.size(1), device=hidden.device)[None, :] < lengths[:, None]
            hidden = hidden.masked_fill(~mask[..., None], 0.0)
            if hidden.size(1) % 2:
                hidden = torch.nn.functional.pad(hidden, (0, 0, 0, 1))
            hidden = torch.relu(conv(hidden.transpose(1, 2))).transpose(1, 2)
            lengths = (lengths + 1) // 2
        return self.projection(hidden), lengths
