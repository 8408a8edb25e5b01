"""Frontend: a frozen Hugging Face speech encoder with a learned weighted sum of its layers.

BLOOMZMMS uses MMS-1B-all (wav2vec2 architecture, 1280-dim); any ``AutoModel`` speech encoder
that returns ``hidden_states`` works (wav2vec2, HuBERT, WavLM, ...).
"""

from typing import Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from transformers import AutoConfig, AutoModel


class HFSpeechEncoderFrontend(AbsFrontend):
    """Raw waveform -> weighted sum of all hidden layers of a pretrained speech encoder.

    Args:
        model_name_or_path: hub name or local directory of the speech encoder.
        freeze: keep the encoder's weights fixed (its layer weights stay trainable).
        load_weights: False builds the architecture from its config only (model summaries).
    """

    def __init__(
        self,
        model_name_or_path: str = "facebook/mms-1b-all",
        freeze: bool = True,
        load_weights: bool = True,
    ):
        super().__init__()
        if load_weights:
            self.encoder = AutoModel.from_pretrained(model_name_or_path)
        else:
            self.encoder = AutoModel.from_config(AutoConfig.from_pretrained(model_name_or_path))
        self.freeze = freeze
        if freeze:
            self.encoder.requires_grad_(False)
        config = self.encoder.config
        self._output_size = config.hidden_size
        # Embedding output + one entry per transformer layer.
        self.layer_weights = torch.nn.Parameter(torch.zeros(config.num_hidden_layers + 1))
        # wav2vec2-style encoders are trained on zero-mean unit-variance waveforms.
        self.normalize_waveform = getattr(config, "feat_extract_norm", "layer") == "layer"

    def output_size(self) -> int:
        return self._output_size

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            # A frozen encoder never runs dropout or layer drop.
            self.encoder.eval()
        return self

    def forward(
        self, input: torch.Tensor, input_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(input.size(1), device=input.device)[None, :] < input_lengths[:, None]
        waveform = input.masked_fill(~mask, 0.0)
        if self.normalize_waveform:
            count = input_lengths[:, None].clamp(min=1).to(waveform.dtype)
            mean = waveform.sum(1, keepdim=True) / count
            var = ((waveform - mean).masked_fill(~mask, 0.0) ** 2).sum(1, keepdim=True) / count
            waveform = ((waveform - mean) / torch.sqrt(var + 1e-7)).masked_fill(~mask, 0.0)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden_states = self.encoder(
                waveform, attention_mask=mask.long(), output_hidden_states=True
            ).hidden_states
        stacked = torch.stack(hidden_states, dim=0)
        weights = torch.softmax(self.layer_weights, dim=0).to(stacked.dtype)
        feats = (weights[:, None, None, None] * stacked).sum(0)
        feats_lengths = self.encoder._get_feat_extract_output_lengths(input_lengths)
        feats_lengths = feats_lengths.clamp(max=feats.size(1))
        return feats, feats_lengths
